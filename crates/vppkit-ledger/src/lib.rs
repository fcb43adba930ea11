//! Licence accounting for Apple Apps and Books (VPP): holdings, reservations, a journal that
//! explains every change, and reconciliation against Apple's state.
//!
//! A [`Ledger`] models one location (one content token). It is a pure value: no I/O, no
//! clock, no async. Every operation returns the [`JournalEntry`]s it made, or a [`Rejection`]
//! and changes nothing; the caller persists the entries and [`Ledger::replay`] rebuilds the
//! same state from them.
//!
//! - Accounting: `free = (total - retired) - (reserved + active + releasing + adopted)`, never
//!   negative; [`Ledger::reserve`] only succeeds while a licence is free, so reservations in
//!   flight can never over-spend (invariant 1). Unlimited (free) assets never run short.
//! - Lifecycle: [`Ledger::reserve`] -> [`Ledger::record_event`] -> [`Ledger::confirm`] or
//!   [`Ledger::roll_back`]; [`Ledger::release`] / [`Ledger::revoke_all`] ->
//!   [`Ledger::complete_release`] or [`Ledger::cancel_release`]; [`Ledger::adopt`],
//!   [`Ledger::mark_lost`], [`Ledger::change_count`].
//! - Reconciliation: [`Ledger::reconcile_assets`], a full assignments walk streamed page by page
//!   ([`Ledger::begin_snapshot`], [`Ledger::apply_snapshot_page`], [`Ledger::finish_snapshot`]),
//!   increments ([`Ledger::apply_assignment_changes`]), [`Ledger::apply_event_outcome`],
//!   [`Ledger::apply_notification`], [`Ledger::apply_users`]. Applying an input twice changes
//!   nothing.
//! - Views: [`Ledger::asset_view`], [`Ledger::holder_view`], [`Ledger::holders_of`],
//!   [`Ledger::low_availability`], [`Ledger::untracked`], [`Ledger::orphans`], and
//!   [`across_locations`] for one app over several tokens.

mod cause;
mod journal;
mod ledger;
mod reconcile;
mod rejection;
mod views;

pub use cause::Cause;
pub use journal::{
    AssetReason, AssetTally, Change, EventKind, HoldingReason, JournalEntry, PendingEvent,
};
pub use ledger::{next_holdings_version, Ledger, REMEMBERED_COUNT_NOTIFICATIONS};
pub use reconcile::{
    AppleHolding, AssignmentChanges, EventFailure, EventOutcome, EventStatusKind,
    LedgerNotification, NotificationBody, SnapshotToken,
};
pub use rejection::{Rejection, ReplayError};
pub use views::{
    across_locations, AcrossLocations, AssetSum, AssetView, HolderView, HoldingView, Threshold,
    UtilisationAlert,
};
