//! docs/privacy.md stays complete: every test its table names exists, and every test in a privacy test file
//! (`crates/tutti/tests/*privacy*.rs`) is in the table.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("the workspace root")
}

/// The `path::test` entries of the table's rows.
fn table_tests() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(root().join("docs/privacy.md")).expect("docs/privacy.md");
    doc.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| promise"))
        .flat_map(|l| l.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .filter_map(|entry| entry.rsplit_once("::").map(|(p, n)| (p.to_string(), n.to_string())))
        .collect()
}

#[test]
fn every_test_the_privacy_table_names_exists() {
    let tests = table_tests();
    assert!(tests.len() >= 20, "the table lists its tests: {tests:?}");
    for (path, name) in &tests {
        let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(text.contains(&format!("fn {name}(")), "docs/privacy.md names {path}::{name}, which does not exist");
    }
}

#[test]
fn every_privacy_test_is_in_the_table() {
    let listed = table_tests();
    let dir = root().join("crates/tutti/tests");
    for entry in std::fs::read_dir(&dir).expect("the tests folder").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.contains("privacy") || !file.ends_with(".rs") || file == "privacy_table.rs" {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("#[test]") && !line.trim_start().starts_with("#[tokio::test") {
                continue;
            }
            let Some(name) = lines[i + 1..].iter().find_map(|l| {
                let l = l.trim_start();
                let rest = l.strip_prefix("async fn ").or_else(|| l.strip_prefix("fn "))?;
                rest.split('(').next().map(str::to_string)
            }) else {
                continue;
            };
            let path = format!("crates/tutti/tests/{file}");
            assert!(
                listed.iter().any(|(p, n)| *p == path && *n == name),
                "{path}::{name} is a privacy test missing from docs/privacy.md's table"
            );
        }
    }
}
