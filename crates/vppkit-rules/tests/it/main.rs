//! Integration tests of vppkit-rules.

mod fixture;
mod ledger;
mod precedence;
mod scenarios;
mod validation;
