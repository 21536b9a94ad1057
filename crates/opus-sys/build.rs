//! Compiles the vendored CELT part of libopus (see `opus/README.md`) with custom
//! modes enabled. Only a C compiler is needed: no cmake, no system libopus.

use std::path::PathBuf;

/// Version of the vendored Opus source (from its `package_version` file).
const OPUS_VERSION: &str = "1.6.1";

/// The CELT sources that `opus_custom_*` needs (libopus' `CELT_SOURCES`, minus
/// nothing: SILK, the Opus layer and DNN are left out).
const CELT_SOURCES: &[&str] = &[
    "bands.c",
    "celt.c",
    "celt_decoder.c",
    "celt_encoder.c",
    "celt_lpc.c",
    "cwrs.c",
    "entcode.c",
    "entdec.c",
    "entenc.c",
    "kiss_fft.c",
    "laplace.c",
    "mathops.c",
    "mdct.c",
    "modes.c",
    "pitch.c",
    "quant_bands.c",
    "rate.c",
    "vq.c",
];

/// libopus' float SSE/SSE2 kernels (`CELT_SOURCES_SSE` and the float half of `CELT_SOURCES_SSE2`):
/// the pitch cross-correlation and inner products, the comb filter, and the encoder's PVQ search.
/// Every x86-64 CPU has SSE2, so they are "presumed" (called directly, as libopus' own build does
/// on x86-64): no run-time CPU detection, nothing that an x86-64 CPU might lack. The AVX2 pitch
/// kernel is left out: it needs run-time detection, whose source drags in SILK headers.
const X86_64_SSE_SOURCES: &[&str] = &["pitch_sse.c", "vq_sse2.c"];

fn add_x86_64_sse(build: &mut cc::Build, root: &std::path::Path) {
    for feature in ["SSE", "SSE2"] {
        build
            .define(&format!("OPUS_X86_MAY_HAVE_{feature}"), None)
            .define(&format!("OPUS_X86_PRESUME_{feature}"), None);
    }
    for file in X86_64_SSE_SOURCES {
        build.file(root.join("celt").join("x86").join(file));
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets this")).join("opus");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=opus");

    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let mut build = cc::Build::new();
    build
        .include(root.join("include"))
        .include(root.join("celt"))
        // vq.c includes silk/SigProc_FIX.h (only macros are used in a float build).
        .include(root.join("silk"))
        .define("OPUS_BUILD", None)
        .define("CUSTOM_MODES", None)
        // libopus' cmake default; keeps a few cheap sanity checks in release builds.
        .define("ENABLE_HARDENING", None)
        .define("PACKAGE_VERSION", Some(format!("\"{OPUS_VERSION}\"").as_str()))
        // The codec is real-time code: always optimise it, also in debug builds.
        .opt_level(2)
        .warnings(false);
    if target_env == "msvc" {
        // No C99 variable-length arrays in MSVC.
        build.define("USE_ALLOCA", None);
    } else {
        build
            .define("VAR_ARRAYS", None)
            .define("HAVE_LRINTF", None)
            .define("HAVE_LRINT", None)
            .flag_if_supported("-std=gnu99");
    }
    for file in CELT_SOURCES {
        build.file(root.join("celt").join(file));
    }
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target_arch == "x86_64" && target_env != "msvc" {
        add_x86_64_sse(&mut build, &root);
    }
    build.compile("tutti_opus");

    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "windows" && target_os != "macos" {
        println!("cargo:rustc-link-lib=m");
    }
    println!("cargo:include={}", root.join("include").display());
    println!("cargo:version={OPUS_VERSION}");
}
