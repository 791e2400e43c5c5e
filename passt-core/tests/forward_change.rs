//! Run-time forwarding changes through the Translator with a fake host
//! (`Translator::begin_forward_change`): a forward added while a transfer
//! runs on another port, one removed under an open connection, a change
//! that fails and leaves everything as it was, UDP listeners that retire
//! while their flows go on, and the allocation-free path.

use core::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use passt_core::addr::SockAddrAny;
use passt_core::change::{ChangeError, ChangeOutcome};
use passt_core::config::ports::FwdSpec;
use passt_core::config::Config;
use passt_core::testing::build::{
    parse_tcp, tcp4, test_config, udp4, TcpOut, GUEST4, GUEST_MAC, GW4,
};
use passt_core::testing::Harness;
use passt_core::wire::tcp::TcpFlags;
use passt_core::{
    ChangeId, Completion, Done, Errno, Event, Proto, Ready, SockFlags, SockId, SockOp,
};

fn ok(h: &mut Harness, id: SockId, d: Done) {
    h.complete(Completion { id, res: Ok(d) });
}

fn config(tcp: &str, udp: &str) -> Config {
    let mut c = test_config();
    c.fwd.tcp_in = FwdSpec::parse(tcp).unwrap();
    c.fwd.udp_in = FwdSpec::parse(udp).unwrap();
    c.guest_mac = Some(GUEST_MAC);
    c.limits.change_listeners = 64;
    c
}

/// Every operation queued so far.
fn ops(h: &mut Harness) -> Vec<SockOp> {
    h.host.ops.drain(..).collect()
}

/// The listener `Open`s among `ops`: (socket, port).
fn listen_opens(ops: &[SockOp]) -> Vec<(SockId, u16)> {
    ops.iter()
        .filter_map(|op| match op {
            SockOp::Open { id, spec } if spec.peer.is_none() => {
                Some((*id, spec.bind.expect("bound").port))
            }
            _ => None,
        })
        .collect()
}

fn closes(ops: &[SockOp]) -> Vec<SockId> {
    ops.iter()
        .filter_map(|op| match op {
            SockOp::Close { id } => Some(*id),
            _ => None,
        })
        .collect()
}

/// Open every listener queued at start-up; their sockets by port.
fn open_startup(h: &mut Harness) -> Vec<(SockId, u16)> {
    let opened = listen_opens(&ops(h));
    for (id, _) in &opened {
        ok(h, *id, Done::Opened);
    }
    opened
}

fn sock_of(listeners: &[(SockId, u16)], port: u16) -> SockId {
    listeners.iter().find(|(_, p)| *p == port).expect("port").0
}

/// One established inbound connection through the listener `lid` of
/// `port`, from the host's loopback at `peer_port`: its socket, our next
/// sequence number and the guest's.
struct Inbound {
    id: SockId,
    port: u16,
    peer_port: u16,
    ours: u32,
    guests: u32,
}

fn out(h: &mut Harness) -> TcpOut {
    parse_tcp(&h.expect_frame())
}

fn inbound(h: &mut Harness, lid: SockId, port: u16, peer_port: u16) -> Inbound {
    h.ready(lid, Ready::READABLE);
    let id = match h.expect_op() {
        SockOp::Accept { listener, id } => {
            assert_eq!(listener, lid);
            id
        }
        op => panic!("expected Accept, got {op:?}"),
    };
    ok(
        h,
        id,
        Done::Accepted {
            peer: SockAddrAny::new(Ipv4Addr::LOCALHOST, peer_port),
            local: SockAddrAny::new(Ipv4Addr::LOCALHOST, port),
        },
    );
    let next = match h.expect_op() {
        SockOp::Accept { id, .. } => id,
        op => panic!("expected the next Accept, got {op:?}"),
    };
    h.complete(Completion {
        id: next,
        res: Err(Errno::EAGAIN),
    });
    let syn = out(h);
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!((syn.dst, syn.dport), (IpAddr::V4(GUEST4), port));
    h.guest(
        &tcp4(GUEST4, port, GW4, peer_port)
            .syn()
            .ack(syn.seq + 1)
            .seq(9000)
            .build(),
    );
    // The window asked for, the first read (nothing yet).
    for op in ops(h) {
        match op {
            SockOp::Query { id: q } => ok(
                h,
                q,
                Done::Space {
                    free: 100_000,
                    info: None,
                },
            ),
            SockOp::Peek { id: p, .. } => h.complete(Completion {
                id: p,
                res: Err(Errno::EAGAIN),
            }),
            op => panic!("unexpected {op:?}"),
        }
    }
    for op in ops(h) {
        if let SockOp::Peek { id: p, .. } = op {
            h.complete(Completion {
                id: p,
                res: Err(Errno::EAGAIN),
            });
        }
    }
    h.to_guest.clear();
    h.to_guest_offload.clear();
    Inbound {
        id,
        port,
        peer_port,
        ours: syn.seq + 1,
        guests: 9001,
    }
}

/// Host bytes `data` reach the guest on `c`, checked by content, and the
/// guest acknowledges them (they leave the socket).
fn host_to_guest(h: &mut Harness, c: &mut Inbound, data: &[u8]) {
    h.ready(c.id, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Peek { id, into, .. } if id == c.id => into,
        op => panic!("expected Peek, got {op:?}"),
    };
    h.complete_peek(c.id, into, data);
    let f = out(h);
    assert_eq!((f.sport, f.dport), (c.peer_port, c.port));
    assert_eq!((f.seq, &f.payload[..]), (c.ours, data));
    c.ours += data.len() as u32;
    while h.to_guest.pop_front().is_some() {
        h.to_guest_offload.pop_front();
    }
    h.guest(
        &tcp4(GUEST4, c.port, GW4, c.peer_port)
            .seq(c.guests)
            .ack(c.ours)
            .build(),
    );
    let mut discarded = false;
    for op in ops(h) {
        match op {
            SockOp::Discard { id, len } if id == c.id => {
                assert_eq!(len as usize, data.len());
                discarded = true;
            }
            SockOp::Peek { id, .. } => h.complete(Completion {
                id,
                res: Err(Errno::EAGAIN),
            }),
            op => panic!("unexpected {op:?}"),
        }
    }
    assert!(discarded, "acknowledged bytes leave the socket");
}

/// Guest bytes `data` reach the host socket of `c`, checked by content.
fn guest_to_host(h: &mut Harness, c: &mut Inbound, data: &[u8]) {
    h.guest(
        &tcp4(GUEST4, c.port, GW4, c.peer_port)
            .seq(c.guests)
            .ack(c.ours)
            .payload(data)
            .build(),
    );
    let span = match h.expect_op() {
        SockOp::Send { id, payload } if id == c.id => payload,
        op => panic!("expected Send, got {op:?}"),
    };
    assert_eq!(h.last_span(span), data);
    ok(h, c.id, Done::Bytes(data.len() as u32));
    c.guests += data.len() as u32;
    let mut acked = false;
    while let Some(f) = h.to_guest.pop_front() {
        h.to_guest_offload.pop_front();
        acked |= parse_tcp(&f).ack == c.guests;
    }
    for op in ops(h) {
        if let SockOp::Peek { id, .. } = op {
            h.complete(Completion {
                id,
                res: Err(Errno::EAGAIN),
            });
        }
    }
    assert!(acked, "the guest's bytes are acknowledged");
}

fn changed(h: &mut Harness, id: ChangeId, proto: Proto) {
    let events = h.take_events();
    assert!(
        events.contains(&Event::ForwardChanged { id, proto }),
        "{events:?}"
    );
    assert_eq!(
        h.t.forward_change_outcome(),
        Some(ChangeOutcome::Done { id, proto })
    );
    assert_eq!(h.t.forward_change(), None);
}

#[test]
fn a_forward_added_while_a_transfer_runs_leaves_it_running() {
    let mut h = Harness::new(config("8080", "none"));
    let l = open_startup(&mut h);
    let mut c = inbound(&mut h, sock_of(&l, 8080), 8080, 5555);
    host_to_guest(&mut h, &mut c, b"first chunk, before the change");
    guest_to_host(&mut h, &mut c, b"first answer");

    let id = h
        .forward_change(Proto::Tcp, FwdSpec::parse("8080,9090").unwrap())
        .unwrap();
    assert_eq!(h.t.forward_change(), Some((id, Proto::Tcp)));
    // Only the new port is opened; 8080's listener is shared, untouched.
    let queued = ops(&mut h);
    let opened = listen_opens(&queued);
    assert_eq!(opened.len(), 1, "{queued:?}");
    assert_eq!(opened[0].1, 9090);
    assert!(closes(&queued).is_empty());
    match &queued[0] {
        SockOp::Open { spec, .. } => assert!(spec.flags.contains(SockFlags::LISTEN)),
        op => panic!("{op:?}"),
    }
    // The change is in flight: not in force yet, the transfer goes on.
    assert_eq!(h.t.forward_rules(Proto::Tcp).unwrap().port_count(), 1);
    host_to_guest(&mut h, &mut c, b"second chunk, change in flight");
    assert_eq!(
        h.forward_change(Proto::Tcp, FwdSpec::parse("22").unwrap()),
        Err(ChangeError::Busy(id))
    );

    ok(&mut h, opened[0].0, Done::Opened);
    changed(&mut h, id, Proto::Tcp);
    h.expect_no_op();
    assert_eq!(
        h.t.forward_rules(Proto::Tcp),
        Some(&FwdSpec::parse("8080,9090").unwrap())
    );
    host_to_guest(&mut h, &mut c, b"third chunk, after the swap");
    guest_to_host(&mut h, &mut c, b"second answer");
    // The new forward works, and the old one still does.
    let mut d = inbound(&mut h, opened[0].0, 9090, 6666);
    host_to_guest(&mut h, &mut d, b"through the new forward");
    let mut e = inbound(&mut h, sock_of(&l, 8080), 8080, 7777);
    guest_to_host(&mut h, &mut e, b"through the old one");
    assert_eq!(h.t.tcp_flows(), 3);
}

#[test]
fn a_forward_removed_under_an_open_connection_leaves_it_working() {
    let mut h = Harness::new(config("8080,9090", "none"));
    let l = open_startup(&mut h);
    let lid = sock_of(&l, 9090);
    let mut c = inbound(&mut h, lid, 9090, 5555);
    host_to_guest(&mut h, &mut c, b"before");

    let id = h
        .forward_change(Proto::Tcp, FwdSpec::parse("8080").unwrap())
        .unwrap();
    // Nothing to open: the swap happens in the same drain, and 9090's
    // listener, only that one, is closed.
    assert_eq!(ops(&mut h), [SockOp::Close { id: lid }]);
    changed(&mut h, id, Proto::Tcp);
    assert!(!h.t.forward_rules(Proto::Tcp).unwrap().is_forwarded(9090));

    // The connection through it goes on both ways.
    host_to_guest(&mut h, &mut c, b"after the listener closed");
    guest_to_host(&mut h, &mut c, b"and back");
    assert_eq!(h.t.tcp_flows(), 1);
    // New connections to the removed port find no listener: its readiness
    // is stale, nothing is accepted (the host's kernel resets the SYN).
    h.ready(lid, Ready::READABLE);
    h.expect_no_op();
    h.expect_no_frame();
    // 8080 still accepts.
    let mut d = inbound(&mut h, sock_of(&l, 8080), 8080, 6000);
    host_to_guest(&mut h, &mut d, b"8080 is still forwarded");
}

#[test]
fn a_failing_change_leaves_the_old_rules_and_listeners() {
    let mut h = Harness::new(config("8080", "none"));
    let l = open_startup(&mut h);
    let before = h.t.forward_rules(Proto::Tcp).unwrap().clone();
    let id = h
        .forward_change(Proto::Tcp, FwdSpec::parse("9090-9092").unwrap())
        .unwrap();
    let opened = listen_opens(&ops(&mut h));
    assert_eq!(
        opened.iter().map(|o| o.1).collect::<Vec<_>>(),
        [9090, 9091, 9092]
    );
    ok(&mut h, opened[0].0, Done::Opened);
    h.complete(Completion {
        id: opened[1].0,
        res: Err(Errno::EADDRINUSE),
    });
    // Still waiting for the third.
    assert_eq!(h.t.forward_change(), Some((id, Proto::Tcp)));
    ok(&mut h, opened[2].0, Done::Opened);
    let events = h.take_events();
    let failed = Event::ForwardChangeFailed {
        id,
        proto: Proto::Tcp,
        port: 9091,
        errno: Errno::EADDRINUSE,
    };
    assert!(events.contains(&failed), "{events:?}");
    assert!(matches!(
        h.t.forward_change_outcome(),
        Some(ChangeOutcome::Failed { port: 9091, .. })
    ));
    // Every socket of the change is closed, 8080's is not.
    let mut closed = closes(&ops(&mut h));
    closed.sort_by_key(|s| s.slot());
    let mut want: Vec<SockId> = opened.iter().map(|o| o.0).collect();
    want.sort_by_key(|s| s.slot());
    assert_eq!(closed, want);
    assert_eq!(h.t.forward_rules(Proto::Tcp), Some(&before));
    // 8080 accepts as before; its connections go to the guest.
    let mut c = inbound(&mut h, sock_of(&l, 8080), 8080, 5555);
    host_to_guest(&mut h, &mut c, b"still forwarded");
    // A later change may reuse the entries and succeed.
    let id2 = h
        .forward_change(Proto::Tcp, FwdSpec::parse("8080,9091").unwrap())
        .unwrap();
    assert!(id2 > id);
    let opened = listen_opens(&ops(&mut h));
    assert_eq!(opened.len(), 1);
    ok(&mut h, opened[0].0, Done::Opened);
    changed(&mut h, id2, Proto::Tcp);
}

#[test]
fn changes_are_refused_for_auto_and_icmp() {
    let mut h = Harness::new(config("8080", "none"));
    open_startup(&mut h);
    assert_eq!(
        h.forward_change(Proto::Tcp, FwdSpec::parse("auto").unwrap()),
        Err(ChangeError::Auto)
    );
    assert_eq!(
        h.forward_change(Proto::Icmp, FwdSpec::default()),
        Err(ChangeError::Protocol(Proto::Icmp))
    );
    for (spec, proto) in [
        ("0.0.0.0%eth0/80", Proto::Tcp),
        ("[2001:db8::1]/80", Proto::Tcp),
        ("%lo/53", Proto::Udp),
    ] {
        let spec = FwdSpec::parse(spec).unwrap();
        assert!(matches!(
            h.forward_change(proto, spec),
            Err(ChangeError::Unsupported(_))
        ));
    }
    let mut c = config("8080", "none");
    c.services.remove(passt_core::config::Services::UDP);
    let mut off = Harness::new(c);
    assert!(matches!(
        off.forward_change(Proto::Udp, FwdSpec::parse("53").unwrap()),
        Err(ChangeError::Unsupported(_))
    ));
    assert!(off.forward_change(Proto::Udp, FwdSpec::default()).is_ok());
    let mut c = config("auto", "none");
    c.mode = passt_core::config::Mode::Pasta;
    let mut h = Harness::new(c);
    assert_eq!(
        h.forward_change(Proto::Tcp, FwdSpec::parse("22").unwrap()),
        Err(ChangeError::Auto)
    );
}

#[test]
fn a_change_without_room_fails_cleanly() {
    let mut c = config("8080", "none");
    c.limits.change_listeners = 2;
    let mut h = Harness::new(c);
    open_startup(&mut h);
    // Room for 8080's entries (two families reserved) and two more:
    // fewer than the ten new ports.
    let id = h
        .forward_change(Proto::Tcp, FwdSpec::parse("9000-9009").unwrap())
        .unwrap();
    let opened = listen_opens(&ops(&mut h));
    let n = opened.len();
    assert!((2..10).contains(&n), "{n} opened");
    for (s, _) in &opened {
        ok(&mut h, *s, Done::Opened);
    }
    let port = 9000 + n as u16;
    assert_eq!(
        h.t.forward_change_outcome(),
        Some(ChangeOutcome::Failed {
            id,
            proto: Proto::Tcp,
            port,
            errno: Errno::ENOBUFS
        })
    );
    assert_eq!(closes(&ops(&mut h)).len(), n);
    assert_eq!(h.t.forward_rules(Proto::Tcp).unwrap().port_count(), 1);
}

fn udp_payload(f: &[u8]) -> (u16, Vec<u8>) {
    // Ethernet, IPv4 (no options), UDP.
    let udp = &f[14 + 20..];
    (u16::from_be_bytes([udp[2], udp[3]]), udp[8..].to_vec())
}

#[test]
fn a_removed_udp_forward_keeps_its_flows_until_they_end() {
    let mut h = Harness::new(config("none", "5000"));
    let l = open_startup(&mut h);
    let lid = sock_of(&l, 5000);
    let sender = SockAddrAny::new(Ipv4Addr::new(203, 0, 113, 9), 40001);
    h.ready(lid, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { id, into } if id == lid => into,
        op => panic!("{op:?}"),
    };
    h.recv(lid, into, &[(sender, b"hello")]);
    assert_eq!(udp_payload(&h.expect_frame()), (5000, b"hello".to_vec()));

    // Moved to another port and target: the old listener has a flow, so
    // it retires instead of closing.
    let id = h
        .forward_change(Proto::Udp, FwdSpec::parse("6000:7000").unwrap())
        .unwrap();
    let queued = ops(&mut h);
    let opened = listen_opens(&queued);
    assert_eq!(opened.iter().map(|o| o.1).collect::<Vec<_>>(), [6000]);
    ok(&mut h, opened[0].0, Done::Opened);
    changed(&mut h, id, Proto::Udp);
    h.expect_no_op();

    // The flow goes on both ways.
    h.guest(&udp4(
        GUEST4,
        5000,
        Ipv4Addr::new(203, 0, 113, 9),
        40001,
        b"reply",
    ));
    match h.expect_op() {
        SockOp::SendTo { id, dst, payload } => {
            assert_eq!((id, dst), (lid, sender));
            assert_eq!(h.last_span(payload), b"reply");
        }
        op => panic!("{op:?}"),
    }
    h.ready(lid, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { id, into } if id == lid => into,
        op => panic!("{op:?}"),
    };
    let stranger = SockAddrAny::new(Ipv4Addr::new(203, 0, 113, 10), 40002);
    h.recv(lid, into, &[(sender, b"more"), (stranger, b"new sender")]);
    // The known sender's datagram arrives; a new sender's does not.
    assert_eq!(udp_payload(&h.expect_frame()), (5000, b"more".to_vec()));
    h.expect_no_frame();
    // The new forward maps 6000 to the guest's 7000.
    h.ready(opened[0].0, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { id, into } if id == opened[0].0 => into,
        op => panic!("{op:?}"),
    };
    h.recv(opened[0].0, into, &[(stranger, b"to 6000")]);
    assert_eq!(udp_payload(&h.expect_frame()), (7000, b"to 6000".to_vec()));
    h.expect_no_op();
    // Once the old flow expires, its listener closes.
    h.advance(Duration::from_secs(200));
    let closed = closes(&ops(&mut h));
    assert!(closed.contains(&lid), "{closed:?}");
}

#[test]
fn a_shared_udp_listener_takes_the_new_target() {
    let mut h = Harness::new(config("none", "5000"));
    let l = open_startup(&mut h);
    let lid = sock_of(&l, 5000);
    let id = h
        .forward_change(Proto::Udp, FwdSpec::parse("5000:53").unwrap())
        .unwrap();
    // Nothing opened or closed: the listener is the same binding.
    h.expect_no_op();
    changed(&mut h, id, Proto::Udp);
    h.ready(lid, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { id, into } if id == lid => into,
        op => panic!("{op:?}"),
    };
    let sender = SockAddrAny::new(Ipv4Addr::new(203, 0, 113, 9), 40001);
    h.recv(lid, into, &[(sender, b"query")]);
    assert_eq!(udp_payload(&h.expect_frame()), (53, b"query".to_vec()));
}

#[test]
fn auto_port_calls_leave_a_change_in_flight_alone() {
    let mut h = Harness::new(config("none", "6000"));
    let _ = open_startup(&mut h);
    // The same port, now on one address: a new listener, pending.
    let id = h
        .forward_change(Proto::Udp, FwdSpec::parse("127.0.0.1/6000").unwrap())
        .unwrap();
    let opened = listen_opens(&ops(&mut h));
    assert_eq!(opened.iter().map(|o| o.1).collect::<Vec<_>>(), [6000]);
    // A stray `auto` report for that port must not release the pending
    // listener (its completion would then be stale, and the change would
    // never end).
    assert!(!h.t.set_auto_port(Proto::Udp, 6000, false));
    assert!(ops(&mut h).is_empty());
    ok(&mut h, opened[0].0, Done::Opened);
    changed(&mut h, id, Proto::Udp);
    assert_eq!(h.t.forward_change(), None);
}
