//! vppkit_rules: under construction.
