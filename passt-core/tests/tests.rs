//! Integration tests of passt-core through its public API only.

mod alloc;
mod captures;
mod conversation;
mod options;
mod seeds;
