//! Configuration shared by both frontends (to be written).
