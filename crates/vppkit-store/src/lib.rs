//! vppkit_store: under construction.
