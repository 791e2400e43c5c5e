#!/usr/bin/env bash
# Regenerate the real-frame pcap vectors in this directory.
#
# Run as root:  sudo bash passt-core/tests/vectors/capture.sh
#
# Every capture is made between two network namespaces that this script creates
# itself (pcapgen-a and pcapgen-b, joined by one veth pair, eth0 in each). All
# traffic stays inside them and uses documentation addresses only (RFC 5737
# 192.0.2.0/24 and 198.51.100.0/24, RFC 3849 2001:db8::/32). The namespaces are
# rebuilt from scratch for each file so that neighbour caches are empty and
# link-up traffic is reproducible, and are removed on exit, also on failure.
#
# Host A (pcapgen-a): 02:00:00:00:00:0a, 192.0.2.1/24, 2001:db8::1/64
# Host B (pcapgen-b): 02:00:00:00:00:0b, 192.0.2.2/24, 2001:db8::2/64
#
# Checksum, segmentation and VLAN offloads are switched off on both veth ends,
# so every captured frame is exactly what a real NIC would have put on the wire
# (valid checksums, no super-sized GSO segments, VLAN tags inline).

set -euo pipefail

NS_A=pcapgen-a
NS_B=pcapgen-b
MAC_A=02:00:00:00:00:0a
MAC_B=02:00:00:00:00:0b
V4_A=192.0.2.1
V4_B=192.0.2.2
V6_A=2001:db8::1
V6_B=2001:db8::2

OUT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMPD="$(mktemp -d /tmp/pcapgen.XXXXXX)"
CAP_PID=""

log() { printf '[capture] %s\n' "$*" >&2; }

# --- prerequisites -----------------------------------------------------------

if [[ $(id -u) -ne 0 ]]; then
    echo "capture.sh: must run as root (creates network namespaces)" >&2
    exit 1
fi

need_pkgs=()
for pair in tcpdump:tcpdump ip:iproute2 ping:iputils-ping arping:arping \
    ndisc6:ndisc6 rdisc6:ndisc6 dnsmasq:dnsmasq dhclient:isc-dhcp-client \
    busybox:busybox socat:socat radvd:radvd ethtool:ethtool; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
        need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    log "installing: ${need_pkgs[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
        "${need_pkgs[@]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"
command -v python3 >/dev/null || { echo "capture.sh: python3 is required" >&2; exit 1; }

# --- namespace handling ------------------------------------------------------

# Kill every process still running inside one of our namespaces (only ours can
# be there: the namespaces are created by this script), then delete it.
drop_ns() {
    local ns=$1 pid
    ip netns list 2>/dev/null | grep -qw "^$ns" || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    if [[ -n "$CAP_PID" ]]; then
        kill -INT "$CAP_PID" 2>/dev/null || true
    fi
    drop_ns "$NS_A"
    drop_ns "$NS_B"
    [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$TMPD"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Foreground helpers. Background jobs call `ip netns exec` directly instead, so
# that $! is the pid of the program itself (ip execs it), not of a subshell.
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# setup [b_down]: fresh namespaces, veth pair, addresses. With "b_down", B's
# eth0 is configured but left down, so a capture can see it come up.
# Unless IPV6_LIVELY=1, router solicitations and DAD are switched off so that
# captures other than ipv6.pcap are not interleaved with unrelated ND traffic.
setup() {
    local b_state=${1:-up} ns
    drop_ns "$NS_A"
    drop_ns "$NS_B"
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    for ns in "$NS_A" "$NS_B"; do
        ip netns exec "$ns" sysctl -qw \
            net.ipv4.icmp_ratelimit=0 \
            net.ipv6.icmp.ratelimit=0 \
            net.ipv6.conf.default.use_tempaddr=0 \
            net.ipv6.conf.default.addr_gen_mode=0
        if [[ "${IPV6_LIVELY:-0}" != 1 ]]; then
            ip netns exec "$ns" sysctl -qw \
                net.ipv6.conf.default.router_solicitations=0 \
                net.ipv6.conf.default.accept_dad=0 \
                net.ipv6.conf.default.dad_transmits=0
        fi
        ip -n "$ns" link set lo up
    done
    ip -n "$NS_A" link add eth0 address "$MAC_A" type veth \
        peer name eth0 address "$MAC_B" netns "$NS_B"
    for ns in "$NS_A" "$NS_B"; do
        ip netns exec "$ns" ethtool -K eth0 rx off tx off sg off tso off gso off gro off \
            rxvlan off txvlan off >/dev/null 2>&1 || true
        ip -n "$ns" link set eth0 mtu 1500
    done
    ip -n "$NS_A" addr add "$V4_A/24" dev eth0
    ip -n "$NS_B" addr add "$V4_B/24" dev eth0
    ip -n "$NS_A" -6 addr add "$V6_A/64" dev eth0 nodad
    ip -n "$NS_A" link set eth0 up
    if [[ "$b_state" == up ]]; then
        ip -n "$NS_B" -6 addr add "$V6_B/64" dev eth0 nodad
        ip -n "$NS_B" link set eth0 up
        # Let link-up chatter (MLD reports) pass before any capture starts.
        sleep 2.5
    fi
}

# cap_start NS FILE [BPF filter...]: capture on eth0 of NS into $TMPD/FILE.
cap_start() {
    local ns=$1 file=$2 i
    shift 2
    ip netns exec "$ns" tcpdump -i eth0 -y EN10MB -s 0 -U --immediate-mode -n -Z root \
        -w "$TMPD/$file" "$@" 2>"$TMPD/$file.log" &
    CAP_PID=$!
    for i in $(seq 1 100); do
        grep -q 'listening on' "$TMPD/$file.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q 'listening on' "$TMPD/$file.log" || {
        cat "$TMPD/$file.log" >&2
        echo "capture.sh: tcpdump did not start" >&2
        exit 1
    }
    sleep 0.3
}

# cap_stop FILE: end the running capture and move FILE into the vector dir.
cap_stop() {
    local file=$1
    sleep 1
    kill -INT "$CAP_PID"
    wait "$CAP_PID" || true
    CAP_PID=""
    mv "$TMPD/$file" "$OUT_DIR/$file"
    log "$file: $(tcpdump -r "$OUT_DIR/$file" -n 2>/dev/null | wc -l) frames"
}

# --- helper programs (python3, run inside the namespaces) ---------------------

cat >"$TMPD/tcp_server.py" <<'EOF'
# Accept one connection, read until the peer closes its half, answer, close.
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
s.settimeout(10)
c, _ = s.accept()
c.settimeout(10)
got = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    got += d
c.sendall(b"received %d bytes\n" % len(got))
c.close()
s.close()
EOF

cat >"$TMPD/tcp_client.py" <<'EOF'
# Connect, send a short line and 3000 bytes (several full segments), close our
# half, read the answer until the server closes. Then try a closed port (RST).
import socket, sys
addr, port, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
c = socket.socket(fam, socket.SOCK_STREAM)
c.settimeout(10)
c.connect((addr, port))
c.sendall(b"hello from pcapgen\n")
c.sendall(bytes((i * 7) & 0xFF for i in range(3000)))
c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
c.close()
r = socket.socket(fam, socket.SOCK_STREAM)
r.settimeout(5)
try:
    r.connect((addr, closed))
except ConnectionRefusedError:
    pass
r.close()
EOF

cat >"$TMPD/udp_server.py" <<'EOF'
# Echo datagrams on IPv4 and IPv6 until N have been answered (or timeout).
import select, socket, sys
v4, v6, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.bind((v4, port))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind((v6, port))
done = 0
while done < n:
    r, _, _ = select.select([s4, s6], [], [], 10)
    if not r:
        break
    for s in r:
        d, peer = s.recvfrom(65536)
        s.sendto(b"echo: " + d, peer)
        done += 1
EOF

cat >"$TMPD/udp_client.py" <<'EOF'
# UDP over IPv4 (normal, then with a zero checksum via SO_NO_CHECK, RFC 768:
# "all zero transmitted checksum value means that the transmitter generated no
# checksum") and over IPv6; each answered by the echo server.
import socket, sys
v4, v6, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
SO_NO_CHECK = 11
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.settimeout(5)
a.sendto(b"udp over ipv4\n", (v4, port))
a.recvfrom(2048)
z = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
z.settimeout(5)
z.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
z.sendto(b"udp over ipv4, no checksum\n", (v4, port))
z.recvfrom(2048)
b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
b.settimeout(5)
b.sendto(b"udp over ipv6\n", (v6, port))
b.recvfrom(2048)
b.sendto(b"", (v6, port))  # empty payload: UDP length 8
b.recvfrom(2048)
EOF

cat >"$TMPD/udp_probe.py" <<'EOF'
# One UDP datagram to a closed port (ICMP/ICMPv6 port unreachable comes back).
# With "dstopts"/"hopopts", an IPv6 Destination Options or Hop-by-Hop Options
# extension header (one PadN option, RFC 8200 section 4.2) is added via
# RFC 3542 ancillary data.
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
ext = sys.argv[3] if len(sys.argv) > 3 else ""
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
IPV6_HOPOPTS, IPV6_DSTOPTS = 54, 59
# next header (filled by the kernel), hdr ext len 0, PadN with 4 zero bytes
opts = bytes([0, 0, 1, 4, 0, 0, 0, 0])
anc = []
if ext == "dstopts":
    anc = [(socket.IPPROTO_IPV6, IPV6_DSTOPTS, opts)]
elif ext == "hopopts":
    anc = [(socket.IPPROTO_IPV6, IPV6_HOPOPTS, opts)]
s.sendmsg([b"is anyone there?\n"], anc, 0, (addr, port))
EOF

# --- captures ------------------------------------------------------------------

capture_arp() {
    log "arp.pcap"
    setup
    cap_start "$NS_B" arp.pcap arp
    in_a ping -c 1 -W 2 "$V4_B" >/dev/null                       # request + reply
    in_a arping -q -c 1 -w 2 -i eth0 "$V4_B" || true              # arping request + reply
    in_a arping -q -0 -c 1 -w 2 -i eth0 "$V4_B" || true           # probe (sender 0.0.0.0)
    in_a arping -q -U -S "$V4_A" -c 1 -w 1 -i eth0 "$V4_A" || true    # gratuitous request
    in_a arping -q -U -P -S "$V4_A" -c 1 -w 1 -i eth0 "$V4_A" || true # gratuitous reply
    cap_stop arp.pcap
}

# This kernel may lack 802.1Q support (CONFIG_VLAN_8021Q), so VLAN frames are
# made in two ways that need none: arping's own 802.1Q option (-V, -Q), and
# real untagged frames (ARP, ICMP echo, NDP, ICMPv6 echo between A and B,
# captured first) sent again from A through an AF_PACKET socket with tags
# inserted after the MAC addresses. Only the tags are synthetic.
cat >"$TMPD/retag.py" <<'EOF'
import socket, struct, sys, time
src, iface, tags = sys.argv[1], sys.argv[2], sys.argv[3:]
# tags: "TPID:VID[:PCP]" outermost first, e.g. 88a8:20 8100:10
tag = b""
for t in tags:
    parts = t.split(":")
    tpid, vid = int(parts[0], 16), int(parts[1])
    pcp = int(parts[2]) if len(parts) > 2 else 0
    tag += struct.pack("!HH", tpid, (pcp << 13) | vid)
raw = open(src, "rb").read()
magic = struct.unpack("<I", raw[:4])[0]
assert magic == 0xA1B2C3D4, "expects a little-endian microsecond pcap"
off = 24
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
while off + 16 <= len(raw):
    _, _, incl, _ = struct.unpack("<IIII", raw[off:off + 16])
    frame = raw[off + 16:off + 16 + incl]
    off += 16 + incl
    s.send(frame[:12] + tag + frame[12:])
    time.sleep(0.01)
EOF

# capture_untagged_base FILTER: plain traffic between A and B, captured on A
# into $TMPD/base.pcap, to be re-sent tagged. With a filter starting "arp or
# icmp" only IPv4 is generated.
capture_untagged_base() {
    cap_start "$NS_A" base.pcap "$1"
    in_a ping -c 1 -W 2 "$V4_B" >/dev/null
    if [[ "$1" == *icmp6* ]]; then
        in_a ping -6 -c 1 -W 2 "$V6_B" >/dev/null
    fi
    sleep 0.5
    kill -INT "$CAP_PID"
    wait "$CAP_PID" || true
    CAP_PID=""
}

capture_vlan() {
    log "vlan.pcap"
    setup
    capture_untagged_base 'arp or icmp or icmp6'
    cap_start "$NS_A" vlan.pcap vlan
    in_a arping -q -V 10 -c 1 -w 1 -i eth0 "$V4_B" || true       # tagged ARP, VID 10
    in_a arping -q -V 10 -Q 5 -c 1 -w 1 -i eth0 "$V4_B" || true  # VID 10, PCP 5
    in_a python3 "$TMPD/retag.py" "$TMPD/base.pcap" eth0 8100:10
    cap_stop vlan.pcap
}

capture_qinq() {
    log "qinq.pcap"
    setup
    capture_untagged_base 'arp or icmp'
    cap_start "$NS_A" qinq.pcap
    in_a python3 "$TMPD/retag.py" "$TMPD/base.pcap" eth0 88a8:20 8100:10
    cap_stop qinq.pcap
}

capture_ipv4() {
    log "ipv4.pcap"
    setup
    in_a ping -c 1 -W 2 "$V4_B" >/dev/null # resolve ARP before capturing
    cap_start "$NS_A" ipv4.pcap ip
    in_a ping -c 2 -i 0.2 -W 2 "$V4_B" >/dev/null               # ICMP echo
    in_a ping -R -c 1 -W 2 "$V4_B" >/dev/null                   # record route option
    in_a ping -T tsonly -c 1 -W 2 "$V4_B" >/dev/null || true    # timestamp option
    in_a ping -s 3000 -c 1 -W 2 "$V4_B" >/dev/null              # fragmented both ways
    in_a python3 "$TMPD/udp_probe.py" "$V4_B" 9                 # ICMP port unreachable
    cap_stop ipv4.pcap
}

capture_tcp() {
    local fam=$1 file=$2 addr filter
    if [[ $fam == 4 ]]; then addr=$V4_B; filter="tcp and ip"; else addr=$V6_B; filter="tcp and ip6"; fi
    log "$file"
    setup
    in_a ping -"$fam" -c 1 -W 2 "$addr" >/dev/null # resolve neighbours first
    cap_start "$NS_B" "$file" "$filter"
    ip netns exec "$NS_B" python3 "$TMPD/tcp_server.py" "$addr" 8080 &
    local srv=$!
    sleep 0.5
    in_a python3 "$TMPD/tcp_client.py" "$addr" 8080 8081
    wait "$srv"
    cap_stop "$file"
}

capture_udp() {
    log "udp.pcap"
    setup
    in_a ping -c 1 -W 2 "$V4_B" >/dev/null
    in_a ping -6 -c 1 -W 2 "$V6_B" >/dev/null
    cap_start "$NS_B" udp.pcap udp
    ip netns exec "$NS_B" python3 "$TMPD/udp_server.py" "$V4_B" "$V6_B" 5555 4 &
    local srv=$!
    sleep 0.5
    in_a python3 "$TMPD/udp_client.py" "$V4_B" "$V6_B" 5555
    wait "$srv"
    # socat as a second, independent sender (one datagram each way, echoed)
    ip netns exec "$NS_B" socat -T 2 UDP4-RECVFROM:5556,bind="$V4_B" SYSTEM:'cat' &
    srv=$!
    sleep 0.5
    echo "socat over udp4" | in_a socat -T 1 - UDP4:"$V4_B":5556 >/dev/null || true
    wait "$srv" || true
    ip netns exec "$NS_B" socat -T 2 UDP6-RECVFROM:5556,bind="[$V6_B]" SYSTEM:'cat' &
    srv=$!
    sleep 0.5
    echo "socat over udp6" | in_a socat -T 1 - UDP6:"[$V6_B]":5556 >/dev/null || true
    wait "$srv" || true
    cap_stop udp.pcap
}

capture_ipv6() {
    log "ipv6.pcap"
    IPV6_LIVELY=1 setup b_down
    in_a sysctl -qw net.ipv6.conf.all.forwarding=1
    cat >"$TMPD/radvd.conf" <<EOF
interface eth0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 30;
    MaxRtrAdvInterval 100;
    AdvLinkMTU 1500;
    prefix 2001:db8:1::/64 {
        AdvOnLink on;
        AdvAutonomous on;
    };
    RDNSS 2001:db8::53 2001:db8::54 {
    };
    DNSSL example.org test.example {
    };
};
EOF
    ip -n "$NS_B" -6 addr add "$V6_B/64" dev eth0 # with DAD: a DAD NS from ::
    cap_start "$NS_A" ipv6.pcap 'ip6 and not tcp and not (udp port 546 or udp port 547)'
    ip -n "$NS_B" link set eth0 up        # MLDv2 reports, DAD NS, RS
    sleep 3
    ip netns exec "$NS_A" radvd -n -C "$TMPD/radvd.conf" -p "$TMPD/radvd.pid" -m stderr 2>"$TMPD/radvd.log" &
    local radvd=$!
    sleep 3                               # unsolicited RA; B autoconfigures (DAD)
    in_b rdisc6 -1 -w 2000 eth0 >/dev/null || true   # RS + solicited RA
    sleep 1
    in_a ping -6 -c 2 -i 0.2 -W 2 "$V6_B" >/dev/null  # NS/NA, echo
    in_a ndisc6 -1 -w 1000 "$V6_B" eth0 >/dev/null || true  # NS/NA from ndisc6
    in_a ping -6 -s 3000 -c 1 -W 2 "$V6_B" >/dev/null  # fragmented both ways
    in_a python3 "$TMPD/udp_probe.py" "$V6_B" 9         # port unreachable
    in_a python3 "$TMPD/udp_probe.py" "$V6_B" 9 dstopts # + Destination Options
    in_a python3 "$TMPD/udp_probe.py" "$V6_B" 9 hopopts # + Hop-by-Hop Options
    sleep 3.5                             # radvd spaces RAs at least 3 s apart
    kill -TERM "$radvd"                   # final RA with router lifetime 0
    wait "$radvd" || true
    cap_stop ipv6.pcap
}

dnsmasq_start() {
    ip netns exec "$NS_A" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
        --interface=eth0 --bind-interfaces --user=root --group=root \
        --pid-file="$TMPD/dnsmasq.pid" --dhcp-leasefile="$TMPD/dnsmasq.leases" \
        --no-ping --dhcp-authoritative --log-dhcp --log-facility="$TMPD/dnsmasq.log" \
        "$@" &
    DNSMASQ=$!
    sleep 1
}

# Client hook for udhcpc ($1 = event) and dhclient ($reason): put the leased
# IPv4 address on the interface (so a RELEASE can be sent from it) and take it
# away again. Only B's eth0 is touched.
cat >"$TMPD/dhcp_script.sh" <<'EOF'
#!/bin/sh
case "${reason:-$1}" in
bound | renew) ip -4 addr replace "$ip/$subnet" dev "$interface" ;;
BOUND | RENEW | REBIND | REBOOT) ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
deconfig | RELEASE | EXPIRE | STOP | FAIL) ip -4 addr flush dev "$interface" scope global ;;
esac
exit 0
EOF
chmod +x "$TMPD/dhcp_script.sh"

# Wait (up to 10 s) until B's eth0 has an IPv4 address from DHCP.
wait_for_v4_addr() {
    local i
    for i in $(seq 1 100); do
        [[ -n "$(ip -n "$NS_B" -4 addr show dev eth0 scope global)" ]] && return 0
        sleep 0.1
    done
    echo "capture.sh: no DHCP lease arrived" >&2
    return 1
}

capture_dhcp() {
    log "dhcp.pcap"
    setup
    ip -n "$NS_B" addr flush dev eth0 scope global
    dnsmasq_start \
        --dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h \
        --dhcp-option=option:router,"$V4_A" \
        --dhcp-option=option:dns-server,192.0.2.53,192.0.2.54 \
        --dhcp-option=option:domain-name,example.org \
        --dhcp-option-force=option:domain-search,example.org,test.example \
        --dhcp-option=option:mtu,1500
    cap_start "$NS_A" dhcp.pcap 'udp port 67 or udp port 68'
    # busybox udhcpc: DISCOVER/OFFER/REQUEST/ACK; SIGTERM makes it send a
    # RELEASE (-R) from the address it configured
    ip netns exec "$NS_B" busybox udhcpc -i eth0 -f -R -t 3 -T 2 -s "$TMPD/dhcp_script.sh" -O search \
        -x hostname:pcapgen-b >"$TMPD/udhcpc.log" 2>&1 &
    local udhcpc=$!
    wait_for_v4_addr
    kill -TERM "$udhcpc"
    wait "$udhcpc" || true
    sleep 0.5
    # ISC dhclient: the same exchange with its own option set (it then
    # daemonizes), then RELEASE (-r), which also stops the daemon
    in_b dhclient -4 -1 -v -sf "$TMPD/dhcp_script.sh" -lf "$TMPD/dhclient4.leases" \
        -pf "$TMPD/dhclient4.pid" eth0 >"$TMPD/dhclient4.log" 2>&1 || true
    wait_for_v4_addr
    in_b dhclient -4 -r -v -sf "$TMPD/dhcp_script.sh" -lf "$TMPD/dhclient4.leases" \
        -pf "$TMPD/dhclient4.pid" eth0 >>"$TMPD/dhclient4.log" 2>&1 || true
    cap_stop dhcp.pcap
    kill -TERM "$DNSMASQ" 2>/dev/null || true
    wait "$DNSMASQ" || true
}

capture_dhcpv6() {
    log "dhcpv6.pcap"
    setup
    ip -n "$NS_B" -6 addr flush dev eth0 scope global
    dnsmasq_start \
        --dhcp-range=2001:db8::1000,2001:db8::1fff,64,1h \
        --dhcp-option=option6:dns-server,[2001:db8::53],[2001:db8::54] \
        --dhcp-option=option6:domain-search,example.org,test.example
    cap_start "$NS_A" dhcpv6.pcap 'udp port 546 or udp port 547'
    # SOLICIT/ADVERTISE/REQUEST/REPLY, then RELEASE/REPLY
    in_b dhclient -6 -1 -v -sf /bin/true -lf "$TMPD/dhclient6.leases" \
        -pf "$TMPD/dhclient6.pid" eth0 >/dev/null 2>&1 || true
    sleep 0.5
    in_b dhclient -6 -r -v -sf /bin/true -lf "$TMPD/dhclient6.leases" \
        -pf "$TMPD/dhclient6.pid" eth0 >/dev/null 2>&1 || true
    sleep 0.5
    # stateless: INFORMATION-REQUEST/REPLY, then stop that client (-x)
    in_b dhclient -6 -S -1 -v -sf /bin/true -lf "$TMPD/dhclient6s.leases" \
        -pf "$TMPD/dhclient6s.pid" eth0 >/dev/null 2>&1 || true
    sleep 0.5
    in_b dhclient -6 -x -sf /bin/true -lf "$TMPD/dhclient6s.leases" \
        -pf "$TMPD/dhclient6s.pid" eth0 >/dev/null 2>&1 || true
    cap_stop dhcpv6.pcap
    kill -TERM "$DNSMASQ" 2>/dev/null || true
    wait "$DNSMASQ" || true
}

# --- main ------------------------------------------------------------------------

ALL=(arp vlan qinq ipv4 tcp4 tcp6 udp ipv6 dhcp dhcpv6)
WANT=("$@")
((${#WANT[@]})) || WANT=("${ALL[@]}")
for w in "${WANT[@]}"; do
    case $w in
        arp) capture_arp ;;
        vlan) capture_vlan ;;
        qinq) capture_qinq ;;
        ipv4) capture_ipv4 ;;
        tcp4) capture_tcp 4 tcp4.pcap ;;
        tcp6) capture_tcp 6 tcp6.pcap ;;
        udp) capture_udp ;;
        ipv6) capture_ipv6 ;;
        dhcp) capture_dhcp ;;
        dhcpv6) capture_dhcpv6 ;;
        *) echo "capture.sh: unknown capture '$w' (known: ${ALL[*]})" >&2; exit 2 ;;
    esac
done
log "done: files in $OUT_DIR"
