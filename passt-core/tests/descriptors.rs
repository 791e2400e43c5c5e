//! Out of descriptors (or socket memory): what the translator does when an
//! `Open` or an `Accept` completes with `EMFILE`, `ENFILE`, `ENOBUFS` or
//! `ENOMEM`. A guest's TCP SYN is answered with a RST (RFC 9293 §3.10.7.1:
//! no connection can be made, so the SYN is refused as if nothing
//! listened), a UDP datagram or an ICMP echo request is dropped and counted
//! (no ICMP error: the path merely lost it, and the next one tries again),
//! an inbound connection stays in the listener's backlog until the next
//! readiness (no `Accept` is asked for again at once: no spin), and
//! nothing is kept for the flow that failed.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use passt_core::addr::SockAddrAny;
use passt_core::config::ports::FwdSpec;
use passt_core::config::Config;
use passt_core::testing::build::{
    icmp4_echo, icmp6_echo, parse_tcp, tcp4, test_config, test_ip6, udp4, udp6, GUEST4, GUEST6,
    GW4, REMOTE4,
};
use passt_core::testing::Harness;
use passt_core::wire::tcp::TcpFlags;
use passt_core::{Completion, Done, Errno, Proto, Ready, SockId, SockOp};

const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

/// The errors that mean "no socket for now".
const OUT_OF: [Errno; 4] = [Errno::EMFILE, Errno::ENFILE, Errno(105), Errno(12)];

fn fail(h: &mut Harness, id: SockId, e: Errno) {
    h.complete(Completion { id, res: Err(e) });
}

fn dual() -> Config {
    Config {
        ip6: Some(test_ip6()),
        ..test_config()
    }
}

#[test]
fn a_syn_whose_socket_cannot_be_made_gets_a_reset_for_each_error() {
    let mut h = Harness::new(test_config());
    for (k, e) in OUT_OF.into_iter().enumerate() {
        let sport = 41000 + k as u16;
        h.guest(&tcp4(GUEST4, sport, REMOTE4, 443).syn().seq(7000).build());
        let id = h.expect_open_id();
        h.expect_no_frame();
        fail(&mut h, id, e);
        assert_eq!(h.expect_op(), SockOp::Close { id });
        let f = h.expect_frame();
        // parse_tcp checks the IPv4 and TCP checksums.
        let r = parse_tcp(&f);
        assert_eq!(
            (r.src, r.sport, r.dst, r.dport),
            (IpAddr::V4(REMOTE4), 443, IpAddr::V4(GUEST4), sport)
        );
        assert_eq!(r.flags, TcpFlags::RST | TcpFlags::ACK, "{e:?}");
        // RFC 9293 §3.10.7.1: SEQ 0, ACK the SYN's sequence number + 1.
        assert_eq!((r.seq, r.ack), (0, 7001), "{e:?}");
        assert!(r.payload.is_empty());
        // The bytes of the TCP header: ports, sequence and acknowledgment
        // numbers, data offset 5 (no options), flags RST|ACK.
        let tcp = &f[14 + 20..];
        assert_eq!(&tcp[0..2], &443u16.to_be_bytes());
        assert_eq!(&tcp[2..4], &sport.to_be_bytes());
        assert_eq!(&tcp[4..8], &0u32.to_be_bytes());
        assert_eq!(&tcp[8..12], &7001u32.to_be_bytes());
        assert_eq!(tcp[12] >> 4, 5);
        assert_eq!(tcp[13], 0x14);
        h.expect_no_op();
        h.expect_no_frame();
    }
    assert_eq!(h.t.tcp_stats().open_failed, OUT_OF.len() as u64);
    assert_eq!(h.t.tcp_flows(), 0);
    // Descriptors back: the same four-tuple connects.
    h.guest(&tcp4(GUEST4, 41000, REMOTE4, 443).syn().seq(9000).build());
    let id = h.expect_open_id();
    h.complete(Completion {
        id,
        res: Ok(Done::Opened),
    });
    h.ready(id, Ready::WRITABLE);
    let sa = parse_tcp(&h.expect_frame());
    assert_eq!((sa.flags, sa.ack), (TcpFlags::SYN | TcpFlags::ACK, 9001));
}

/// The `Open` of a new datagram flow and the `Send` queued behind it.
#[track_caller]
fn expect_open_and_send(h: &mut Harness, proto: Proto) -> SockId {
    let id = match h.expect_op() {
        SockOp::Open { id, spec } => {
            assert_eq!(spec.proto, proto);
            id
        }
        op => panic!("{op:?}"),
    };
    assert!(matches!(h.expect_op(), SockOp::Send { id: s, .. } if s == id));
    id
}

#[test]
fn udp_datagrams_without_a_socket_are_dropped_counted_and_the_next_one_retries() {
    let mut h = Harness::new(dual());
    for (k, e) in OUT_OF.into_iter().enumerate() {
        let sport = 42000 + k as u16;
        let frame = if k % 2 == 0 {
            udp4(GUEST4, sport, REMOTE4, 53, b"query")
        } else {
            udp6(GUEST6, sport, REMOTE6, 53, b"query")
        };
        h.guest(&frame);
        let id = expect_open_and_send(&mut h, Proto::Udp);
        fail(&mut h, id, e);
        // The queued send fails with its socket.
        fail(&mut h, id, Errno::EBADF);
        // Dropped: nothing to the guest.
        h.expect_no_frame();
        h.expect_no_op();
        // The next datagram of that flow tries again.
        h.guest(&frame);
        let again = expect_open_and_send(&mut h, Proto::Udp);
        assert_ne!(again, id);
        fail(&mut h, again, e);
        fail(&mut h, again, Errno::EBADF);
    }
    assert_eq!(h.t.stats().udp.open_failed, 2 * OUT_OF.len() as u64);
    // Nothing left waiting: no flow without a socket.
    assert_eq!(h.t.poll_timeout(), None);
}

#[test]
fn echo_requests_without_a_ping_socket_are_dropped_counted_and_the_next_one_retries() {
    let mut h = Harness::new(dual());
    for (k, e) in OUT_OF.into_iter().enumerate() {
        let frame = if k % 2 == 0 {
            icmp4_echo(GUEST4, REMOTE4, 0x4242, k as u16, b"ping")
        } else {
            icmp6_echo(GUEST6, REMOTE6, 0x4242, k as u16, b"ping")
        };
        h.guest(&frame);
        let id = expect_open_and_send(&mut h, Proto::Icmp);
        fail(&mut h, id, e);
        fail(&mut h, id, Errno::EBADF);
        h.expect_no_frame();
        h.expect_no_op();
        h.guest(&frame);
        let again = expect_open_and_send(&mut h, Proto::Icmp);
        fail(&mut h, again, e);
        fail(&mut h, again, Errno::EBADF);
    }
    let s = h.t.stats();
    assert_eq!(s.icmp.open_failed, 2 * OUT_OF.len() as u64);
    assert_eq!(s.icmp.denied, 0);
    assert_eq!(h.t.poll_timeout(), None);
}

#[test]
fn an_inbound_connection_without_a_descriptor_waits_for_the_next_readiness() {
    let mut c = test_config();
    c.fwd.tcp_in = FwdSpec::parse("8080").unwrap();
    let mut h = Harness::new(c);
    let lid = h.expect_open_id();
    h.expect_no_op();
    h.complete(Completion {
        id: lid,
        res: Ok(Done::Opened),
    });
    for e in OUT_OF {
        h.ready(lid, Ready::READABLE);
        let id = match h.expect_op() {
            SockOp::Accept { listener, id } => {
                assert_eq!(listener, lid);
                id
            }
            op => panic!("{op:?}"),
        };
        fail(&mut h, id, e);
        // No second `Accept` at once (it would fail the same way, in a
        // loop), nothing to the guest.
        h.expect_no_op();
        h.expect_no_frame();
    }
    // A descriptor free again (the executor listens again): accepted, and
    // the guest gets the SYN.
    h.ready(lid, Ready::READABLE);
    let id = match h.expect_op() {
        SockOp::Accept { id, .. } => id,
        op => panic!("{op:?}"),
    };
    h.complete(Completion {
        id,
        res: Ok(Done::Accepted {
            peer: SockAddrAny::new(Ipv4Addr::LOCALHOST, 5555),
            local: SockAddrAny::new(Ipv4Addr::LOCALHOST, 8080),
        }),
    });
    assert!(matches!(h.expect_op(), SockOp::Accept { .. }));
    let syn = parse_tcp(&h.expect_frame());
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(
        (syn.src, syn.sport, syn.dport),
        (IpAddr::V4(GW4), 5555, 8080)
    );
    assert_eq!(h.t.tcp_flows(), 1);
}
