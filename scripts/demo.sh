#!/usr/bin/env bash
# pasta giving a network namespace connectivity, on a simulated host made of
# throw-away network namespaces (run as root on Debian; nothing leaves the
# namespaces this script creates, and they are removed at the end).
#
#   remote  198.51.100.1 (a web server), 203.0.113.1 (the host's gateway)
#     | veth
#   host    203.0.113.2/24, 2001:db8:2::2/64, default routes via remote
#     | pasta (this project), in spawn mode: a new namespace with a tap
#   guest   gets the host's addresses, routes and resolver; fetches a file
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
# Whether Debian package $1 is installed (not merely known to dpkg).
installed() { [ "$(dpkg-query -W -f '${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
# Either busybox package gives /bin/busybox; installing one would remove the
# other, so whichever is there is used, and busybox-static comes only if
# neither is.
want=(iproute2 python3)
installed busybox || installed busybox-static || want+=(busybox-static)
for pkg in "${want[@]}"; do
    installed "$pkg" || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"; }
done
cargo build -q --release -p pasta-cli
PASTA=$PWD/target/release/pasta

p=demo$$
R=$p-remote H=$p-host
work=$(mktemp -d)
cleanup() {
    [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null || true
    ip netns del "$R" 2>/dev/null || true
    ip netns del "$H" 2>/dev/null || true
    rm -rf "/etc/netns/$H" "$work"
}
trap cleanup EXIT

ip netns add "$R"; ip netns add "$H"
ip -n "$R" link add eth0 type veth peer name eth0 netns "$H"
ip -n "$R" addr add 203.0.113.1/24 dev eth0
ip -n "$R" addr add 198.51.100.1/32 dev lo
ip -n "$R" -6 addr add 2001:db8:2::1/64 dev eth0 nodad
for ns in "$R" "$H"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$H" addr add 203.0.113.2/24 dev eth0
ip -n "$H" -6 addr add 2001:db8:2::2/64 dev eth0 nodad
ip -n "$H" route add default via 203.0.113.1
ip -n "$H" -6 route add default via 2001:db8:2::1
mkdir -p "/etc/netns/$H"
printf 'nameserver 198.51.100.53\nsearch example.org\n' > "/etc/netns/$H/resolv.conf"

echo "hello from the remote side, through pasta" > "$work/hello.txt"
ip netns exec "$R" python3 -m http.server --bind 198.51.100.1 --directory "$work" 8080 \
    >/dev/null 2>&1 &
srv=$!
sleep 1

echo "== the host's network"
ip -n "$H" -br addr show eth0
echo "== pasta --config-net, inside a new namespace:"
ip netns exec "$H" "$PASTA" --config-net --quiet -- sh -c '
    ip -br addr show scope global
    ip route show default
    echo "resolver: $(grep nameserver /etc/resolv.conf || true)"
    echo "== GET http://198.51.100.1:8080/hello.txt"
    busybox wget -q -O - http://198.51.100.1:8080/hello.txt
'
