//! The AFL++ harness: `fuzz TARGET` runs one target of [`tutti_fuzz::TARGETS`] in AFL's persistent mode.
//! Built by scripts/fuzz.sh with `cargo afl build --features afl`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = tutti_fuzz::target(&name) else {
        eprintln!("fuzz: unknown target {name:?}; the targets: {}", tutti_fuzz::names().join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
