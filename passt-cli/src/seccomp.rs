//! The system calls passt makes once sandboxed: its seccomp allow-list,
//! composed from the groups of [`passt_sys::seccomp`] for what this run
//! uses. Anything else kills the process (build with the `seccomp-log`
//! feature to have the kernel log it instead).
//!
//! | group | when |
//! |---|---|
//! | `RUNTIME`, `EVENT_LOOP`, `SOCKETS` | always: the loop, qemu's stream, the socket executor |
//! | `PASST_EXIT` | always: the socket file's removal at the end |
//! | `LOG` | with `-l`: the log file and its size limit |
//! | `PCAP` | with `-p` |
//!
//! No splice, `/proc` scans or process watches: passt has none.

use passt_sys::seccomp::{program, Sysno, EVENT_LOOP, LOG, PASST_EXIT, PCAP, RUNTIME, SOCKETS};

/// The seccomp filter for a passt capturing frames if `pcap`, writing a
/// log file if `log_file`.
pub(crate) fn filter(pcap: bool, log_file: bool) -> Vec<libc::sock_filter> {
    let mut groups: Vec<&[Sysno]> = vec![RUNTIME, EVENT_LOOP, SOCKETS, PASST_EXIT];
    if log_file {
        groups.push(LOG);
    }
    if pcap {
        groups.push(PCAP);
    }
    program(&groups)
}
