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
