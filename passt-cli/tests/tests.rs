//! passt end-to-end tests.
