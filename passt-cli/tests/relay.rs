//! (relay)
