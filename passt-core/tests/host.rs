//! `host`: rtnetlink queries against network namespaces set up by the test.
//!
//! Each test creates its own namespaces (`ip netns add`, names starting with
//! `hostinfo-` and made unique by process id and a counter), links them with
//! veth pairs carrying documentation addresses (192.0.2.0/24,
//! 198.51.100.0/24, 2001:db8::/32), then reads them from a thread that
//! entered the namespace with `setns`. Only netlink queries run: no packet
//! leaves the namespaces. A guard deletes the namespaces, on failure too.
//! Without root or `ip`, the tests say so on stderr and pass.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use passt_core::addr::MacAddr;
use passt_core::config::{Ip4Config, Ip6Config};
use passt_core::host::defaults::{guest_defaults, GuestOverrides};
use passt_core::host::resolv::ResolvConf;
use passt_core::host::{
    read_host_net, HostAddr, HostError, HostLink, HostNet, InterfaceChoice, Selection,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Namespaces made by one test; deleted on drop.
struct Netns {
    names: Vec<String>,
}

impl Netns {
    /// Create `n` namespaces, or `None` (with a note on stderr) if this
    /// machine does not let us.
    fn new(n: usize) -> Option<Netns> {
        let mut ns = Netns { names: Vec::new() };
        for _ in 0..n {
            let name = format!(
                "hostinfo-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let ok = Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "host tests: cannot create network namespaces (need root and ip(8)); skipped"
                );
                return None;
            }
            ns.names.push(name);
        }
        Some(ns)
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Run `ip -n NS ARGS...`, panicking on failure.
    fn ip(&self, i: usize, args: &str) {
        let name = self.name(i);
        let mut full = vec!["-n", name];
        full.extend(args.split_whitespace());
        let out = Command::new("ip").args(&full).output().unwrap();
        assert!(
            out.status.success(),
            "ip {}: {}",
            full.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run a sysctl inside namespace `i`.
    fn sysctl(&self, i: usize, setting: &str) {
        let st = Command::new("ip")
            .args(["netns", "exec", self.name(i), "sysctl", "-qw", setting])
            .status()
            .unwrap();
        assert!(st.success(), "sysctl {setting}");
    }

    /// A veth pair: `local` (index `index`, MAC `mac`) in namespace `a`,
    /// `peer` in namespace `b`, both MTU 1400 and up.
    fn veth(&self, a: usize, local: &str, index: u32, mac: &str, b: usize, peer: &str) {
        self.ip(
            a,
            &format!(
                "link add {local} index {index} address {mac} mtu 1400 type veth peer name {peer} netns {}",
                self.name(b)
            ),
        );
        self.ip(b, &format!("link set {peer} mtu 1400 up"));
        self.ip(a, &format!("link set {local} up"));
    }

    /// Wait (at most 2 s) until `dev` in namespace `i` has its IPv6
    /// link-local address.
    fn wait_link_local(&self, i: usize, dev: &str) {
        for _ in 0..100 {
            let out = Command::new("ip")
                .args([
                    "-n",
                    self.name(i),
                    "-6",
                    "addr",
                    "show",
                    "dev",
                    dev,
                    "scope",
                    "link",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("fe80::") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no link-local address on {dev}");
    }

    /// Read the host configuration from inside namespace `i`, in a thread
    /// of its own (setns moves only the calling thread).
    fn read(&self, i: usize, ip4: Option<&str>, ip6: Option<&str>) -> Result<HostNet, HostError> {
        let path = format!("/run/netns/{}", self.name(i));
        let ip4 = ip4.map(str::to_owned);
        let ip6 = ip6.map(str::to_owned);
        std::thread::spawn(move || {
            let fd = rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .expect("open netns");
            rustix::thread::move_into_link_name_space(
                fd.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            read_host_net(&InterfaceChoice {
                ip4: ip4.as_deref(),
                ip6: ip6.as_deref(),
            })
        })
        .join()
        .expect("reader thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn link(index: u32, name: &str, mac: [u8; 6]) -> HostLink {
    HostLink {
        index,
        name: name.into(),
        mtu: 1400,
        mac: Some(MacAddr(mac)),
        up: true,
        loopback: false,
    }
}

fn a4(s: &str, prefix_len: u8) -> HostAddr<Ipv4Addr> {
    HostAddr {
        addr: s.parse().unwrap(),
        prefix_len,
    }
}

fn a6(s: &str, prefix_len: u8) -> HostAddr<Ipv6Addr> {
    HostAddr {
        addr: s.parse().unwrap(),
        prefix_len,
    }
}

#[test]
fn reads_interface_addresses_and_gateways() {
    let Some(ns) = Netns::new(2) else { return };
    ns.veth(0, "hv0", 7, "02:00:00:00:00:11", 1, "hv0p");
    ns.ip(0, "addr add 192.0.2.2/24 dev hv0");
    ns.ip(0, "addr add 198.51.100.9/28 dev hv0");
    ns.ip(0, "addr add 2001:db8::2/64 dev hv0 nodad");
    ns.ip(0, "addr add 2001:db8:1::2/48 dev hv0 nodad");
    ns.ip(1, "addr add 192.0.2.1/24 dev hv0p");
    ns.ip(1, "addr add 2001:db8::1/64 dev hv0p nodad");
    ns.ip(0, "route add default via 192.0.2.1 metric 100");
    ns.ip(0, "-6 route add default via 2001:db8::1 metric 1024");
    ns.wait_link_local(0, "hv0");

    let net = ns.read(0, None, None).unwrap();
    let mac = [2, 0, 0, 0, 0, 0x11];
    let ip4 = net.ip4.clone().unwrap();
    assert_eq!(ip4.link, link(7, "hv0", mac));
    assert_eq!(ip4.selection, Selection::DefaultRoute);
    assert_eq!(ip4.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(ip4.metric, Some(100));
    assert_eq!(ip4.addrs, [a4("192.0.2.2", 24), a4("198.51.100.9", 28)]);
    assert_eq!(
        ip4.primary(),
        Some(a4("198.51.100.9", 28)),
        "longest prefix"
    );

    let ip6 = net.ip6.clone().unwrap();
    assert_eq!(ip6.link, link(7, "hv0", mac));
    assert_eq!(ip6.gateway, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(ip6.metric, Some(1024));
    // The kernel lists IPv6 addresses newest first.
    assert_eq!(ip6.addrs, [a6("2001:db8:1::2", 48), a6("2001:db8::2", 64)]);
    assert_eq!(ip6.primary(), Some(a6("2001:db8::2", 64)));
    assert_eq!(ip6.link_local, [a6("fe80::ff:fe00:11", 64)]);

    // What the guest gets from it.
    let rc = ResolvConf::parse(b"nameserver 127.0.0.53\nnameserver 2001:db8::53\n");
    let d = guest_defaults(&net, Some(&rc), &GuestOverrides::default());
    let gw4 = Ipv4Addr::new(192, 0, 2, 1);
    assert_eq!(
        d.ip4,
        Some(Ip4Config {
            addr: Ipv4Addr::new(198, 51, 100, 9),
            prefix_len: 28,
            gateway: gw4,
            map_host_loopback: Some(gw4),
            map_guest_addr: None,
            dns: vec![gw4],
            dns_forward: Some(gw4),
            dns_host: Some(Ipv4Addr::new(127, 0, 0, 53)),
        })
    );
    let gw6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        d.ip6,
        Some(Ip6Config {
            addr: "2001:db8::2".parse().unwrap(),
            prefix_len: 64,
            gateway: gw6,
            our_link_local: "fe80::ff:fe00:11".parse().unwrap(),
            map_host_loopback: Some(gw6),
            map_guest_addr: None,
            dns: vec!["2001:db8::53".parse().unwrap()],
            dns_forward: None,
            dns_host: Some("2001:db8::53".parse().unwrap()),
        })
    );
    assert_eq!(d.template_if4.as_deref(), Some("hv0"));
    assert_eq!(d.dns_host4, Some(Ipv4Addr::new(127, 0, 0, 53)));
}

#[test]
fn no_routes_means_no_family() {
    let Some(ns) = Netns::new(1) else { return };
    ns.ip(0, "link set lo up");
    let net = ns.read(0, None, None).unwrap();
    assert_eq!(net, HostNet::default());
    let d = guest_defaults(&net, None, &GuestOverrides::default());
    assert_eq!(d.ip4.unwrap().addr, Ipv4Addr::new(169, 254, 2, 1));
    assert!(d.summary4.contains("local mode"), "{}", d.summary4);
    assert!(matches!(
        ns.read(0, Some("eth9"), None),
        Err(HostError::NoSuchInterface(n)) if n == "eth9"
    ));
}

#[test]
fn interface_with_routes_but_no_default_route() {
    let Some(ns) = Netns::new(2) else { return };
    ns.veth(0, "hv0", 5, "02:00:00:00:00:21", 1, "hv0p");
    ns.ip(0, "addr add 203.0.113.2/24 dev hv0");
    ns.ip(0, "addr add 2001:db8:5::2/64 dev hv0 nodad");
    let net = ns.read(0, None, None).unwrap();
    let ip4 = net.ip4.unwrap();
    assert_eq!(ip4.link.index, 5);
    assert_eq!(ip4.selection, Selection::AnyRoute);
    assert_eq!((ip4.gateway, ip4.metric), (None, None));
    assert_eq!(ip4.addrs, [a4("203.0.113.2", 24)]);
    let ip6 = net.ip6.unwrap();
    assert_eq!(ip6.selection, Selection::AnyRoute);
    assert_eq!(ip6.gateway, None);
    assert_eq!(ip6.addrs, [a6("2001:db8:5::2", 64)]);
}

#[test]
fn ipv6_disabled_by_sysctl() {
    let Some(ns) = Netns::new(2) else { return };
    ns.sysctl(0, "net.ipv6.conf.all.disable_ipv6=1");
    ns.sysctl(0, "net.ipv6.conf.default.disable_ipv6=1");
    ns.veth(0, "hv0", 3, "02:00:00:00:00:31", 1, "hv0p");
    ns.ip(0, "addr add 192.0.2.2/24 dev hv0");
    ns.ip(0, "route add default via 192.0.2.1");
    let net = ns.read(0, None, None).unwrap();
    let ip4 = net.ip4.unwrap();
    assert_eq!(ip4.link, link(3, "hv0", [2, 0, 0, 0, 0, 0x31]));
    assert_eq!(ip4.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(ip4.metric, Some(0));
    assert_eq!(net.ip6, None);
}

#[test]
fn lowest_metric_wins_unless_an_interface_is_named() {
    let Some(ns) = Netns::new(3) else { return };
    ns.veth(0, "hva", 10, "02:00:00:00:00:41", 1, "hvap");
    ns.veth(0, "hvb", 11, "02:00:00:00:00:42", 2, "hvbp");
    ns.ip(0, "addr add 192.0.2.2/24 dev hva");
    ns.ip(0, "addr add 198.51.100.2/24 dev hvb");
    ns.ip(0, "addr add 2001:db8:a::2/64 dev hva nodad");
    ns.ip(0, "addr add 2001:db8:b::2/64 dev hvb nodad");
    // The first listed (lower-numbered interface) has the higher metric.
    ns.ip(0, "route add default via 192.0.2.1 dev hva metric 200");
    ns.ip(0, "route add default via 198.51.100.1 dev hvb metric 100");
    ns.ip(
        0,
        "-6 route add default via 2001:db8:a::1 dev hva metric 100",
    );
    ns.ip(
        0,
        "-6 route add default via 2001:db8:b::1 dev hvb metric 300",
    );

    let net = ns.read(0, None, None).unwrap();
    let ip4 = net.ip4.unwrap();
    assert_eq!(ip4.link.name, "hvb");
    assert_eq!(ip4.link.index, 11);
    assert_eq!(ip4.gateway, Some(Ipv4Addr::new(198, 51, 100, 1)));
    assert_eq!(ip4.metric, Some(100));
    assert_eq!(ip4.addrs, [a4("198.51.100.2", 24)]);
    let ip6 = net.ip6.unwrap();
    assert_eq!(ip6.link.name, "hva");
    assert_eq!(ip6.gateway, Some("2001:db8:a::1".parse().unwrap()));
    assert_eq!(ip6.metric, Some(100));
    assert_eq!(ip6.addrs, [a6("2001:db8:a::2", 64)]);

    // --outbound-if4 hva / --outbound-if6 hvb.
    let net = ns.read(0, Some("hva"), Some("hvb")).unwrap();
    let ip4 = net.ip4.unwrap();
    assert_eq!(ip4.link, link(10, "hva", [2, 0, 0, 0, 0, 0x41]));
    assert_eq!(ip4.selection, Selection::Named);
    assert_eq!(ip4.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(ip4.metric, Some(200));
    assert_eq!(ip4.addrs, [a4("192.0.2.2", 24)]);
    let ip6 = net.ip6.unwrap();
    assert_eq!(ip6.link.name, "hvb");
    assert_eq!(ip6.gateway, Some("2001:db8:b::1".parse().unwrap()));
    assert_eq!(ip6.metric, Some(300));
}
