//! Integration tests of vppkit-store-sqlite.

mod conformance;
mod readme;
mod secrets;
