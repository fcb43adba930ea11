//! vppkit_ledger: under construction.
