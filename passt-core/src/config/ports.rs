//! Port-forwarding specs (to be written: the parser for `-t/-u/-T/-U`).

/// A port-forwarding spec for one direction and protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwdSpec {}
