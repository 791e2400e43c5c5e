//! Integration tests of passt-core through its public API only.

mod alloc;
mod captures;
mod conversation;
#[cfg(feature = "host")]
mod host;
mod seeds;
