//! The DHCPv6 server (`l2::dhcpv6`) through the Translator: real ISC
//! `dhclient -6` messages from `vectors/dhcpv6.pcap` (SOLICIT, REQUEST,
//! RELEASE, INFORMATION-REQUEST; see the vectors README), as captured or
//! rewritten with the wire builders (checksums recomputed), and every reply
//! checked field by field, for each configuration override that shows in it.

use core::net::Ipv6Addr;

use passt_core::addr::MacAddr;
use passt_core::config::{Config, Ip6Config, Services};
use passt_core::l2::dhcpv6::{ALL_DHCP_RELAY_AGENTS_AND_SERVERS, INFINITY, PREFERENCE};
use passt_core::testing::build::test_config;
use passt_core::testing::pcap::read_pcap;
use passt_core::testing::Harness;
use passt_core::wire::checksum::pseudo_header_v6;
use passt_core::wire::dhcpv6::{
    duid_ll, opt, status, Dhcpv6MsgType, Dhcpv6Options, Dhcpv6Repr, DnsNameList, IaNaRepr,
};
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::ipv6::Ipv6Repr;
use passt_core::wire::udp::UdpRepr;
use passt_core::wire::{frame, ip_proto, WireError};
use passt_core::DropReason;

/// dhclient's MAC address in the capture (host B of the vectors README).
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
/// dhclient's DUID-LLT, from its SOLICIT, REQUEST and RELEASE.
const CLIENT_DUID: [u8; 14] = [0, 1, 0, 1, 0x32, 0x95, 0x0c, 0x64, 2, 0, 0, 0, 0, 0x0b];
/// `dhclient -6 -S` identifies itself with a DUID-LL.
const INFO_CLIENT_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0x0b];
/// dnsmasq's DUID-LLT, the server ID in the captured REQUEST and RELEASE.
const DNSMASQ_DUID: [u8; 14] = [0, 1, 0, 1, 0x32, 0x95, 0x0c, 0x63, 2, 0, 0, 0, 0, 0x0a];
/// dhclient's IAID.
const IAID: u32 = 0x0b;

/// Frame numbers in dhcpv6.pcap.
const SOLICIT: usize = 0;
const REQUEST: usize = 2;
const RELEASE: usize = 4;
const INFORMATION_REQUEST: usize = 6;

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn client_ll() -> Ipv6Addr {
    a6("fe80::ff:fe00:b")
}

fn our_ll() -> Ipv6Addr {
    a6("fe80::1")
}

fn guest6() -> Ipv6Addr {
    a6("2001:db8::10")
}

/// The address dnsmasq leased in the capture, which dhclient asks for.
fn dnsmasq_lease() -> Ipv6Addr {
    a6("2001:db8::1cd1")
}

/// `test_config()` with IPv6 2001:db8::10/64, gateway and our link-local
/// fe80::1, DNS 2001:db8::53, search list example.org.
fn config6() -> Config {
    Config {
        ip6: Some(Ip6Config {
            addr: guest6(),
            prefix_len: 64,
            gateway: our_ll(),
            our_link_local: our_ll(),
            map_host_loopback: None,
            map_guest_addr: None,
            dns: vec![a6("2001:db8::53")],
            dns_forward: None,
            dns_host: None,
        }),
        search: vec!["example.org".into()],
        ..test_config()
    }
}

fn with_ip6(f: impl FnOnce(&mut Ip6Config)) -> Config {
    let mut c = config6();
    f(c.ip6.as_mut().unwrap());
    c
}

fn captured(n: usize) -> Vec<u8> {
    let frames = read_pcap(include_bytes!("vectors/dhcpv6.pcap")).unwrap();
    frames[n].data.clone()
}

fn our_duid(c: &Config) -> [u8; 10] {
    duid_ll(c.our_mac)
}

// ---- rewriting captured messages ----------------------------------------

/// Rebuild a guest frame with its DHCPv6 payload changed by `f`, from
/// `sport` to `dst`; lengths and the UDP checksum are computed anew by
/// `wire::frame::udp6`.
fn rebuild_to(
    frame_bytes: &[u8],
    dst: Option<Ipv6Addr>,
    sport: Option<u16>,
    f: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let (eth, rest) = EthernetRepr::parse(frame_bytes).unwrap();
    let (ip, l4) = Ipv6Repr::parse(rest).unwrap();
    let udp = UdpRepr::parse(l4, None, true).unwrap();
    let mut msg = udp.payload.to_vec();
    f(&mut msg);
    let mut out = vec![0; 14 + 40 + 8 + msg.len()];
    let n = frame::udp6(
        &mut out,
        &eth,
        ip.src,
        sport.unwrap_or(udp.src_port),
        dst.unwrap_or(ip.dst),
        udp.dst_port,
        ip.hop_limit,
        |p| {
            p.get_mut(..msg.len())
                .ok_or(WireError::BufferTooSmall)?
                .copy_from_slice(&msg);
            Ok(msg.len())
        },
    )
    .unwrap();
    assert_eq!(n, out.len());
    out
}

fn rebuild(frame_bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    rebuild_to(frame_bytes, None, None, f)
}

type Options = Vec<(u16, Vec<u8>)>;

/// Rebuild a guest frame with its message type and top-level options
/// changed by `f`.
fn edit(frame_bytes: &[u8], f: impl FnOnce(&mut u8, &mut Options)) -> Vec<u8> {
    rebuild(frame_bytes, |msg| {
        let mut msg_type = msg[0];
        let mut opts: Options = Dhcpv6Options::new(&msg[4..])
            .map(|o| {
                let o = o.unwrap();
                (o.code, o.data.to_vec())
            })
            .collect();
        f(&mut msg_type, &mut opts);
        let mut out = vec![msg_type, msg[1], msg[2], msg[3]];
        for (code, data) in opts {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
        *msg = out;
    })
}

/// Replace the value of option `code`, or append it.
fn set(opts: &mut Options, code: u16, value: &[u8]) {
    match opts.iter_mut().find(|(c, _)| *c == code) {
        Some((_, v)) => *v = value.to_vec(),
        None => opts.push((code, value.to_vec())),
    }
}

fn remove(opts: &mut Options, code: u16) {
    opts.retain(|(c, _)| *c != code);
}

/// An IA_NA value: IAID, T1, T2 0, then an IAADDR per address.
fn ia_na(iaid: u32, addrs: &[Ipv6Addr]) -> Vec<u8> {
    let mut v = iaid.to_be_bytes().to_vec();
    v.extend_from_slice(&[0; 8]);
    for a in addrs {
        v.extend_from_slice(&opt::IAADDR.to_be_bytes());
        v.extend_from_slice(&24u16.to_be_bytes());
        v.extend_from_slice(&a.octets());
        v.extend_from_slice(&[0; 8]);
    }
    v
}

/// The captured REQUEST with our server ID instead of dnsmasq's, as
/// message type `msg_type`.
fn request_as(c: &Config, msg_type: Dhcpv6MsgType) -> Vec<u8> {
    edit(&captured(REQUEST), |t, opts| {
        *t = msg_type.into();
        set(opts, opt::SERVERID, &our_duid(c));
    })
}

/// Offset of top-level option `code` in a DHCPv6 message.
fn find(msg: &[u8], code: u16) -> usize {
    let mut at = 4;
    while u16::from_be_bytes([msg[at], msg[at + 1]]) != code {
        at += 4 + usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
    }
    at
}

// ---- checking replies --------------------------------------------------

/// Run one frame through a fresh translator over `config`.
fn serve(config: Config, f: &[u8]) -> (Harness, Option<Vec<u8>>) {
    let mut h = Harness::new(config);
    h.guest(f);
    let reply = h.to_guest.pop_front();
    h.expect_no_frame();
    (h, reply)
}

/// Check a reply's Ethernet, IPv6 and UDP fields; returns the DHCPv6
/// message.
#[track_caller]
fn dhcpv6_payload(c: &Config, reply: &[u8]) -> Vec<u8> {
    let (eth, rest) = EthernetRepr::parse(reply).unwrap();
    assert_eq!(
        (eth.dst, eth.src, eth.ethertype, eth.tag_count),
        (CLIENT_MAC, c.our_mac, ethertype::IPV6, 0)
    );
    let (ip, l4) = Ipv6Repr::parse(rest).unwrap();
    let our_ll = c.ip6.as_ref().unwrap().our_link_local;
    assert_eq!(
        (ip.src, ip.dst, ip.hop_limit, ip.next_header),
        (our_ll, client_ll(), 255, ip_proto::UDP)
    );
    assert_eq!(usize::from(ip.payload_len), l4.len());
    assert_eq!(ip.fragment, None);
    let pseudo = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::UDP, l4.len() as u32);
    let udp = UdpRepr::parse(l4, Some(pseudo), true).expect("UDP checksum verifies");
    assert_eq!((udp.src_port, udp.dst_port), (547, 546));
    // The message fits the guest's MTU.
    assert!(40 + l4.len() <= usize::from(c.mtu));
    udp.payload.to_vec()
}

/// Top-level option codes, in order.
fn codes(m: &Dhcpv6Repr<'_>) -> Vec<u16> {
    m.options().map(|o| o.code).collect()
}

fn names(m: &Dhcpv6Repr<'_>) -> Vec<String> {
    let mut list: DnsNameList<'_> = m.domain_list().expect("domain list option");
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Some(n) = list.next_name(&mut buf).unwrap() {
        out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    out
}

/// `(address, preferred, valid)` of each IAADDR of an IA_NA.
fn addrs(ia: &IaNaRepr<'_>) -> Vec<(Ipv6Addr, u32, u32)> {
    ia.addresses()
        .map(|a| (a.addr, a.preferred, a.valid))
        .collect()
}

/// Check the common part of a reply: type, transaction ID, identifiers.
#[track_caller]
fn check_ids(c: &Config, m: &Dhcpv6Repr<'_>, t: Dhcpv6MsgType, xid: u32, client: &[u8]) {
    assert_eq!(m.msg_type(), t);
    assert_eq!(m.xid(), xid);
    assert_eq!(m.client_id(), Some(client));
    assert_eq!(m.server_id(), Some(&our_duid(c)[..]));
}

/// Check the one IA_NA holding the guest's address with infinite times.
#[track_caller]
fn check_lease(m: &Dhcpv6Repr<'_>, addr: Ipv6Addr) -> Vec<(Ipv6Addr, u32, u32)> {
    assert_eq!(m.ia_nas().count(), 1);
    let ia = m.ia_na().unwrap();
    assert_eq!((ia.iaid, ia.t1, ia.t2), (IAID, INFINITY, INFINITY));
    assert_eq!(ia.status_code(), None);
    let list = addrs(&ia);
    assert_eq!(list[0], (addr, INFINITY, INFINITY));
    assert_eq!(ia.addresses().next().unwrap().options().count(), 0);
    list
}

#[track_caller]
fn check_config(m: &Dhcpv6Repr<'_>, dns: &[Ipv6Addr], search: &[&str]) {
    assert_eq!(m.dns_servers().collect::<Vec<_>>(), dns);
    assert_eq!(m.option(opt::DNS_SERVERS).is_some(), !dns.is_empty());
    if search.is_empty() {
        assert_eq!(m.option(opt::DOMAIN_LIST), None);
    } else {
        assert_eq!(names(m), search);
    }
}

#[track_caller]
fn check_status(m: &Dhcpv6Repr<'_>, code: u16, text: &str) {
    let s = m.status_code().expect("status code");
    assert_eq!((s.code, s.message), (code, text.as_bytes()));
}

// ---- the exchanges ---------------------------------------------------------

#[test]
fn captured_solicit_gets_an_advertise() {
    let c = config6();
    let (h, reply) = serve(c.clone(), &captured(SOLICIT));
    let payload = dhcpv6_payload(&c, &reply.expect("an ADVERTISE"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Advertise, 0x48_1d90, &CLIENT_DUID);
    assert_eq!(check_lease(&m, guest6()).len(), 1);
    assert_eq!(m.option(opt::PREFERENCE), Some(&[PREFERENCE][..]));
    assert!(!m.rapid_commit());
    assert_eq!(m.status_code(), None);
    check_config(&m, &[a6("2001:db8::53")], &["example.org"]);
    assert_eq!(
        codes(&m),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::IA_NA,
            opt::PREFERENCE,
            opt::DNS_SERVERS,
            opt::DOMAIN_LIST
        ]
    );
    // The whole message, byte for byte.
    let mut expect = vec![2, 0x48, 0x1d, 0x90, 0, 1, 0, 14];
    expect.extend_from_slice(&CLIENT_DUID);
    expect.extend_from_slice(&[0, 2, 0, 10, 0, 3, 0, 1, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);
    expect.extend_from_slice(&[0, 3, 0, 40, 0, 0, 0, 0x0b]);
    expect.extend_from_slice(&[0xff; 8]);
    expect.extend_from_slice(&[0, 5, 0, 24]);
    expect.extend_from_slice(&guest6().octets());
    expect.extend_from_slice(&[0xff; 8]);
    expect.extend_from_slice(&[0, 7, 0, 1, 255, 0, 23, 0, 16]);
    expect.extend_from_slice(&a6("2001:db8::53").octets());
    expect.extend_from_slice(&[0, 24, 0, 13]);
    expect.extend_from_slice(b"\x07example\x03org\x00");
    assert_eq!(payload, expect);

    let s = h.t.stats();
    assert_eq!((s.dhcpv6_replies, s.frames_in, s.frames_out), (1, 1, 1));
    assert_eq!(h.t.guest_mac(), Some(CLIENT_MAC));
}

#[test]
fn request_with_our_server_id_gets_the_address() {
    let c = config6();
    let (_, reply) = serve(c.clone(), &request_as(&c, Dhcpv6MsgType::Request));
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x65_0613, &CLIENT_DUID);
    // Ours with infinite lifetimes; the one dhclient asked for (dnsmasq's
    // earlier lease) returned with lifetimes 0.
    assert_eq!(
        check_lease(&m, guest6()),
        [(guest6(), INFINITY, INFINITY), (dnsmasq_lease(), 0, 0)]
    );
    assert_eq!(m.option(opt::PREFERENCE), None);
    assert!(!m.rapid_commit());
    assert_eq!(m.status_code(), None);
    check_config(&m, &[a6("2001:db8::53")], &["example.org"]);
    assert_eq!(
        codes(&m),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::IA_NA,
            opt::DNS_SERVERS,
            opt::DOMAIN_LIST
        ]
    );
}

#[test]
fn request_asking_for_our_address_gets_it_alone() {
    let c = config6();
    let f = edit(&captured(REQUEST), |_, opts| {
        set(opts, opt::SERVERID, &our_duid(&c));
        set(opts, opt::IA_NA, &ia_na(IAID, &[guest6()]));
    });
    let (_, reply) = serve(c.clone(), &f);
    let payload = dhcpv6_payload(&c, &reply.unwrap());
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    assert_eq!(check_lease(&m, guest6()).len(), 1);
}

#[test]
fn captured_request_and_release_for_another_server_are_ignored() {
    // Both carry dnsmasq's server ID (RFC 8415 §16.4, §16.9).
    let c = config6();
    let mut h = Harness::new(c.clone());
    h.guest_batch(&[&captured(REQUEST), &captured(RELEASE)]);
    h.expect_no_frame();
    // Neither with it, nor without a server ID at all.
    for t in [
        Dhcpv6MsgType::Request,
        Dhcpv6MsgType::Renew,
        Dhcpv6MsgType::Release,
        Dhcpv6MsgType::Decline,
    ] {
        h.guest(&edit(&captured(REQUEST), |m, _| *m = t.into()));
        h.guest(&edit(&captured(REQUEST), |m, opts| {
            *m = t.into();
            remove(opts, opt::SERVERID);
        }));
    }
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.dhcpv6_replies, 0);
    assert_eq!(s.drops.iter().sum::<u64>(), 0, "ignored, not dropped");
}

#[test]
fn solicit_with_rapid_commit_gets_a_committed_reply() {
    let c = config6();
    let f = edit(&captured(SOLICIT), |_, opts| {
        set(opts, opt::RAPID_COMMIT, &[])
    });
    let (h, reply) = serve(c.clone(), &f);
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x48_1d90, &CLIENT_DUID);
    assert!(m.rapid_commit());
    assert_eq!(check_lease(&m, guest6()).len(), 1);
    assert_eq!(m.option(opt::PREFERENCE), None);
    check_config(&m, &[a6("2001:db8::53")], &["example.org"]);
    assert_eq!(
        codes(&m),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::RAPID_COMMIT,
            opt::IA_NA,
            opt::DNS_SERVERS,
            opt::DOMAIN_LIST
        ]
    );
    assert_eq!(h.t.stats().dhcpv6_replies, 1);
}

#[test]
fn renew_and_rebind_get_the_address() {
    let c = config6();
    let (_, reply) = serve(c.clone(), &request_as(&c, Dhcpv6MsgType::Renew));
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY to RENEW"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x65_0613, &CLIENT_DUID);
    assert_eq!(
        check_lease(&m, guest6()),
        [(guest6(), INFINITY, INFINITY), (dnsmasq_lease(), 0, 0)]
    );
    check_config(&m, &[a6("2001:db8::53")], &["example.org"]);

    // REBIND goes to any server: no server ID (RFC 8415 §16.7).
    let rebind = edit(&captured(REQUEST), |t, opts| {
        *t = Dhcpv6MsgType::Rebind.into();
        remove(opts, opt::SERVERID);
    });
    let (_, reply) = serve(c.clone(), &rebind);
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY to REBIND"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x65_0613, &CLIENT_DUID);
    assert_eq!(check_lease(&m, guest6()).len(), 2);
    check_config(&m, &[a6("2001:db8::53")], &["example.org"]);

    // A REBIND with a server ID, even ours, is discarded.
    let (_, reply) = serve(c.clone(), &request_as(&c, Dhcpv6MsgType::Rebind));
    assert_eq!(reply, None);
}

#[test]
fn confirm_on_and_off_link() {
    let c = config6();
    let confirm = |addrs: &[Ipv6Addr]| {
        edit(&captured(REQUEST), |t, opts| {
            *t = Dhcpv6MsgType::Confirm.into();
            remove(opts, opt::SERVERID);
            set(opts, opt::IA_NA, &ia_na(IAID, addrs));
        })
    };
    // dhclient's address from dnsmasq is on 2001:db8::/64 as well.
    for on_link in [&[dnsmasq_lease()][..], &[guest6(), dnsmasq_lease()]] {
        let (_, reply) = serve(c.clone(), &confirm(on_link));
        let payload = dhcpv6_payload(&c, &reply.expect("a REPLY to CONFIRM"));
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x65_0613, &CLIENT_DUID);
        check_status(&m, status::SUCCESS, "");
        assert_eq!(codes(&m), [opt::CLIENTID, opt::SERVERID, opt::STATUS_CODE]);
    }
    for off_link in [
        &[a6("2001:db8:1::5")][..],
        &[guest6(), a6("2001:db8:0:1::10")],
    ] {
        let (_, reply) = serve(c.clone(), &confirm(off_link));
        let payload = dhcpv6_payload(&c, &reply.expect("a REPLY to CONFIRM"));
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x65_0613, &CLIENT_DUID);
        check_status(&m, status::NOT_ON_LINK, "address not on link");
        assert_eq!(m.ia_na(), None);
        assert_eq!(codes(&m), [opt::CLIENTID, opt::SERVERID, opt::STATUS_CODE]);
    }
    // The prefix is the configured one: a /48 takes 2001:db8:0:1::10 in.
    let wide = with_ip6(|ip6| ip6.prefix_len = 48);
    let (_, reply) = serve(wide.clone(), &confirm(&[a6("2001:db8:0:1::10")]));
    let payload = dhcpv6_payload(&wide, &reply.unwrap());
    check_status(&Dhcpv6Repr::parse(&payload).unwrap(), status::SUCCESS, "");
    // No addresses: no reply (RFC 8415 §18.3.3); with a server ID: discarded.
    assert_eq!(serve(c.clone(), &confirm(&[])).1, None);
    let with_server_id = edit(&request_as(&c, Dhcpv6MsgType::Confirm), |_, _| {});
    assert_eq!(serve(c.clone(), &with_server_id).1, None);
}

#[test]
fn release_and_decline_get_success() {
    let c = config6();
    let release = edit(&captured(RELEASE), |_, opts| {
        set(opts, opt::SERVERID, &our_duid(&c));
    });
    let (_, reply) = serve(c.clone(), &release);
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY to RELEASE"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0xd8_e1b8, &CLIENT_DUID);
    check_status(&m, status::SUCCESS, "");
    assert_eq!(codes(&m), [opt::CLIENTID, opt::SERVERID, opt::STATUS_CODE]);

    let (_, reply) = serve(c.clone(), &request_as(&c, Dhcpv6MsgType::Decline));
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY to DECLINE"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x65_0613, &CLIENT_DUID);
    check_status(&m, status::SUCCESS, "");
    assert_eq!(codes(&m), [opt::CLIENTID, opt::SERVERID, opt::STATUS_CODE]);
}

#[test]
fn captured_information_request_gets_configuration_only() {
    let c = config6();
    let (h, reply) = serve(c.clone(), &captured(INFORMATION_REQUEST));
    let payload = dhcpv6_payload(&c, &reply.expect("a REPLY"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Reply, 0x7b_23c6, &INFO_CLIENT_DUID);
    assert_eq!(m.ia_na(), None);
    assert_eq!(m.status_code(), None);
    check_config(&m, &[a6("2001:db8::53")], &["example.org"]);
    assert_eq!(
        codes(&m),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::DNS_SERVERS,
            opt::DOMAIN_LIST
        ]
    );
    assert_eq!(h.t.stats().dhcpv6_replies, 1);

    // Without a client ID (optional here, RFC 8415 §16.12), with our server
    // ID: still answered, nothing echoed.
    let anonymous = edit(&captured(INFORMATION_REQUEST), |_, opts| {
        remove(opts, opt::CLIENTID);
        set(opts, opt::SERVERID, &our_duid(&c));
    });
    let (_, reply) = serve(c.clone(), &anonymous);
    let payload = dhcpv6_payload(&c, &reply.unwrap());
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    assert_eq!(m.client_id(), None);
    assert_eq!(
        codes(&m),
        [opt::SERVERID, opt::DNS_SERVERS, opt::DOMAIN_LIST]
    );

    // Asking for the Information Refresh Time (RFC 8415 §21.23) gets it,
    // infinite, after the configuration; a SOLICIT asking for it does not
    // (it belongs in answers to INFORMATION-REQUEST only).
    let irt = edit(&captured(INFORMATION_REQUEST), |_, opts| {
        set(opts, opt::ORO, &[0, 23, 0, 24, 0, 32]);
    });
    let (_, reply) = serve(c.clone(), &irt);
    let payload = dhcpv6_payload(&c, &reply.unwrap());
    let at = find(&payload, opt::INFORMATION_REFRESH_TIME);
    assert_eq!(
        &payload[at..],
        &[0, 32, 0, 4, 0xff, 0xff, 0xff, 0xff],
        "the last option"
    );
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    assert_eq!(
        codes(&m),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::DNS_SERVERS,
            opt::DOMAIN_LIST,
            opt::INFORMATION_REFRESH_TIME
        ]
    );
    let solicit = edit(&captured(SOLICIT), |_, opts| {
        set(opts, opt::ORO, &[0, 23, 0, 24, 0, 32]);
    });
    let (_, reply) = serve(c.clone(), &solicit);
    let payload = dhcpv6_payload(&c, &reply.unwrap());
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    assert_eq!(m.option(opt::INFORMATION_REFRESH_TIME), None);

    // Another server's ID, or an IA option: discarded (RFC 8415 §16.12).
    let others = edit(&captured(INFORMATION_REQUEST), |_, opts| {
        set(opts, opt::SERVERID, &DNSMASQ_DUID);
    });
    assert_eq!(serve(c.clone(), &others).1, None);
    for code in [opt::IA_NA, opt::IA_TA, opt::IA_PD] {
        let with_ia = edit(&captured(INFORMATION_REQUEST), |_, opts| {
            set(opts, code, &ia_na(1, &[]));
        });
        assert_eq!(serve(c.clone(), &with_ia).1, None, "option {code}");
    }
}

#[test]
fn more_identity_associations_than_addresses() {
    let c = config6();
    // A second IA_NA gets NoAddrsAvail inside (RFC 8415 §18.3.2).
    let f = edit(&captured(SOLICIT), |_, opts| {
        opts.push((opt::IA_NA, ia_na(0x0c, &[])));
    });
    let (_, reply) = serve(c.clone(), &f);
    let payload = dhcpv6_payload(&c, &reply.unwrap());
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    let ias: Vec<_> = m.ia_nas().collect();
    assert_eq!(ias.len(), 2);
    assert_eq!(addrs(&ias[0]), [(guest6(), INFINITY, INFINITY)]);
    assert_eq!(
        (ias[1].iaid, ias[1].t1, ias[1].t2),
        (0x0c, INFINITY, INFINITY)
    );
    assert_eq!(ias[1].addresses().count(), 0);
    let s = ias[1].status_code().unwrap();
    assert_eq!(
        (s.code, s.message),
        (status::NO_ADDRS_AVAIL, &b"no address available"[..])
    );

    // No IA_NA at all: a top-level NoAddrsAvail (RFC 8415 §18.3.1), still
    // with the configuration; Rapid Commit then commits nothing.
    for rapid in [false, true] {
        let f = edit(&captured(SOLICIT), |_, opts| {
            remove(opts, opt::IA_NA);
            if rapid {
                set(opts, opt::RAPID_COMMIT, &[]);
            }
        });
        let (_, reply) = serve(c.clone(), &f);
        let payload = dhcpv6_payload(&c, &reply.unwrap());
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_ids(&c, &m, Dhcpv6MsgType::Advertise, 0x48_1d90, &CLIENT_DUID);
        assert!(!m.rapid_commit());
        assert_eq!(m.ia_na(), None);
        check_status(&m, status::NO_ADDRS_AVAIL, "no address available");
        check_config(&m, &[a6("2001:db8::53")], &["example.org"]);
    }
}

// ---- what is not answered ----------------------------------------------

#[test]
fn messages_not_for_a_server_are_ignored() {
    let c = config6();
    let solicit = captured(SOLICIT);
    let ignored = [
        // Without a client ID (RFC 8415 §16.2, §16.4).
        edit(&solicit, |_, opts| remove(opts, opt::CLIENTID)),
        edit(&request_as(&c, Dhcpv6MsgType::Request), |_, opts| {
            remove(opts, opt::CLIENTID)
        }),
        // A SOLICIT with a server ID, ours included (§16.2).
        edit(&solicit, |_, opts| set(opts, opt::SERVERID, &our_duid(&c))),
        // Messages only servers send, RECONFIGURE, and an unknown type.
        edit(&solicit, |t, _| *t = 2),
        edit(&solicit, |t, _| *t = 7),
        edit(&solicit, |t, _| *t = 10),
        edit(&solicit, |t, _| *t = 42),
        // Relay-forward and relay-reply (§9): nothing relays here.
        rebuild(&solicit, |m| m[0] = 12),
        rebuild(&solicit, |m| m[0] = 13),
        // Not to ff02::1:2 nor to our link-local address.
        rebuild_to(&solicit, Some(a6("ff02::1")), None, |_| {}),
        rebuild_to(&solicit, Some(a6("fe80::2")), None, |_| {}),
        rebuild_to(&solicit, Some(guest6()), None, |_| {}),
        // Not from the client port.
        rebuild_to(&solicit, None, Some(5460), |_| {}),
    ];
    let mut h = Harness::new(c.clone());
    for f in &ignored {
        h.guest(f);
        h.expect_no_frame();
    }
    let s = h.t.stats();
    assert_eq!(s.dhcpv6_replies, 0);
    assert_eq!(s.drops.iter().sum::<u64>(), 0, "ignored, not dropped");

    // Unicast to our link-local address is served (a server that never
    // sent Server Unicast, RFC 8415 §21.12, could insist on multicast; a
    // single-server link has no reason to).
    let unicast = rebuild_to(&solicit, Some(our_ll()), None, |_| {});
    h.guest(&unicast);
    let payload = dhcpv6_payload(&c, &h.expect_frame());
    assert_eq!(
        Dhcpv6Repr::parse(&payload).unwrap().msg_type(),
        Dhcpv6MsgType::Advertise
    );
    assert_eq!(
        ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
        a6("ff02::1:2"),
        "what the captured messages are sent to"
    );
}

#[test]
fn malformed_messages_are_counted_and_the_next_one_served() {
    let c = config6();
    let solicit = captured(SOLICIT);
    let set_len = |m: &mut Vec<u8>, at: usize, len: u16| {
        m[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
    };
    // The last option (IA_NA) one byte longer than the message.
    let past_end = rebuild(&solicit, |m| {
        let at = find(m, opt::IA_NA);
        set_len(m, at, 13);
    });
    // IA_NA cut to 8 bytes, shorter than its fixed fields.
    let short_ia = rebuild(&solicit, |m| {
        let at = find(m, opt::IA_NA);
        set_len(m, at, 8);
        m.truncate(at + 4 + 8);
    });
    // IA_NA of the REQUEST cut inside its IAADDR.
    let cut_iaaddr = rebuild(&request_as(&c, Dhcpv6MsgType::Request), |m| {
        let at = find(m, opt::IA_NA);
        set_len(m, at, 36);
        m.truncate(at + 4 + 36);
    });
    // Shorter than the message header.
    let no_header = rebuild(&solicit, |m| m.truncate(3));
    // More options than the parser walks.
    let too_many = rebuild(&solicit, |m| {
        for _ in 0..600 {
            m.extend_from_slice(&[0, 99, 0, 0]);
        }
    });

    let mut h = Harness::new(c.clone());
    h.guest_batch(&[
        &past_end,
        &short_ia,
        &cut_iaaddr,
        &no_header,
        &too_many,
        &solicit,
    ]);
    let payload = dhcpv6_payload(&c, &h.expect_frame());
    h.expect_no_frame();
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    check_ids(&c, &m, Dhcpv6MsgType::Advertise, 0x48_1d90, &CLIENT_DUID);
    let s = h.t.stats();
    assert_eq!(s.dropped(DropReason::Malformed), 4);
    assert_eq!(s.dropped(DropReason::TooMany), 1);
    assert_eq!((s.dhcpv6_replies, s.frames_in, s.frames_out), (1, 6, 1));
}

// ---- configuration overrides -------------------------------------------

/// The ADVERTISE to the captured SOLICIT and the REPLY to the captured
/// INFORMATION-REQUEST under `c`.
fn advertise_and_info(c: &Config) -> (Vec<u8>, Vec<u8>) {
    let (_, adv) = serve(c.clone(), &captured(SOLICIT));
    let (_, info) = serve(c.clone(), &captured(INFORMATION_REQUEST));
    (
        dhcpv6_payload(c, &adv.expect("an ADVERTISE")),
        dhcpv6_payload(c, &info.expect("a REPLY")),
    )
}

#[test]
fn configured_address_is_the_one_handed_out() {
    let addr = a6("2001:db8:5::77");
    let c = with_ip6(|ip6| ip6.addr = addr);
    let (adv, _) = advertise_and_info(&c);
    let m = Dhcpv6Repr::parse(&adv).unwrap();
    assert_eq!(check_lease(&m, addr).len(), 1);
    let (_, reply) = serve(c.clone(), &request_as(&c, Dhcpv6MsgType::Request));
    let payload = dhcpv6_payload(&c, &reply.unwrap());
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    assert_eq!(
        check_lease(&m, addr),
        [(addr, INFINITY, INFINITY), (dnsmasq_lease(), 0, 0)]
    );
}

#[test]
fn configured_dns_servers_and_search_list() {
    let dns = [a6("2001:db8::53"), a6("2001:db8::54"), a6("2001:db8:1::1")];
    let mut c = with_ip6(|ip6| ip6.dns = dns.to_vec());
    c.search = vec!["example.org".into(), "test.example.".into(), "a.b.c".into()];
    let (adv, info) = advertise_and_info(&c);
    for payload in [adv, info] {
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_config(&m, &dns, &["example.org", "test.example", "a.b.c"]);
        assert_eq!(
            m.option(opt::DOMAIN_LIST).unwrap(),
            b"\x07example\x03org\x00\x04test\x07example\x00\x01a\x01b\x01c\x00"
        );
    }

    // Empty lists: no options.
    let mut c = with_ip6(|ip6| ip6.dns.clear());
    c.search.clear();
    let (adv, info) = advertise_and_info(&c);
    for payload in [adv, info] {
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_config(&m, &[], &[]);
    }
}

#[test]
fn no_dhcp_dns_and_no_dhcp_search() {
    let mut c = config6();
    c.services.remove(Services::DHCP_DNS);
    let (adv, info) = advertise_and_info(&c);
    for payload in [adv, info] {
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_config(&m, &[], &["example.org"]);
    }
    assert_eq!(
        codes(&Dhcpv6Repr::parse(&advertise_and_info(&c).0).unwrap()),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::IA_NA,
            opt::PREFERENCE,
            opt::DOMAIN_LIST
        ]
    );

    let mut c = config6();
    c.services.remove(Services::DHCP_SEARCH);
    let (adv, info) = advertise_and_info(&c);
    for payload in [adv, info] {
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        check_config(&m, &[a6("2001:db8::53")], &[]);
    }

    // Both off: the address is still handed out.
    let mut c = config6();
    c.services
        .remove(Services::DHCP_DNS | Services::DHCP_SEARCH);
    let (adv, info) = advertise_and_info(&c);
    let m = Dhcpv6Repr::parse(&adv).unwrap();
    assert_eq!(check_lease(&m, guest6()).len(), 1);
    check_config(&m, &[], &[]);
    let m = Dhcpv6Repr::parse(&info).unwrap();
    assert_eq!(codes(&m), [opt::CLIENTID, opt::SERVERID]);
}

#[test]
fn no_dhcpv6_and_no_ipv6_mean_no_reply() {
    let mut c = config6();
    c.services.remove(Services::DHCPV6);
    let mut h = Harness::new(c);
    h.guest_batch(&[&captured(SOLICIT), &captured(INFORMATION_REQUEST)]);
    h.expect_no_frame();
    assert_eq!(h.t.stats().dhcpv6_replies, 0);

    let c = Config {
        ip6: None,
        ..config6()
    };
    let mut h = Harness::new(c);
    h.guest_batch(&[&captured(SOLICIT), &captured(INFORMATION_REQUEST)]);
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.dhcpv6_replies, 0);
    assert_eq!(s.dropped(DropReason::FamilyDisabled), 2);
}

#[test]
fn our_mac_and_link_local_address_shape_the_reply() {
    let mut c = with_ip6(|ip6| ip6.our_link_local = a6("fe80::2"));
    c.our_mac = MacAddr([2, 0, 0, 0, 0, 0xaa]);
    let (adv, info) = advertise_and_info(&c);
    for payload in [adv, info] {
        let m = Dhcpv6Repr::parse(&payload).unwrap();
        assert_eq!(m.server_id(), Some(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa][..]));
    }
    // Unicast to the new link-local address is taken, to the old one not.
    let to_new = rebuild_to(&captured(SOLICIT), Some(a6("fe80::2")), None, |_| {});
    let (_, reply) = serve(c.clone(), &to_new);
    dhcpv6_payload(&c, &reply.unwrap());
    let to_old = rebuild_to(&captured(SOLICIT), Some(our_ll()), None, |_| {});
    assert_eq!(serve(c.clone(), &to_old).1, None);
    // A REQUEST must now name the new DUID; the default one is foreign.
    assert_eq!(
        serve(c.clone(), &request_as(&config6(), Dhcpv6MsgType::Request)).1,
        None
    );
    let (_, reply) = serve(c.clone(), &request_as(&c, Dhcpv6MsgType::Request));
    dhcpv6_payload(&c, &reply.unwrap());
}

/// `--fqdn`: the Client FQDN option (39, RFC 4704 §4.1) after the DNS
/// servers, flags 0 (no DNS update by us), the name in DNS wire format.
#[test]
fn fqdn_is_sent_as_client_fqdn_option_39() {
    let mut c = config6();
    c.fqdn = Some("vm1.example.org".into());
    let (_, reply) = serve(c.clone(), &captured(SOLICIT));
    let payload = dhcpv6_payload(&c, &reply.expect("an ADVERTISE"));
    let m = Dhcpv6Repr::parse(&payload).unwrap();
    assert_eq!(
        codes(&m),
        [
            opt::CLIENTID,
            opt::SERVERID,
            opt::IA_NA,
            opt::PREFERENCE,
            opt::DNS_SERVERS,
            opt::CLIENT_FQDN,
            opt::DOMAIN_LIST
        ]
    );
    assert_eq!(opt::CLIENT_FQDN, 39);
    let at = find(&payload, 39);
    assert_eq!(
        &payload[at..at + 4 + 18],
        b"\x00\x27\x00\x12\x00\x03vm1\x07example\x03org\x00"
    );
    // Without --fqdn, none.
    let (_, reply) = serve(config6(), &captured(SOLICIT));
    let payload = dhcpv6_payload(&config6(), &reply.unwrap());
    assert_eq!(Dhcpv6Repr::parse(&payload).unwrap().option(39), None);
}
