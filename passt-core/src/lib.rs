//! # passt-core: user-mode networking as a sans-IO translator
//!
//! (crate documentation is completed with the Translator API)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod addr;
pub mod config;
pub mod time;
pub mod wire;
