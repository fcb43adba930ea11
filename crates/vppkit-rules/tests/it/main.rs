//! Integration tests of vppkit-rules.

mod apple_schema;
mod docs;
mod fixture;
mod format;
mod gone;
mod incremental;
mod ledger;
mod plans;
mod precedence;
mod properties;
mod readme;
mod scenarios;
mod validation;
