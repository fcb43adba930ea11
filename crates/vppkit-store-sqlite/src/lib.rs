//! vppkit_store_sqlite: under construction.
