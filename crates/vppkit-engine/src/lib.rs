//! vppkit_engine: under construction.
