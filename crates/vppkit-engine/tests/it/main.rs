//! End-to-end tests of the engine against the simulator.

mod bounded;
mod convergence;
mod crash;
mod crash_ops;
mod exactly_once;
mod faults;
mod faulty;
mod foreign_changes;
mod instances;
mod invalid_token;
mod leases;
mod licences;
mod mocks;
mod notifications;
mod onboarding;
mod readme;
mod reconciler;
mod report;
mod scale;
mod scheduler;
#[allow(dead_code)] // helpers shared by the test modules; not every module uses each
mod support;
mod sync;
mod tokens;
mod webhook;
