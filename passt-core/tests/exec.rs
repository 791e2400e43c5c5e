//! The socket executor (`host::exec::SockExec`) on real loopback sockets of
//! this test: what one drain of operations promises the translator.

use std::io::Read;

use passt_core::addr::SockAddrAny;
use passt_core::buf::{FrameDesc, RxBatch, RxSpan, TxRing};
use passt_core::host::exec::SockExec;
use passt_core::testing::build::test_config;
use passt_core::time::Instant;
use passt_core::{Done, Errno, Proto, SockId, SockOp, SockSpec, Translator};
use std::net::TcpStream;

/// An executor with one TCP socket, opened by `SockOp::Open` and connected
/// to a listener of the test on 127.0.0.1, and the listener's end of the
/// connection (its reads time out after 5 s).
pub(crate) fn connected_executor(tx: &mut TxRing) -> (SockExec, SockId, TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    let mut exec = SockExec::new(4, ep, None);
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
