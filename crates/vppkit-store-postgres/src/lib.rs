//! vppkit_store_postgres: under construction.
