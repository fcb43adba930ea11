//! The manager's operator surface (`src/manager/{cli,app,error}.rs`), run as
//! the binary an operator runs:
//!
//! - `--db` URLs: `sqlite://PATH` and `sqlite:PATH` create the file as a plain path does;
//!   an unknown scheme (`mysql://x`) is a clear error, not a file name;
//! - `--json` errors: a JSON object on stdout and a non-zero exit (2 for a command line that
//!   does not parse), as well as one line on stderr;
//! - every environment variable the manager reads is in `--help` and in the README.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use vppkit::store::SecretCipher;

mod support;
use support::manager_binary;

/// Runs the manager in `cwd` with a fresh key (or none) and no other VPPKIT_ variable.
fn run(cwd: &Path, args: &[&str], key: bool) -> Output {
    let mut command = Command::new(manager_binary());
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("VPPKIT_SECRET_KEY")
        .env_remove("VPPKIT_DB")
        .env_remove("VPPKIT_APPLE_URL")
        .env_remove("VPPKIT_WEBHOOK_URL")
        .env_remove("VPPKIT_LISTEN")
        .env_remove("VPPKIT_ADMIN_TOKEN");
    if key {
        command.env(
            "VPPKIT_SECRET_KEY",
            SecretCipher::generate_key_base64().expose(),
        );
    }
    command.output().expect("the manager runs")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}): {:?}; stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn sqlite_urls_create_the_file_like_a_plain_path() {
    let dir = tempfile::tempdir().unwrap();
    let absolute = dir.path().join("absolute.db");
    let with_query = dir.path().join("query.db");
    let cases = [
        (
            "plain path",
            "plain.db".to_owned(),
            dir.path().join("plain.db"),
        ),
        (
            "sqlite:// relative",
            "sqlite://relative.db".to_owned(),
            dir.path().join("relative.db"),
        ),
        (
            "sqlite: without slashes",
            "sqlite:short.db".to_owned(),
            dir.path().join("short.db"),
        ),
        (
            "sqlite:/// absolute",
            format!("sqlite://{}", absolute.display()),
            absolute,
        ),
        (
            "sqlite:// with another query parameter",
            format!("sqlite://{}?cache=shared", with_query.display()),
            with_query,
        ),
    ];
    for (what, db, file) in cases {
        assert!(!file.exists(), "{what}: {} exists before", file.display());
        let out = run(dir.path(), &["report", "--json", "--db", &db], true);
        assert!(
            out.status.success(),
            "{what} ({db}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = stdout_json(&out);
        assert!(report["locations"].is_array(), "{what}: {report}");
        assert!(file.exists(), "{what}: {} was not created", file.display());
    }
    // A mode the operator chose is kept: read-only on a missing file fails, and creates nothing.
    let ro = dir.path().join("readonly.db");
    let db = format!("sqlite://{}?mode=ro", ro.display());
    let out = run(dir.path(), &["report", "--db", &db], true);
    assert!(!out.status.success());
    assert!(!ro.exists());
}

#[test]
fn an_unknown_database_scheme_is_an_error_not_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    for db in [
        "mysql://x",
        "mysql://root@db.example.com/vpp",
        "file:///tmp/x.db",
    ] {
        let out = run(dir.path(), &["report", "--json", "--db", db], true);
        assert_eq!(out.status.code(), Some(1), "{db}");
        let error = stdout_json(&out);
        assert_eq!(error["error"]["kind"], "usage", "{db}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        let scheme = db.split("://").next().unwrap();
        assert!(
            message.contains(&format!("unknown database scheme \"{scheme}\"")),
            "{message}"
        );
        assert!(
            message.contains("postgres://"),
            "says what works: {message}"
        );
        // Not a password in the message: only the scheme is repeated.
        assert!(!message.contains("root@"), "{message}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "no file was created: {left:?}");
}

#[test]
fn json_errors_are_json_on_stdout_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    // No key.
    let out = run(dir.path(), &["report", "--json", "--db", "k.db"], false);
    assert_eq!(out.status.code(), Some(1));
    let error = stdout_json(&out);
    assert_eq!(error["error"]["kind"], "key", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("VPPKIT_SECRET_KEY"));
    // A file that is not there.
    let out = run(
        dir.path(),
        &[
            "plan",
            "--json",
            "--db",
            "p.db",
            "--policies",
            "missing-policies.json",
            "--directory",
            "missing-directory.json",
        ],
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    let error = stdout_json(&out);
    assert_eq!(error["error"]["kind"], "file", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing-policies.json"));
    // A policy file that is a JSON array (vppkit-rules refuses it, naming the line).
    std::fs::write(dir.path().join("array.json"), "\n[]").unwrap();
    std::fs::write(dir.path().join("empty.json"), "{}").unwrap();
    let out = run(
        dir.path(),
        &[
            "plan",
            "--json",
            "--db",
            "p.db",
            "--policies",
            "array.json",
            "--directory",
            "empty.json",
        ],
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    let error = stdout_json(&out);
    assert_eq!(error["error"]["kind"], "format", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("array.json"), "{message}");
    assert!(message.contains("line 2, column 1"), "{message}");
    // A command line that does not parse: exit 2, wherever --json is.
    for args in [
        &["--json", "report", "--bogus"][..],
        &["report", "--bogus", "--json"][..],
    ] {
        let out = run(dir.path(), args, true);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let error = stdout_json(&out);
        assert_eq!(error["error"]["kind"], "commandLine", "{error}");
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--bogus"));
    }
    // Without --json: text only, nothing on stdout.
    let out = run(dir.path(), &["report", "--bogus"], true);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let out = run(dir.path(), &["report", "--db", "mysql://x"], true);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}

#[test]
fn every_environment_variable_is_in_help_and_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let help = run(dir.path(), &["--help"], false);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let serve_help = run(dir.path(), &["serve", "--help"], false);
    let serve_help = String::from_utf8_lossy(&serve_help.stdout).into_owned();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    for var in [
        "VPPKIT_SECRET_KEY",
        "VPPKIT_DB",
        "VPPKIT_APPLE_URL",
        "VPPKIT_WEBHOOK_URL",
        "VPPKIT_LISTEN",
        "VPPKIT_ADMIN_TOKEN",
        "RUST_LOG",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
        assert!(
            serve_help.contains(var),
            "serve --help does not mention {var}"
        );
        assert!(readme.contains(var), "README.md does not mention {var}");
    }
    // The key is explained, not only asked for by an error.
    assert!(help.contains("openssl rand -base64 32"), "{help}");
    // The admin endpoints' credential and the timeouts are explained where serve is.
    for needle in [
        "GET /report",
        "POST /sync",
        "401",
        "403",
        "--read-timeout",
        "SIGTERM",
    ] {
        assert!(serve_help.contains(needle), "serve --help lacks {needle:?}");
    }
}
