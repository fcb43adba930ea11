//! Integration tests of vppkit-ledger (one binary).

mod journal;
mod lifecycle;
mod props;
mod readme;
mod reconcile;
mod rejections;
mod support;
mod views;
