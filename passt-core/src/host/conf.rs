//! The configuration socket (`-c/--conf-path`), both drivers' part: a
//! Unix stream socket whose clients (`passt-ctl`) list and change the
//! `-t`/`-u` forwarding rules at run time, one
//! [`crate::control::Session`] per connection (`doc/control.md`).
//!
//! [`ConfSocket::open`] makes the socket at setup: an existing file at
//! the path is removed only if it is a socket nobody listens on, the new
//! one is made `0600` (under a umask of `0177`, then `chmod`). The driver
//! registers it in its epoll set ([`ConfSocket::register`]), hands the
//! events of its tokens ([`ConfSocket::owns`]) to [`ConfSocket::ready`]
//! and calls [`ConfSocket::run`] at the end of every wake-up (after the
//! wake-up's drains of [`crate::Translator::poll_op`]: a change's reply
//! waits for its listeners' `Open`s).
//!
//! # Authorisation
//! Besides the file's mode, each connection's peer credentials
//! (`SO_PEERCRED`) are checked before anything is read: only root and the
//! user who made the socket (the effective user id at setup) are served;
//! any other connection is closed at once.
//!
//! # Resources
//! At most [`MAX_CLIENTS`] connections at once; more are closed on
//! accept. Each slot's read buffer (one request's worth,
//! [`crate::control::HEADER_LEN`] + [`crate::control::MAX_REQUEST_BODY`])
//! is allocated at setup; the sessions themselves allocate their
//! buffers, replies and the rules of a change as they go (a client's
//! requests are not on the data path). Readiness is level-triggered: a
//! connection is watched for input only while the session can take
//! more, and for output only while replies wait to be written; a hang-up
//! (always reported) while its input waits closes it. A client that
//! neither reads its replies nor hangs up just waits (no spinning).
//!
//! The socket file is removed at exit ([`ConfSocket::remove`]) through
//! a descriptor of its directory kept from setup (`unlinkat`: in the
//! sandbox no path resolves); if the process is killed, or started as
//! root it runs as `nobody` by then and may not remove it (a root-owned
//! file in a sticky or root-owned directory), a later start removes the
//! stale socket.
//!
//! Syscalls, after setup: `accept4`, `getsockopt(SO_PEERCRED)`,
//! `recvfrom`, `sendto`, `epoll_ctl`, `close`; `unlinkat` at exit.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

use super::clock::now;
use super::error::Error;
use super::exec::SockExec;
use crate::buf::{RxBatch, TxRing, TxStorage};
use crate::control::{Session, HEADER_LEN, MAX_REQUEST_BODY};
use crate::Translator;

/// Most clients connected at once.
pub const MAX_CLIENTS: usize = 4;

/// epoll token of the listening socket; client `i`'s is one more than
/// this plus `i`. Far from the socket executor's tokens (socket ids) and
/// the drivers' own (small, or from `1 << 62`).
pub const TOKEN_CONF: u64 = 1 << 61;

/// One slot's read buffer: a whole request.
const READ_LEN: usize = HEADER_LEN + MAX_REQUEST_BODY as usize;

/// A connected client.
#[derive(Debug)]
struct Client {
    fd: OwnedFd,
    session: Session,
    /// Bytes read and not yet taken by the session: `buf[start..end]`.
    start: usize,
    end: usize,
    /// The epoll interest registered.
    interest: epoll::EventFlags,
    /// Its epoll token.
    token: u64,
}

/// The configuration socket and its clients.
#[derive(Debug)]
pub struct ConfSocket {
    listener: OwnedFd,
    path: PathBuf,
    /// The socket's directory (`O_PATH`) and its name there, for
    /// [`ConfSocket::remove`].
    dir: Option<(OwnedFd, PathBuf)>,
    /// The user served besides root.
    owner: u32,
    /// The host's ephemeral port range, for the sessions.
    ephemeral: Option<(u16, u16)>,
    clients: Vec<Option<Client>>,
    bufs: Vec<Box<[u8]>>,
}

/// The host's ephemeral port range, if readable.
fn ephemeral_range() -> Option<(u16, u16)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) if a <= b => Some((a, b)),
        _ => None,
    }
}

impl ConfSocket {
    /// Make the socket at `path` and listen on it.
    ///
    /// # Errors
    /// A path too long for a Unix socket, a file there that is not a
    /// socket or a socket in use, or the kernel's refusal to make,
    /// bind or listen on it.
    pub fn open(path: &Path) -> Result<ConfSocket, Error> {
        let what = || format!("configuration socket {}", path.display());
        let addr = SocketAddrUnix::new(path)
            .map_err(|e| Error::sys(format!("{}: bad path", what()), e))?;
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                let probe = rustix::net::socket_with(
                    AddressFamily::UNIX,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )
                .map_err(|e| Error::sys(what(), e))?;
                if rustix::net::connect(&probe, &addr).is_ok() {
                    return Err(Error::msg(format!(
                        "{}: in use by a running process",
                        what()
                    )));
                }
                std::fs::remove_file(path)
                    .map_err(|e| Error::io(format!("{}: removing the stale socket", what()), &e))?;
            }
            Ok(_) => {
                return Err(Error::msg(format!(
                    "{}: exists and is not a socket",
                    what()
                )));
            }
            Err(_) => {}
        }
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::sys(what(), e))?;
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = rustix::net::bind(&fd, &addr);
        rustix::process::umask(old);
        bound.map_err(|e| Error::sys(format!("{}: binding", what()), e))?;
        let listened = rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))
            .and_then(|()| rustix::net::listen(&fd, MAX_CLIENTS as i32));
        if let Err(e) = listened {
            let _ = std::fs::remove_file(path);
            return Err(Error::sys(format!("{}: listening", what()), e));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
        .zip(path.file_name().map(PathBuf::from));
        Ok(ConfSocket {
            listener: fd,
            path: path.to_owned(),
            dir,
            owner: rustix::process::geteuid().as_raw(),
            ephemeral: ephemeral_range(),
            clients: (0..MAX_CLIENTS).map(|_| None).collect(),
            bufs: (0..MAX_CLIENTS)
                .map(|_| vec![0u8; READ_LEN].into_boxed_slice())
                .collect(),
        })
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the socket file (at exit), through its directory's
    /// descriptor.
    pub fn remove(&self) {
        if let Some((dir, name)) = &self.dir {
            let _ = rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty());
        }
    }

    /// Watch the listening socket in `epoll`.
    ///
    /// # Errors
    /// The kernel's refusal.
    pub fn register(&self, epoll: &OwnedFd) -> Result<(), Error> {
        super::driver::add(
            epoll,
            &self.listener,
            TOKEN_CONF,
            epoll::EventFlags::IN,
            "the configuration socket",
        )
    }

    /// Whether `token` is the socket's or one of its clients'.
    pub fn owns(token: u64) -> bool {
        (TOKEN_CONF..=TOKEN_CONF + MAX_CLIENTS as u64).contains(&token)
    }

    /// An event of one of [`ConfSocket::owns`]'s tokens: connections
    /// accepted, or a client's request read and handled (its operations
    /// run through `exec`).
    pub fn ready<S: TxStorage>(
        &mut self,
        epoll: &OwnedFd,
        t: &mut Translator,
        exec: &mut SockExec,
        token: u64,
        flags: epoll::EventFlags,
        tx: &mut TxRing<S>,
    ) {
        if token == TOKEN_CONF {
            self.accept(epoll);
            return;
        }
        let i = (token - TOKEN_CONF - 1) as usize;
        let (Some(slot), Some(buf)) = (self.clients.get_mut(i), self.bufs.get_mut(i)) else {
            return;
        };
        let Some(c) = slot else {
            return;
        };
        if flags.contains(epoll::EventFlags::IN) && c.start == c.end && !c.session.is_closed() {
            match rustix::net::recv(&c.fd, &mut buf[..], RecvFlags::DONTWAIT) {
                Ok((0, _)) => return Self::drop_client(epoll, slot, "hung up"),
                Ok((n, _)) => {
                    c.start = 0;
                    c.end = n;
                }
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(_) => return Self::drop_client(epoll, slot, "failed"),
            }
        } else if flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR) {
            // Gone while its input waits (or after a fatal error): level
            // triggered, this would come back at once.
            return Self::drop_client(epoll, slot, "hung up");
        }
        Self::serve(epoll, slot, buf, t, exec, tx);
    }

    /// Every client's waiting work: input the session can take now,
    /// replies to changes that ended, output to write. Called at the end
    /// of every wake-up.
    pub fn run<S: TxStorage>(
        &mut self,
        epoll: &OwnedFd,
        t: &mut Translator,
        exec: &mut SockExec,
        tx: &mut TxRing<S>,
    ) {
        for (slot, buf) in self.clients.iter_mut().zip(self.bufs.iter_mut()) {
            if slot.is_some() {
                Self::serve(epoll, slot, buf, t, exec, tx);
            }
        }
    }

    /// Feed the session, run it and its operations until it rests, write
    /// its output, and update the connection's epoll interest (or close
    /// it).
    fn serve<S: TxStorage>(
        epoll: &OwnedFd,
        slot: &mut Option<Client>,
        buf: &mut [u8],
        t: &mut Translator,
        exec: &mut SockExec,
        tx: &mut TxRing<S>,
    ) {
        let Some(c) = slot else {
            return;
        };
        loop {
            let mut moved = false;
            if c.start < c.end {
                let n = c
                    .session
                    .input(t, buf.get(c.start..c.end).unwrap_or_default());
                c.start += n;
                moved |= n > 0;
                exec.run_ops(t, now(), &RxBatch::EMPTY, tx);
            }
            while c.session.run(t) {
                moved = true;
                exec.run_ops(t, now(), &RxBatch::EMPTY, tx);
            }
            while !c.session.output().is_empty() {
                match rustix::net::send(
                    &c.fd,
                    c.session.output(),
                    SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
                ) {
                    Ok(n) => {
                        c.session.consume(n);
                        moved |= n > 0;
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => break,
                    Err(_) => return Self::drop_client(epoll, slot, "failed"),
                }
            }
            if !moved {
                break;
            }
        }
        if c.session.is_closed() && c.session.output().is_empty() {
            return Self::drop_client(epoll, slot, "closed after a fatal error");
        }
        let mut want = epoll::EventFlags::empty();
        if c.start == c.end && !c.session.is_closed() {
            want |= epoll::EventFlags::IN;
        }
        if !c.session.output().is_empty() {
            want |= epoll::EventFlags::OUT;
        }
        if want != c.interest
            && epoll::modify(epoll, &c.fd, epoll::EventData::new_u64(c.token), want).is_ok()
        {
            c.interest = want;
        }
    }

    /// Accept every waiting connection: served if the peer may, and a
    /// slot is free; closed otherwise.
    fn accept(&mut self, epoll: &OwnedFd) {
        loop {
            let fd = match rustix::net::accept_with(
                &self.listener,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok(fd) => fd,
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                Err(Errno::AGAIN) => return,
                Err(e) => {
                    crate::debug!(
                        "configuration socket: accept: {}",
                        super::error::errno_text(e)
                    );
                    return;
                }
            };
            match rustix::net::sockopt::socket_peercred(&fd) {
                Ok(cred) if cred.uid.is_root() || cred.uid.as_raw() == self.owner => {}
                Ok(cred) => {
                    crate::warning!(
                        "configuration socket: connection of user {} refused",
                        cred.uid.as_raw()
                    );
                    continue;
                }
                Err(e) => {
                    crate::debug!(
                        "configuration socket: peer credentials: {}",
                        super::error::errno_text(e)
                    );
                    continue;
                }
            }
            let Some(i) = self.clients.iter().position(Option::is_none) else {
                crate::debug!("configuration socket: {MAX_CLIENTS} clients already: closed");
                continue;
            };
            let token = TOKEN_CONF + 1 + i as u64;
            let interest = epoll::EventFlags::IN;
            if epoll::add(epoll, &fd, epoll::EventData::new_u64(token), interest).is_err() {
                continue;
            }
            crate::debug!("configuration socket: client {i} connected");
            if let Some(slot) = self.clients.get_mut(i) {
                *slot = Some(Client {
                    fd,
                    session: Session::new(self.ephemeral),
                    start: 0,
                    end: 0,
                    interest,
                    token,
                });
            }
        }
    }

    /// Close a client's connection.
    fn drop_client(epoll: &OwnedFd, slot: &mut Option<Client>, why: &str) {
        if let Some(c) = slot.take() {
            let _ = epoll::delete(epoll, c.fd.as_fd());
            crate::debug!("configuration socket: client {why}");
        }
    }
}
