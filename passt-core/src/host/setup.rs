//! The steps of building the translator's configuration that both drivers
//! take (feature `host`), between reading the host and starting the
//! translator:
//!
//! 1. the template interfaces the command line names ([`interface_choice`]:
//!    `-i`, `--outbound-if4`, `--outbound-if6`) for
//!    [`super::read_host_net`], and `/etc/resolv.conf`;
//! 2. the command-line values the guest's defaults take precedence from
//!    ([`guest_overrides`]) for [`guest_defaults`](super::defaults::guest_defaults);
//! 3. the [`Config`] from those defaults with every option laid over it
//!    ([`config`], [`Options::overrides`]), and the flow hash key from the
//!    kernel's random source ([`random_key`]).
//!
//! What each driver does with a host it cannot read, and how it words the
//! errors, stays its own.
//!
//! Syscalls: `getrandom`.

use rustix::io::Errno;

use super::defaults::{DnsChoice, GuestDefaults, GuestOverrides, LoopbackMap};
use super::options::{MapAddr, Options, OptionsError};
use super::InterfaceChoice;
use crate::config::{Config, Services};

/// The template interfaces `o` names: `-i` for both families, else
/// `--outbound-if4` and `--outbound-if6`.
pub fn interface_choice(o: &Options) -> InterfaceChoice<'_> {
    InterfaceChoice {
        ip4: o.interface.as_deref().or(o.outbound_if4.as_deref()),
        ip6: o.interface.as_deref().or(o.outbound_if6.as_deref()),
    }
}

/// The command-line values the guest's defaults take precedence from.
pub fn guest_overrides(o: &Options) -> GuestOverrides {
    fn map<A>(m: MapAddr<A>) -> LoopbackMap<A> {
        match m {
            MapAddr::Default => LoopbackMap::Default,
            MapAddr::Disabled => LoopbackMap::Off,
            MapAddr::To(a) => LoopbackMap::To(a),
        }
    }
    fn guest<A>(m: MapAddr<A>) -> Option<A> {
        match m {
            MapAddr::To(a) => Some(a),
            MapAddr::Default | MapAddr::Disabled => None,
        }
    }
    GuestOverrides {
        ipv4_only: o.ipv4_only,
        ipv6_only: o.ipv6_only,
        addr4: o.addr4,
        prefix_len4: o.prefix_len4,
        gateway4: o.gateway4,
        addr6: o.addr6,
        gateway6: o.gateway6,
        map_host_loopback4: map(o.map_host_loopback4),
        map_host_loopback6: map(o.map_host_loopback6),
        no_map_gw: o.no_map_gw,
        map_guest_addr4: guest(o.map_guest_addr4),
        map_guest_addr6: guest(o.map_guest_addr6),
        dns: match &o.dns {
            None => DnsChoice::FromHost,
            Some(list) if list.is_empty() => DnsChoice::None,
            Some(list) => DnsChoice::Given(list.clone()),
        },
        dns_forward4: o.dns_forward4,
        dns_forward6: o.dns_forward6,
        dns_host4: o.dns_host4,
        dns_host6: o.dns_host6,
        search: o.search.clone(),
    }
}

/// The translator's configuration for `o`'s program: the guest's
/// addresses, gateway and resolvers of `d` (no DHCP where it says so),
/// with every option of `o` laid over them. Without the flow hash key
/// ([`random_key`]).
///
/// # Errors
/// Options that conflict with what the host gave ([`Options::overrides`]).
pub fn config(d: &GuestDefaults, o: &Options) -> Result<Config, OptionsError> {
    let mut config = Config {
        mode: o.mode,
        ip4: d.ip4.clone(),
        ip6: d.ip6.clone(),
        search: d.search.clone(),
        ..Config::default()
    };
    if d.no_dhcp {
        config.services.remove(Services::DHCP);
    }
    o.overrides(&mut config)?;
    Ok(config)
}

/// Sixteen bytes from the kernel's random source (`getrandom(2)`), for
/// [`Config::secret`].
///
/// # Errors
/// The kernel's, if it has no random bytes to give.
pub fn random_key() -> Result<[u8; 16], Errno> {
    let mut key = [0u8; 16];
    let mut filled = 0;
    // getrandom(2) returns fewer bytes only when interrupted.
    while filled < key.len() {
        match rustix::rand::getrandom(&mut key[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::host::defaults::guest_defaults;
    use crate::host::options::Parsed;
    use crate::host::HostNet;

    fn opts(args: &[&str]) -> Options {
        match Options::parse(Mode::Passt, args).unwrap() {
            Parsed::Run(o) => *o,
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn passts_command_line_values_reach_the_defaults() {
        let o = opts(&[
            "-a",
            "192.0.2.10/24",
            "-g",
            "192.0.2.1",
            "-D",
            "192.0.2.53",
            "--map-host-loopback",
            "none",
            "-S",
            "example.com",
        ]);
        let ov = guest_overrides(&o);
        assert_eq!(ov.addr4, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(ov.prefix_len4, Some(24));
        assert_eq!(ov.gateway4, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            ov.dns,
            DnsChoice::Given(vec!["192.0.2.53".parse().unwrap()])
        );
        assert_eq!(ov.map_host_loopback4, LoopbackMap::Off);
        assert_eq!(ov.search, Some(vec!["example.com".to_owned()]));
        let ov = guest_overrides(&opts(&["-D", "none"]));
        assert_eq!(ov.dns, DnsChoice::None);
        // An offline host with explicit addresses: the guest gets them.
        let d = guest_defaults(&HostNet::default(), None, &guest_overrides(&o));
        let ip4 = d.ip4.unwrap();
        assert_eq!(
            ip4.addr,
            "192.0.2.10".parse::<core::net::Ipv4Addr>().unwrap()
        );
        assert_eq!(
            ip4.dns,
            ["192.0.2.53".parse::<core::net::Ipv4Addr>().unwrap()]
        );
    }
}
