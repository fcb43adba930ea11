//! The manager's own lines on stderr (sync progress, notices, the error line): plain text,
//! or with `--log-format json` one JSON object per line in the shape of the log lines
//! around them (`timestamp`, `level`, `fields.message`, `target`), so a log collector
//! reads stderr whole.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Writes the manager's lines as JSON from now on (`--log-format json`).
pub(crate) fn use_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether the lines are JSON.
pub(crate) fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A notice: as it is in text.
pub(crate) fn info(text: &str) {
    write("INFO", text, text);
}

/// Something left undone: `unfinished: TEXT` in text.
pub(crate) fn unfinished(text: &str) {
    write("WARN", &format!("unfinished: {text}"), text);
}

/// The error line: `error: TEXT` in text.
pub(crate) fn error(text: &str) {
    write("ERROR", &format!("error: {text}"), text);
}

fn write(level: &str, plain: &str, message: &str) {
    if is_json() {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "fields": { "message": message },
            "target": "manager",
        });
        eprintln!("{line}");
    } else {
        eprintln!("{plain}");
    }
}
