//! Integration tests of vppkit-sim: raw HTTP conformance, one test per rule of
//! the API reference's section 12 checklist, plus recorded shapes and presets.

mod support;

mod smoke;
