//! Integration tests against a real PostgreSQL (`VPPKIT_TEST_POSTGRES_URL`), each in
//! a fresh schema. Without the variable every test prints on standard output that it
//! was skipped; with `VPPKIT_REQUIRE_POSTGRES` set (`.ci/run` sets it) it fails instead.

mod conformance;
mod consistency;
mod errors;
mod migrations;
mod readme;
mod schemas;
mod secrets;
mod support;
