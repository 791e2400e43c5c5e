//! passt end to end: the daemon on its socket with the test as the guest
//! (`stream`), a real Linux guest under qemu (`vm`), and the relay helper
//! with a namespace's kernel as the guest (`relay`).

mod relay;
mod stream;
mod support;
mod vm;
