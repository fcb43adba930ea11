//! Integration tests of vppkit-rules.

mod fixture;
mod precedence;
mod scenarios;
mod validation;
