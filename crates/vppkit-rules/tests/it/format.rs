//! Policy and directory files whose top level is not a JSON object are refused with a typed
//! error naming the line and column (serde would read a struct from an array: `[]` would be
//! an empty directory, and a one-element array a release policy for everything).

use vppkit_rules::{Directory, FormatError, PolicySet};

fn not_an_object(
    result: Result<impl std::fmt::Debug, FormatError>,
) -> (&'static str, &'static str, usize, usize) {
    match result {
        Err(FormatError::NotAnObject {
            what,
            found,
            line,
            column,
        }) => (what, found, line, column),
        other => panic!("expected NotAnObject, got {other:?}"),
    }
}

#[test]
fn an_empty_array_is_not_an_empty_directory() {
    assert_eq!(
        not_an_object(Directory::from_json("[]")),
        ("directory file", "an array", 1, 1)
    );
}

#[test]
fn a_policy_file_as_an_array_is_refused_where_it_starts() {
    // The file the issue found planning a release of every licence.
    let text =
        "\n\n   [{\"release\":{\"onOutOfScope\":\"release\",\"onDeviceRemoved\":\"release\"}}]";
    let result = PolicySet::from_json(text);
    assert_eq!(not_an_object(result), ("policy file", "an array", 3, 4));
    let message = PolicySet::from_json(text).unwrap_err().to_string();
    assert!(message.contains("line 3, column 4"), "{message}");
    assert!(message.contains("JSON object"), "{message}");
}

#[test]
fn every_other_top_level_value_is_named() {
    for (text, found) in [
        ("\"users\"", "a string"),
        ("42", "a number"),
        ("-1", "a number"),
        ("true", "a boolean"),
        ("false", "a boolean"),
        ("null", "null"),
    ] {
        assert_eq!(
            not_an_object(Directory::from_json(text)),
            ("directory file", found, 1, 1),
            "{text}"
        );
        assert_eq!(
            not_an_object(PolicySet::from_json(text)),
            ("policy file", found, 1, 1),
            "{text}"
        );
    }
    // Tabs and carriage returns count as columns; a line feed starts a new line.
    assert_eq!(
        not_an_object(Directory::from_json("\r\n\t [ ]")),
        ("directory file", "an array", 2, 3)
    );
}

#[test]
fn objects_still_parse_and_broken_text_keeps_serdes_position() {
    let directory = Directory::from_json("  {}").expect("an empty object is an empty directory");
    assert!(directory.users().is_empty());
    let set = PolicySet::from_json("{\"policies\": []}").expect("an empty policy list");
    assert!(set.policies.is_empty());
    // Not JSON at all: serde's syntax error, with its own line and column.
    match Directory::from_json("\n  ]") {
        Err(FormatError::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a JSON syntax error, got {other:?}"),
    }
    assert!(matches!(
        PolicySet::from_json(""),
        Err(FormatError::Json { .. })
    ));
}
