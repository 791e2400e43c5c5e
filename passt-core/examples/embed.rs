//! A VMM embedding passt-core: no passt process, the translator runs in
//! the VMM's own loop. Here the "virtio-net device" is one end of a
//! socketpair speaking qemu's stream format; a thread at the other end
//! plays the guest (an ARP request and a DHCP DISCOVER). A real VMM would
//! take frames from its virtqueues instead and skip the framing.
//!
//! Run with `cargo run -p passt-core --example embed`.

// This file is the driver: it reads the clock that passt-core must not.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use passt_core::buf::{FrameDesc, RxBatch, TxRing, MAX_FRAME_LEN};
use passt_core::config::{Config, Ip4Config};
use passt_core::testing::build::{arp_request, udp4, GUEST_MAC};
use passt_core::time::Instant;
use passt_core::wire::dhcp::{DhcpBuilder, DhcpMessageType, DhcpRepr, BOOTREQUEST};
use passt_core::wire::stream::{self, StreamDecoder, LEN_PREFIX};
use passt_core::wire::{arp::ArpRepr, ethernet::EthernetRepr, ipv4::Ipv4Repr, udp::UdpRepr};
use passt_core::Translator;

/// The driver's clock: passt-core never reads one itself.
fn now(epoch: std::time::Instant) -> Instant {
    Instant::from_nanos(epoch.elapsed().as_nanos() as u64)
}

/// The stand-in guest: two frames out, replies printed, then hang up.
fn guest(mut link: UnixStream) -> std::io::Result<()> {
    let mut buf = [0u8; 600];
    let mut b = DhcpBuilder::new(&mut buf).map_err(std::io::Error::other)?;
    b.header.op = BOOTREQUEST;
    (b.header.htype, b.header.hlen) = (1, 6);
    b.header.xid.set(0x00c0_ffee);
    b.header.set_client_mac(GUEST_MAC);
    b.push_message_type(DhcpMessageType::Discover)
        .map_err(std::io::Error::other)?;
    let n = b.finish().map_err(std::io::Error::other)?;
    let mut discover = udp4([0; 4].into(), 68, [255; 4].into(), 67, &buf[..n]);
    discover[..6].fill(0xff);
    for f in [
        arp_request(GUEST_MAC, [192, 0, 2, 10].into(), [192, 0, 2, 1].into()),
        discover,
    ] {
        link.write_all(&(f.len() as u32).to_be_bytes())?;
        link.write_all(&f)?;
    }
    for _ in 0..2 {
        let mut len = [0u8; 4];
        link.read_exact(&mut len)?;
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        link.read_exact(&mut f)?;
        let (eth, body) = EthernetRepr::parse(&f).map_err(std::io::Error::other)?;
        if let Ok(arp) = ArpRepr::parse(body) {
            println!("guest <- ARP reply: {} is at {}", arp.spa, arp.sha);
        } else if let Ok((ip, l4)) = Ipv4Repr::parse(body, true) {
            let udp = UdpRepr::parse(l4, None, false).map_err(std::io::Error::other)?;
            let dhcp = DhcpRepr::parse(udp.payload).map_err(std::io::Error::other)?;
            let kind = dhcp.message_type();
            let yiaddr = dhcp.header().yiaddr();
            println!(
                "guest <- DHCP {kind:?} from {} ({}): your address {yiaddr}",
                ip.src, eth.src
            );
        }
    }
    Ok(()) // dropping `link` hangs up
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        ip4: Some(Ip4Config {
            addr: "192.0.2.10".parse()?,
            prefix_len: 24,
            gateway: "192.0.2.1".parse()?,
            map_host_loopback: Some("192.0.2.1".parse()?),
            map_guest_addr: None,
            dns: vec!["192.0.2.1".parse()?],
            dns_forward: None,
            dns_host: None,
        }),
        ..Config::default() // a real VMM fills `secret` with random bytes
    };
    let (mut device, guest_end) = UnixStream::pair()?;
    let guest = std::thread::spawn(move || guest(guest_end));

    // Everything the data path needs is allocated here, once.
    let epoch = std::time::Instant::now();
    let mut t = Translator::new(config, now(epoch))?;
    let mut rx = StreamDecoder::with_capacity(256 * 1024);
    let mut descs = [FrameDesc::default(); 64];
    let mut tx = TxRing::new(64, MAX_FRAME_LEN, LEN_PREFIX);

    loop {
        // Sleep until guest input or the translator's next deadline.
        // Not at all while work waits for ring room (retried below).
        let wait = match t.wants_retry() {
            true => Some(Duration::ZERO),
            false => t.poll_timeout().map(|at| at.saturating_since(now(epoch))),
        };
        device.set_read_timeout(Some(
            wait.unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1)),
        ))?;
        match device.read(rx.read_buf()) {
            Ok(0) => break, // the guest hung up
            Ok(n) => rx.commit_read(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        let mut count = 0;
        while count < descs.len() {
            match rx.next_frame() {
                Some(Ok(d)) => (descs[count], count) = (d, count + 1),
                Some(Err(e)) if e.is_fatal() => return Err(e.into()), // reset the link
                Some(Err(_)) => {} // an empty or short record: skipped
                None => break,
            }
        }
        let batch = RxBatch::new(rx.data(), &descs[..count])?;
        t.handle_tap(now(epoch), &batch, &mut tx);
        if t.poll_timeout().is_some_and(|at| at <= now(epoch)) {
            t.handle_timeout(now(epoch), &mut tx);
        }
        // Contract: run socket operations before reusing `rx` or sending `tx`
        // (a host socket layer, e.g. `passt_core::host`'s executor, goes here).
        while let Some(op) = t.poll_op() {
            println!("vmm: socket operation {op:?} (no host sockets in this example)");
        }
        stream::fill_ring_prefixes(&mut tx)?;
        for v in tx.iter() {
            device.write_all(stream::framed(&v))?;
        }
        tx.clear();
        if t.wants_retry() {
            // Work that waited for ring room: the ring is empty now.
            t.handle_retry(now(epoch), &mut tx);
            while let Some(op) = t.poll_op() {
                println!("vmm: socket operation {op:?} (no host sockets in this example)");
            }
            stream::fill_ring_prefixes(&mut tx)?;
            for v in tx.iter() {
                device.write_all(stream::framed(&v))?;
            }
            tx.clear();
        }
        while let Some(e) = t.poll_event() {
            println!("vmm: event {e:?}");
        }
    }
    guest.join().map_err(|_| "guest thread panicked")??;
    let s = t.stats();
    println!(
        "vmm: {} frames in, {} out, {} ARP and {} DHCP replies",
        s.frames_in, s.frames_out, s.arp_replies, s.dhcp_replies
    );
    assert_eq!((s.arp_replies, s.dhcp_replies), (1, 1));
    Ok(())
}
