//! vppkit_client: under construction.
