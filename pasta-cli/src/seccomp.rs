//! The system calls pasta makes once sandboxed: its seccomp allow-list,
//! composed from the groups of [`passt_sys::seccomp`] for what this run
//! uses. Anything else kills the process (build with the `seccomp-log`
//! feature to have the kernel log it instead).

use passt_core::config::Config;

/// The seccomp filter for a pasta serving `config`.
pub(crate) fn filter(_config: &Config) -> Vec<libc::sock_filter> {
    passt_sys::seccomp::program(&[])
}
