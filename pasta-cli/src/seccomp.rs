//! The system calls pasta makes once sandboxed: its seccomp allow-list,
//! composed from the groups of [`passt_sys::seccomp`] for what this run
//! uses. Anything else kills the process (build with the `seccomp-log`
//! feature to have the kernel log it instead).
//!
//! | group | when |
//! |---|---|
//! | `RUNTIME`, `EVENT_LOOP`, `SOCKETS` | always: the loop, the tap, the socket executor |
//! | `SPLICE` | always: `-T` connections are spliced whatever `--no-splice` says |
//! | `PROC_SCAN`, `PASTA_WATCH` | always: `auto` rescans; what ends pasta |
//! | [`START`] | always: what pasta does after entering the sandbox, before its loop |
//! | `LOG` | with `-l`: the log file and its size limit |
//! | `PCAP` | with `--pcap` |

use passt_sys::seccomp::{
    program, Sysno, CONF_EXIT, EVENT_LOOP, LOG, PASTA_WATCH, PCAP, PROC_SCAN, RUNTIME, SOCKETS,
    SPLICE,
};

/// What pasta does between entering the sandbox and its loop
/// ([`crate::setup`]): the spawned command's go-ahead (a `write`, in
/// `EVENT_LOOP`) after ignoring the keyboard's signals, and in the
/// background the standard streams pointed at `/dev/null`.
const START: &[Sysno] = &[
    libc::SYS_rt_sigaction, // SIGINT and SIGQUIT ignored while the command runs
    #[cfg(target_arch = "x86_64")]
    libc::SYS_dup2, // rustix's dup2_stdin/stdout/stderr
    libc::SYS_dup3,         // the same on aarch64
];

/// The seccomp filter for a pasta capturing frames if `pcap`, writing a
/// log file if `log_file`.
pub(crate) fn filter(pcap: bool, log_file: bool, conf: bool) -> Vec<libc::sock_filter> {
    let mut groups: Vec<&[Sysno]> = vec![
        RUNTIME,
        EVENT_LOOP,
        SOCKETS,
        SPLICE,
        PROC_SCAN,
        PASTA_WATCH,
        START,
    ];
    if log_file {
        groups.push(LOG);
    }
    if pcap {
        groups.push(PCAP);
    }
    if conf {
        groups.push(CONF_EXIT);
    }
    program(&groups)
}
