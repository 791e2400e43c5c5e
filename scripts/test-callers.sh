#!/usr/bin/env bash
# Our pasta under its real callers: rootless podman 5 (from Debian 13) and
# rootlesskit 2, on a simulated host (run as root on Debian; test-all.sh
# calls it after `cargo test`).
#
# podman 5 needs Debian 13's C library, so it runs in a Debian 13 tree built
# with debootstrap from the mirror this machine's apt already uses, cached
# under $PASST_RS_CACHE (default /var/cache/passt-rs-tests) by a version
# stamp. The tree is entered with a new mount namespace and pivot_root (the
# kernel refuses new user namespaces inside a chroot), as an unprivileged
# user with subordinate ids. rootlesskit is one Go binary, taken from the
# tree and run on this machine directly. Both find our pasta first: podman
# through a test-only containers.conf's helper_binaries_dir, rootlesskit on
# PATH; a wrapper logs each command line they give it.
#
#   remote  203.0.113.1/24, 2001:db8:2::1/64, servers on 198.51.100.1
#           and 2001:db8:3::1
#     | veth
#   host    203.0.113.2/24, 2001:db8:2::2/64 on veth0, default routes via
#           remote; podman and rootlesskit run here, unprivileged
#     | pasta (ours)
#   container (podman) / namespace (rootlesskit)
#
# On the machine itself it installs debootstrap and uidmap if missing,
# makes /dev/net/tun 0666 (as distributions ship it) and keeps the tree in
# the cache; the user and its subordinate ids exist only in the tree and in
# a mount namespace of rootlesskit's run. Nothing leaves the namespaces this
# script creates. Prints one line per
# check and `N passed, M failed` at the end; exits non-zero on any failure.
#
#   PASTA=PATH              the pasta to test (default: cargo build -p pasta-cli)
#   PASST_RS_CACHE=DIR      where the Debian 13 tree is kept between runs
#   PASST_RS_KEEP=1         keep the scratch directory (logs) at the end
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test-callers: run as root (namespaces, debootstrap)" >&2; exit 1; }

CACHE=${PASST_RS_CACHE:-/var/cache/passt-rs-tests}
# Bump when the tree's contents below change: a new stamp builds a new tree.
STAMP=trixie-podman-1
TREE=$CACHE/$STAMP/root
PACKAGES=podman,uidmap,iproute2,runc,busybox-static,rootlesskit
# The unprivileged user podman and rootlesskit run as, and its subordinate ids.
CUSER=pastacaller CUID=4321 SUBIDS=200000:65536

step() { printf '\n==> %s\n' "$*"; }
# Whether Debian package $1 is installed (not merely known to dpkg).
installed() { [ "$(dpkg-query -W -f '${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# ---------------------------------------------------------------- provisioning

step "callers: host tools"
missing=()
# debootstrap builds the tree; uidmap's newuidmap/newgidmap are what
# rootlesskit uses on this machine; util-linux gives unshare, nsenter,
# setpriv, pivot_root.
for pkg in debootstrap uidmap iproute2 util-linux; do
    installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Debian archive this machine's apt uses (for its own release), read
# from the apt configuration now rather than written down anywhere.
debian_mirror() {
    local codename uri
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null |
        awk -v c="$codename" '$2 == c { print $1; exit }')
    if [ -z "$uri" ]; then
        # Without index data yet: the first URI of a source for that release.
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk -v c="$codename" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i !~ /^\[/ && $(i+1) == c) { print $i; exit } }')
    fi
    if [ -z "$uri" ]; then
        uri=$(awk -v c="$codename" '
            /^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c && u != "") { print u; exit } }
            /^$/ { u = "" }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    fi
    [ -n "$uri" ] || { echo "test-callers: no Debian source for '$codename' in the apt configuration" >&2; return 1; }
    echo "$uri"
}

# An HTTP proxy apt is configured with, for debootstrap's downloads too.
eval "$(apt-config shell apt_proxy Acquire::http::Proxy)"
if [ -n "${apt_proxy:-}" ] && [ -z "${http_proxy:-}" ]; then export http_proxy=$apt_proxy; fi

build_tree() {
    local mirror tmp
    mirror=$(debian_mirror)
    tmp=$CACHE/$STAMP.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    echo "debootstrap trixie ($PACKAGES) into $tmp"
    if ! debootstrap --variant=minbase --include="$PACKAGES" trixie "$tmp/root" "$mirror" \
        >"$tmp/debootstrap.log" 2>&1; then
        tail -n 40 "$tmp/debootstrap.log" >&2
        [ -f "$tmp/root/debootstrap/debootstrap.log" ] && tail -n 40 "$tmp/root/debootstrap/debootstrap.log" >&2
        rm -rf "$tmp"
        return 1
    fi
    local r=$tmp/root
    chroot "$r" groupadd -g "$CUID" "$CUSER"
    chroot "$r" useradd -m -u "$CUID" -g "$CUID" -s /bin/sh "$CUSER"
    echo "$CUSER:$SUBIDS" >"$r/etc/subuid"
    echo "$CUSER:$SUBIDS" >"$r/etc/subgid"
    mkdir -p "$r/opt/passt-rs" "$r/.oldroot"
    rm -f "$r"/var/cache/apt/archives/*.deb
    # The container image: busybox-static and its applet links.
    local img=$tmp/image
    mkdir -p "$img/bin" "$img/etc" "$img/tmp" "$img/proc" "$img/sys" "$img/dev"
    cp "$r/bin/busybox" "$img/bin/busybox"
    for applet in $("$img/bin/busybox" --list); do
        [ -e "$img/bin/$applet" ] || ln -s busybox "$img/bin/$applet"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$img/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\n' >"$img/etc/group"
    tar -C "$img" -cf "$tmp/busybox-image.tar" .
    rm -rf "$img"
    # Older stamps go; this one appears whole or not at all.
    local old
    for old in "$CACHE"/trixie-podman-*; do
        [ "$old" = "$tmp" ] || rm -rf "$old"
    done
    mv "$tmp" "$CACHE/$STAMP"
}

step "callers: Debian 13 tree ($TREE)"
mkdir -p "$CACHE"
if [ -x "$TREE/usr/bin/podman" ] && [ -f "$CACHE/$STAMP/busybox-image.tar" ]; then
    echo "cached"
else
    start=$SECONDS
    build_tree
    echo "built in $((SECONDS - start))s"
fi
echo "podman $(chroot "$TREE" dpkg-query -W -f '${Version}' podman), rootlesskit $(chroot "$TREE" dpkg-query -W -f '${Version}' rootlesskit)"

step "callers: our pasta"
if [ -z "${PASTA:-}" ]; then
    cargo build -q -p pasta-cli
    PASTA=$PWD/target/debug/pasta
fi
[ -x "$PASTA" ] || { echo "test-callers: no pasta at $PASTA" >&2; exit 1; }
echo "$PASTA ($("$PASTA" --version | head -n 1))"

# ---------------------------------------------------------------- the run

W=$(mktemp -d /tmp/passt-rs-callers.XXXXXX)
chmod 0755 "$W"
p=pcl$$
R=$p-r H=$p-h
pids=()
# Processes of the test's own user and its subordinate ids (podman's pause
# process, conmon, containers, pasta): nobody else runs as these.
test_user_pids() {
    local lo=${SUBIDS%:*} n=${SUBIDS#*:}
    ps -eo pid=,uid= | awk -v u="$CUID" -v lo="$lo" -v hi="$((lo + n))" \
        '$2 == u || ($2 >= lo && $2 < hi) { print $1 }'
}
cleanup() {
    local pid
    if [ -x "$W/enter" ] && [ -e "/run/netns/$H" ]; then
        timeout 60 nsenter --net="/run/netns/$H" -- unshare -m --propagation private \
            "$W/enter" podman rm -a -f -t 0 >/dev/null 2>&1 || true
    fi
    for pid in "${pids[@]}" $(test_user_pids); do
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pid in $(test_user_pids); do kill -9 "$pid" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(test_user_pids)" ] && break; sleep 0.3; done
    ip netns del "$H" 2>/dev/null || true
    ip netns del "$R" 2>/dev/null || true
    rm -rf "/etc/netns/$H"
    if [ -n "${PASST_RS_KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

# Our pasta, behind a wrapper that records each command line it is given.
# The user's home (podman's storage), runtime directory and /dev/shm (its
# locks) last for this run, across podman's calls.
mkdir -p "$W/opt/bin" "$W/opt/log" "$W/home" "$W/run" "$W/shm" "$W/rk"
cp "$PASTA" "$W/opt/pasta.real"
cp "$TREE/bin/busybox" "$W/busybox"
cp "$TREE/usr/bin/rootlesskit" "$W/rootlesskit"
cat >"$W/opt/bin/pasta" <<'EOF'
#!/bin/sh
# Test wrapper: log the caller's command line, then run our pasta with it,
# its warnings and errors also kept in a log file of its own (fatal ones
# still reach the caller on stderr).
here=$(dirname "$0")
printf 'pasta %s\n' "$*" >>"$here/../pasta-args.log"
exec "$here/../pasta.real" --log-file "$here/../log/pasta-$$.log" "$@"
EOF
chmod 0755 "$W/opt/bin/pasta"
: >"$W/opt/pasta-args.log"
chmod 0666 "$W/opt/pasta-args.log"
# podman's configuration for these tests only: our pasta first, then the
# tree's own helpers; runc and cgroupfs for this machine's hybrid cgroups.
cat >"$W/opt/containers.conf" <<'EOF'
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
helper_binaries_dir = ["/opt/passt-rs/bin", "/usr/libexec/podman", "/usr/lib/podman"]

[network]
default_rootless_network_cmd = "pasta"
EOF
cat >"$W/opt/storage.conf" <<'EOF'
[storage]
driver = "vfs"
EOF
chown "$CUID:$CUID" "$W/home" "$W/run" "$W/rk" "$W/opt/log"
chmod 0700 "$W/run"
chmod 1777 "$W/shm"

# The simulated host (pasta-cli/tests/support.rs builds the same).
ip netns add "$R"
ip netns add "$H"
ip link add veth0 netns "$H" type veth peer name veth1 netns "$R"
ip -n "$R" link set lo up
ip -n "$R" link set veth1 up
ip -n "$R" addr add 203.0.113.1/24 dev veth1
ip -n "$R" addr add 2001:db8:2::1/64 dev veth1 nodad
ip -n "$R" addr add 198.51.100.1/32 dev lo
ip -n "$R" addr add 2001:db8:3::1/128 dev lo
ip -n "$H" link set lo up
ip -n "$H" link set veth0 up
ip -n "$H" addr add 203.0.113.2/24 dev veth0
ip -n "$H" addr add 2001:db8:2::2/64 dev veth0 nodad
ip -n "$H" route add default via 203.0.113.1
ip -n "$H" route add 198.51.100.0/24 via 203.0.113.1
ip -n "$H" -6 route add default via 2001:db8:2::1
mkdir -p "/etc/netns/$H"
printf 'nameserver 198.51.100.53\nsearch example.org\n' >"/etc/netns/$H/resolv.conf"
# Unprivileged users' ICMP echo sockets (per network namespace) and tap.
ip netns exec "$H" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
chmod 0666 /dev/net/tun

in_host() { nsenter --net="/run/netns/$H" -- "$@"; }
# PIDs of our pasta started by podman here (its wrapper's path is this run's).
our_pastas() {
    local d
    for d in /proc/[0-9]*; do
        [ "$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null | cut -d' ' -f1)" = /opt/passt-rs/bin/../pasta.real ] &&
            [ "$(stat -c %u "$d" 2>/dev/null || echo 0)" -ge "${SUBIDS%:*}" ] && echo "${d#/proc/}"
    done || true | tr '\n' ' ' | sed 's/ $//'
}
# Keep the command lines pasta was given so far, and start a new list.
args_mark() { cat "$W/opt/pasta-args.log" >>"$W/pasta-args.all"; : >"$W/opt/pasta-args.log"; }

# A server in the background, in namespace NETNS, that answers every
# connection on PORT with a line of TEXT and keeps what the client sent in
# $W/got-PORT: serve NETNS PORT TEXT
serve() {
    local ns=$1 port=$2 text=$3 script
    script=$W/greet-$port
    printf '#!/bin/sh\necho %s\ncat >%s\n' "$text" "$W/got-$port" >"$script"
    chmod 0755 "$script"
    setsid nsenter --net="/run/netns/$ns" -- "$W/busybox" nc -ll -p "$port" -e "$script" \
        </dev/null >/dev/null 2>&1 &
    pids+=($!)
}

# What the server at ADDR PORT says to a client in NETNS that sends a line,
# retrying while nothing answers (servers start in the background):
# fetch NETNS ADDR PORT EXPECTED
fetch() {
    local ns=$1 host=$2 port=$3 want=$4 got="" i
    for i in $(seq 1 40); do
        got=$(echo "from-client" | timeout 5 nsenter --net="/run/netns/$ns" -- \
            "$W/busybox" nc -w 3 "$host" "$port" 2>/dev/null || true)
        [ "$got" = "$want" ] && break
        sleep 0.25
    done
    printf '%s' "$got"
}

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    shift
    [ $# -gt 0 ] && printf '       %s\n' "$@"
    return 0
}
# check NAME WANT GOT [FILES TO SHOW ON FAILURE...]
check() {
    local name=$1 want=$2 got=$3
    shift 3
    if [ "$got" = "$want" ]; then
        ok "$name"
    else
        bad "$name" "want: $want" "got:  $got"
        local f
        # The files named, and the newest log of our pasta.
        for f in "$@" $(ls -t "$W"/opt/log/pasta-*.log 2>/dev/null | head -n 1); do
            [ -s "$f" ] && { echo "       --- $f"; sed 's/^/       | /' "$f" | tail -n 40; }
        done
    fi
}

# ---------------------------------------------------------------- podman

# Enter the tree in the host namespace: a new mount namespace, the tree as
# root by pivot_root, then the unprivileged user runs "$@".
cat >"$W/enter" <<EOF
#!/bin/sh
set -e
T=$TREE
mount --bind "\$T" "\$T"
mount --rbind /proc "\$T/proc"
mount -t sysfs sysfs "\$T/sys"
mount --rbind /sys/fs/cgroup "\$T/sys/fs/cgroup"
mount --rbind /dev "\$T/dev"
mount -t tmpfs -o mode=1777 tmpfs "\$T/tmp"
mount --bind "$W/shm" "\$T/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "\$T/run"
mkdir -p "\$T/run/user/$CUID"
mount --bind "$W/run" "\$T/run/user/$CUID"
mount --bind "$W/home" "\$T/home/$CUSER"
mount --bind "$W/opt" "\$T/opt/passt-rs"
mount --bind "/etc/netns/$H/resolv.conf" "\$T/etc/resolv.conf"
cd "\$T"
pivot_root . .oldroot
cd /
umount -l /.oldroot
mount --make-rshared /
exec setpriv --reuid=$CUID --regid=$CUID --init-groups \\
    env -i HOME=/home/$CUSER USER=$CUSER LOGNAME=$CUSER XDG_RUNTIME_DIR=/run/user/$CUID \\
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \\
    CONTAINERS_CONF=/opt/passt-rs/containers.conf \\
    CONTAINERS_STORAGE_CONF=/opt/passt-rs/storage.conf \\
    PODMAN_IGNORE_CGROUPSV1_WARNING=1 \\
    "\$@"
EOF
chmod 0755 "$W/enter"
in_tree() { in_host unshare -m --propagation private "$W/enter" "$@"; }
# podman ARGS...: stdout; stderr goes to $W/podman.err (and is kept per call
# in $W/podman.log).
podman() {
    local status=0
    in_tree podman "$@" 2>"$W/podman.err" || status=$?
    { echo "\$ podman $*  (exit $status)"; cat "$W/podman.err"; } >>"$W/podman.log"
    return $status
}

step "callers: podman (rootless, --network=pasta, our pasta)"
cp "$CACHE/$STAMP/busybox-image.tar" "$W/home/busybox-image.tar"
chmod 0644 "$W/home/busybox-image.tar"
IMG=localhost/passt-rs-busybox
if podman import --change 'CMD=["/bin/sh"]' "/home/$CUSER/busybox-image.tar" "$IMG" >/dev/null; then
    ok "podman import of a local busybox image"
else
    bad "podman import of a local busybox image" "$(cat "$W/podman.err")"
fi

host4=$(ip -n "$H" -4 -o addr show dev veth0 scope global | awk '{print $4}')
host6=$(ip -n "$H" -6 -o addr show dev veth0 scope global | awk '{print $4}')
gw4=$(ip -n "$H" -4 route show default | awk '{print $3}')
gw6=$(ip -n "$H" -6 route show default | awk '{print $3}')

# Addresses and routes: the container's are the host's.
out=$(podman run --rm "$IMG" sh -c '
    echo "a4 $(ip -4 -o addr show scope global | awk "{print \$4}")"
    echo "a6 $(ip -6 -o addr show scope global | awk "{print \$4}" | grep -x "$1")"
    echo "r4 $(ip -4 route show default | awk "{print \$3}")"
    echo "r6 $(ip -6 route show default | awk "{print \$3}")"
    echo "hosts $(grep -w host.containers.internal /etc/hosts | awk "{print \$1}")"
' sh "$host6" || true)
echo "$out" >"$W/container-net.txt"
show=("$W/podman.err" "$W/opt/pasta-args.log")
check "podman: container has the host's IPv4 address" "$host4" "$(awk '$1=="a4"{print $2}' <<<"$out")" "${show[@]}"
check "podman: container has the host's IPv6 address" "$host6" "$(awk '$1=="a6"{print $2}' <<<"$out")" "${show[@]}"
check "podman: container's IPv4 default route is the host's" "$gw4" "$(awk '$1=="r4"{print $2}' <<<"$out")" "${show[@]}"
check "podman: container's IPv6 default route is the host's" "$gw6" "$(awk '$1=="r6"{print $2}' <<<"$out")" "${show[@]}"
check "podman: pasta was ours (helper_binaries_dir)" "1" "$(grep -c . "$W/opt/pasta-args.log" || true)" "${show[@]}"
# podman 5.3+ maps a guest address to the host and names it in /etc/hosts.
mapped=$(awk '$1=="hosts"{print $2}' <<<"$out")
check "podman: host.containers.internal is the --map-guest-addr address" \
    "$(grep -o -- '--map-guest-addr [^ ]*' "$W/opt/pasta-args.log" | head -n 1 | awk '{print $2}')" "$mapped" "${show[@]}"

# A published port: a server in the container that speaks first, read on
# the host's loopback.
cid=$(podman run -d -p 127.0.0.1:5310:8080 "$IMG" sh -c \
    'printf "#!/bin/sh\necho hello-from-the-container\n" >/greet; chmod +x /greet; exec nc -ll -p 8080 -e /greet' || true)
got=$(fetch "$H" 127.0.0.1 5310 hello-from-the-container)
check "podman: -p 127.0.0.1:5310:8080 reaches the container's server" hello-from-the-container "$got" "${show[@]}"
[ -n "$cid" ] && podman rm -f -t 0 "$cid" >/dev/null || true

# The container reaches the host through the mapped address.
serve "$H" 5311 hello-from-the-host
got=$(podman run --rm "$IMG" sh -c '
    for i in 1 2 3 4 5 6 7 8 9 10; do
        r=$(echo from-container | nc -w 3 host.containers.internal 5311) && [ -n "$r" ] && { echo "$r"; exit 0; }
        sleep 0.3
    done' || true)
check "podman: container reaches the host at host.containers.internal" hello-from-the-host "$got" "${show[@]}"
check "podman: the host's server got the container's line" from-container "$(cat "$W/got-5311" 2>/dev/null)"

# ... and the remote side ("the internet") through the host.
serve "$R" 5312 hello-from-the-remote
got=$(podman run --rm "$IMG" sh -c 'echo from-container | nc -w 3 198.51.100.1 5312' || true)
check "podman: container reaches a remote server" hello-from-the-remote "$got" "${show[@]}"
check "podman: the remote server got the container's line" from-container "$(cat "$W/got-5312" 2>/dev/null)"
serve "$R" 5313 hello-from-the-remote-over-ipv6
got=$(podman run --rm "$IMG" sh -c 'echo from-container | nc -w 3 2001:db8:3::1 5313' || true)
check "podman: container reaches a remote server over IPv6" hello-from-the-remote-over-ipv6 "$got" "${show[@]}"

# Options after pasta: reach our pasta.
args_mark
got=$(podman run --rm --network=pasta:-a,192.0.2.77,-n,24 "$IMG" \
    sh -c 'ip -4 -o addr show scope global | awk "{print \$4}"' || true)
check "podman: --network=pasta:-a,192.0.2.77,-n,24 gives the container 192.0.2.77/24" 192.0.2.77/24 "$got" "${show[@]}"
grep -q -- '-a 192.0.2.77 -n 24' "$W/opt/pasta-args.log" &&
    ok "podman: the options are on pasta's command line" ||
    bad "podman: the options are on pasta's command line" "$(cat "$W/opt/pasta-args.log")"

# A bad option: podman fails, with our pasta's own message.
if podman run --rm --network=pasta:--no-such-option "$IMG" true >/dev/null; then
    bad "podman: a bad pasta option fails the run" "podman run succeeded"
else
    msg=$(grep -o "pasta: unrecognized option '--no-such-option'" "$W/podman.err" | head -n 1 || true)
    check "podman: a bad pasta option fails the run with pasta's message" \
        "pasta: unrecognized option '--no-such-option'" "$msg" "$W/podman.err"
fi

# podman stops pasta by deleting the namespace file: none may be left.
left=""
for i in $(seq 1 40); do
    left=$(our_pastas)
    [ -z "$left" ] && break
    sleep 0.25
done
check "podman: every pasta quit when its container ended" "" "$left"

# ---------------------------------------------------------------- rootlesskit

step "callers: rootlesskit --net=pasta (our pasta on PATH)"
# The user exists in this mount namespace only: passwd, group, subuid and
# subgid copies are bound over the machine's own.
for f in passwd group subuid subgid; do cp "/etc/$f" "$W/rk/$f" 2>/dev/null || : >"$W/rk/$f"; done
echo "$CUSER:x:$CUID:$CUID::/nonexistent:/bin/sh" >>"$W/rk/passwd"
echo "$CUSER:x:$CUID:" >>"$W/rk/group"
echo "$CUSER:$SUBIDS" >>"$W/rk/subuid"
echo "$CUSER:$SUBIDS" >>"$W/rk/subgid"
chmod 0644 "$W"/rk/*
cat >"$W/rk/enter" <<EOF
#!/bin/sh
set -e
for f in passwd group subuid subgid; do mount --bind "$W/rk/\$f" "/etc/\$f"; done
mount --bind "/etc/netns/$H/resolv.conf" /etc/resolv.conf
exec setpriv --reuid=$CUID --regid=$CUID --init-groups \\
    env -i HOME=$W/rk USER=$CUSER LOGNAME=$CUSER PATH=$W/opt/bin:/usr/bin:/bin:/usr/sbin:/sbin \\
    "\$@"
EOF
chmod 0755 "$W/rk/enter"
args_mark
serve "$R" 5321 hello-from-the-remote
# In the namespace: a server on 5320 (pasta forwards it from the host's
# loopback by itself), and a client of the remote server; the namespace
# lives until the host has read the server ("done" appears).
cat >"$W/rk/inside" <<EOF
#!/bin/sh
printf '#!/bin/sh\necho hello-from-rootlesskit\ncat >$W/rk/got-5320\n' >$W/rk/greet
chmod +x $W/rk/greet
$W/busybox nc -ll -p 5320 -e $W/rk/greet &
srv=\$!
echo "uid \$(id -u)" >$W/rk/inside.out
echo "a4 \$($W/busybox ip -4 -o addr show scope global | awk '{print \$4}')" >>$W/rk/inside.out
echo "remote \$(echo from-rootlesskit | $W/busybox nc -w 3 198.51.100.1 5321)" >>$W/rk/inside.out

for i in \$(seq 1 100); do [ -e $W/rk/done ] && break; sleep 0.2; done
kill \$srv
EOF
chmod 0755 "$W/rk/inside"
in_host unshare -m --propagation private "$W/rk/enter" \
    "$W/rootlesskit" --net=pasta --port-driver=implicit --disable-host-loopback \
    --copy-up=/etc --state-dir="$W/rk/state" \
    "$W/rk/inside" >"$W/rk/rootlesskit.log" 2>&1 &
rk=$!
got=$(fetch "$H" 127.0.0.1 5320 hello-from-rootlesskit)
touch "$W/rk/done"
wait "$rk" && rkstatus=0 || rkstatus=$?
show=("$W/rk/rootlesskit.log" "$W/opt/pasta-args.log" "$W/rk/inside.out")
check "rootlesskit: exits cleanly" 0 "$rkstatus" "${show[@]}"
check "rootlesskit: pasta was ours (PATH)" "1" "$(grep -c . "$W/opt/pasta-args.log" || true)" "${show[@]}"
check "rootlesskit: the namespace's root is root" "0" "$(awk '$1=="uid"{print $2}' "$W/rk/inside.out" 2>/dev/null)" "${show[@]}"
check "rootlesskit: implicit port driver forwards the namespace's server to the host's loopback" \
    hello-from-rootlesskit "$got" "${show[@]}"
check "rootlesskit: the namespace's server got the host's line" from-client "$(cat "$W/rk/got-5320" 2>/dev/null)" "${show[@]}"
check "rootlesskit: the namespace reaches a remote server" hello-from-the-remote \
    "$(awk '$1=="remote"{print $2}' "$W/rk/inside.out" 2>/dev/null)" "${show[@]}"
check "rootlesskit: the remote server got the namespace's line" from-rootlesskit "$(cat "$W/got-5321" 2>/dev/null)" "${show[@]}"
check "rootlesskit: the namespace has rootlesskit's IPv4 address (--cidr default)" 10.0.2.100/24 \
    "$(awk '$1=="a4"{print $2}' "$W/rk/inside.out" 2>/dev/null)" "${show[@]}"

# ---------------------------------------------------------------- summary

step "callers: command lines pasta was given"
args_mark
sed 's/^/  /' "$W/pasta-args.all"
echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
