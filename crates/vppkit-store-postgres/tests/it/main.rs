//! Integration tests against a real PostgreSQL (`VPPKIT_TEST_POSTGRES_URL`), each in
//! a fresh schema. Without the variable every test prints that it was skipped.

mod conformance;
mod consistency;
mod errors;
mod migrations;
mod schemas;
mod secrets;
mod support;
