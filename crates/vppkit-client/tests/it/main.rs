//! Integration tests of vppkit-client: recorded payloads, every endpoint against a
//! mock server with a loud catch-all, errors, retries, pagination, splitting.

mod documented;
mod endpoints;
mod errors;
mod fixtures;
mod lenient;
mod metadata;
mod notifications;
mod pagination;
mod readme;
mod retries;
mod split_props;
mod support;
