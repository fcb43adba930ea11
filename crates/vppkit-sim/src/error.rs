//! The simulator's own errors (not Apple's: those are HTTP answers).

/// Why a simulator call failed. Never carries a content token or a
/// notification auth token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The listening socket could not be opened.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// No location with that `uId`.
    #[error("no location with uId {0:?}")]
    UnknownLocation(String),
    /// A location with that `uId` already exists.
    #[error("a location with uId {0:?} already exists")]
    DuplicateLocation(String),
    /// The location does not own that asset.
    #[error("location {uid:?} has no asset {asset}")]
    UnknownAsset {
        /// The location.
        uid: String,
        /// The asset (`adamId/pricingParam`).
        asset: String,
    },
    /// The location already owns that asset.
    #[error("location {uid:?} already has asset {asset}")]
    DuplicateAsset {
        /// The location.
        uid: String,
        /// The asset.
        asset: String,
    },
    /// No active user with that `clientUserId`.
    #[error("location {uid:?} has no active user {client_user_id:?}")]
    UnknownUser {
        /// The location.
        uid: String,
        /// The user.
        client_user_id: String,
    },
    /// The user is not waiting for an invitation to be accepted.
    #[error("user {client_user_id:?} is not Registered (it is {status})")]
    NotRegistered {
        /// The user.
        client_user_id: String,
        /// Its status.
        status: String,
    },
    /// A refund asks for more licences than are free.
    #[error("asset {asset} has {available} free licences, cannot take back {requested}")]
    NotEnoughLicences {
        /// The asset.
        asset: String,
        /// Free licences.
        available: u32,
        /// Licences asked for.
        requested: u32,
    },
    /// A licence of an asset that is not revocable cannot be disassociated (9706).
    #[error("asset {asset} is not revocable: its licences cannot be disassociated")]
    NotRevocable {
        /// The asset.
        asset: String,
    },
    /// The token is not one this simulator issued.
    #[error("the token is not one this simulator issued")]
    UnknownToken,
    /// The call needs a manual clock ([`SimClock::manual`](crate::SimClock::manual)).
    #[error("this simulator runs on a real-time clock; advance() needs SimClock::manual()")]
    ManualClockRequired,
    /// Writing token files failed.
    #[error("could not write token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}
