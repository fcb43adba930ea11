//! Integration tests of vppkit-sim: raw HTTP conformance (reqwest and
//! `serde_json::Value`, never vppkit-client), one module per rule of the API
//! reference's section 12 checklist, plus recorded shapes and presets.

mod support;

mod auth; // 1
mod client_agreement;
mod client_config; // 10
mod control_http;
mod counts; // 6
mod envelope; // 2
mod events; // 5, 9
mod faults; // 12
mod foreign;
mod metadata; // 14
mod methods; // 3
mod notifications; // 11
mod paging; // 8
mod presets;
mod readme;
mod recorded;
mod service_config; // 13
mod smoke;
mod users; // 7
mod validation; // 4
