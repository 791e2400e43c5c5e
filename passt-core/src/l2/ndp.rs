//! Neighbour discovery and router advertisements toward the guest
//! (RFC 4861, RFC 4862, RFC 8106): we are the guest's only neighbour and its
//! router, and we tell it how to configure IPv6.
//!
//! # Theory of operation
//!
//! The guest's link has two stations, the guest and us. Every address the
//! guest may want to reach (its default router, any remote host, even an
//! address inside its own /64 that is not its own) is reached through our
//! MAC address, so every neighbour solicitation is answered with our MAC,
//! and router advertisements give the guest a prefix for stateless address
//! autoconfiguration, a default route, the link MTU and its resolvers.
//!
//! Every message from the guest is first checked as RFC 4861 §6.1.1 (router
//! solicitations) and §7.1.1 (neighbour solicitations) require, with
//! [`validate`]: hop limit 255, the address and option rules that depend on
//! the IPv6 header. The rest of those checks (ICMP code 0, ICMP length, no
//! option of length zero, well-formed known options) were done when the
//! translator parsed the message ([`NdpRepr`]): a non-zero code does not
//! even reach this module, and option errors are counted by the translator.
//! A message failing [`validate`] is [`Outcome::Dropped`] with
//! [`DropReason::Malformed`], whatever the service flags say.
//!
//! # Neighbour solicitations (RFC 4861 §7.2.3, §7.2.4)
//!
//! A solicitation for any target is answered by a neighbour advertisement
//! with flags Router, Solicited and Override set, the target as asked, our
//! MAC as Target Link-Layer Address, sent from the target address itself (as
//! a router answering for an address it owns) to the solicitation's source,
//! hop limit 255. The Ethernet destination is the Source Link-Layer Address
//! option when the solicitation has one, else the frame's source MAC; VLAN
//! tags are mirrored. Not answered, ever:
//!
//! - duplicate address detection probes (source `::`, RFC 4862 §5.4.2): an
//!   answer would tell the guest its tentative address is taken
//!   (RFC 4862 §5.4.3);
//! - solicitations for the guest's configured address (`ip6.addr`) or for
//!   the solicitation's own source address: those are the guest's, not ours;
//! - targets that are the unspecified or loopback address, and
//!   solicitations from a multicast source: nothing to answer for, nowhere
//!   to answer to.
//!
//! # Router advertisements (RFC 4861 §4.2, §6.2)
//!
//! Every advertisement has the same contents, chosen as the original passt
//! does where it makes a choice:
//!
//! - Cur Hop Limit 255, Router Lifetime 65535 s (the maximum, RFC 8319 §4),
//!   Reachable Time and Retrans Timer 0 (unspecified);
//! - M and O flags set while the DHCPv6 service is on (the guest then asks
//!   DHCPv6 for an address and for its resolvers), both clear otherwise. The
//!   original always sets M and never O; with DHCPv6 off, M would send the
//!   guest to a server that does not answer;
//! - Source Link-Layer Address (our MAC), MTU (`config.mtu`, RFC 4861
//!   §4.6.4; none with `-m 0`, `config.assign_mtu` off);
//! - Prefix Information for the /64 holding `ip6.addr`, with L (on-link) and
//!   A (autonomous, RFC 4862 §5.5.3) set and infinite valid and preferred
//!   lifetimes, as the original. The prefix is always a /64 whatever
//!   `ip6.prefix_len` says: stateless autoconfiguration over Ethernet needs a
//!   64-bit interface identifier (RFC 4862 §5.5.3 (d), RFC 2464 §4);
//! - RDNSS with `ip6.dns` (RFC 8106 §5.1), unless [`Services::DHCP_DNS`] is
//!   off or the list is empty; DNSSL with `config.search` (RFC 8106 §5.2),
//!   unless [`Services::DHCP_SEARCH`] is off or the list is empty (the
//!   original only sends DNSSL along with RDNSS; here the two are
//!   independent, as the two options are). Both with infinite lifetime, as
//!   the original.
//!
//! The whole advertisement is kept within the link MTU and the tx slot:
//! resolvers, then search domains, are included in order for as long as
//! they fit (at least three resolvers and a few search domains always fit
//! the IPv6 minimum MTU of 1280). A name that is not a valid DNS name is
//! skipped.
//!
//! Advertisements are multicast, from `ip6.our_link_local` to the all-nodes
//! address ff02::1 (Ethernet 33:33:00:00:00:01), hop limit 255, solicited
//! ones included: that is "the usual case" of RFC 4861 §6.2.6, it works for
//! solicitations from `::`, and it lets one rate limit and one timer serve
//! both kinds (the original unicasts solicited ones to the solicitor; on a
//! link with a single host the guest receives the same message either way).
//!
//! No advertisement is ever sent while IPv6 is off (`config.ip6` is `None`),
//! [`Services::NDP`] is off (nothing NDP is answered then) or
//! [`Services::RA`] is off.
//!
//! # Timing (RFC 4861 §6.2.4, §6.2.6)
//!
//! The guest's interface "becomes an advertising interface" when the guest
//! is known: at creation if the configuration names the guest's MAC (pasta
//! creates the tap with it), otherwise at the first NDP message from the
//! guest (its first duplicate address detection probe, as a rule). From then:
//!
//! - an advertisement is due at once;
//! - after each of the first [`MAX_INITIAL_RTR_ADVERTISEMENTS`]
//!   advertisements but the last, the next one follows after
//!   [`MAX_INITIAL_RTR_ADVERT_INTERVAL`] (the randomised interval is always
//!   longer, so it is always cut to that): three advertisements at 0, 16 and
//!   32 seconds;
//! - after that, every [`MIN_RTR_ADV_INTERVAL`] to [`MAX_RTR_ADV_INTERVAL`]
//!   (200 to 600 seconds, the original's choice and the defaults of RFC 4861
//!   §6.2.1), millisecond jitter drawn from a hash of our MAC address, the
//!   guest's address and the number of advertisements sent: deterministic,
//!   with no random number generator and no clock read;
//! - a router solicitation is answered at once (the RFC allows a random
//!   delay of 0 to `MAX_RA_DELAY_TIME`; we are the only router on the link,
//!   so the delay is 0) unless the last advertisement went out less than
//!   [`MIN_DELAY_BETWEEN_RAS`] ago: then it is answered by the advertisement
//!   sent through the timer at that limit, never dropped. Solicitations
//!   arriving meanwhile share it. An answered solicitation resets the timer
//!   as if an unsolicited advertisement had just been sent, and counts among
//!   the initial ones.
//!
//! An advertisement that finds the tx ring full is lost; the schedule goes
//! on as if it had been sent, so that [`Ndp::poll_timeout`] never stays in
//! the past. A solicitation answered at once that finds the ring full is
//! [`Outcome::Dropped`] with [`DropReason::TxFull`] instead.
//!
//! # Memory
//!
//! Fixed state of a few words; replies are written in place into the tx
//! slot, the search list is encoded through a 2 KiB stack buffer. Nothing is
//! allocated after [`Ndp::new`].

use core::net::Ipv6Addr;
use core::time::Duration;

use crate::addr::MacAddr;
use crate::buf::{TxRing, TxStorage};
use crate::config::{Config, Ip6Config, Services};
use crate::contract::cx::Cx;
use crate::contract::DropReason;
use crate::l2::Outcome;
use crate::time::Instant;
use crate::wire::ethernet::{ethertype, EthernetRepr, VlanTag, MAX_TAGS};
use crate::wire::frame;
use crate::wire::ipv6::{Ipv6Repr, HEADER_LEN as IPV6_HEADER_LEN};
use crate::wire::ndp::{
    option_kind, validate, NdpRepr, NdpWriter, RouterAdvertSpec, NDP_HOP_LIMIT,
};
use crate::wire::{Result, WireError};

/// Advertisements sent at short intervals when advertising starts
/// (RFC 4861 §10).
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;

/// Longest interval between the initial advertisements (RFC 4861 §10).
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);

/// Shortest time between two multicast advertisements (RFC 4861 §10).
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);

/// Shortest interval between periodic advertisements (RFC 4861 §6.2.1:
/// a third of [`MAX_RTR_ADV_INTERVAL`]).
pub const MIN_RTR_ADV_INTERVAL: Duration = Duration::from_secs(200);

/// Longest interval between periodic advertisements (RFC 4861 §6.2.1
/// default).
pub const MAX_RTR_ADV_INTERVAL: Duration = Duration::from_secs(600);

/// Router Lifetime advertised, seconds: the largest the field holds
/// (RFC 8319 §4 lifts the 9000-second limit of RFC 4861 §6.2.1).
pub const ROUTER_LIFETIME: u16 = 65535;

/// Cur Hop Limit advertised, as the original passt does.
pub const CUR_HOP_LIMIT: u8 = 255;

/// Lifetime of the prefix and of the DNS options: infinity (all ones,
/// RFC 4861 §4.6.2, RFC 8106 §5.1).
pub const INFINITE_LIFETIME: u32 = u32::MAX;

/// Length of the advertised prefix: a /64 for SLAAC (RFC 4862 §5.5.3).
const SLAAC_PREFIX_LEN: u8 = 64;

/// The all-nodes multicast address (RFC 4291 §2.7.1).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Largest option: 255 units of 8 octets (RFC 4861 §4.6).
const MAX_OPTION_LEN: usize = 255 * 8;

/// The NDP responder's state.
#[derive(Debug)]
pub struct Ndp {
    /// Whether router advertisements are sent at all: IPv6 on, NDP and RA
    /// services on.
    advertise: bool,
    /// Seed of the interval jitter, from the configuration.
    seed: u64,
    /// Multicast advertisements sent so far (saturating).
    sent: u32,
    /// When the last advertisement went out.
    last_ra: Option<Instant>,
    /// When the next unsolicited advertisement is due; `None` until the
    /// guest is known.
    next_ra: Option<Instant>,
    /// A solicitation waits for [`MIN_DELAY_BETWEEN_RAS`] to pass.
    solicited: bool,
}

impl Ndp {
    /// A responder for `config`, started at `now`.
    pub fn new(config: &Config, now: Instant) -> Self {
        let advertise =
            config.ip6.is_some() && config.services.contains(Services::NDP | Services::RA);
        let mut seed = 0xcbf2_9ce4_8422_2325_u64;
        let addr = config.ip6.as_ref().map(|ip6| ip6.addr.octets());
        for b in config.our_mac.0.iter().chain(addr.iter().flatten()) {
            seed = (seed ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut ndp = Ndp {
            advertise,
            seed,
            sent: 0,
            last_ra: None,
            next_ra: None,
            solicited: false,
        };
        if config.guest_mac.is_some() {
            ndp.start(now);
        }
        ndp
    }

    /// Answer one NDP message from the guest (its ICMPv6 checksum already
    /// verified).
    ///
    /// A neighbour solicitation gets a neighbour advertisement and a router
    /// solicitation a router advertisement, as the module documentation
    /// says; [`Outcome::Ignored`] for everything else, and for a router
    /// solicitation whose answer waits for the rate limit.
    ///
    /// Work bound: at most one frame written, a pass over the message's
    /// options and over the configured resolvers and search domains.
    pub(crate) fn handle<S: TxStorage>(
        &mut self,
        cx: &Cx<'_>,
        eth: &EthernetRepr,
        ip: &Ipv6Repr<'_>,
        msg: &NdpRepr<'_>,
        tx: &mut TxRing<S>,
    ) -> Outcome {
        // RFC 4861 §6.1.1, §7.1.1: silently discard invalid messages.
        if validate(msg, ip.hop_limit, &ip.src, &ip.dst).is_err() {
            return Outcome::Dropped(DropReason::Malformed);
        }
        let config = cx.config;
        let Some(ip6) = &config.ip6 else {
            return Outcome::Ignored;
        };
        if !config.services.contains(Services::NDP) {
            return Outcome::Ignored;
        }
        // The guest is on the link: advertising starts, if it has not.
        self.start(cx.now);
        match *msg {
            NdpRepr::NeighborSolicit {
                target, options, ..
            } => {
                // RFC 4862 §5.4.3: a probe for a tentative address gets no
                // answer, or the guest would think its address taken.
                if ip.src.is_unspecified()
                    || ip.src.is_multicast()
                    || target == ip6.addr
                    || target == ip.src
                    || target.is_unspecified()
                    || target.is_loopback()
                {
                    return Outcome::Ignored;
                }
                let dst_mac = options
                    .source_link_addr()
                    .filter(|m| !m.is_multicast() && !m.is_zero())
                    .unwrap_or(eth.src);
                let out = EthernetRepr {
                    dst: dst_mac,
                    src: config.our_mac,
                    ethertype: ethertype::IPV6,
                    ..*eth
                };
                let our_mac = config.our_mac;
                let pushed = tx.push_with(|buf| {
                    frame::icmpv6(buf, &out, target, ip.src, NDP_HOP_LIMIT, |m| {
                        let mut w = NdpWriter::neighbor_advert(m, true, true, true, target)?;
                        w.options().target_link_addr(our_mac)?;
                        Ok(w.options().len())
                    })
                    .ok()
                });
                queued(pushed)
            }
            NdpRepr::RouterSolicit { .. } => {
                if !self.advertise {
                    return Outcome::Ignored;
                }
                if let Some(last) = self.last_ra {
                    if cx.now < last + MIN_DELAY_BETWEEN_RAS {
                        // RFC 4861 §6.2.6: answered at the limit, by the
                        // timer.
                        self.solicited = true;
                        return Outcome::Ignored;
                    }
                }
                let pushed = push_ra(config, ip6, eth.tags(), tx);
                if pushed {
                    self.record_ra(cx.now);
                }
                queued(pushed)
            }
            _ => Outcome::Ignored,
        }
    }

    /// When `Ndp::handle_timeout` has work next (the periodic router
    /// advertisement).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.advertise {
            return None;
        }
        let solicited = self
            .last_ra
            .filter(|_| self.solicited)
            .map(|last| last + MIN_DELAY_BETWEEN_RAS);
        Instant::min_deadline(self.next_ra, solicited)
    }

    /// Do what is due at `cx.now`: send the router advertisement that is
    /// due, periodic or answering a solicitation that had to wait.
    ///
    /// Work bound: at most one frame written.
    pub(crate) fn handle_timeout<S: TxStorage>(&mut self, cx: &Cx<'_>, tx: &mut TxRing<S>) {
        if !self.poll_timeout().is_some_and(|at| at <= cx.now) {
            return;
        }
        let Some(ip6) = &cx.config.ip6 else {
            self.advertise = false;
            return;
        };
        // Lost if the ring is full: the schedule goes on regardless.
        let _ = push_ra(cx.config, ip6, &[], tx);
        self.record_ra(cx.now);
    }

    /// The guest is known at `now`: start advertising, if not yet started.
    fn start(&mut self, now: Instant) {
        if self.advertise && self.next_ra.is_none() {
            self.next_ra = Some(now);
        }
    }

    /// A multicast advertisement went out at `now`: schedule the next one
    /// (RFC 4861 §6.2.4).
    fn record_ra(&mut self, now: Instant) {
        self.sent = self.sent.saturating_add(1);
        self.last_ra = Some(now);
        self.solicited = false;
        self.next_ra = Some(now + self.interval());
    }

    /// The interval after the advertisement number `self.sent` (from 1).
    fn interval(&self) -> Duration {
        let min = MIN_RTR_ADV_INTERVAL.as_millis() as u64;
        let span = MAX_RTR_ADV_INTERVAL.as_millis() as u64 - min + 1;
        let x = mix(self.seed ^ u64::from(self.sent));
        let interval = Duration::from_millis(min + x % span);
        if self.sent < MAX_INITIAL_RTR_ADVERTISEMENTS {
            interval.min(MAX_INITIAL_RTR_ADVERT_INTERVAL)
        } else {
            interval
        }
    }
}

/// The outcome of an answer that was (or was not) queued.
fn queued(pushed: bool) -> Outcome {
    if pushed {
        Outcome::Replied
    } else {
        Outcome::Dropped(DropReason::TxFull)
    }
}

/// The splitmix64 finaliser: spreads the bits of `x` evenly.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Queue a router advertisement to all nodes with the VLAN tags `tags`;
/// whether it fit in the ring.
fn push_ra<S: TxStorage>(
    config: &Config,
    ip6: &Ip6Config,
    tags: &[VlanTag],
    tx: &mut TxRing<S>,
) -> bool {
    let mut out = EthernetRepr::new(
        MacAddr::from_ipv6_multicast(&ALL_NODES),
        config.our_mac,
        ethertype::IPV6,
    );
    for (slot, tag) in out.tags.iter_mut().zip(tags.iter().take(MAX_TAGS)) {
        *slot = *tag;
        out.tag_count += 1;
    }
    let src = ip6.our_link_local;
    tx.push_with(|buf| {
        frame::icmpv6(buf, &out, src, ALL_NODES, NDP_HOP_LIMIT, |m| {
            write_ra(m, config, ip6)
        })
        .ok()
    })
}

/// Write the router advertisement (RFC 4861 §4.2) into `buf`, its checksum
/// left to the caller; returns its length.
fn write_ra(buf: &mut [u8], config: &Config, ip6: &Ip6Config) -> Result<usize> {
    // The whole packet within the link MTU.
    let limit = usize::from(config.mtu)
        .saturating_sub(IPV6_HEADER_LEN)
        .min(buf.len());
    let buf = buf.get_mut(..limit).ok_or(WireError::BufferTooSmall)?;
    let dhcpv6 = config.services.contains(Services::DHCPV6);
    let spec = RouterAdvertSpec {
        cur_hop_limit: CUR_HOP_LIMIT,
        managed: dhcpv6,
        other: dhcpv6,
        router_lifetime: ROUTER_LIFETIME,
        reachable_time: 0,
        retrans_timer: 0,
    };
    let mut w = NdpWriter::router_advert(buf, &spec)?;
    let o = w.options();
    o.source_link_addr(config.our_mac)?;
    if config.assign_mtu {
        o.mtu(u32::from(config.mtu))?;
    }
    o.prefix_info(
        ip6.addr,
        SLAAC_PREFIX_LEN,
        true,
        true,
        INFINITE_LIFETIME,
        INFINITE_LIFETIME,
    )?;
    if config.services.contains(Services::DHCP_DNS) {
        // 8 octets of header, then 16 per server, at most 127 servers.
        let room = limit.saturating_sub(o.len()).saturating_sub(8) / 16;
        let n = ip6.dns.len().min(room).min(127);
        if let Some(servers) = ip6.dns.get(..n).filter(|s| !s.is_empty()) {
            o.rdnss(INFINITE_LIFETIME, servers)?;
        }
    }
    if config.services.contains(Services::DHCP_SEARCH) {
        let room = limit.saturating_sub(o.len()).min(MAX_OPTION_LEN);
        // Reserved (2 octets) and lifetime (4), then the names.
        let mut data = [0u8; MAX_OPTION_LEN - 2];
        if let Some(lifetime) = data.get_mut(2..6) {
            lifetime.copy_from_slice(&INFINITE_LIFETIME.to_be_bytes());
        }
        let mut len = 6;
        for name in &config.search {
            let Some(dst) = data.get_mut(len..) else {
                break;
            };
            let n = match crate::wire::dns::encode_name(name, dst) {
                Ok(n) => n,
                Err(WireError::Malformed) => continue, // not a DNS name
                Err(_) => break,                       // no room left
            };
            if (2 + len + n).div_ceil(8) * 8 > room {
                break;
            }
            len += n;
        }
        if len > 6 {
            if let Some(data) = data.get(..len) {
                // Zero-padded to 8 octets by the writer (RFC 8106 §5.2);
                // bytes past `len` may hold a name that did not fit.
                o.raw(option_kind::DNSSL, data)?;
            }
        }
    }
    Ok(o.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip_proto;
    use crate::wire::ndp::NdpOptions;

    const GUEST: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn config() -> Config {
        Config {
            ip6: Some(Ip6Config {
                addr: ip("2001:db8::10"),
                prefix_len: 64,
                gateway: ip("fe80::1"),
                our_link_local: ip("fe80::1"),
                map_host_loopback: None,
                map_guest_addr: None,
                dns: vec![ip("2001:db8::53")],
                dns_forward: None,
                dns_host: None,
            }),
            ..Config::default()
        }
    }

    fn at(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    /// Run `f` with a handler context at `secs` seconds.
    fn cx<R>(config: &Config, secs: u64, f: impl FnOnce(&Cx<'_>) -> R) -> R {
        let mut shared = crate::contract::cx::shared_for_test(config);
        shared.guest_mac = Some(GUEST);
        let cx = shared.cx(config, at(secs));
        f(&cx)
    }

    fn ns(target: &str) -> NdpRepr<'static> {
        NdpRepr::NeighborSolicit {
            reserved: 0,
            target: ip(target),
            options: NdpOptions::EMPTY,
        }
    }

    const RS: NdpRepr<'static> = NdpRepr::RouterSolicit {
        reserved: 0,
        options: NdpOptions::EMPTY,
    };

    /// Hand `msg` from `src` to a fresh responder.
    fn answer(ndp: &mut Ndp, src: &str, msg: &NdpRepr<'_>, tx: &mut TxRing) -> Outcome {
        let config = config();
        let eth = EthernetRepr::new(config.our_mac, GUEST, ethertype::IPV6);
        let ip6 = Ipv6Repr::new(ip(src), ip("ff02::1:ff00:1"), ip_proto::ICMPV6, 255);
        cx(&config, 1, |cx| ndp.handle(cx, &eth, &ip6, msg, tx))
    }

    #[test]
    fn nothing_to_answer_for() {
        let config = config();
        let mut ndp = Ndp::new(&config, Instant::ZERO);
        let mut tx = TxRing::new(4, 2048, 0);
        for (src, target) in [
            ("fe80::2", "::"),
            ("fe80::2", "::1"),
            ("ff02::2", "fe80::1"),
        ] {
            assert_eq!(
                answer(&mut ndp, src, &ns(target), &mut tx),
                Outcome::Ignored
            );
        }
        assert!(tx.is_empty());
        assert_eq!(
            answer(&mut ndp, "fe80::2", &ns("fe80::1"), &mut tx),
            Outcome::Replied
        );
    }

    #[test]
    fn full_ring() {
        let config = config();
        let mut ndp = Ndp::new(&config, Instant::ZERO);
        let mut tx = TxRing::new(1, 2048, 0);
        assert!(tx.push_with(|_| Some(1)));
        let full = Outcome::Dropped(DropReason::TxFull);
        assert_eq!(answer(&mut ndp, "fe80::2", &ns("fe80::1"), &mut tx), full);
        assert_eq!(answer(&mut ndp, "fe80::2", &RS, &mut tx), full);
        // Not sent, so not rate-limited: the timer has the advertisement
        // that became due when the guest showed up.
        assert_eq!(ndp.last_ra, None);
        assert_eq!(ndp.poll_timeout(), Some(at(1)));
        // Lost to the full ring, but the schedule goes on.
        cx(&config, 1, |cx| ndp.handle_timeout(cx, &mut tx));
        assert_eq!(tx.len(), 1);
        assert_eq!(ndp.poll_timeout(), Some(at(17)));
        // Not due yet: nothing.
        tx.clear();
        cx(&config, 16, |cx| ndp.handle_timeout(cx, &mut tx));
        assert!(tx.is_empty());
        cx(&config, 17, |cx| ndp.handle_timeout(cx, &mut tx));
        assert_eq!(tx.len(), 1);
    }

    #[test]
    fn small_tx_slots_get_what_fits() {
        let mut config = config();
        config.search = vec!["example.org".into()];
        let mut ndp = Ndp::new(&config, Instant::ZERO);
        // 14 + 40 + 64 octets: the fixed options but no DNS.
        let mut tx = TxRing::new(1, 14 + 40 + 64 + 23, 0);
        assert_eq!(answer(&mut ndp, "fe80::2", &RS, &mut tx), Outcome::Replied);
        assert_eq!(tx.front().unwrap().frame.len(), 14 + 40 + 64);
        // Too small even for those: dropped as a full ring would be.
        let mut ndp = Ndp::new(&config, Instant::ZERO);
        let mut tx = TxRing::new(1, 14 + 40 + 63, 0);
        let full = Outcome::Dropped(DropReason::TxFull);
        assert_eq!(answer(&mut ndp, "fe80::2", &RS, &mut tx), full);
    }

    fn ndp(sent: u32) -> Ndp {
        Ndp {
            advertise: true,
            seed: 0x1234,
            sent,
            last_ra: None,
            next_ra: None,
            solicited: false,
        }
    }

    #[test]
    fn intervals_initial_then_jittered_within_bounds() {
        for sent in 0..MAX_INITIAL_RTR_ADVERTISEMENTS {
            assert_eq!(ndp(sent).interval(), MAX_INITIAL_RTR_ADVERT_INTERVAL);
        }
        let mut seen = std::collections::BTreeSet::new();
        for sent in MAX_INITIAL_RTR_ADVERTISEMENTS..1000 {
            let i = ndp(sent).interval();
            assert!(
                (MIN_RTR_ADV_INTERVAL..=MAX_RTR_ADV_INTERVAL).contains(&i),
                "{sent}: {i:?}"
            );
            assert_eq!(i, ndp(sent).interval(), "deterministic");
            seen.insert(i.as_secs() / 40);
        }
        // Spread over the whole range: every 40-second bucket is hit.
        assert_eq!(seen.len(), 10, "{seen:?}");
        assert_eq!(ndp(u32::MAX).interval(), ndp(u32::MAX).interval());
    }
}
