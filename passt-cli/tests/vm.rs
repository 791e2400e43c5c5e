//! A real Linux guest under qemu, connected to passt by qemu's own
//! `-netdev stream` client, on the simulated host of TESTING.md.
//!
//! The guest is Debian's cloud kernel with a busybox initramfs built here
//! (and cached under `target/tmp/passt-vm/`): its `/init` loads the virtio
//! network modules, runs `udhcpc`, waits for SLAAC, tries `udhcpc6`, pings
//! the IPv4 and IPv6 gateways (the echo itself needs passt's ICMP handler;
//! the neighbour entries show that ARP and NDP were answered), prints
//! `MARK ...` lines on the serial console and powers off. The test checks
//! the marks, and that `passt -1` exits once qemu has gone. A second guest
//! boots through `qrap` with an old-style `-netdev socket,fd=5`.
//!
//! Packages (installed if missing): qemu-system-x86, linux-image-cloud-amd64,
//! cpio; busybox-static is downloaded and unpacked rather than installed
//! (it conflicts with the dynamic busybox the other tests use).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    can_run_as_root, ensure_packages, run, Passt, Topology, HOST4, HOST6, REMOTE4,
};

/// The guest's MAC address.
const GUEST_MAC: &str = "52:54:00:12:34:56";
/// How long the guest may take from start to power-off.
const VM_LIMIT: Duration = Duration::from_secs(120);

/// Modules that bring up virtio-net, in load order (TESTING.md).
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
export PATH=/bin
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
  [ -n "$a" ] && break
  sleep 1; i=$((i+1))
done
echo "MARK addr6 $a"
echo "MARK route6 $(ip -6 route show default | head -n 1)"
if command -v udhcpc6 >/dev/null; then
  if udhcpc6 -i eth0 -s /udhcpc6.sh -n -q -t 3 -T 2 >/dev/null 2>&1; then echo "MARK dhcp6 ok"; else echo "MARK dhcp6 failed"; fi
else
  echo "MARK dhcp6 absent"
fi
gw4=$(ip -4 route show default | awk '{print $3}')
ping -c 1 -W 2 "$gw4" >/dev/null 2>&1 && echo "MARK ping4 ok" || echo "MARK ping4 no-reply"
echo "MARK neigh4 $(ip neigh show "$gw4" dev eth0)"
gw6=$(ip -6 route show default | awk '{print $3}' | head -n 1)
ping6 -c 1 -W 2 -I eth0 "$gw6" >/dev/null 2>&1 && echo "MARK ping6 ok" || echo "MARK ping6 no-reply"
echo "MARK neigh6 $(ip -6 neigh show "$gw6" dev eth0)"
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

/// busybox udhcpc6's script: report the address.
const UDHCPC6: &str = r#"#!/bin/sh
case "$1" in
bound|renew) echo "MARK lease6 ipv6=$ipv6 dns=$dns search=$search" >/dev/console ;;
esac
exit 0
"#;

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

/// A static busybox: Debian's busybox-static, downloaded and unpacked into
/// `cache`.
fn static_busybox(cache: &Path) -> PathBuf {
    let bin = cache.join("busybox-static/bin/busybox");
    if bin.exists() {
        return bin;
    }
    let dl = cache.join("deb");
    let _ = fs::remove_dir_all(&dl);
    fs::create_dir_all(&dl).unwrap();
    let get = || {
        Command::new("apt-get")
            .args(["download", "-qq", "busybox-static"])
            .current_dir(&dl)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !get() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        assert!(get(), "apt-get download busybox-static failed");
    }
    let deb = fs::read_dir(&dl)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("downloaded .deb");
    let out = cache.join("busybox-static");
    let o = run(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(bin.exists(), "no bin/busybox in {}", deb.display());
    bin
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
        (INIT, UDHCPC, UDHCPC6, version, MODULES).hash(&mut h);
        h.finish()
    };
    let image = cache.join(format!("initramfs-{key:016x}.cpio.gz"));
    if image.exists() {
        return image;
    }
    let busybox = static_busybox(&cache);
    let root = cache.join(format!("root-{key:016x}"));
    let _ = fs::remove_dir_all(&root);
    for d in ["bin", "proc", "sys", "dev", "lib/modules", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(&busybox, root.join("bin/busybox")).unwrap();
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
        ("udhcpc6.sh", UDHCPC6),
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

/// Install what booting needs; `false` (with a note) where it cannot run.
fn prepare(test: &str) -> bool {
    if !can_run_as_root(test) {
        return false;
    }
    ensure_packages(&[("qemu-system-x86_64", "qemu-system-x86"), ("cpio", "cpio")]);
    if kernel().is_none() {
        ensure_packages(&[("/nonexistent/kernel", "linux-image-cloud-amd64")]);
    }
    assert!(
        kernel().is_some(),
        "no cloud kernel in /boot after installing linux-image-cloud-amd64"
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
    let mut passt = Passt::start_in(Some(&topo.host), "vm", &["-1"]);
    let netdev = [
        "-netdev".to_owned(),
        format!(
            "stream,id=n0,server=off,addr.type=unix,addr.path={}",
            passt.sock.display()
        ),
    ];
    let console = boot(&passt, &[], &netdev, "");
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
    // DHCPv6 hands out the host's address, where busybox has udhcpc6.
    match mark(console, "dhcp6") {
        Some("absent") => eprintln!("{test}: busybox without udhcpc6: DHCPv6 not checked"),
        _ => {
            let lease6 = mark(console, "lease6").unwrap_or_default();
            assert!(lease6.contains(&format!("ipv6={HOST6}")), "{}", ctx());
        }
    }
    // ARP and NDP answered with passt's MAC address.
    let neigh4 = mark(console, "neigh4").unwrap_or_default();
    assert!(neigh4.contains("lladdr 9a:55:9a:55:9a:55"), "{}", ctx());
    let neigh6 = mark(console, "neigh6").unwrap_or_default();
    assert!(neigh6.contains("lladdr 9a:55:9a:55:9a:55"), "{}", ctx());
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
