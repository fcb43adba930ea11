//! Errors for invalid input. Decisions (blocked items, waitlists, policy violations) are
//! data in the [`Plan`](crate::Plan), not errors.

/// A policy or directory file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not valid JSON for the format, at a line and column.
    #[error("{what} is not valid at line {line}, column {column}: {message}")]
    Json {
        /// Which file kind.
        what: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The file is JSON, but its top level is not an object (`{ ... }`): an array, a
    /// string, a number, `true`, `false` or `null`. Refused rather than read leniently (serde
    /// reads a struct from an array, so `[]` would otherwise be an empty file).
    #[error("{what} must be a JSON object ({{ ... }}) at the top level, found {found} at line {line}, column {column}")]
    NotAnObject {
        /// Which file kind.
        what: &'static str,
        /// What the top level is: `an array`, `a string`, `a number`, `a boolean` or `null`.
        found: &'static str,
        /// 1-based line of the top-level value's first character.
        line: usize,
        /// 1-based column of that character.
        column: usize,
    },
    /// Two entries share an id.
    #[error("{kind} {id:?} is listed twice")]
    Duplicate {
        /// policy, user, device or group.
        kind: &'static str,
        /// The repeated id.
        id: String,
    },
    /// An entry refers to a user or device that is not in the directory.
    #[error("{from} refers to unknown {kind} {id:?}")]
    UnknownReference {
        /// Where the reference is.
        from: String,
        /// user or device.
        kind: &'static str,
        /// The unknown id.
        id: String,
    },
    /// An OS version that is not `major[.minor[.patch]]`.
    #[error("{value:?} is not an OS version like 17.4.1")]
    BadOsVersion {
        /// The text given.
        value: String,
    },
}

impl FormatError {
    /// Refuses a document whose top-level value is not a JSON object. Text that is not JSON at
    /// all (or empty) passes, so serde's own syntax error, with its position, reports it.
    pub(crate) fn expect_object(what: &'static str, text: &str) -> Result<(), Self> {
        let (mut line, mut column) = (1, 1);
        for c in text.chars() {
            let found = match c {
                '{' => return Ok(()),
                '\n' => {
                    line += 1;
                    column = 1;
                    continue;
                }
                ' ' | '\t' | '\r' => {
                    column += 1;
                    continue;
                }
                '[' => "an array",
                '"' => "a string",
                '-' | '0'..='9' => "a number",
                't' | 'f' => "a boolean",
                'n' => "null",
                _ => return Ok(()),
            };
            return Err(FormatError::NotAnObject {
                what,
                found,
                line,
                column,
            });
        }
        Ok(())
    }

    pub(crate) fn json(what: &'static str, e: &serde_json::Error) -> Self {
        let full = e.to_string();
        // serde_json appends " at line L column C"; keep the message without it.
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_owned(),
            None => full,
        };
        FormatError::Json {
            what,
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// Planning could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A request-size limit is zero.
    #[error("limit {name} must be at least 1")]
    ZeroLimit {
        /// Apple's name of the limit.
        name: &'static str,
    },
    /// The devices-per-user-licence cap is zero.
    #[error("the number of devices per user licence must be at least 1")]
    ZeroDevicesPerUserLicence,
}
