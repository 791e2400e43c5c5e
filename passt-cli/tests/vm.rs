//! A real Linux guest under qemu, connected to passt by qemu's own
//! `-netdev stream` client, on the simulated host of doc/TESTING.md.
//!
//! The guest is Debian's cloud kernel with a busybox initramfs built here
//! (and cached under `target/tmp/passt-vm/`): its `/init` loads the virtio
//! network modules, runs `udhcpc`, waits for SLAAC (and DAD), runs ISC
//! `dhclient -6` (copied from the host with its libraries) stateful, with
//! Rapid Commit and stateless, pings the gateways and passt's own
//! link-local address, and with `l4test` on its command line
//! goes on with TCP (`nc`) and UDP (`tftp`, `nslookup`) to servers the test
//! runs on the host's loopback (through the gateway address) and far away
//! (198.51.100.1 and 2001:db8:3::1 in the remote namespace), ICMP echo both
//! ways, 4 MiB up and 4 MiB down with their SHA-256 compared with the
//! host's, and a connection from the host through `-t` to an `nc -l` in the
//! guest; over IPv6 too, TCP and UDP (`socat` copied in), from the host's
//! `::1` and from its own address, to a guest that has only its SLAAC and
//! link-local addresses. It prints `MARK ...` lines on the serial console and powers off.
//! The test checks the marks, and that `passt -1` exits once qemu has gone.
//! A second guest boots through `qrap` with an old-style `-netdev
//! socket,fd=5` (IPv4 and L2 checks only).
//!
//! Packages (installed if missing): qemu-system-x86, linux-image-cloud-amd64,
//! cpio, isc-dhcp-client, socat; busybox-static is downloaded and unpacked rather than installed
//! (it conflicts with the dynamic busybox the other tests use).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    can_run_as_root, ensure_packages, run, sh, Passt, Topology, HOST4, HOST6, REMOTE4, REMOTE6,
};

/// ISC dhclient, the guest's DHCPv6 client (package isc-dhcp-client).
const DHCLIENT: &str = "/usr/sbin/dhclient";
/// The guest's MAC address.
const GUEST_MAC: &str = "52:54:00:12:34:56";
/// How long the guest may take from start to power-off.
const VM_LIMIT: Duration = Duration::from_secs(120);

/// Modules that bring up virtio-net, in load order (doc/TESTING.md).
const MODULES: [&str; 8] = [
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "net/core/failover",
    "drivers/net/net_failover",
    "drivers/net/virtio_net",
];

/// The guest's `/init`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do insmod /lib/modules/$m.ko || echo "MARK insmod-failed $m"; done
ip link set lo up
ip link set eth0 up
echo "MARK link $(cat /sys/class/net/eth0/address)"
if udhcpc -i eth0 -s /udhcpc.sh -n -q -t 5 -T 2 >/dev/null 2>&1; then echo "MARK dhcp ok"; else echo "MARK dhcp failed"; fi
echo "MARK addr4 $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
echo "MARK route4 $(ip -4 route show default)"
i=0
grep -q nov6 /proc/cmdline && i=20
while [ $i -lt 20 ]; do
  a=$(ip -6 -o addr show dev eth0 scope global | awk '{print $4}' | head -n 1)
  [ -n "$a" ] && ! ip -6 addr show dev eth0 | grep -q tentative && break
  sleep 1; i=$((i+1))
done
echo "MARK addr6 $a"
echo "MARK route6 $(ip -6 route show default | head -n 1)"
# ISC dhclient -6, three ways: stateful (SOLICIT, ADVERTISE, REQUEST,
# REPLY), with Rapid Commit (SOLICIT, REPLY) and stateless (-S:
# INFORMATION-REQUEST, REPLY); each prints the messages it sent and got.
d6() {
  tag=$1; shift
  rm -f /tmp/d6.pid /tmp/d6.leases
  if timeout 20 dhclient -6 -1 -v -sf /dhclient6.sh -lf /tmp/d6.leases -pf /tmp/d6.pid -e TAG=$tag "$@" eth0 >/tmp/d6.log 2>&1; then r=ok; else r=failed; fi
  [ -s /tmp/d6.pid ] && kill "$(cat /tmp/d6.pid)" 2>/dev/null
  echo "MARK $tag $r"
  [ $r = ok ] || sed "s/^/MARK $tag-log /" /tmp/d6.log | tail -n 5
  echo "MARK $tag-msgs $(grep -o -E '(XMT|RCV): [A-Za-z-]+' /tmp/d6.log | grep -v Forming | tr -d ':' | tr '\n' ' ')"
}
if grep -q nov6 /proc/cmdline; then
  :
elif [ -x /sbin/dhclient ]; then
  d6 dhcp6 -cf /etc/dhclient6.conf
  d6 dhcp6rc -cf /etc/dhclient6-rc.conf
  d6 dhcp6info -S -cf /etc/dhclient6-info.conf
else
  echo "MARK dhcp6 absent"
fi
gw4=$(ip -4 route show default | awk '{print $3}')
ping -c 1 -W 2 "$gw4" >/dev/null 2>&1 && echo "MARK ping4 ok" || echo "MARK ping4 no-reply"
echo "MARK neigh4 $(ip neigh show "$gw4" dev eth0)"
gw6=$(ip -6 route show default | awk '{print $3}' | head -n 1)
ping6 -c 1 -W 2 -I eth0 "$gw6" >/dev/null 2>&1 && echo "MARK ping6 ok" || echo "MARK ping6 no-reply"
echo "MARK ping6-scoped $(ping -6 -c 1 -W 2 -s 24 "$gw6%eth0" 2>&1 | grep -o -E '[0-9]+ bytes from [^ ]+ seq=[0-9]+' | head -n 1)"
echo "MARK neigh6 $(ip -6 neigh show "$gw6" dev eth0)"
if grep -q l4test /proc/cmdline; then
  rem4=198.51.100.1; rem6=2001:db8:3::1
  echo guest-says-hi > /tmp/greet
  timeout 60 nc -l -p 10022 < /tmp/greet > /tmp/inbound 2>&1 &
  lpid=$!
  # IPv6 inbound (busybox nc listens on [::], dual-stack): one TCP port
  # for the host's ::1, one for its own address; UDP through socat, which
  # appends each datagram's line and answers "ack-<line>".
  echo guest-says-hi-lo6 > /tmp/greet6lo
  echo guest-says-hi-own6 > /tmp/greet6own
  timeout 60 nc -l -p 10024 < /tmp/greet6lo > /tmp/inbound6lo 2>&1 &
  l6lo=$!
  timeout 60 nc -l -p 10025 < /tmp/greet6own > /tmp/inbound6own 2>&1 &
  l6own=$!
  : > /tmp/udp6in
  timeout 90 socat UDP6-RECVFROM:10026,fork SYSTEM:'read l; echo "$l" >> /tmp/udp6in; echo "ack-$l"' >/dev/null 2>&1 &
  u6=$!
  echo "MARK listening"
  echo "MARK tcp-gw $(echo hello-gw | timeout 10 nc $gw4 10001 2>&1)"
  echo "MARK tcp-remote $(echo hello-remote | timeout 10 nc $rem4 10001 2>&1)"
  echo "MARK tcp6-remote $(echo hello-remote6 | timeout 10 nc $rem6 10001 2>&1)"
  timeout 10 tftp -g -r probe -l /tmp/udp-gw $gw4 10069 >/dev/null 2>&1
  echo "MARK udp-gw $(cat /tmp/udp-gw)"
  timeout 10 tftp -g -r probe -l /tmp/udp-remote $rem4 10069 >/dev/null 2>&1
  echo "MARK udp-remote $(cat /tmp/udp-remote)"
  echo "MARK dns-gw $(timeout 10 nslookup probe.example $gw4 2>&1 | grep -o '192\.0\.2\.[0-9]*' | tr '\n' ' ')"
  gwmap6=2001:db8:2::1
  ping6 -c 1 -W 3 "$gwmap6" >/dev/null 2>&1 && echo "MARK ping6-gwmap ok" || echo "MARK ping6-gwmap no-reply"
  echo "MARK tcp6-gwmap $(echo hello-gw6 | timeout 10 nc $gwmap6 10001 2>&1)"
  ping -c 1 -W 3 "$rem4" >/dev/null 2>&1 && echo "MARK ping4-remote ok" || echo "MARK ping4-remote no-reply"
  ping6 -c 1 -W 3 "$rem6" >/dev/null 2>&1 && echo "MARK ping6-remote ok" || echo "MARK ping6-remote no-reply"
  dd if=/dev/urandom of=/tmp/blob bs=64k count=64 2>/dev/null
  echo "MARK up-sha $(sha256sum /tmp/blob | cut -d ' ' -f 1)"
  echo "MARK up-reply $(timeout 60 nc $gw4 10002 < /tmp/blob 2>&1)"
  rm -f /tmp/blob
  timeout 60 nc $rem4 10003 < /dev/null > /tmp/down 2>/dev/null
  echo "MARK down-sha $(sha256sum /tmp/down | cut -d ' ' -f 1) $(wc -c < /tmp/down)"
  wait $lpid
  echo "MARK inbound $(cat /tmp/inbound)"
  wait $l6lo
  echo "MARK inbound6-lo $(cat /tmp/inbound6lo)"
  wait $l6own
  echo "MARK inbound6-own $(cat /tmp/inbound6own)"
  i=0
  while [ $i -lt 30 ] && ! { grep -q '^udp6-lo-' /tmp/udp6in && grep -q '^udp6-own-' /tmp/udp6in; }; do sleep 1; i=$((i+1)); done
  echo "MARK udp6-in $(sort -u /tmp/udp6in | tr '\n' ' ')"
  kill $u6 2>/dev/null
fi
echo "MARK done"
poweroff -f
"#;

/// busybox udhcpc's lease script: apply the lease, report it.
const UDHCPC: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
  ip addr add "$ip/$mask" dev "$interface"
  for r in $router; do ip route add default via "$r" dev "$interface"; break; done
  echo "MARK lease ip=$ip mask=$mask router=$router dns=$dns search=$search mtu=$mtu" >/dev/console
  ;;
esac
exit 0
"#;

/// ISC dhclient's script (in place of its dhclient-script): report what
/// the client got, under the tag the `/init` gave it (`-e TAG=...`).
const DHCLIENT6: &str = r#"#!/bin/sh
case "$reason" in
BOUND6|RENEW6|REBIND6|INFORM6)
  echo "MARK lease6-$TAG reason=$reason ip6=$new_ip6_address/$new_ip6_prefixlen life=$new_preferred_life/$new_max_life dns=$new_dhcp6_name_servers search=$new_dhcp6_domain_search irt=$new_dhcp6_info_refresh_time" >/dev/console
  ;;
esac
exit 0
"#;

/// dhclient's configuration: the options it asks for (RFC 8415 §21.7),
/// nothing else.
const DHCLIENT6_CONF: &str = "request dhcp6.name-servers, dhcp6.domain-search;\n";

/// The same, asking for Rapid Commit (RFC 8415 §18.2.1, §21.14).
const DHCLIENT6_RC_CONF: &str =
    "request dhcp6.name-servers, dhcp6.domain-search;\nsend dhcp6.rapid-commit;\n";

/// The same, stateless, asking for the Information Refresh Time too
/// (RFC 8415 §21.23).
const DHCLIENT6_INFO_CONF: &str =
    "request dhcp6.name-servers, dhcp6.domain-search, dhcp6.info-refresh-time;\n";

/// A second address of `remote`, routed through the gateway from the host:
/// "a server on the internet" (the gateway's own address is mapped to the
/// host's loopback).
const FAR4: &str = "198.51.100.1";
/// Its IPv6 counterpart.
const FAR6: &str = "2001:db8:3::1";
/// TCP: a small request-reply server (on the host's loopback and far away).
const PORT_REPLY: u16 = 10001;
/// TCP: a sink on the host's loopback for the guest's upload.
const PORT_SINK: u16 = 10002;
/// TCP: far away, sends the download and closes.
const PORT_SOURCE: u16 = 10003;
/// UDP: TFTP responders (on the host's loopback and far away).
const PORT_TFTP: u16 = 10069;
/// TCP: forwarded to the guest with `-t`.
const PORT_INBOUND: u16 = 10022;
/// TCP: forwarded with `-t`, for a connection from the host's `::1`.
const PORT_INBOUND6_LO: u16 = 10024;
/// TCP: forwarded with `-t`, for a connection from the host's own IPv6
/// address.
const PORT_INBOUND6_OWN: u16 = 10025;
/// UDP: forwarded with `-u`; the guest's socat answers `ack-<line>`.
const PORT_INBOUND6_UDP: u16 = 10026;
/// socat, the guest's UDP server (copied in with its libraries).
const SOCAT: &str = "/usr/bin/socat";
/// Bytes the guest downloads (TCG is slow: a few MiB).
const DOWNLOAD_LEN: usize = 4 << 20;
/// Bytes the guest uploads (its `dd bs=64k count=64`).
const UPLOAD_LEN: usize = 4 << 20;

/// Run `f` on a thread that has entered network namespace `ns`; sockets it
/// creates stay in `ns` wherever they are used later.
fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    use std::os::fd::AsFd;
    let path = PathBuf::from("/run/netns").join(ns);
    std::thread::spawn(move || {
        let fd = fs::File::open(&path).expect("netns handle");
        rustix::thread::move_into_link_name_space(
            fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
}

/// [`spawn_in`], waiting for the result.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, f).join().expect("thread in netns")
}

/// Serve every connection to `l` on its own thread with `f`.
fn serve(l: TcpListener, f: impl Fn(TcpStream) + Send + Sync + Copy + 'static) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || f(s));
        }
    });
}

/// Answer every DNS query on `sock` for an A record with `answer` (and any
/// other type with no records): UDP both ways, the guest's `nslookup` shows
/// which server answered.
fn dns_responder(sock: UdpSocket, answer: [u8; 4]) {
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut b) {
            let q = &b[..n];
            // Header, then one question: labels up to the root, type, class.
            let Some(name_len) = q.get(12..).and_then(|r| r.iter().position(|&c| c == 0)) else {
                continue;
            };
            let qend = 12 + name_len + 1 + 4;
            let Some(question) = q.get(12..qend) else {
                continue;
            };
            let is_a = question[question.len() - 4..question.len() - 2] == [0, 1];
            let mut r = Vec::with_capacity(64);
            r.extend_from_slice(&q[..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
            r.extend_from_slice(question);
            if is_a {
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer);
            }
            let _ = sock.send_to(&r, from);
        }
    });
}

/// Answer every TFTP read request (RFC 1350 §5) on `sock` with one short
/// data block, `<tag> <sender's address>`, from the same port (which ends
/// the transfer); acknowledgements are ignored.
fn tftp_responder(sock: UdpSocket, tag: &'static str) {
    std::thread::spawn(move || {
        let mut b = [0u8; 516];
        while let Ok((n, from)) = sock.recv_from(&mut b) {
            if b.get(..2) != Some(&[0, 1]) || n < 4 {
                continue;
            }
            let mut r = vec![0, 3, 0, 1];
            r.extend_from_slice(format!("{tag} {}\n", from.ip().to_canonical()).as_bytes());
            let _ = sock.send_to(&r, from);
        }
    });
}

/// Deterministic bytes for the download (xorshift).
fn download_data() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..DOWNLOAD_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `sha256sum` of a file, as hex.
fn sha256(path: &Path) -> String {
    let o = run("sha256sum", &[path.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The servers of the guest's L4 checks (see [`INIT`]): on the host (reached
/// through the gateway address, which passt maps to the host's loopback) a
/// reply server, an upload sink writing to `upload`, a TFTP responder and a
/// DNS responder answering 192.0.2.101; in `remote`, on [`FAR4`]/[`FAR6`]
/// a reply server, a download source serving `download` and a TFTP
/// responder, and on every address a DNS responder answering 192.0.2.102
/// (the host's resolver is [`REMOTE4`]). A reply is `pong-<where> <peer
/// address> <request>`.
fn start_servers(topo: &Topology, upload: PathBuf, download: PathBuf) {
    fn reply(mut s: TcpStream, tag: &str) {
        let peer = s.peer_addr().map(|a| a.ip().to_canonical().to_string());
        let mut req = String::new();
        let _ = s.read_to_string(&mut req);
        let _ = writeln!(s, "pong-{tag} {} {}", peer.unwrap_or_default(), req.trim());
    }
    let (reply_h, sink, dns_h, tftp_h) = in_netns(&topo.host, || {
        (
            TcpListener::bind(("::", PORT_REPLY)).expect("bind"),
            TcpListener::bind(("127.0.0.1", PORT_SINK)).expect("bind"),
            UdpSocket::bind(("127.0.0.1", 53)).expect("bind"),
            UdpSocket::bind(("127.0.0.1", PORT_TFTP)).expect("bind"),
        )
    });
    let (reply_r, source, dns_r, tftp_r) = in_netns(&topo.remote, || {
        (
            TcpListener::bind(("::", PORT_REPLY)).expect("bind"),
            TcpListener::bind((FAR4, PORT_SOURCE)).expect("bind"),
            UdpSocket::bind(("0.0.0.0", 53)).expect("bind"),
            UdpSocket::bind((FAR4, PORT_TFTP)).expect("bind"),
        )
    });
    tftp_responder(tftp_h, "udp-host");
    tftp_responder(tftp_r, "udp-remote");
    serve(reply_h, |s| reply(s, "host"));
    serve(reply_r, |s| reply(s, "remote"));
    dns_responder(dns_h, [192, 0, 2, 101]);
    dns_responder(dns_r, [192, 0, 2, 102]);
    std::thread::spawn(move || {
        for mut s in sink.incoming().flatten() {
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            let _ = fs::write(&upload, &got);
            let _ = writeln!(s, "got {}", got.len());
        }
    });
    let data = std::sync::Arc::new(fs::read(&download).expect("download file"));
    std::thread::spawn(move || {
        for mut s in source.incoming().flatten() {
            let _ = s.write_all(&data);
        }
    });
}

/// Wait until the guest prints `MARK listening`; `false` if it never did.
fn wait_listening(console: &Path, deadline: Instant) -> bool {
    while !fs::read_to_string(console)
        .unwrap_or_default()
        .contains("MARK listening")
    {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// From the host's namespace, once the guest says it listens, connect to
/// `-t` port `port` at `addr` (the connection's source is the host's own
/// address of the same kind), send `hello` and return the guest's answer
/// (retrying for a while: the guest may not listen yet).
fn connect_inbound(
    ns: &str,
    console: PathBuf,
    addr: std::net::IpAddr,
    port: u16,
    hello: &'static str,
) -> std::thread::JoinHandle<String> {
    spawn_in(ns, move || {
        let deadline = Instant::now() + VM_LIMIT;
        if !wait_listening(&console, deadline) {
            return "guest never listened".to_owned();
        }
        let mut last = String::new();
        while Instant::now() < deadline {
            let attempt = (|| -> std::io::Result<String> {
                let mut s = TcpStream::connect((addr, port))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(format!("{hello}\n").as_bytes())?;
                s.shutdown(std::net::Shutdown::Write)?;
                let mut got = String::new();
                s.read_to_string(&mut got)?;
                Ok(got)
            })();
            match attempt {
                Ok(got) if got.contains("guest-says-hi") => return got,
                Ok(got) => last = got,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        format!("no answer: {last}")
    })
}

/// From the host's namespace, once the guest listens, send the line
/// `<tag>-<n>` to `-u` port [`PORT_INBOUND6_UDP`] at `addr` from a socket
/// bound to `addr` (so the source is `::1` or the host's own address),
/// every 500 ms until an answer comes; the answer.
fn udp_inbound(
    ns: &str,
    console: PathBuf,
    addr: std::net::Ipv6Addr,
    tag: &'static str,
) -> std::thread::JoinHandle<String> {
    spawn_in(ns, move || {
        let deadline = Instant::now() + VM_LIMIT;
        if !wait_listening(&console, deadline) {
            return "guest never listened".to_owned();
        }
        let sock = UdpSocket::bind((addr, 0)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 256];
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Err(e) = sock.send_to(
                format!("{tag}-{PORT_INBOUND6_UDP}\n").as_bytes(),
                (addr, PORT_INBOUND6_UDP),
            ) {
                last = format!("send: {e}");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    return format!(
                        "{} from {from}",
                        String::from_utf8_lossy(&buf[..n]).trim_end()
                    );
                }
                Err(e) => last = e.to_string(),
            }
        }
        format!("no answer: {last}")
    })
}

/// The newest cloud kernel in /boot and its version.
fn kernel() -> Option<(PathBuf, String)> {
    let mut found: Vec<(PathBuf, String)> = fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let v = name.strip_prefix("vmlinuz-")?;
            v.ends_with("-cloud-amd64")
                .then(|| (PathBuf::from("/boot").join(&name), v.to_owned()))
        })
        .collect();
    found.sort();
    found.pop()
}

/// A static busybox for the initramfs: `PASST_TEST_STATIC_BUSYBOX` (which
/// `scripts/test-all.sh` sets: the installed busybox if it is static, else
/// busybox-static's unpacked, not installed, into a cache), else the
/// installed one if it is static.
fn static_busybox() -> PathBuf {
    if let Some(p) = std::env::var_os("PASST_TEST_STATIC_BUSYBOX") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "PASST_TEST_STATIC_BUSYBOX: no {}", p.display());
        return p;
    }
    let bin = PathBuf::from("/bin/busybox");
    let o = run("ldd", &["/bin/busybox"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        bin.exists() && text.contains("not a dynamic executable"),
        "no static busybox: set PASST_TEST_STATIC_BUSYBOX (scripts/test-all.sh does)"
    );
    bin
}

/// Copy the dynamically linked program `bin` to `at` under `root`, and the
/// shared libraries `ldd` lists (the dynamic loader included) to their own
/// paths under `root`.
fn copy_with_libraries(bin: &Path, root: &Path, at: &str) {
    use std::os::unix::fs::PermissionsExt;
    let o = run("ldd", &[bin.to_str().unwrap()]);
    assert!(o.status.success(), "ldd {}: {o:?}", bin.display());
    let libs = String::from_utf8_lossy(&o.stdout);
    for lib in libs.split_whitespace().filter(|w| w.starts_with('/')) {
        let dst = root.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        // Follows symbolic links: the file itself under the linked name.
        fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
    let dst = root.join(at);
    fs::copy(bin, &dst).unwrap();
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Build (or reuse) the initramfs for kernel `version`.
fn initramfs(version: &str) -> PathBuf {
    // Tests boot in parallel: one builds, the others wait for it.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("passt-vm");
    fs::create_dir_all(&cache).unwrap();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            INIT,
            UDHCPC,
            DHCLIENT6,
            DHCLIENT6_CONF,
            DHCLIENT6_RC_CONF,
            version,
            MODULES,
        )
            .hash(&mut h);
        h.finish()
    };
    let image = cache.join(format!("initramfs-{key:016x}.cpio.gz"));
    if image.exists() {
        return image;
    }
    let busybox = static_busybox();
    let root = cache.join(format!("root-{key:016x}"));
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin",
        "sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "lib/modules",
        "tmp",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    copy_with_libraries(Path::new(DHCLIENT), &root, "sbin/dhclient");
    copy_with_libraries(Path::new(SOCAT), &root, "bin/socat");
    fs::write(root.join("etc/dhclient6.conf"), DHCLIENT6_CONF).unwrap();
    fs::write(root.join("etc/dhclient6-rc.conf"), DHCLIENT6_RC_CONF).unwrap();
    fs::write(root.join("etc/dhclient6-info.conf"), DHCLIENT6_INFO_CONF).unwrap();
    let mut names = String::new();
    for m in MODULES {
        let base = format!("/lib/modules/{version}/kernel/{m}");
        let name = Path::new(m)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let dst = root.join(format!("lib/modules/{name}.ko"));
        if Path::new(&format!("{base}.ko")).exists() {
            fs::copy(format!("{base}.ko"), &dst).unwrap();
        } else if Path::new(&format!("{base}.ko.xz")).exists() {
            let o = run("xz", &["-dkc", &format!("{base}.ko.xz")]);
            assert!(o.status.success(), "{o:?}");
            fs::write(&dst, o.stdout).unwrap();
        } else {
            // Built in, or absent in this kernel.
            continue;
        }
        names.push_str(&name);
        names.push('\n');
    }
    fs::write(root.join("modules"), names).unwrap();
    for (name, text) in [
        ("init", INIT),
        ("udhcpc.sh", UDHCPC),
        ("dhclient6.sh", DHCLIENT6),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let p = root.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tmp = cache.join(format!("initramfs-{key:016x}.tmp"));
    let script = format!(
        "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
        root.display(),
        tmp.display()
    );
    let o = run("sh", &["-c", &script]);
    assert!(o.status.success(), "{o:?}");
    fs::rename(&tmp, &image).unwrap();
    let _ = fs::remove_dir_all(&root);
    image
}

/// The value after `MARK <key> ` on the console, if printed.
fn mark<'a>(console: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("MARK {key}");
    console.lines().find_map(|l| {
        let l = l.trim_end_matches('\r');
        let at = l.find(&prefix)?;
        Some(l[at + prefix.len()..].trim())
    })
}

/// Boot the guest with `netdev` arguments for its NIC, through `wrapper`
/// (qrap) if given, with `append` added to the kernel command line (`nov6`:
/// don't wait for SLAAC); the console, or `None` if it did not power off in
/// time.
fn boot(passt: &Passt, wrapper: &[&str], netdev: &[String], append: &str) -> Option<String> {
    let (kernel, version) = kernel().expect("cloud kernel");
    let image = initramfs(&version);
    let console_path = passt.dir.0.join("console.log");
    let console_file = fs::File::create(&console_path).unwrap();
    let started = Instant::now();
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg("qemu-system-x86_64");
            c
        }
        None => Command::new("qemu-system-x86_64"),
    };
    let mut qemu = cmd
        .args([
            "-accel",
            "tcg",
            "-m",
            "256",
            "-display",
            "none",
            "-nodefaults",
        ])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&image)
        .args(["-append", &format!("console=ttyS0 quiet panic=-1 {append}")])
        .args([
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={GUEST_MAC}"),
        ])
        .args(netdev)
        .env("QRAP_SOCKET", &passt.sock)
        .stdin(Stdio::null())
        .stdout(console_file)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qemu");
    let status = loop {
        if let Some(s) = qemu.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > VM_LIMIT {
            let _ = qemu.kill();
            let _ = qemu.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = fs::read_to_string(&console_path).unwrap_or_default();
    eprintln!("guest ran {:?}", started.elapsed());
    for l in console.lines().filter(|l| l.contains("MARK ")) {
        eprintln!("  {}", l.trim_end_matches('\r'));
    }
    status.map(|_| console)
}

/// Check what booting needs is there; `false` (with a note) where it
/// cannot run (not root).
fn prepare(test: &str) -> bool {
    if !can_run_as_root(test) {
        return false;
    }
    ensure_packages(&[
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("cpio", "cpio"),
        (DHCLIENT, "isc-dhcp-client"),
        (SOCAT, "socat"),
    ]);
    assert!(
        kernel().is_some(),
        "no cloud kernel in /boot: install linux-image-cloud-amd64 (scripts/test-all.sh does)"
    );
    true
}

#[test]
fn linux_guest_under_qemu_gets_its_addresses_and_passt_exits_after_it() {
    let test = "linux_guest_under_qemu_gets_its_addresses_and_passt_exits_after_it";
    if !prepare(test) {
        return;
    }
    let topo = Topology::new("vm");
    // "The internet" beyond the gateway, and ICMP echo sockets for passt
    // (which runs as nobody).
    sh(&[
        "ip",
        "-n",
        &topo.remote,
        "addr",
        "add",
        &format!("{FAR4}/32"),
        "dev",
        "lo",
    ]);
    sh(&[
        "ip",
        "-n",
        &topo.remote,
        "-6",
        "addr",
        "add",
        &format!("{FAR6}/128"),
        "dev",
        "lo",
    ]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &topo.host,
        "sysctl",
        "-qw",
        "net.ipv4.ping_group_range=0 2147483647",
    ]);
    let tcp_ports = format!("{PORT_INBOUND},{PORT_INBOUND6_LO},{PORT_INBOUND6_OWN}");
    let udp_port = PORT_INBOUND6_UDP.to_string();
    let mut passt = Passt::start_in(
        Some(&topo.host),
        "vm",
        &["-1", "-t", &tcp_ports, "-u", &udp_port],
    );
    let upload = passt.dir.0.join("upload");
    let download = passt.dir.0.join("download");
    fs::write(&download, download_data()).unwrap();
    start_servers(&topo, upload.clone(), download.clone());
    let console_log = passt.dir.0.join("console.log");
    let host6: std::net::Ipv6Addr = HOST6.parse().unwrap();
    let lo6 = std::net::Ipv6Addr::LOCALHOST;
    let inbound = connect_inbound(
        &topo.host,
        console_log.clone(),
        std::net::Ipv4Addr::LOCALHOST.into(),
        PORT_INBOUND,
        "host-says-hi",
    );
    // IPv6 to a SLAAC guest (dhclient's script here does not apply the
    // DHCPv6 address: the guest has only its SLAAC and link-local ones).
    let inbound6_lo = connect_inbound(
        &topo.host,
        console_log.clone(),
        lo6.into(),
        PORT_INBOUND6_LO,
        "host-says-hi-lo6",
    );
    let inbound6_own = connect_inbound(
        &topo.host,
        console_log.clone(),
        host6.into(),
        PORT_INBOUND6_OWN,
        "host-says-hi-own6",
    );
    let udp6_lo = udp_inbound(&topo.host, console_log.clone(), lo6, "udp6-lo");
    let udp6_own = udp_inbound(&topo.host, console_log, host6, "udp6-own");
    let netdev = [
        "-netdev".to_owned(),
        format!(
            "stream,id=n0,server=off,addr.type=unix,addr.path={}",
            passt.sock.display()
        ),
    ];
    let console = boot(&passt, &[], &netdev, "l4test");
    let ctx = || format!("console:\n{console:?}\npasst:\n{}", passt.log());
    let Some(console) = console.as_deref() else {
        panic!("guest still running after {VM_LIMIT:?}\n{}", ctx());
    };
    assert_eq!(mark(console, "done"), Some(""), "{}", ctx());
    assert_eq!(mark(console, "link"), Some(GUEST_MAC), "{}", ctx());
    assert_eq!(mark(console, "dhcp"), Some("ok"), "{}", ctx());
    // The host's own address and gateway, and its resolver (which is the
    // gateway: not mapped, so passed on as it is).
    let lease = mark(console, "lease").unwrap_or_default();
    assert!(
        lease.contains(&format!("ip={HOST4} mask=24 router={REMOTE4}")),
        "{}",
        ctx()
    );
    assert!(lease.contains(&format!("dns={REMOTE4}")), "{}", ctx());
    assert!(lease.contains("search=example.org"), "{}", ctx());
    assert_eq!(
        mark(console, "addr4"),
        Some(&*format!("{HOST4}/24")),
        "{}",
        ctx()
    );
    assert!(
        mark(console, "route4")
            .unwrap_or_default()
            .starts_with(&format!("default via {REMOTE4}")),
        "{}",
        ctx()
    );
    // SLAAC in the host's /64, via a link-local router.
    let addr6 = mark(console, "addr6").unwrap_or_default();
    assert!(
        addr6.starts_with("2001:db8:2:") && addr6.ends_with("/64"),
        "{}",
        ctx()
    );
    let route6 = mark(console, "route6").unwrap_or_default();
    assert!(route6.starts_with("default via fe80::"), "{}", ctx());
    // DHCPv6 (ISC dhclient): the host's address for good (infinite
    // lifetimes), and its resolver (the gateway, passed on as it is) and
    // search list. Stateful: four messages (RFC 8415 §18); with Rapid
    // Commit, two (§18.2.1); stateless, an INFORMATION-REQUEST and its
    // REPLY (§18.2.6). The message names are dhclient's.
    let dhcp6_cases = [
        (
            "dhcp6",
            "BOUND6",
            "XMT Solicit RCV Advertise XMT Request RCV Reply",
        ),
        ("dhcp6rc", "BOUND6", "XMT Solicit RCV Reply"),
        // dhclient calls its script with RENEW6 for a stateless reply.
        ("dhcp6info", "RENEW6", "XMT Info-Request RCV Reply"),
    ];
    for (tag, reason, msgs) in dhcp6_cases {
        assert_eq!(mark(console, tag), Some("ok"), "{tag}: {}", ctx());
        assert_eq!(
            mark(console, &format!("{tag}-msgs")),
            Some(msgs),
            "{tag}: {}",
            ctx()
        );
        let lease = mark(console, &format!("lease6-{tag}")).unwrap_or_default();
        // Stateless: no address, and the Information Refresh Time asked
        // for, infinite (§21.23).
        let (ip6, irt) = if tag == "dhcp6info" {
            ("ip6=/ life=/".to_owned(), "4294967295")
        } else {
            (format!("ip6={HOST6}/128 life=4294967295/4294967295"), "")
        };
        assert_eq!(
            lease,
            format!("reason={reason} {ip6} dns={REMOTE6} search=example.org. irt={irt}"),
            "{tag}: {}",
            ctx()
        );
    }
    // ARP and NDP answered with passt's MAC address.
    let neigh4 = mark(console, "neigh4").unwrap_or_default();
    assert!(neigh4.contains("lladdr 9a:55:9a:55:9a:55"), "{}", ctx());
    let neigh6 = mark(console, "neigh6").unwrap_or_default();
    assert!(neigh6.contains("lladdr 9a:55:9a:55:9a:55"), "{}", ctx());
    // ICMP echo through passt's ping sockets: the gateway (the host's
    // loopback) and far away; and passt's own link-local address, the
    // guest's IPv6 router, answered by passt itself (with the 24 bytes of
    // data and the sequence number of the request).
    for key in [
        "ping4",
        "ping6",
        "ping6-gwmap",
        "ping4-remote",
        "ping6-remote",
    ] {
        assert_eq!(mark(console, key), Some("ok"), "{key}: {}", ctx());
    }
    let router = route6
        .strip_prefix("default via ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default();
    assert_eq!(
        mark(console, "ping6-scoped"),
        Some(&*format!("32 bytes from {router}: seq=0")),
        "{}",
        ctx()
    );
    // TCP: the gateway address is the host's loopback; far servers see the
    // host's address.
    assert_eq!(
        mark(console, "tcp-gw"),
        Some("pong-host 127.0.0.1 hello-gw"),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "tcp-remote"),
        Some(&*format!("pong-remote {HOST4} hello-remote")),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "tcp6-remote"),
        Some(&*format!("pong-remote {HOST6} hello-remote6")),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "tcp6-gwmap"),
        Some("pong-host ::1 hello-gw6"),
        "{}",
        ctx()
    );
    // UDP both ways (a TFTP read), to the host's loopback and far away.
    assert_eq!(
        mark(console, "udp-gw"),
        Some("udp-host 127.0.0.1"),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "udp-remote"),
        Some(&*format!("udp-remote {HOST4}")),
        "{}",
        ctx()
    );
    // DNS to the gateway, which is also the host's resolver, reaches that
    // resolver (--dns-forward), not the host's loopback.
    assert_eq!(mark(console, "dns-gw"), Some("192.0.2.102"), "{}", ctx());
    // Megabytes both ways, checksums compared with the host's.
    assert_eq!(
        mark(console, "up-reply"),
        Some(&*format!("got {UPLOAD_LEN}")),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "up-sha"),
        Some(&*sha256(&upload)),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "down-sha"),
        Some(&*format!("{} {DOWNLOAD_LEN}", sha256(&download))),
        "{}",
        ctx()
    );
    // Host -> guest through -t: both directions of the connection.
    let answer = inbound.join().unwrap();
    assert_eq!(answer, "guest-says-hi\n", "{}", ctx());
    assert_eq!(mark(console, "inbound"), Some("host-says-hi"), "{}", ctx());
    // IPv6 host -> guest, from ::1 and from the host's own address: TCP
    // both directions, UDP there and back (the answer from the port the
    // datagram went to, as the host's peer).
    assert_eq!(
        inbound6_lo.join().unwrap(),
        "guest-says-hi-lo6\n",
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "inbound6-lo"),
        Some("host-says-hi-lo6"),
        "{}",
        ctx()
    );
    assert_eq!(
        inbound6_own.join().unwrap(),
        "guest-says-hi-own6\n",
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "inbound6-own"),
        Some("host-says-hi-own6"),
        "{}",
        ctx()
    );
    let p = PORT_INBOUND6_UDP;
    assert_eq!(
        udp6_lo.join().unwrap(),
        format!("ack-udp6-lo-{p} from [::1]:{p}"),
        "{}",
        ctx()
    );
    assert_eq!(
        udp6_own.join().unwrap(),
        format!("ack-udp6-own-{p} from [{HOST6}]:{p}"),
        "{}",
        ctx()
    );
    assert_eq!(
        mark(console, "udp6-in"),
        Some(&*format!("udp6-lo-{p} udp6-own-{p}")),
        "{}",
        ctx()
    );
    // qemu closed the socket when the guest powered off: passt -1 is done.
    let exit = passt.wait_exit(Duration::from_secs(5));
    assert_eq!(
        exit,
        Some(0),
        "console:\n{console}\npasst:\n{}",
        passt.log()
    );
    drop(topo);
}

#[test]
fn linux_guest_under_qrap_with_a_socket_netdev() {
    let test = "linux_guest_under_qrap_with_a_socket_netdev";
    // qrap is another package's binary: there when the workspace was built.
    let qrap = Path::new(crate::support::PASST).with_file_name("qrap");
    if !qrap.exists() {
        eprintln!("{test}: skipped: {} not built", qrap.display());
        return;
    }
    if !prepare(test) {
        return;
    }
    let mut passt = Passt::start(
        "qrap",
        &[
            "-1",
            "-4",
            "-a",
            "192.0.2.10/24",
            "-g",
            "192.0.2.1",
            "-D",
            "192.0.2.53",
        ],
    );
    let netdev = ["-netdev".to_owned(), "socket,fd=5,id=n0".to_owned()];
    // IPv4 only (-4): the guest need not wait for SLAAC.
    let console = boot(&passt, &[qrap.to_str().unwrap(), "5"], &netdev, "nov6");
    let ctx = || format!("console:\n{console:?}\npasst:\n{}", passt.log());
    let Some(console) = console.as_deref() else {
        panic!("guest still running after {VM_LIMIT:?}\n{}", ctx());
    };
    assert_eq!(mark(console, "done"), Some(""), "{}", ctx());
    let lease = mark(console, "lease").unwrap_or_default();
    assert!(
        lease.contains("ip=192.0.2.10 mask=24 router=192.0.2.1 dns=192.0.2.53"),
        "{}",
        ctx()
    );
    let neigh4 = mark(console, "neigh4").unwrap_or_default();
    assert!(neigh4.contains("lladdr 9a:55:9a:55:9a:55"), "{}", ctx());
    let exit = passt.wait_exit(Duration::from_secs(5));
    assert_eq!(
        exit,
        Some(0),
        "console:\n{console}\npasst:\n{}",
        passt.log()
    );
}
