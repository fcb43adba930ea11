//! The manager's errors: each becomes one line on stderr and a non-zero exit (and, with
//! `--json`, a JSON object on stdout naming its [`ManagerError::kind`]).

use std::path::PathBuf;

use vppkit::engine::EngineError;
use vppkit::rules::FormatError;
use vppkit::store::StoreError;

/// Anything a subcommand can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManagerError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A policy or directory file is not in the documented format.
    #[error("{path}: {source}")]
    Format { path: String, source: FormatError },
    /// The store failed (connect, migrate, read, write).
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The engine failed (Apple, token state, plan, ...).
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// A command-line value that cannot work.
    #[error("{0}")]
    Usage(String),
    /// The secret key is missing or does not open this database.
    #[error("{0}")]
    Key(String),
    /// The simulator (demo only) failed.
    #[error("simulator: {0}")]
    Simulator(#[from] vppkit_sim::SimError),
    /// The command did its work and printed it, but left something undone that the
    /// output lists (held releases, operations still open): exit status 3.
    #[error("{0}")]
    Unfinished(String),
    /// Another MDM holds a location (found by `token add` of a location already added,
    /// or by a `sync`): exit status 4; the message says how to take it over (`--claim`).
    #[error("{0}")]
    ClaimedElsewhere(String),
    /// The command printed its output, which shows the failure (a sync's failed rows, an
    /// apply's undone work): `main` adds the one line on stderr, no second document on
    /// stdout, and exits with the wrapped error's status.
    #[error("{0}")]
    Printed(Box<ManagerError>),
    /// A network listener or server failed.
    #[error("{what}: {source}")]
    Net {
        what: String,
        source: std::io::Error,
    },
}

impl ManagerError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        ManagerError::Usage(message.into())
    }

    /// `self`, once the command's output (already printed) shows it.
    pub(crate) fn printed(self) -> Self {
        match self {
            e @ ManagerError::Printed(_) => e,
            e => ManagerError::Printed(Box::new(e)),
        }
    }

    /// The exit status: 3 when something was left undone, 4 when another MDM holds a
    /// location, 1 otherwise (2, a command line that does not parse, is `main`'s).
    pub(crate) fn exit_status(&self) -> u8 {
        match self {
            ManagerError::Unfinished(_) => 3,
            ManagerError::ClaimedElsewhere(_) => 4,
            ManagerError::Printed(e) => e.exit_status(),
            _ => 1,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ManagerError::File {
            path: path.into(),
            source,
        }
    }

    /// A stable word for the kind of error, for `--json` output: `file`, `format`, `store`,
    /// `engine`, `usage`, `key`, `simulator`, `net`, `unfinished` or `claimedElsewhere`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ManagerError::File { .. } => "file",
            ManagerError::Format { .. } => "format",
            ManagerError::Store(_) => "store",
            ManagerError::Engine(_) => "engine",
            ManagerError::Usage(_) => "usage",
            ManagerError::Key(_) => "key",
            ManagerError::Simulator(_) => "simulator",
            ManagerError::Net { .. } => "net",
            ManagerError::Unfinished(_) => "unfinished",
            ManagerError::ClaimedElsewhere(_) => "claimedElsewhere",
            ManagerError::Printed(e) => e.kind(),
        }
    }

    /// The error and its causes on one line, without repeating a cause the message
    /// already contains.
    pub(crate) fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let text = s.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = s.source();
        }
        line.replace('\n', " ")
    }
}

impl From<vppkit::engine::ConfigError> for ManagerError {
    fn from(e: vppkit::engine::ConfigError) -> Self {
        ManagerError::Engine(e.into())
    }
}

/// The manager's result type.
pub(crate) type Result<T, E = ManagerError> = std::result::Result<T, E>;
