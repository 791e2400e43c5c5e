//! # passt-core: user-mode networking as a sans-IO translator
//!
//! (crate documentation is completed with the Translator API)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod addr;
pub mod buf;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod l2;
mod queue;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
mod translator;
pub mod wire;

pub use translator::{
    Completion, Done, DropReason, Errno, Event, Proto, Ready, SockFlags, SockId, SockOp, SockSpec,
    Stats, Translator,
};
