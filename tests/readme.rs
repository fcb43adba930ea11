//! The README's embedding snippet is `examples/embed.rs`, which CI compiles: this test
//! keeps the two identical, so the README never shows code that does not build.

#[test]
fn readme_snippet_is_the_compiled_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let example =
        std::fs::read_to_string(format!("{root}/examples/embed.rs")).expect("examples/embed.rs");
    let snippet = example
        .split("// --8<-- [start:embed]\n")
        .nth(1)
        .and_then(|rest| rest.split("// --8<-- [end:embed]").next())
        .expect("examples/embed.rs marks its snippet with --8<-- [start:embed] / [end:embed]");
    let block = readme
        .split("```rust,ignore\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("README.md has a ```rust,ignore block");
    assert_eq!(
        block.trim_end(),
        snippet.trim_end(),
        "README.md's snippet differs from examples/embed.rs: copy the marked part of the example"
    );
}
