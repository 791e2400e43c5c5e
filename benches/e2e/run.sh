#!/usr/bin/env bash
# End-to-end throughput of our pasta and passt beside a peer pasta/passt
# (Debian's, or any build given with --peer-*, such as an upstream release)
# and slirp4netns, measured with iperf3 in the same run, interleaved, on the
# simulated host of doc/TESTING.md (see benches/README.md).
#
# Topology (all namespaces made here, deleted on exit; no traffic leaves them):
#
#   remote netns                 host netns                  guest netns
#   veth1 203.0.113.1/24 ------- veth0 203.0.113.2/24        (tap of the tool)
#   lo    198.51.100.1/32        default via 203.0.113.1
#   iperf3 -s on 198.51.100.1    pasta / slirp4netns / passt
#                                iperf3 -s on 127.0.0.1      iperf3 -s (splice -t)
#
# The iperf3 server sits on an address routed via the gateway but different
# from it, so nothing is mapped to the host's loopback on the tap paths.
#
# Usage: benches/e2e/run.sh [-p PATHS] [-n RUNS] [-t SECONDS] [-l UDP_LEN]
#                           [--peer-pasta PATH] [--peer-passt PATH]
#                           [--peer-name NAME] [--no-build] [--keep]
# PATHS is a comma-separated list of the rows below (default: all):
#   tcp-up tcp-down tcp-down-p4 tcp1500-up tcp1500-down fwd-down fwd1500-down
#   splice-T-up splice-T-down splice-t-up splice-t-down
#   udp-up udp-down passt-up passt-down passt-down-p4
# "up" is data from the namespace (guest) to the host side, "down" the other
# way; "fwd" rows are inbound connections from the remote to a port the tool
# forwards (-t) into the guest; "-p4" rows are 4 parallel streams (iperf3
# -P 4). Each figure is the median over RUNS runs of the receiver's rate
# (iperf3 -J, end.sum_received), in Gbit/s; UDP rows add the median loss.
# The peer column is Debian's pasta/passt unless --peer-pasta/--peer-passt
# name other binaries (both need --runas and --netns as Debian's take them).
set -u -o pipefail

PATHS_ALL="tcp-up,tcp-down,tcp-down-p4,tcp1500-up,tcp1500-down,fwd-down,fwd1500-down,splice-T-up,splice-T-down,splice-t-up,splice-t-down,udp-up,udp-down,passt-up,passt-down,passt-down-p4"
PATHS=$PATHS_ALL
RUNS=3
SECS=5
UDP_LEN=1400
BUILD=1
KEEP=0
PEER_PASTA=
PEER_PASST=
PEER_NAME=debian

usage() {
    sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    -p | --paths) PATHS=$2; shift 2 ;;
    -n | --runs) RUNS=$2; shift 2 ;;
    -t | --time) SECS=$2; shift 2 ;;
    -l | --udp-len) UDP_LEN=$2; shift 2 ;;
    --peer-pasta) PEER_PASTA=$2; shift 2 ;;
    --peer-passt) PEER_PASST=$2; shift 2 ;;
    --peer-name) PEER_NAME=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 >&2 ;;
    esac
done
for p in ${PATHS//,/ }; do
    case ",$PATHS_ALL," in
    *",$p,"*) ;;
    *) echo "unknown path: $p (known: $PATHS_ALL)" >&2; exit 2 ;;
    esac
done
want() { case ",$PATHS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

if [ "$(id -u)" != 0 ]; then
    echo "run.sh: needs root (network namespaces, /dev/net/tun)" >&2
    exit 1
fi

# --- tools --------------------------------------------------------------------

missing=()
tools="iperf3:iperf3 slirp4netns:slirp4netns jq:jq socat:socat ip:iproute2"
[ -n "$PEER_PASTA" ] || tools="$tools pasta:passt"
[ -n "$PEER_PASST" ] || tools="$tools passt:passt"
for t in $tools; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
        echo "run.sh: apt-get install ${missing[*]} failed" >&2
        exit 1
    }
fi
DEB_PASTA=${PEER_PASTA:-$(command -v pasta)}
DEB_PASST=${PEER_PASST:-$(command -v passt)}
for b in "$DEB_PASTA" "$DEB_PASST"; do
    [ -x "$b" ] || { echo "run.sh: peer binary $b missing" >&2; exit 1; }
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -q -p pasta-cli -p passt-cli) || {
        echo "run.sh: cargo build --release failed" >&2
        exit 1
    }
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUR_PASTA=$TARGET/release/pasta
OUR_PASST=$TARGET/release/passt
RELAY=$TARGET/release/passt-relay
for b in "$OUR_PASTA" "$OUR_PASST" "$RELAY"; do
    [ -x "$b" ] || { echo "run.sh: $b missing (build first)" >&2; exit 1; }
done

# --- topology -----------------------------------------------------------------

P=e2e$$
R=$P-r
H=$P-h
G=$P-g
WORK=$(mktemp -d /tmp/passt-e2e.XXXXXX)
PIDS=()

cleanup() {
    declare -F stop_session >/dev/null && stop_session
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for ns in $G $H $R; do ip netns del "$ns" 2>/dev/null; done
    if [ "$KEEP" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$R" && ip netns add "$H" || exit 1
ip link add veth0 netns "$H" type veth peer name veth1 netns "$R"
ip -n "$R" link set lo up
ip -n "$R" link set veth1 up
ip -n "$R" addr add 203.0.113.1/24 dev veth1
ip -n "$R" addr add 198.51.100.1/32 dev lo
ip -n "$H" link set lo up
ip -n "$H" link set veth0 up
ip -n "$H" addr add 203.0.113.2/24 dev veth0
ip -n "$H" route add default via 203.0.113.1

# Servers: one on the remote address (tap paths), one on the host's
# loopback (splice -T and slirp4netns' 10.0.2.2 equivalent).
# A client that dies mid-test must not leave a server stuck for the next one.
SRV_OPTS="--rcv-timeout 5000 --idle-timeout $((SECS + 30))"
bg() { # bg LOG CMD...: start CMD in the background, remember its PID
    local log=$1; shift
    "$@" </dev/null >"$log" 2>&1 &
    PIDS+=($!)
}
bg "$WORK/iperf3-remote.log" ip netns exec "$R" iperf3 -s -B 198.51.100.1 -p 5201 $SRV_OPTS
bg "$WORK/iperf3-hostlo.log" ip netns exec "$H" iperf3 -s -B 127.0.0.1 -p 5201 $SRV_OPTS

# --- sessions: one tool serving a fresh guest namespace -------------------------

SESSION_PIDS=()
SERVER=        # address the guest's iperf3 client connects to
SPLICE_T=      # guest-side address reaching the host's loopback server
SPLICE_t=      # host-side address:port reaching the guest's server

stop_session() {
    for pid in "${SESSION_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${SESSION_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    SESSION_PIDS=()
    ip netns del "$G" 2>/dev/null
    true
}

sbg() { # like bg, for processes of one session
    local log=$1; shift
    "$@" </dev/null >"$log" 2>&1 &
    SESSION_PIDS+=($!)
}

# wait_until SECONDS CMD...: poll CMD every 0.1 s
wait_until() {
    local n=$(($1 * 10)); shift
    while [ $n -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

guest_ready() { ip -n "$G" -4 route show default | grep -q via; }

# start_session TOOL CONFIG: TOOL is ours|pasta|slirp (pasta-like) or
# ours-passt|passt; CONFIG is tap65520|tap1500|splice|passt. Returns 1 if the
# tool did not come up (its log is in $WORK).
start_session() {
    local tool=$1 cfg=$2 mtu=65520 log="$WORK/$1-$2-$RUN.log"
    stop_session
    ip netns add "$G" || return 1
    ip -n "$G" link set lo up
    case "$cfg" in tap1500 | fwd1500) mtu=1500 ;; esac
    local fwd=(-t none -u none -T none -U none)
    [ "$cfg" = splice ] && fwd=(-t 5202 -u none -T 5201 -U none)
    case "$cfg" in fwd | fwd1500) fwd=(-t 5203 -u none -T none -U none) ;; esac
    SERVER=198.51.100.1
    SPLICE_T=127.0.0.1
    SPLICE_t=127.0.0.1:5202
    case "$tool" in
    ours)
        sbg "$log" ip netns exec "$H" "$OUR_PASTA" --config-net -f --runas 0 -m "$mtu" \
            "${fwd[@]}" --netns "$G"
        ;;
    pasta)
        # Debian's pasta (2023) drops to nobody before joining the target
        # namespace when started as root, and then cannot: --runas 0.
        sbg "$log" ip netns exec "$H" "$DEB_PASTA" --config-net -f --runas 0 -m "$mtu" \
            "${fwd[@]}" --netns "/run/netns/$G"
        ;;
    slirp)
        sbg "$WORK/sleep.log" ip netns exec "$G" sleep infinity
        local holder=${SESSION_PIDS[-1]} loop=(--disable-host-loopback)
        # No splice in slirp4netns: its equivalents are 10.0.2.2 (host
        # loopback) for -T and an API-socket host forward for -t.
        [ "$cfg" = splice ] && loop=(--api-socket "$WORK/slirp.sock")
        rm -f "$WORK/slirp.sock"
        case "$cfg" in fwd | fwd1500) loop=(--api-socket "$WORK/slirp.sock") ;; esac
        sbg "$log" ip netns exec "$H" slirp4netns --configure --mtu="$mtu" "${loop[@]}" \
            "$holder" tap0
        SERVER=198.51.100.1
        SPLICE_T=10.0.2.2
        SPLICE_t=127.0.0.1:5202
        ;;
    ours-passt | passt)
        local bin=$OUR_PASST extra=()
        [ "$tool" = passt ] && bin=$DEB_PASST && extra=(--runas 0)
        rm -f "$WORK/passt.sock"
        sbg "$log" ip netns exec "$H" "$bin" -f -1 "${extra[@]}" -t none -u none \
            -s "$WORK/passt.sock"
        wait_until 10 test -S "$WORK/passt.sock" || return 1
        sbg "$WORK/relay-$tool-$RUN.log" ip netns exec "$G" "$RELAY" --tap eth0 "$WORK/passt.sock"
        wait_until 10 grep -q ready "$WORK/relay-$tool-$RUN.log" || return 1
        ip -n "$G" link set eth0 mtu 65520 up &&
            ip -n "$G" addr add 203.0.113.2/24 dev eth0 &&
            ip -n "$G" route add default via 203.0.113.1 || return 1
        ;;
    esac
    wait_until 10 guest_ready || return 1
    if [ "$tool" = slirp ] && [ "$cfg" = splice ]; then
        local req='{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":5202,"guest_port":5202}}'
        echo "$req" | socat -t 2 - "UNIX-CONNECT:$WORK/slirp.sock" >>"$log" 2>&1 || return 1
    fi
    if [ "$tool" = slirp ] && [ "${cfg#fwd}" != "$cfg" ]; then
        local req='{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":5203,"guest_port":5203}}'
        echo "$req" | socat -t 2 - "UNIX-CONNECT:$WORK/slirp.sock" >>"$log" 2>&1 || return 1
    fi
    if [ "${cfg#fwd}" != "$cfg" ]; then
        sbg "$WORK/iperf3-guest.log" ip netns exec "$G" iperf3 -s -p 5203 $SRV_OPTS
        wait_until 5 ip netns exec "$G" sh -c 'ss -ltn | grep -q :5203' || return 1
    fi
    if [ "$cfg" = splice ]; then
        sbg "$WORK/iperf3-guest.log" ip netns exec "$G" iperf3 -s -p 5202 $SRV_OPTS
        wait_until 5 ip netns exec "$G" sh -c 'ss -ltn | grep -q :5202' || return 1
    fi
    # Let the guest's address settle (DAD, ARP) before measuring.
    ip netns exec "$G" ping -c 1 -W 2 "$SERVER" >/dev/null 2>&1
    return 0
}

# --- measurements ----------------------------------------------------------------

# iperf NS LOG ARGS...: run an iperf3 client, print "RATE_GBPS LOSS_PERCENT"
# (loss "-" for TCP) or nothing on failure.
iperf() {
    local ns=$1 log=$2; shift 2
    timeout $((SECS + 20)) ip netns exec "$ns" iperf3 --connect-timeout 3000 -J -t "$SECS" \
        "$@" >"$log" 2>&1 || return 1
    jq -r 'if .error then empty else
           "\(.end.sum_received.bits_per_second / 1e9) \(.end.sum_received.lost_percent // "-")"
           end' "$log" 2>/dev/null
}

# measure TOOL PATH: one iperf3 run of PATH in the current session,
# appended to $WORK/results as "PATH TOOL RATE LOSS" (RATE "failed" if it
# did not work).
measure() {
    local tool=$1 path=$2 out log="$WORK/iperf-$2-$1-$RUN.json"
    case "$path" in
    tcp-up | tcp1500-up | passt-up) out=$(iperf "$G" "$log" -c "$SERVER") ;;
    tcp-down | tcp1500-down | passt-down) out=$(iperf "$G" "$log" -c "$SERVER" -R) ;;
    tcp-down-p4 | passt-down-p4) out=$(iperf "$G" "$log" -c "$SERVER" -R -P 4) ;;
    # The remote connects to the host's address, forwarded into the guest.
    fwd-down | fwd1500-down) out=$(iperf "$R" "$log" -c 203.0.113.2 -p 5203) ;;
    udp-up) out=$(iperf "$G" "$log" -c "$SERVER" -u -b 0 -l "$UDP_LEN") ;;
    udp-down) out=$(iperf "$G" "$log" -c "$SERVER" -u -b 0 -l "$UDP_LEN" -R) ;;
    splice-T-up) out=$(iperf "$G" "$log" -c "$SPLICE_T" -p 5201) ;;
    splice-T-down) out=$(iperf "$G" "$log" -c "$SPLICE_T" -p 5201 -R) ;;
    splice-t-down) out=$(iperf "$H" "$log" -c "${SPLICE_t%:*}" -p "${SPLICE_t#*:}") ;;
    splice-t-up) out=$(iperf "$H" "$log" -c "${SPLICE_t%:*}" -p "${SPLICE_t#*:}" -R) ;;
    esac
    [ -n "$out" ] || out="failed -"
    echo "$path $tool $out" >>"$WORK/results"
    printf '  run %d %-14s %-11s %s\n' "$RUN" "$path" "$tool" "$out" >&2
}

# paths of each session configuration
config_paths() {
    case "$1" in
    tap65520) echo tcp-up tcp-down tcp-down-p4 udp-up udp-down ;;
    tap1500) echo tcp1500-up tcp1500-down ;;
    fwd) echo fwd-down ;;
    fwd1500) echo fwd1500-down ;;
    splice) echo splice-T-up splice-T-down splice-t-up splice-t-down ;;
    passt) echo passt-up passt-down passt-down-p4 ;;
    esac
}

: >"$WORK/results"
for RUN in $(seq 1 "$RUNS"); do
    for cfg in tap65520 tap1500 fwd fwd1500 splice passt; do
        paths=()
        for p in $(config_paths $cfg); do want "$p" && paths+=("$p"); done
        [ ${#paths[@]} -gt 0 ] || continue
        if [ $cfg = passt ]; then tools=(ours-passt passt); else tools=(ours pasta slirp); fi
        # Interleave: rotate which tool goes first from run to run.
        n=${#tools[@]}
        for i in $(seq 0 $((n - 1))); do
            tool=${tools[$(((i + RUN - 1) % n))]}
            if start_session "$tool" "$cfg"; then
                for p in "${paths[@]}"; do measure "$tool" "$p"; done
            else
                echo "  run $RUN $tool ($cfg) did not start: see $WORK/$tool-$cfg-$RUN.log" >&2
                for p in "${paths[@]}"; do echo "$p $tool failed -" >>"$WORK/results"; done
            fi
            stop_session
        done
    done
done

# --- table -----------------------------------------------------------------------

# median TOOL PATH: median rate (and loss) over the runs that worked, or
# "failed" when none did.
median_of() { # reads numbers on stdin
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "failed"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cell() {
    local path=$1 tool=$2 rate loss
    rate=$(awk -v p="$path" -v t="$tool" '$1 == p && $2 == t && $3 != "failed" {print $3}' \
        "$WORK/results" | median_of)
    [ "$rate" = failed ] && { echo failed; return; }
    rate=$(printf '%.2f' "$rate")
    case "$path" in
    udp-*)
        loss=$(awk -v p="$path" -v t="$tool" '$1 == p && $2 == t && $3 != "failed" {print $4}' \
            "$WORK/results" | median_of)
        printf '%s/%.1f%%\n' "$rate" "$loss"
        ;;
    *) echo "$rate" ;;
    esac
}
ratio() {
    local a=${1%%/*} b=${2%%/*}
    case "$a$b" in *failed* | *-*) echo "-"; return ;; esac
    awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "-" }'
}

echo
echo "iperf3 receiver rate in Gbit/s (UDP: rate/loss), median of $RUNS runs of ${SECS}s" \
    "(UDP datagrams of $UDP_LEN bytes, unlimited sender)"
echo "passt rows: ours = our passt, $PEER_NAME = the peer's passt, both through passt-relay"
echo "peer: pasta $DEB_PASTA, passt $DEB_PASST"
fmt='%-14s %14s %14s %14s %10s %10s\n'
printf "$fmt" path ours "$PEER_NAME" slirp4netns "ours/peer" ours/slirp
for p in ${PATHS_ALL//,/ }; do
    want "$p" || continue
    case "$p" in
    passt-*) o=$(cell "$p" ours-passt); d=$(cell "$p" passt); s="-" ;;
    *) o=$(cell "$p" ours); d=$(cell "$p" pasta); s=$(cell "$p" slirp) ;;
    esac
    printf "$fmt" "$p" "$o" "$d" "$s" "$(ratio "$o" "$d")" "$(ratio "$o" "$s")"
done
