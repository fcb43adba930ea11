//! Every README shows code that builds. The workspace README's embedding snippet is
//! `examples/embed.rs`; each crate's README example is the body of `readme_example` in that
//! crate's `tests/readme.rs` or `tests/it/readme.rs` (compiled by the crate's tests, run where
//! it needs neither Apple nor a database). These tests keep each pair identical.

use std::path::Path;

/// The text of the first code block of `markdown` opened with `fence` (up to its closing fence).
fn block<'a>(markdown: &'a str, fence: &str, what: &str) -> &'a str {
    markdown
        .split(fence)
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("{what} has no {} block", fence.trim_end()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn readme_snippet_is_the_compiled_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = read(&root.join("README.md"));
    let example = read(&root.join("examples/embed.rs"));
    let snippet = example
        .split("// --8<-- [start:embed]\n")
        .nth(1)
        .and_then(|rest| rest.split("// --8<-- [end:embed]").next())
        .expect("examples/embed.rs marks its snippet with --8<-- [start:embed] / [end:embed]");
    assert_eq!(
        block(&readme, "```rust,ignore\n", "README.md").trim_end(),
        snippet.trim_end(),
        "README.md's snippet differs from examples/embed.rs: copy the marked part of the example"
    );
}

#[test]
fn every_crate_readme_example_is_its_compiled_test() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut checked = Vec::new();
    for dir in std::fs::read_dir(&crates).expect("crates/") {
        let dir = dir.expect("a crate directory").path();
        let readme = read(&dir.join("README.md"));
        let test = ["tests/readme.rs", "tests/it/readme.rs"]
            .iter()
            .map(|t| dir.join(t))
            .find(|t| t.exists())
            .unwrap_or_else(|| panic!("{}: no tests/readme.rs", dir.display()));
        let example = block(
            &readme,
            "```rust\n",
            &dir.join("README.md").display().to_string(),
        );
        assert!(
            read(&test).contains(example),
            "{}'s example differs from {}: keep them the same",
            dir.join("README.md").display(),
            test.display()
        );
        checked.push(dir);
    }
    assert_eq!(checked.len(), 9, "every crate checked: {checked:?}");
}
