//! Test support for this crate and its dependents (feature `testing`).
//!
//! - [`pcap`]: classic pcap files, to replay the real captured frames in
//!   `passt-core/tests/vectors/` through the wire parsers.

pub mod pcap;
