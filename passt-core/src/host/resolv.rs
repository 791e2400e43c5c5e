//! `/etc/resolv.conf`: the host's resolvers and search list (resolv.conf(5)).
//!
//! # What is read
//!
//! - `nameserver ADDR`: an IPv4 or IPv6 address; an IPv6 one may carry a
//!   scope, `fe80::1%eth0` (kept apart, in [`Nameserver::scope`]). Only the
//!   first word counts, as in glibc.
//! - `search DOMAIN...` and `domain DOMAIN`: the last of either wins, as
//!   resolv.conf(5) says; `domain` makes a one-entry list.
//! - Everything else (`options`, `sortlist`, comments starting with `#` or
//!   `;`, blank lines) is ignored. The keyword must start the line and be
//!   followed by a space or a tab; a line that does not parse is ignored and
//!   counted in [`ResolvConf::ignored`].
//!
//! # Limits (and what others do)
//!
//! - Lines longer than [`MAX_LINE`] bytes are ignored; [`ResolvConf::read`]
//!   reads at most [`MAX_FILE`] bytes. (glibc reads lines of any length.)
//! - At most [`MAX_NAMESERVERS`] (3) nameservers *per family* are kept, the
//!   first ones. glibc uses the first 3 of the file whatever their family
//!   (`MAXNS`); the original passt keeps a few per family, so a host with
//!   three IPv4 resolvers still gives its guest the IPv6 ones.
//! - At most [`MAX_SEARCH`] (6) search domains totalling [`MAX_SEARCH_CHARS`]
//!   (256) characters, the classic resolver limits (`MAXDNSRCH`; glibc lifted
//!   them in 2.26); further domains are dropped. Domains that
//!   [`crate::config::Config::validate`] would refuse (empty labels, labels
//!   over 63 bytes, names over 253, the root `.` that systemd-resolved
//!   writes) are dropped too, as are non-ASCII ones. Within a `search` line a
//!   word starting with `#` or `;` ends the list.
//! - A duplicate nameserver is kept once.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::io::Read;
use std::path::Path;

use super::netlink::IFNAME_MAX;

/// Most nameservers kept per family.
pub const MAX_NAMESERVERS: usize = 3;
/// Most search domains kept.
pub const MAX_SEARCH: usize = 6;
/// Most characters in the search list (domains and one separator each).
pub const MAX_SEARCH_CHARS: usize = 256;
/// Longest line considered, in bytes.
pub const MAX_LINE: usize = 1024;
/// Most bytes [`ResolvConf::read`] reads.
pub const MAX_FILE: u64 = 64 * 1024;

/// The default path.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// One `nameserver` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nameserver {
    /// The address.
    pub addr: IpAddr,
    /// The IPv6 scope (interface name or number) after `%`, if any.
    pub scope: Option<String>,
}

/// What `/etc/resolv.conf` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// Nameservers in file order, at most [`MAX_NAMESERVERS`] per family.
    pub nameservers: Vec<Nameserver>,
    /// The search list.
    pub search: Vec<String>,
    /// Lines and entries ignored as malformed, overlong or over a limit.
    pub ignored: usize,
}

impl ResolvConf {
    /// Parse the text of a resolv.conf file (see the module docs).
    pub fn parse(text: &[u8]) -> Self {
        let mut rc = ResolvConf::default();
        for line in text.split(|&b| b == b'\n') {
            if line.len() > MAX_LINE {
                rc.ignored += 1;
                continue;
            }
            let Ok(line) = core::str::from_utf8(line) else {
                rc.ignored += 1;
                continue;
            };
            rc.line(line);
        }
        rc
    }

    /// Read and parse the file at `path` (at most [`MAX_FILE`] bytes).
    ///
    /// # Errors
    /// The error of opening or reading it; a missing file is an error too
    /// (the original passt then warns and goes on without resolvers).
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let mut text = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_FILE)
            .read_to_end(&mut text)?;
        Ok(ResolvConf::parse(&text))
    }

    /// The IPv4 nameservers, in order.
    pub fn nameservers4(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.nameservers.iter().filter_map(|n| match n.addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    /// The IPv6 nameservers with their scopes, in order.
    pub fn nameservers6(&self) -> impl Iterator<Item = (Ipv6Addr, Option<&str>)> + '_ {
        self.nameservers.iter().filter_map(|n| match n.addr {
            IpAddr::V6(a) => Some((a, n.scope.as_deref())),
            IpAddr::V4(_) => None,
        })
    }

    fn line(&mut self, line: &str) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(['#', ';']) {
            return;
        }
        let (keyword, value) = match line.split_once([' ', '\t']) {
            Some(kv) => kv,
            None => (line, ""),
        };
        let ok = match keyword {
            "nameserver" => self.nameserver(value),
            "search" => {
                self.search = domains(value.split([' ', '\t']), &mut self.ignored);
                true
            }
            "domain" => {
                let first = value.split([' ', '\t']).find(|w| !w.is_empty());
                self.search = domains(first.into_iter(), &mut self.ignored);
                true
            }
            // options, sortlist and whatever a later resolver invents.
            _ => true,
        };
        if !ok {
            self.ignored += 1;
        }
    }

    /// Add the nameserver on a line; false if it does not parse or is over
    /// the limit.
    fn nameserver(&mut self, value: &str) -> bool {
        let Some(word) = value.split([' ', '\t']).find(|w| !w.is_empty()) else {
            return false;
        };
        let (addr, scope) = match word.split_once('%') {
            Some((a, s)) => (a, Some(s)),
            None => (word, None),
        };
        let ns = match (addr.parse::<IpAddr>(), scope) {
            (Ok(a @ IpAddr::V4(_)), None) => Nameserver {
                addr: a,
                scope: None,
            },
            (Ok(a @ IpAddr::V6(_)), None) => Nameserver {
                addr: a,
                scope: None,
            },
            (Ok(a @ IpAddr::V6(_)), Some(s)) if valid_scope(s) => Nameserver {
                addr: a,
                scope: Some(s.to_owned()),
            },
            _ => return false,
        };
        if self.nameservers.contains(&ns) {
            return true;
        }
        let same_family = self
            .nameservers
            .iter()
            .filter(|n| n.addr.is_ipv4() == ns.addr.is_ipv4())
            .count();
        if same_family >= MAX_NAMESERVERS {
            return false;
        }
        self.nameservers.push(ns);
        true
    }
}

/// An interface name or number after `%`.
fn valid_scope(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= IFNAME_MAX
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'%')
}

/// Whether `d` is a search domain [`crate::config::Config::validate`]
/// accepts, in ASCII.
fn valid_domain(d: &str) -> bool {
    let bare = d.strip_suffix('.').unwrap_or(d);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.is_ascii()
        && bare.bytes().all(|b| b.is_ascii_graphic())
        && bare.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// The search list from the words of a `search` or `domain` line.
fn domains<'a>(words: impl Iterator<Item = &'a str>, ignored: &mut usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut chars = 0;
    for w in words.filter(|w| !w.is_empty()) {
        if w.starts_with(['#', ';']) {
            break;
        }
        let fits = out.len() < MAX_SEARCH && chars + w.len() < MAX_SEARCH_CHARS;
        if !valid_domain(w) || !fits {
            *ignored += 1;
            continue;
        }
        if out.iter().any(|d| d == w) {
            continue;
        }
        chars += w.len() + 1;
        out.push(w.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> Nameserver {
        Nameserver {
            addr: IpAddr::V4(a.into()),
            scope: None,
        }
    }

    fn v6(s: &str, scope: Option<&str>) -> Nameserver {
        Nameserver {
            addr: IpAddr::V6(s.parse().unwrap()),
            scope: scope.map(str::to_owned),
        }
    }

    #[test]
    fn systemd_resolved_stub() {
        let rc = ResolvConf::parse(
            b"# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n\
              # Do not edit.\n\
              nameserver 127.0.0.53\n\
              options edns0 trust-ad\n\
              search .\n",
        );
        assert_eq!(rc.nameservers, vec![v4([127, 0, 0, 53])]);
        assert!(rc.search.is_empty());
        assert_eq!(rc.ignored, 1, "the root domain");
    }

    #[test]
    fn both_families_with_scopes() {
        let rc = ResolvConf::parse(
            b"nameserver 192.0.2.53\n\
              nameserver\t2001:db8::53  # trailing comment\n\
              nameserver fe80::1%eth0\n\
              nameserver fe80::2%3\r\n\
              search example.com corp.example.com.\n",
        );
        assert_eq!(
            rc.nameservers,
            vec![
                v4([192, 0, 2, 53]),
                v6("2001:db8::53", None),
                v6("fe80::1", Some("eth0")),
                v6("fe80::2", Some("3")),
            ]
        );
        assert_eq!(
            rc.nameservers4().collect::<Vec<_>>(),
            [Ipv4Addr::new(192, 0, 2, 53)]
        );
        assert_eq!(
            rc.nameservers6().collect::<Vec<_>>(),
            [
                ("2001:db8::53".parse().unwrap(), None),
                ("fe80::1".parse().unwrap(), Some("eth0")),
                ("fe80::2".parse().unwrap(), Some("3")),
            ]
        );
        assert_eq!(rc.search, ["example.com", "corp.example.com."]);
        assert_eq!(rc.ignored, 0);
    }

    #[test]
    fn malformed_lines_are_ignored() {
        let rc = ResolvConf::parse(
            b"nameserver\n\
              nameserver 192.0.2.300\n\
              nameserver 192.0.2.1%eth0\n\
              nameserver fe80::1%\n\
              nameserver fe80::1%averyveryverylongname\n\
              nameserver2 192.0.2.2\n\
              \x20nameserver 192.0.2.3\n\
              nameserver 192.0.2.4\xff\n\
              ;nameserver 192.0.2.5\n\
              #nameserver 192.0.2.6\n\
              nameserver 192.0.2.7\n",
        );
        assert_eq!(rc.nameservers, vec![v4([192, 0, 2, 7])]);
        // Five bad nameserver lines and the non-UTF-8 one; unknown keywords
        // and indented lines are silently skipped.
        assert_eq!(rc.ignored, 6);
    }

    #[test]
    fn overlong_lines_are_ignored() {
        let mut text = b"nameserver 192.0.2.1".to_vec();
        text.extend(std::iter::repeat(b' ').take(MAX_LINE));
        text.extend(b"\nsearch ");
        text.extend(std::iter::repeat(b'a').take(MAX_LINE));
        text.extend(b"\nnameserver 192.0.2.2\n");
        let rc = ResolvConf::parse(&text);
        assert_eq!(rc.nameservers, vec![v4([192, 0, 2, 2])]);
        assert!(rc.search.is_empty());
        assert_eq!(rc.ignored, 2);
    }

    #[test]
    fn at_most_three_nameservers_per_family() {
        let rc = ResolvConf::parse(
            b"nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.1\n\
              nameserver 192.0.2.3\nnameserver 192.0.2.4\nnameserver 2001:db8::1\n\
              nameserver 2001:db8::2\nnameserver 2001:db8::3\nnameserver 2001:db8::4\n",
        );
        assert_eq!(
            rc.nameservers,
            vec![
                v4([192, 0, 2, 1]),
                v4([192, 0, 2, 2]),
                v4([192, 0, 2, 3]),
                v6("2001:db8::1", None),
                v6("2001:db8::2", None),
                v6("2001:db8::3", None),
            ]
        );
        assert_eq!(rc.ignored, 2);
    }

    #[test]
    fn last_of_search_and_domain_wins() {
        let rc = ResolvConf::parse(b"search a.example b.example\ndomain c.example d.example\n");
        assert_eq!(rc.search, ["c.example"]);
        let rc = ResolvConf::parse(b"domain c.example\nsearch a.example\tb.example ;comment\n");
        assert_eq!(rc.search, ["a.example", "b.example"]);
        let rc = ResolvConf::parse(b"search a.example\nsearch\n");
        assert!(rc.search.is_empty());
    }

    #[test]
    fn search_list_limits() {
        let rc = ResolvConf::parse(b"search a1 a2 a3 a4 a5 a6 a7 a8 a1\n");
        assert_eq!(rc.search, ["a1", "a2", "a3", "a4", "a5", "a6"]);
        assert_eq!(rc.ignored, 3);
        // Domains of 65 characters (66 with a separator): three fit in 256,
        // a fourth does not.
        let l = "x".repeat(63);
        let text = format!("search {l}.a {l}.b {l}.c {l}.d\n");
        let rc = ResolvConf::parse(text.as_bytes());
        assert_eq!(rc.search.len(), 3, "{:?}", rc.search);
        let text = format!("search {}x.a a..b .a é.example ok\n", l);
        let rc = ResolvConf::parse(text.as_bytes());
        assert_eq!(rc.search, ["ok"]);
        assert_eq!(rc.ignored, 4);
    }

    #[test]
    fn reads_a_file() {
        let dir = std::env::temp_dir().join(format!("passt-core-resolv-{}", std::process::id()));
        std::fs::write(&dir, b"nameserver 192.0.2.9\nsearch example.org\n").unwrap();
        let rc = ResolvConf::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(rc.nameservers, vec![v4([192, 0, 2, 9])]);
        assert_eq!(rc.search, ["example.org"]);
        assert!(ResolvConf::read(Path::new("/nonexistent/resolv.conf")).is_err());
    }
}
