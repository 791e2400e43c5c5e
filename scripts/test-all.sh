#!/usr/bin/env bash
# The whole test suite, installing what it needs on Debian (run as root, or
# with sudo available). .ci/run calls exactly this.
#
#   FUZZ_SECONDS=N   seconds of fuzzing per target in the smoke run (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Whether Debian package $1 is installed (not merely known to dpkg).
installed() { [ "$(dpkg-query -W -f '${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

step "tools"
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Debian packages the tests use (the tests install nothing themselves: they
# fail, naming the package, if something is missing): pasta's end-to-end
# tests run busybox udhcpc, ISC dhclient (-4 and -6), rdisc6, ping, socat,
# dnsmasq and ip in network namespaces they create, read captures with
# tcpdump, and use util-linux's unshare, nsenter, setpriv, prlimit; passt's
# boot a Linux guest (cloud kernel, a static busybox initramfs packed with
# cpio, socat, and the host's dhclient as the guest's DHCPv6 client) under
# qemu-system-x86 (TCG). Either busybox package does (both give
# /bin/busybox; installing one removes the other, so whichever is there
# stays).
missing=()
for pkg in tcpdump iproute2 isc-dhcp-client ndisc6 iputils-ping util-linux \
           qemu-system-x86 linux-image-cloud-amd64 cpio socat dnsmasq-base; do
    installed "$pkg" || missing+=("$pkg")
done
if ! installed busybox && ! installed busybox-static; then
    missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The guest's initramfs needs a static busybox: the installed one if it is
# static (busybox-static), else busybox-static's unpacked into a cache, not
# installed (it would replace the user's busybox).
if ldd /bin/busybox 2>&1 | grep -q "not a dynamic executable"; then
    export PASST_TEST_STATIC_BUSYBOX=/bin/busybox
else
    bbcache=/var/cache/passt-rs-tests/busybox-static
    if [ ! -x "$bbcache/bin/busybox" ]; then
        bbtmp=$(mktemp -d)
        chmod 0755 "$bbtmp"
        (cd "$bbtmp" && { apt-get download -qq busybox-static 2>/dev/null ||
            { as_root apt-get update -qq && apt-get download -qq busybox-static; }; })
        as_root mkdir -p "$bbcache"
        as_root dpkg-deb -x "$bbtmp"/busybox-static_*.deb "$bbcache"
        rm -rf "$bbtmp"
    fi
    export PASST_TEST_STATIC_BUSYBOX=$bbcache/bin/busybox
fi

step "format"
cargo fmt --all -- --check

step "build"
cargo build --workspace --all-targets
# passt-core must build without its optional features: no syscalls, no test doubles.
cargo build -p passt-core --no-default-features

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p pasta-cli -p passt-cli --all-targets --features pasta-cli/count-alloc,passt-cli/count-alloc -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc -p passt-core -p passt-sys --no-deps
# The library's private items are documented too (module maps link them).
RUSTDOCFLAGS="-D warnings" cargo doc -p passt-core --no-deps --document-private-items
# The binaries' module maps link their private modules.
RUSTDOCFLAGS="-D warnings" cargo doc -p pasta-cli -p passt-cli -p qrap --no-deps --document-private-items

step "tests"
cargo test --workspace

step "no allocation after setup (count-alloc builds under the end-to-end tests)"
# Both binaries with a counting allocator (passt_sys::count_alloc), in a
# target directory of their own; every pasta and passt the end-to-end tests
# start logs its allocations after setup, and each test fails unless there
# were none (or the few it names, e.g. a fatal error's message on the way out).
CARGO_TARGET_DIR=target/count-alloc cargo test -p pasta-cli -p passt-cli \
    --features pasta-cli/count-alloc,passt-cli/count-alloc --test tests

step "callers (rootless podman 5 and rootlesskit 2 running our pasta)"
as_root env PASTA="$PWD/target/debug/pasta" bash scripts/test-callers.sh

step "examples (the embedding example drives the translator as a VMM would)"
cargo run -q -p passt-core --example conversation
cargo run -q -p passt-core --example embed

step "fuzz smoke (${FUZZ_SECONDS}s per target)"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
(
    cd fuzz
    for target in $(cargo fuzz list); do
        mkdir -p "$corpus/$target"
        seeds=()
        [ -d "seeds/$target" ] && seeds=("seeds/$target")
        echo "-- $target"
        status=0
        cargo fuzz run -s none "$target" "$corpus/$target" "${seeds[@]}" -- \
            -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 >"$corpus/$target.log" 2>&1 || status=$?
        grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|panicked|SUMMARY' "$corpus/$target.log" || true
        if [ "$status" != 0 ]; then
            tail -n 60 "$corpus/$target.log" >&2
            echo "fuzz target $target failed (exit $status)" >&2
            exit 1
        fi
    done
)
step "all passed"
