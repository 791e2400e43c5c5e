//! The socket executor (`host::exec::SockExec`) on real loopback sockets of
//! this test: what one drain of operations promises the translator.

use std::io::Read;

use passt_core::addr::SockAddrAny;
use passt_core::buf::{FrameDesc, RxBatch, RxSpan, TxRing};
use passt_core::host::exec::{Calls, SockExec};
use passt_core::testing::build::test_config;
use passt_core::time::Instant;
use passt_core::{Done, Errno, Proto, SockId, SockOp, SockSpec, Translator};
use std::net::TcpStream;

/// An executor with one TCP socket, opened by `SockOp::Open` and connected
/// to a listener of the test on 127.0.0.1, and the listener's end of the
/// connection (its reads time out after 5 s).
pub(crate) fn connected_executor(tx: &mut TxRing) -> (SockExec, SockId, TcpStream) {
    connected_executor_with(tx, Calls::empty())
}

/// [`connected_executor`], with the optional system calls `calls`.
fn connected_executor_with(tx: &mut TxRing, calls: Calls) -> (SockExec, SockId, TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let mut exec = SockExec::with_calls(4, ep, calls);
    let id = SockId::from_parts(0, 1);
    let mut spec = SockSpec::new(Proto::Tcp, false);
    spec.peer = Some(SockAddrAny::new(core::net::Ipv4Addr::LOCALHOST, port));
    let open = exec.run(SockOp::Open { id, spec }, &RxBatch::EMPTY, tx);
    assert_eq!(open.map(|c| c.res), Some(Ok(Done::Opened)));
    let (peer, _) = l.accept().unwrap();
    peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    (exec, id, peer)
}

/// Once a send to a socket came up short in a drain, later sends to it in
/// the same drain are refused (EAGAIN) even if the kernel has room again:
/// their bytes would overtake the ones the translator sends again. The
/// next drain (`run_ops`) lifts that.
#[test]
fn a_short_send_blocks_the_socket_until_the_next_drain() {
    let mut tx = TxRing::new(4, 2048, 0);
    let (mut exec, id, mut peer) = connected_executor(&mut tx);

    // More than loopback's buffers hold, then a small tail.
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    let tail = b"the tail".to_vec();
    let mut arena = big.clone();
    arena.extend_from_slice(&tail);
    let descs = [
        FrameDesc::new(0, big.len() as u32),
        FrameDesc::new(big.len() as u32, tail.len() as u32),
    ];
    let rx = RxBatch::new(&arena, &descs).unwrap();
    let span = |frame, len| RxSpan {
        frame,
        offset: 0,
        len,
    };
    let sent = exec.run(
        SockOp::Send {
            id,
            payload: span(0, big.len() as u32),
        },
        &rx,
        &mut tx,
    );
    let n = match sent.map(|c| c.res) {
        Some(Ok(Done::Bytes(n))) => n as usize,
        other => panic!("expected a short send, got {other:?}"),
    };
    assert!(n < big.len(), "{n} bytes: not short");
    // The peer takes all of it: the kernel has room again.
    let mut got = vec![0u8; n];
    peer.read_exact(&mut got).unwrap();
    assert!(got == big[..n], "bytes differ");
    // Same drain: refused.
    let tail_op = SockOp::Send {
        id,
        payload: span(1, tail.len() as u32),
    };
    let again = exec.run(tail_op, &rx, &mut tx);
    assert_eq!(again.map(|c| c.res), Some(Err(Errno::EAGAIN)));
    // Next drain: written.
    let mut t = Translator::new(test_config(), Instant::from_nanos(1)).unwrap();
    exec.run_ops(&mut t, Instant::from_nanos(2), &RxBatch::EMPTY, &mut tx);
    let after = exec.run(tail_op, &rx, &mut tx);
    assert!(
        matches!(
            after.map(|c| c.res),
            Some(Ok(Done::Bytes(8) | Done::Sent { bytes: 8, .. }))
        ),
        "{after:?}"
    );
    let mut back = [0u8; 8];
    peer.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"the tail");
}

/// A `Query` answered while nothing was queued is answered again from the
/// executor's copy until the socket's next `Send`; one answered with bytes
/// queued is asked of the kernel every time (its space grows as the peer
/// takes them).
#[test]
fn a_query_is_answered_from_the_last_one_only_while_nothing_was_queued() {
    let mut tx = TxRing::new(4, 2048, 0);
    let (mut exec, id, mut peer) = connected_executor_with(&mut tx, Calls::OUTQ);
    let query = |exec: &mut SockExec, tx: &mut TxRing| match exec
        .run(SockOp::Query { id }, &RxBatch::EMPTY, tx)
        .map(|c| c.res)
    {
        Some(Ok(Done::Space { free, info: None })) => free,
        other => panic!("expected a Space answer, got {other:?}"),
    };
    let idle = query(&mut exec, &mut tx);
    assert!(idle > 0);
    assert_eq!(query(&mut exec, &mut tx), idle);

    // Far more than loopback takes while the peer does not read: bytes
    // stay queued, and the next answer is the kernel's, smaller.
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    let descs = [FrameDesc::new(0, big.len() as u32)];
    let rx = RxBatch::new(&big, &descs).unwrap();
    let payload = RxSpan {
        frame: 0,
        offset: 0,
        len: big.len() as u32,
    };
    let n = match exec
        .run(SockOp::Send { id, payload }, &rx, &mut tx)
        .map(|c| c.res)
    {
        Some(Ok(Done::Bytes(n) | Done::Sent { bytes: n, .. })) => n as usize,
        other => panic!("expected a send, got {other:?}"),
    };
    let full = query(&mut exec, &mut tx);
    assert!(full < idle, "{full} free with bytes queued, {idle} idle");

    // The peer takes everything: asked again, the space is back.
    let mut got = vec![0u8; n];
    peer.read_exact(&mut got).unwrap();
    assert!(got == big[..n], "bytes differ");
    let mut back = full;
    for _ in 0..100 {
        back = query(&mut exec, &mut tx);
        if back > full {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        back > full,
        "{back} free after the peer read, {full} before"
    );
}

/// Set in the child process of
/// [`a_listener_out_of_descriptors_is_muted_then_listens_again_after_a_second`].
const MUTE_CHILD: &str = "PASST_CORE_TEST_MUTE_CHILD";

/// An `Accept` that finds no descriptor mutes its listener (no readiness:
/// the loop does not spin on the connection waiting in the backlog), and
/// `UNMUTE_AFTER` later, with no `Close` in between, the listener listens
/// again. Runs in a child process of the test binary, since it lowers
/// `RLIMIT_NOFILE` (process-wide) and uses up the descriptors.
#[test]
fn a_listener_out_of_descriptors_is_muted_then_listens_again_after_a_second() {
    if std::env::var_os(MUTE_CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "exec::a_listener_out_of_descriptors_is_muted_then_listens_again_after_a_second",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(MUTE_CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    use passt_core::host::exec::{id_of, UNMUTE_AFTER};
    use passt_core::SockFlags;
    use rustix::event::epoll;
    use rustix::process::{getrlimit, setrlimit, Resource};

    let mut tx = TxRing::new(4, 2048, 0);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let mut exec = SockExec::with_calls(8, ep.try_clone().unwrap(), Calls::empty());
    let mut t = Translator::new(test_config(), Instant::from_nanos(0)).unwrap();
    while t.poll_op().is_some() {}
    // A free port on loopback for the executor's listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lid = SockId::from_parts(0, 1);
    let mut spec = SockSpec::new(Proto::Tcp, false);
    spec.flags = SockFlags::LISTEN;
    spec.bind = Some(SockAddrAny::new(core::net::Ipv4Addr::LOCALHOST, port));
    let open = exec.run(SockOp::Open { id: lid, spec }, &RxBatch::EMPTY, &mut tx);
    assert_eq!(open.map(|c| c.res), Some(Ok(Done::Opened)));
    let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut events: Vec<epoll::Event> = Vec::with_capacity(8);
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let ready = |events: &mut Vec<epoll::Event>| {
        events.clear();
        epoll::wait(&ep, rustix::buffer::spare_capacity(events), Some(&zero)).unwrap();
        events
            .iter()
            .filter_map(|e| id_of(e.data.u64()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ready(&mut events), vec![lid]);

    // No descriptor left: a limit just above what is open, then filled.
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = Some(open_now + 8);
    setrlimit(Resource::Nofile, lim).unwrap();
    let mut fill = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fill.push(f);
    }
    let now = Instant::from_nanos(1_000_000_000);
    let id = SockId::from_parts(1, 1);
    let acc = exec.run(
        SockOp::Accept { listener: lid, id },
        &RxBatch::EMPTY,
        &mut tx,
    );
    assert_eq!(acc.map(|c| c.res), Some(Err(Errno::EMFILE)));
    exec.run_ops(&mut t, now, &RxBatch::EMPTY, &mut tx);
    assert_eq!(exec.muted(), 1);
    assert_eq!(exec.poll_timeout(), Some(now + UNMUTE_AFTER));
    // Muted: the waiting connection does not make the listener ready.
    assert_eq!(ready(&mut events), vec![]);
    exec.run_ops(&mut t, now + UNMUTE_AFTER / 2, &RxBatch::EMPTY, &mut tx);
    assert_eq!(exec.muted(), 1);
    assert_eq!(ready(&mut events), vec![]);

    // A descriptor comes back without a `Close` the executor sees; a
    // second later the listener listens again, and the accept works.
    fill.pop();
    fill.pop();
    exec.run_ops(&mut t, now + UNMUTE_AFTER, &RxBatch::EMPTY, &mut tx);
    assert_eq!((exec.muted(), exec.poll_timeout()), (0, None));
    assert_eq!(ready(&mut events), vec![lid]);
    let acc = exec.run(
        SockOp::Accept { listener: lid, id },
        &RxBatch::EMPTY,
        &mut tx,
    );
    assert!(
        matches!(acc.map(|c| c.res), Some(Ok(Done::Accepted { .. }))),
        "{acc:?}"
    );
}
