//! Every committed corpus input and every regression input, through its target: what the fuzzer found and
//! what was fixed stays fixed, without AFL. Inputs live in crates/fuzz/corpus/TARGET/ and
//! crates/fuzz/regressions/TARGET/ (a regression input is a crash or hang the fuzzer found, kept after the fix).

use std::path::Path;

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| (e.path().display().to_string(), std::fs::read(e.path()).expect("readable")))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0;
    for (name, target) in tutti_fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(!corpus.is_empty(), "target {name} has no seed corpus: run `cargo run -p tutti-fuzz --bin fuzz-seed`");
        let regressions = inputs(&root.join("regressions").join(name));
        for (path, input) in corpus.iter().chain(&regressions) {
            let outcome = std::panic::catch_unwind(|| target(input));
            assert!(outcome.is_ok(), "{path} makes target {name} panic");
            total += 1;
        }
    }
    println!("{total} inputs replayed");
}

#[test]
fn no_corpus_folder_without_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(tutti_fuzz::target(&name).is_some(), "{folder}/{name} belongs to no target");
        }
    }
}
