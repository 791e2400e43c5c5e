//! A first conversation with the translator, driven by hand.
//!
//! A guest asks "who has 192.0.2.1?" (its gateway); the translator answers
//! from its own MAC address, because every address but the guest's own lives
//! behind it. Run with `cargo run -p passt-core --example conversation`.

use passt_core::buf::{FrameDesc, RxBatch, TxRing};
use passt_core::config::{Config, Ip4Config};
use passt_core::time::Instant;
use passt_core::wire::arp::ArpRepr;
use passt_core::wire::ethernet::EthernetRepr;
use passt_core::Translator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        ip4: Some(Ip4Config {
            addr: "192.0.2.10".parse()?,
            prefix_len: 24,
            gateway: "192.0.2.1".parse()?,
            map_host_loopback: Some("192.0.2.1".parse()?),
            map_guest_addr: None,
            dns: vec![],
            dns_forward: None,
            dns_host: None,
        }),
        ..Config::default()
    };
    let mut t = Translator::new(config, Instant::ZERO)?;
    let mut tx = TxRing::new(8, 1522, 4);

    // The bytes a Linux guest (52:54:00:12:34:56, 192.0.2.10) sends.
    let request: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08,
        0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // ARP request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 192, 0, 2, 10, // sender
        0, 0, 0, 0, 0, 0, 192, 0, 2, 1, // target
    ];
    let asked = ArpRepr::parse(&request[14..])?;
    println!(
        "guest -> us : who has {}? tell {} ({})",
        asked.tpa, asked.spa, asked.sha
    );
    let descs = [FrameDesc::new(0, request.len() as u32)];
    let rx = RxBatch::new(&request, &descs)?;
    t.handle_tap(Instant::ZERO, &rx, &mut tx);
    while let Some(op) = t.poll_op() {
        println!("socket operation: {op:?}");
    }

    for frame in tx.iter() {
        let (eth, body) = EthernetRepr::parse(frame.frame)?;
        let arp = ArpRepr::parse(body)?;
        println!(
            "us -> guest : {} is at {} (frame {} -> {}, {} bytes)",
            arp.spa,
            arp.sha,
            eth.src,
            eth.dst,
            frame.frame.len()
        );
    }
    while let Some(e) = t.poll_event() {
        if let passt_core::Event::GuestMac(mac) = e {
            println!("event: learned the guest's MAC address {mac}");
        } else {
            println!("event: {e:?}");
        }
    }
    Ok(())
}
