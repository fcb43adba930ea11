//! vppkit_sim: under construction.
