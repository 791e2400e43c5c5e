//! passt end to end: the daemon on its socket with the test as the guest
//! (`stream`, and bad or awkward input on that socket in `stream_input`),
//! a real Linux guest under qemu (`vm`), and the relay helper
//! with a namespace's kernel as the guest (`relay`).

mod descriptors;
mod relay;
mod sandbox;
mod stream;
mod stream_input;
mod support;
mod vm;
