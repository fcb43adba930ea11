//! Integration tests of vppkit-store: the conformance suite on the in-memory store.

mod memory;
mod readme;
