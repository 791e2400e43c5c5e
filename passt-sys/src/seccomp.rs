//! A seccomp allow-list filter: once set up, `passt` and `pasta` may make
//! only the syscalls their running code needs, and any other one ends the
//! process ([`seccomp(2)`], [`seccomp_filter`]).
//!
//! [`build`] turns a list of syscall numbers into a classic BPF program
//! (`Vec<libc::sock_filter>`), [`program`] does the same for a list of the
//! groups below with the [`DEFAULT_ACTION`] this build was made with, and
//! [`install`] sets `PR_SET_NO_NEW_PRIVS` and loads the program, for the
//! calling thread or (`tsync`) for every thread of the process.
//!
//! # The program
//!
//! The kernel runs the program on each syscall over a `struct seccomp_data`
//! (`nr`, `arch`, instruction pointer, arguments) and does what the returned
//! `SECCOMP_RET_*` value says:
//!
//! 1. `arch` must be this build's audit architecture ([`AUDIT_ARCH_NATIVE`]),
//!    else `SECCOMP_RET_KILL_PROCESS`: the same `nr` means another call in
//!    another ABI (a 32-bit `int 0x80` call on x86_64, for one).
//! 2. On x86_64, an `nr` with the x32 bit (`0x4000_0000`) set is an x32 call
//!    through the 64-bit entry, whose numbers a 64-bit list does not cover:
//!    `SECCOMP_RET_KILL_PROCESS`.
//! 3. `nr` is looked up in the sorted, deduplicated allow list, as a
//!    binary tree of `JGE` tests down to short runs of `JEQ` (at most
//!    [`LEAF`] numbers) that each end in their own `RET ALLOW` /
//!    `RET default`, so every jump is a short forward one; a subtree too
//!    long for an 8-bit jump offset is skipped with a `JA` (32-bit offset).
//!    About 100 numbers take some 200 instructions and at most 10 tests.
//! 4. Not in the list: the default action, `SECCOMP_RET_KILL_PROCESS`
//!    (the whole process dies as if by `SIGSYS`), or with the `seccomp-log`
//!    feature `SECCOMP_RET_LOG`.
//!
//! The program is a pure function of the set of numbers and the default
//! action: the tests run it in a small interpreter.
//!
//! # Finding a missing syscall: the `seccomp-log` feature
//!
//! A syscall missing from a list kills the process with `SIGSYS` (the shell
//! says `Bad system call`). Build with the cargo feature `seccomp-log`
//! (`cargo build --features seccomp-log`, in `passt-sys`, `passt-cli` or
//! `pasta-cli`) and an unlisted call is let through and logged by the
//! kernel's audit instead: `dmesg | grep 'type=1326'` shows lines like
//! `audit: type=1326 ... comm="pasta" exe="..." sig=0 arch=c000003e
//! syscall=39 ... code=0x7ffc0000`; `syscall=` is the number to look up
//! (`ausyscall 39`, or `libc::SYS_*`) and add to a group. Wrong-architecture
//! and x32 calls still kill. Never ship it: it turns the filter into a log.
//!
//! # The groups
//!
//! A driver composes its filter from the groups its mode uses, e.g.
//! `program(&[RUNTIME, EVENT_LOOP, SOCKETS, SPLICE])`. The groups overlap
//! where two parts need one call; [`build`] drops the duplicates. Set-up
//! is meant to be over when the filter goes on (just before the event
//! loop): what only set-up does (`execve`, `clone`, `unshare`, `setns`,
//! `openat`, `mount`, netlink, privilege changes) is in no group. A call
//! aarch64 lacks (`epoll_wait`, `poll`, `open`, `pipe`, `unlink`, ...) is
//! listed under `cfg(target_arch = "x86_64")`, beside the one it has.
//!
//! The lists come from the end-to-end tests run under `strace -f -o FILE`
//! (the test binary, so that every `pasta`/`passt` it starts is traced):
//! the calls of those processes and their threads after their first
//! `epoll_pwait`, marked "seen" on each line; the others were read from
//! the code's paths the tests did not take. To extend a list: run the
//! failing case with the `seccomp-log` feature (below) or under
//! `strace -f`, and add the call to the group whose code makes it, with
//! its line.
//!
//! | group | for |
//! |---|---|
//! | [`RUNTIME`] | Rust std and glibc under any code: memory, futexes, thread exit, signal return, `exit_group` |
//! | [`EVENT_LOOP`] | the drivers' loops: `epoll` waits and changes, the clock, `read`/`write` of the tap or stream, `close` |
//! | [`SOCKETS`] | passt-core's socket executor and the `passt_sys` calls it makes: opening, connecting, sending, receiving, `SIOCOUTQ` |
//! | [`SPLICE`] | pasta's spliced loopback connections: pipes, `splice`, pipe sizes |
//! | [`LOG`] | the log: standard error, the log file and its size limit |
//! | [`PCAP`] | the packet capture file |
//! | [`PROC_SCAN`] | pasta's `-t auto`/`-u auto` rescans of `/proc/net/{tcp,udp}*` through descriptors opened at set-up |
//! | [`PASTA_WATCH`] | what ends pasta: the spawned or joined process (pidfd, `waitpid`), the namespace file (inotify, `stat`) |
//! | [`PASST_EXIT`] | passt removing its socket file at the end |
//!
//! Architectures: x86_64 and aarch64 (the module is built for no other);
//! kernel 4.14 or later (`SECCOMP_RET_KILL_PROCESS`, `SECCOMP_RET_LOG`).
//!
//! Syscalls: `prctl(PR_SET_NO_NEW_PRIVS)`, `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! [`seccomp(2)`]: https://man7.org/linux/man-pages/man2/seccomp.2.html
//! [`seccomp_filter`]: https://www.kernel.org/doc/html/latest/userspace-api/seccomp_filter.html

use core::mem::offset_of;

use libc::{sock_filter, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS};
use rustix::io::Errno;

/// A syscall number, as `libc::SYS_*` has it.
pub type Sysno = libc::c_long;

/// The audit architecture of this build, which `seccomp_data.arch` must be
/// (`AUDIT_ARCH_X86_64` of `linux/audit.h`: `EM_X86_64` (62) with the
/// 64-bit and little-endian bits; libc does not have it).
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;

/// The audit architecture of this build, which `seccomp_data.arch` must be
/// (`AUDIT_ARCH_AARCH64` of `linux/audit.h`: `EM_AARCH64` (183) with the
/// 64-bit and little-endian bits; libc does not have it).
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;

/// The bit marking an x32 call on x86_64 (`__X32_SYSCALL_BIT` of
/// `asm/unistd.h`; libc has it only when built for x32).
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What an unlisted syscall gets: `SECCOMP_RET_KILL_PROCESS`, or
/// `SECCOMP_RET_LOG` (let through and logged) with the `seccomp-log`
/// feature.
pub const DEFAULT_ACTION: u32 = if cfg!(feature = "seccomp-log") {
    libc::SECCOMP_RET_LOG
} else {
    SECCOMP_RET_KILL_PROCESS
};

/// Longest run of numbers compared one by one (`JEQ`) at a leaf of the
/// lookup tree.
pub const LEAF: usize = 4;

/// Most instructions the kernel takes in one program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

/// Offset of `nr` in `struct seccomp_data`.
const OFF_NR: u32 = offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `arch` in `struct seccomp_data`.
const OFF_ARCH: u32 = offset_of!(libc::seccomp_data, arch) as u32;

/// One instruction (`BPF_STMT`/`BPF_JUMP` of `linux/filter.h`).
const fn insn(code: u32, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// `A = *(u32 *)(data + off)`.
const fn load(off: u32) -> sock_filter {
    insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, off)
}

/// `return action`.
const fn ret(action: u32) -> sock_filter {
    insn(libc::BPF_RET | libc::BPF_K, 0, 0, action)
}

/// `if A <op> k goto +jt else goto +jf` (`op`: `BPF_JEQ`, `BPF_JGE`,
/// `BPF_JSET`).
const fn jump(op: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    insn(libc::BPF_JMP | op | libc::BPF_K, jt, jf, k)
}

/// `goto +off`.
const fn jump_always(off: u32) -> sock_filter {
    insn(libc::BPF_JMP | libc::BPF_JA, 0, 0, off)
}

/// The filter program allowing `allowed` (any order, duplicates ignored)
/// and giving every other syscall of this architecture `default_action`
/// (a `SECCOMP_RET_*` value); calls of another architecture, and x32 calls
/// on x86_64, are killed whatever `default_action` is.
///
/// A number that cannot be a native syscall (negative, beyond `u32`, or
/// with the x32 bit on x86_64) is left out: it could never match. The
/// program has about 2 instructions per number; past [`MAX_INSNS`]
/// (some 2,000 numbers) [`install`] refuses it.
pub fn build(allowed: &[Sysno], default_action: u32) -> Vec<sock_filter> {
    let mut nrs: Vec<u32> = allowed
        .iter()
        .filter_map(|&n| u32::try_from(n).ok())
        .filter(|&n| native(n))
        .collect();
    nrs.sort_unstable();
    nrs.dedup();

    let mut prog = vec![
        load(OFF_ARCH),
        jump(libc::BPF_JEQ, AUDIT_ARCH_NATIVE, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
        load(OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    prog.extend([
        jump(libc::BPF_JSET, X32_SYSCALL_BIT, 0, 1),
        ret(SECCOMP_RET_KILL_PROCESS),
    ]);
    prog.extend(tree(&nrs, default_action));
    prog
}

/// [`build`] for the union of `groups`, with this build's
/// [`DEFAULT_ACTION`]: `program(&[RUNTIME, EVENT_LOOP, SOCKETS])`.
pub fn program(groups: &[&[Sysno]]) -> Vec<sock_filter> {
    let all: Vec<Sysno> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    build(&all, DEFAULT_ACTION)
}

/// Whether `nr` can be a syscall of this architecture's native ABI.
fn native(nr: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    return nr & X32_SYSCALL_BIT == 0;
    #[cfg(not(target_arch = "x86_64"))]
    return {
        let _ = nr;
        true
    };
}

/// The lookup of `A` (the syscall number) in `nrs` (sorted, no duplicates):
/// a self-contained piece of program that returns `SECCOMP_RET_ALLOW` for a
/// listed number and `default_action` for any other.
fn tree(nrs: &[u32], default_action: u32) -> Vec<sock_filter> {
    if nrs.len() <= LEAF {
        // `JEQ n_i` jumps to the `RET ALLOW` after the `RET default` that
        // follows the last test: n - i instructions ahead (n <= LEAF).
        let n = nrs.len();
        let mut out: Vec<sock_filter> = (0..n)
            .map(|i| jump(libc::BPF_JEQ, nrs[i], (n - i) as u8, 0))
            .collect();
        out.push(ret(default_action));
        if n > 0 {
            out.push(ret(SECCOMP_RET_ALLOW));
        }
        return out;
    }
    let (low, high) = nrs.split_at(nrs.len() / 2);
    let left = tree(low, default_action);
    let right = tree(high, default_action);
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        // A >= first of the upper half: skip the lower half's code.
        Ok(skip) => out.push(jump(libc::BPF_JGE, high[0], skip, 0)),
        Err(_) => out.extend([
            jump(libc::BPF_JGE, high[0], 0, 1),
            jump_always(left.len() as u32),
        ]),
    }
    out.extend(left);
    out.extend(right);
    out
}

/// Set `PR_SET_NO_NEW_PRIVS` and install `program` with
/// `seccomp(SECCOMP_SET_MODE_FILTER)`: on the calling thread, and with
/// `tsync` (`SECCOMP_FILTER_FLAG_TSYNC`) on every thread of the process at
/// once, so threads started before (pasta's namespace thread) are
/// filtered too. The filter stays for the life of the process and is
/// inherited by children (`fork`, `clone`); a later filter can only
/// narrow it.
///
/// # Errors
/// `EINVAL` for an empty program or one longer than [`MAX_INSNS`] (or one
/// the kernel rejects); `ESRCH` if `tsync` could not apply it to some
/// thread (the kernel names a thread ID, which is not kept); the errno of
/// `prctl` or `seccomp` otherwise (`ENOSYS`: no seccomp in this kernel).
pub fn install(program: &[sock_filter], tsync: bool) -> Result<(), Errno> {
    if program.is_empty() || program.len() > MAX_INSNS {
        return Err(Errno::INVAL);
    }
    rustix::thread::set_no_new_privs(true)?;
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        // The kernel only reads the program through this pointer.
        filter: program.as_ptr().cast_mut(),
    };
    let flags: libc::c_ulong = if tsync {
        libc::SECCOMP_FILTER_FLAG_TSYNC
    } else {
        0
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, flags, &fprog) reads the
    // `sock_fprog` and the `len` instructions it points to, which `program`
    // holds for the duration of the call; the kernel copies them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    match r {
        0 => Ok(()),
        r if r > 0 => Err(Errno::SRCH),
        _ => Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        )),
    }
}

// The groups, one line per call: who makes it. rustix makes its calls
// itself, raw: they are named as it makes them (`epoll_pwait` for
// `epoll::wait`, `ppoll` for `poll`, `wait4` for `waitpid`). "Seen" marks
// the calls the end-to-end tests made under `strace -f` in the event loop.

/// Rust std and glibc underneath any code: the allocator, futexes (locks,
/// channels, thread join), a thread's end, signal return, process exit.
pub const RUNTIME: &[Sysno] = &[
    libc::SYS_brk,             // seen: malloc growing the heap
    libc::SYS_mmap,            // seen: malloc's large blocks and arenas
    libc::SYS_munmap,          // seen: freeing them, a thread's stack
    libc::SYS_mremap,          // realloc of a large block
    libc::SYS_madvise,         // seen: a thread's stack released at its end
    libc::SYS_futex,           // seen: Mutex, Condvar, mpsc, Once, join
    libc::SYS_sigaltstack,     // seen: std's stack-overflow guard, thread end
    libc::SYS_rt_sigprocmask,  // seen: glibc masking signals at thread end
    libc::SYS_rt_sigreturn,    // seen: the end of any signal handler
    libc::SYS_restart_syscall, // a call interrupted by a stop, resumed
    libc::SYS_getrandom,       // a thread's first HashMap (its keys)
    libc::SYS_exit,            // a thread's end (pasta's namespace thread)
    libc::SYS_exit_group,      // seen: the process's end
];

/// The drivers' event loops (`pasta-cli/src/run.rs`,
/// `passt-cli/src/run.rs`): waiting, the clock, the tap, standard error,
/// closing.
pub const EVENT_LOOP: &[Sysno] = &[
    libc::SYS_epoll_pwait,   // seen: rustix's epoll::wait
    libc::SYS_epoll_pwait2,  // rustix's epoll::wait, timeout past i32 ms
    libc::SYS_epoll_ctl,     // seen: sockets added, changed, removed
    libc::SYS_clock_gettime, // the clock, where the vDSO falls back
    libc::SYS_read,          // seen: pasta's tap
    libc::SYS_write,         // seen: pasta's tap, log lines to stderr
    libc::SYS_close,         // seen: any descriptor dropped
];

/// passt-core's socket executor (`passt_core::host::exec`) with the
/// calls it makes through this crate, and passt's stream to qemu: sockets opened, connected,
/// accepted, sent to and received from, sized, shut down.
pub const SOCKETS: &[Sysno] = &[
    libc::SYS_socket,      // seen: a flow's host socket
    libc::SYS_bind,        // seen: outbound address, new listeners (-t auto)
    libc::SYS_connect,     // seen: TCP and UDP flows to the host side
    libc::SYS_listen,      // seen: listeners opened while running (-t auto)
    libc::SYS_accept4,     // seen: inbound connections; passt's next guest
    libc::SYS_getsockname, // seen: the local address a flow got
    libc::SYS_setsockopt, // seen: SO_PEEK_OFF, SO_SNDBUF, UDP_SEGMENT, SO_LINGER; IP_TTL, IPV6_UNICAST_HOPS, IP(V6)_RECVERR (SockOp::SetTtl, errqueue::enable)
    libc::SYS_getsockopt, // seen: SO_ERROR, SO_SNDBUF, TCP_INFO
    libc::SYS_sendmsg,    // seen: TCP data, datagrams, passt's frames to qemu
    libc::SYS_sendmmsg,   // datagrams in batches
    libc::SYS_sendto,     // seen: send()
    libc::SYS_recvmsg,    // seen: MSG_PEEK of TCP data; MSG_ERRQUEUE (errqueue::recv_err)
    libc::SYS_recvmmsg,   // seen: passt_sys::mmsg::recvmmsg
    libc::SYS_recvfrom,   // seen: recv(), acknowledged data discarded, passt's stream
    libc::SYS_shutdown,   // seen: half-close
    libc::SYS_ioctl,      // seen: SIOCOUTQ (passt_sys::outq), FIONBIO
    libc::SYS_fcntl,      // seen: F_GETFD (std's checks of a descriptor taken over)
    libc::SYS_ppoll,      // seen: rustix's poll, is there room to send
    libc::SYS_close,      // seen: a flow's end
];

/// pasta's spliced loopback connections (`passt_core::host::splice`):
/// a pipe per direction, `splice` through it, its size.
pub const SPLICE: &[Sysno] = &[
    libc::SYS_pipe2,  // seen: a connection's pipes
    libc::SYS_splice, // seen: socket to pipe to socket
    libc::SYS_fcntl,  // seen: F_SETPIPE_SZ, F_GETPIPE_SZ
    libc::SYS_close,  // seen: the pipes at the end
];

/// The log (`pasta-cli/src/log.rs`, `passt-cli/src/log.rs`): standard
/// error, the log file opened at set-up, its size limit.
pub const LOG: &[Sysno] = &[
    libc::SYS_write,         // seen: a line
    libc::SYS_pread64,       // pasta: the newest lines, kept when cutting
    libc::SYS_ftruncate,     // the file emptied at its limit
    libc::SYS_clock_gettime, // a line's time, where the vDSO falls back
];

/// The packet capture (`passt_core::host::pcap`): records written to the
/// file opened at set-up.
pub const PCAP: &[Sysno] = &[
    libc::SYS_write,         // a record's header, then its frame
    libc::SYS_clock_gettime, // its time (CLOCK_REALTIME), where the vDSO falls back
];

/// pasta's `-t auto`/`-u auto` rescans of `/proc/net/{tcp,tcp6,udp,udp6}`,
/// read again and again through descriptors opened at set-up.
pub const PROC_SCAN: &[Sysno] = &[
    libc::SYS_lseek, // seen: back to the start
    libc::SYS_read,  // seen: the table
    libc::SYS_statx, // seen: std's size hint before reading to the end
];

/// What ends pasta (`pasta-cli/src/watch.rs`): the spawned or joined
/// process's end (its pidfd readable, then `waitpid`), the namespace
/// file's removal (inotify, then `stat`).
pub const PASTA_WATCH: &[Sysno] = &[
    libc::SYS_read,       // seen: inotify events
    libc::SYS_wait4,      // seen: rustix's waitpid of the spawned command
    libc::SYS_newfstatat, // seen: rustix's stat of the namespace file
];

/// passt's end (`passt-cli/src/run.rs`): its socket file removed, through
/// the descriptor of its directory kept from set-up (no path resolves in
/// the sandbox).
pub const PASST_EXIT: &[Sysno] = &[
    libc::SYS_unlinkat, // rustix's unlinkat
];

/// The configuration socket's end (`passt_core::host::conf`, `-c`): its
/// file removed through the descriptor of its directory kept from set-up.
pub const CONF_EXIT: &[Sysno] = &[
    libc::SYS_unlinkat, // rustix's unlinkat
];

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output};

    use super::*;

    /// The `SECCOMP_RET_*` values the tests tell apart.
    const KILL: u32 = SECCOMP_RET_KILL_PROCESS;
    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const RET_LOG: u32 = libc::SECCOMP_RET_LOG;

    /// A `struct seccomp_data` as the kernel lays it out: `nr`, `arch`, an
    /// instruction pointer and six arguments, native byte order.
    fn data(nr: u32, arch: u32) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[OFF_NR as usize..][..4].copy_from_slice(&nr.to_ne_bytes());
        d[OFF_ARCH as usize..][..4].copy_from_slice(&arch.to_ne_bytes());
        d
    }

    /// Run `prog` over `d` the way the kernel's classic BPF does, for the
    /// instructions [`build`] emits; panics on anything else, on a jump
    /// out of the program and on running off its end, so a test also
    /// checks that the program is one the kernel would load.
    fn run(prog: &[sock_filter], d: &[u8; 64]) -> u32 {
        assert!(!prog.is_empty() && prog.len() <= MAX_INSNS);
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            let next = pc + 1;
            pc = match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let off = i.k as usize;
                    assert!(off % 4 == 0 && off + 4 <= d.len(), "load at {off}");
                    a = u32::from_ne_bytes(d[off..off + 4].try_into().unwrap());
                    next
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c if c == libc::BPF_JMP | libc::BPF_JA => next + i.k as usize,
                c if c & 0x07 == libc::BPF_JMP => {
                    let taken = match c & 0xf0 {
                        op if op == libc::BPF_JEQ => a == i.k,
                        op if op == libc::BPF_JGE => a >= i.k,
                        op if op == libc::BPF_JSET => a & i.k != 0,
                        op => panic!("jump op {op:#x} at {pc}"),
                    };
                    assert_eq!(c & 0x08, libc::BPF_K, "jump source at {pc}");
                    next + usize::from(if taken { i.jt } else { i.jf })
                }
                c => panic!("instruction {c:#x} at {pc}"),
            };
            assert!(pc < prog.len(), "jump past the end");
        }
    }

    /// `prog`'s instructions as plain tuples, to compare (libc's
    /// `sock_filter` has no `PartialEq`).
    fn raw(prog: &[sock_filter]) -> Vec<(u16, u8, u8, u32)> {
        prog.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
    }

    /// What `prog` returns for native syscall `nr`.
    fn verdict(prog: &[sock_filter], nr: Sysno) -> u32 {
        run(prog, &data(nr as u32, AUDIT_ARCH_NATIVE))
    }

    #[test]
    fn listed_calls_are_allowed_and_others_get_the_default() {
        let listed = [libc::SYS_read, libc::SYS_write, libc::SYS_exit_group];
        let prog = build(&listed, KILL);
        for nr in listed {
            assert_eq!(verdict(&prog, nr), ALLOW, "{nr}");
        }
        for nr in [
            libc::SYS_getppid,
            libc::SYS_uname,
            libc::SYS_openat,
            0x3fff_ffff,
        ] {
            assert_eq!(verdict(&prog, nr), KILL, "{nr}");
        }
        let log = build(&listed, RET_LOG);
        assert_eq!(verdict(&log, libc::SYS_read), ALLOW);
        assert_eq!(verdict(&log, libc::SYS_getppid), RET_LOG);
    }

    #[test]
    fn another_architecture_is_killed_even_for_listed_numbers_and_in_log_mode() {
        let prog = build(&[libc::SYS_read, libc::SYS_write], RET_LOG);
        // AUDIT_ARCH_I386, AUDIT_ARCH_ARM, and the other 64-bit one.
        for arch in [
            0x4000_0003,
            0x4000_0028,
            0xC000_003E ^ 0xC000_00B7 ^ AUDIT_ARCH_NATIVE,
        ] {
            assert_eq!(run(&prog, &data(libc::SYS_read as u32, arch)), KILL);
        }
        assert_eq!(run(&prog, &data(0, 0)), KILL);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_are_killed_and_x32_numbers_are_never_listed() {
        let x32_read = X32_SYSCALL_BIT as Sysno | libc::SYS_read;
        let prog = build(&[libc::SYS_read, x32_read], RET_LOG);
        assert_eq!(verdict(&prog, libc::SYS_read), ALLOW);
        assert_eq!(verdict(&prog, x32_read), KILL);
        // 0xffff_ffff (nr -1, as a tracer's skipped call looks) has it too.
        assert_eq!(verdict(&prog, 0xffff_ffff), KILL);
        assert_eq!(raw(&prog), raw(&build(&[libc::SYS_read], RET_LOG)));
    }

    #[test]
    fn duplicates_and_order_do_not_change_the_program() {
        let a = raw(&build(&[3, 1, 2, 1, 3, 3], KILL));
        assert_eq!(a, raw(&build(&[1, 2, 3], KILL)));
        assert_eq!(a, raw(&build(&[2, 3, 1], KILL)));
        let composed = program(&[&[1, 2], &[2, 3]]);
        assert_eq!(raw(&composed), raw(&build(&[1, 2, 3], DEFAULT_ACTION)));
        // Numbers that can be no syscall are left out, not wrapped.
        assert_eq!(
            raw(&build(&[-1, 1 << 40, 1], KILL)),
            raw(&build(&[1], KILL))
        );
        // The fixed head: arch check, nr load (and the x32 check).
        let head = if cfg!(target_arch = "x86_64") { 6 } else { 4 };
        assert_eq!(build(&[], KILL).len(), head + 1);
        assert_eq!(build(&[7], KILL).len(), head + 3);
    }

    #[test]
    fn every_number_up_to_a_thousand_gets_the_right_verdict_for_many_list_shapes() {
        for (step, count) in [(1, 1), (1, 2), (1, 5), (3, 9), (7, 80), (2, 130), (1, 400)] {
            let listed: Vec<Sysno> = (0..count).map(|i| 5 + i * step).collect();
            let prog = build(&listed, KILL);
            for nr in 0..1000 {
                let want = if listed.contains(&nr) { ALLOW } else { KILL };
                assert_eq!(
                    verdict(&prog, nr),
                    want,
                    "nr {nr}, step {step}, count {count}"
                );
            }
        }
    }

    #[test]
    fn a_list_too_long_for_short_jumps_uses_long_ones_and_stays_within_the_kernels_limit() {
        let listed: Vec<Sysno> = (0..1500).map(|i| i * 2).collect();
        let prog = build(&listed, KILL);
        assert!(prog.len() <= MAX_INSNS, "{}", prog.len());
        let is_ja = |i: &sock_filter| u32::from(i.code) == libc::BPF_JMP | libc::BPF_JA;
        assert!(prog.iter().any(|i| is_ja(i) && i.k > 255));
        for nr in 0..4100 {
            let want = if nr % 2 == 0 && nr < 3000 {
                ALLOW
            } else {
                KILL
            };
            assert_eq!(verdict(&prog, nr), want, "{nr}");
        }
        // About 100 numbers: a handful of tests per lookup, no long jump.
        let hundred: Vec<Sysno> = (0..100).map(|i| i * 3).collect();
        let prog = build(&hundred, KILL);
        assert!(prog.len() < 210, "{}", prog.len());
        assert!(!prog.iter().any(is_ja));
    }

    #[test]
    fn every_group_member_is_allowed_by_the_program_of_all_groups() {
        let groups = [
            RUNTIME,
            EVENT_LOOP,
            SOCKETS,
            SPLICE,
            LOG,
            PCAP,
            PROC_SCAN,
            PASTA_WATCH,
            PASST_EXIT,
        ];
        let prog = build(&groups.concat(), KILL);
        for nr in groups.concat() {
            assert_eq!(verdict(&prog, nr), ALLOW, "{nr}");
        }
        // Set-up only: never in a group.
        for nr in [
            libc::SYS_execve,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_mount,
            libc::SYS_ptrace,
            libc::SYS_seccomp,
            libc::SYS_openat,
            libc::SYS_setresuid,
        ] {
            assert_eq!(verdict(&prog, nr), KILL, "{nr}");
        }
    }

    #[test]
    fn installing_an_empty_or_too_long_program_is_refused_before_any_call() {
        assert_eq!(install(&[], false), Err(Errno::INVAL));
        let long = vec![ret(ALLOW); MAX_INSNS + 1];
        assert_eq!(install(&long, false), Err(Errno::INVAL));
    }

    // Real filters, each in a child process: the test binary runs itself
    // with `--exact` on the named test and `CHILD` set to what that child
    // does, and the parent checks how the child ended.

    /// Environment variable telling a re-run test binary which child to be.
    const CHILD: &str = "PASST_SYS_SECCOMP_CHILD";

    /// What every child may call: its writes to standard output, the
    /// allocator's memory calls, `exit_group`.
    const CHILD_CALLS: &[Sysno] = &[
        libc::SYS_write,
        libc::SYS_brk,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_exit_group,
    ];

    /// Run this test binary on `test` (a name in this module) as child
    /// `what`, and collect what it wrote and how it ended.
    fn child(test: &str, what: &str) -> Output {
        let name = format!(
            "{}::{test}",
            module_path!().trim_start_matches("passt_sys::")
        );
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1", "-q"])
            .env(CHILD, what)
            .output()
            .unwrap();
        eprintln!("child {what}: {:?}", out.status);
        out
    }

    /// Whether the child's standard output has `line` on a line of its own.
    fn said(out: &Output, line: &str) -> bool {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == line)
    }

    /// In a child: no core file for the deaths the tests cause.
    fn no_core() {
        let zero = rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        rustix::process::setrlimit(rustix::process::Resource::Core, zero).unwrap();
    }

    /// In a child: `msg` and a newline on standard output with one
    /// `write(2)` (no locks, no buffers), whether it went through.
    fn say(msg: &str) -> bool {
        let line = format!("{msg}\n");
        rustix::io::write(std::io::stdout(), line.as_bytes()).is_ok()
    }

    /// In a child: `getppid(2)`, a call no filter here allows, made raw so
    /// that nothing caches it.
    fn getppid() -> libc::c_long {
        // SAFETY: getppid takes no arguments and touches no memory.
        unsafe { libc::syscall(libc::SYS_getppid) }
    }

    /// In a child: end the process at once, with `exit_group(2)`.
    fn exit_now(status: i32) -> ! {
        // SAFETY: `_exit` ends the process without running any code of
        // this one (no destructors, no `atexit` handlers, no flushes).
        unsafe { libc::_exit(status) }
    }

    #[test]
    fn kill_mode_kills_the_process_on_an_unlisted_call_and_lets_listed_ones_run() {
        match std::env::var(CHILD).as_deref() {
            Ok(what @ ("forbidden" | "allowed" | "logged")) => {
                no_core();
                let action = if what == "logged" { RET_LOG } else { KILL };
                let mut calls = CHILD_CALLS.to_vec();
                if what == "allowed" {
                    calls.push(libc::SYS_getppid);
                }
                install(&build(&calls, action), false).unwrap();
                say("filtered");
                let ppid = getppid();
                say(&format!(
                    "getppid {}",
                    if ppid > 0 { "ok" } else { "failed" }
                ));
                exit_now(0);
            }
            Ok(_) => return,
            Err(_) => {}
        }
        let name = "kill_mode_kills_the_process_on_an_unlisted_call_and_lets_listed_ones_run";
        let out = child(name, "forbidden");
        assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
        assert!(said(&out, "filtered"), "{out:?}");
        assert!(!said(&out, "getppid ok"), "{out:?}");
        for what in ["allowed", "logged"] {
            let out = child(name, what);
            assert_eq!(out.status.code(), Some(0), "{what}: {out:?}");
            assert!(
                said(&out, "filtered") && said(&out, "getppid ok"),
                "{out:?}"
            );
        }
    }

    #[test]
    fn tsync_filters_a_thread_started_before_the_install() {
        match std::env::var(CHILD).as_deref() {
            Ok(what @ ("tsync" | "this-thread")) => {
                no_core();
                let (go_tx, go) = std::sync::mpsc::channel::<()>();
                let (up, worker_up) = std::sync::mpsc::channel::<()>();
                let worker = std::thread::spawn(move || {
                    // Running (glibc's thread start-up calls done): only
                    // getppid is forbidden from here on.
                    up.send(()).unwrap();
                    go.recv().unwrap();
                    let ppid = getppid();
                    say(&format!(
                        "thread getppid {}",
                        if ppid > 0 { "ok" } else { "failed" }
                    ));
                });
                worker_up.recv().unwrap();
                // The channel and the join wait with futexes; a joined
                // thread's stack is unmapped or advised away. With TSYNC
                // the test harness's own threads are filtered too: the one
                // that started this test may still be restoring its signal
                // mask after clone (glibc's pthread_create), and it waits
                // for the test with a timeout.
                let mut calls = CHILD_CALLS.to_vec();
                calls.extend([
                    libc::SYS_futex,
                    libc::SYS_madvise,
                    libc::SYS_rt_sigprocmask,
                    libc::SYS_clock_gettime,
                ]);
                install(&build(&calls, KILL), what == "tsync").unwrap();
                say("filtered");
                go_tx.send(()).unwrap();
                let joined = worker.join().is_ok();
                say(&format!("joined {joined}"));
                exit_now(0);
            }
            Ok(_) => return,
            Err(_) => {}
        }
        let name = "tsync_filters_a_thread_started_before_the_install";
        let out = child(name, "tsync");
        assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{out:?}");
        assert!(said(&out, "filtered"), "{out:?}");
        assert!(!said(&out, "thread getppid ok"), "{out:?}");
        // Without TSYNC the filter is the installing thread's only.
        let out = child(name, "this-thread");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(
            said(&out, "thread getppid ok") && said(&out, "joined true"),
            "{out:?}"
        );
    }
}
