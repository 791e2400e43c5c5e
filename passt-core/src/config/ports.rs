//! Port-forwarding specs: the arguments of `-t/--tcp-ports`, `-u/--udp-ports`
//! and, for pasta, `-T/--tcp-ns` and `-U/--udp-ns`.
//!
//! Each option takes one *spec*; giving the same option several times
//! (`-t 22 -t 80`) adds the specs up in one [`FwdSpec`] per direction and
//! protocol, through [`FwdSpec::add`]. The syntax follows the passt(1) man
//! page (section `-t, --tcp-ports spec`):
//!
//! ```text
//! spec     = "none" | [ prefix "/" ] list
//! prefix   = address [ "%" ifname ] | "%" ifname
//! address  = IPv4 | IPv6 | "[" IPv6 "]" | "[" IPv4 "]" | "*"
//! list     = element { "," element }
//! element  = range [ ":" range ]       include (and map) ports
//!          | range ":" target          include ports, to another address
//!          | "~" range                 exclude ports
//!          | "all" [ ":" target ]      keywords, see below
//!          | "auto"
//! target   = IPv4 | "[" IPv6 "]"
//! range    = port [ "-" port ]         inclusive, first <= last
//! port     = decimal 1-65535           (0 only inside an exclusion)
//! ```
//!
//! # Meaning
//!
//! - `none`: forward nothing. Must be the whole spec.
//! - An include range forwards host ports `first-last` to the same ports in
//!   the guest or namespace, or to `tofirst-tolast` after a `:`; both ranges
//!   must have the same length. As an extension the target may be given by
//!   its first port alone (`22-80:32` is `22-80:32-90`).
//! - A target address after the ports (`5000:192.0.2.5`, `all:192.0.2.5`,
//!   as the original's 2026 syntax) sends the forwarded connections to that
//!   address on the other side instead of the guest's own, same ports. As
//!   in the original it needs a listening address of the same family
//!   (`0.0.0.0/5000:192.0.2.5`, `[::]/5000:[2001:db8::5]`): a dual-stack
//!   or cross-family rule is [`PortSpecError::TargetFamily`]. The caller
//!   refuses it where it is not supported (`-t` and `-u` take one).
//! - `~first-last` removes ports from every include range *of the same spec*
//!   and takes precedence over them. An exclusion that removes nothing is
//!   accepted and does nothing, as in the original.
//! - A spec made only of exclusions forwards all other ports: it is mode
//!   [`FwdMode::All`] minus the exclusions.
//! - `all`: forward every port (1-65535) not excluded; the caller removes
//!   the host's ephemeral range with [`FwdSpec::exclude_ephemeral`]. Only
//!   exclusions may accompany it.
//! - `auto` (pasta only, checked by the caller): forward a port of the set
//!   only while the target side has a socket bound to it. With include
//!   ranges the set is those ranges; without, every port not excluded.
//! - A prefix binds every rule of the spec to a listening address and/or an
//!   interface (at most 15 bytes, Linux 5.7 and later). Without an address,
//!   or with `*`, the rules listen on every address of both families;
//!   `0.0.0.0` or `::` mean every address of one family. IPv4-mapped IPv6 addresses are
//!   stored as IPv4.
//!
//! # Examples
//!
//! The examples of the man page, and the rules they become:
//!
//! | spec                      | forwards                                                   |
//! |---------------------------|------------------------------------------------------------|
//! | `all`                     | every non-ephemeral port, to the same port                 |
//! | `::1/all`                 | the same, listening on `::1` only                          |
//! | `22`                      | port 22 to port 22                                         |
//! | `22:23`                   | port 22 to port 23                                         |
//! | `22,25`                   | ports 22 and 25 to the same ports                          |
//! | `22-80`                   | ports 22 to 80 to the same ports                           |
//! | `22-80:32-90`             | ports 22 to 80 to ports 32 to 90                           |
//! | `192.0.2.1/22`            | port 22 listening on 192.0.2.1                             |
//! | `192.0.2.1%eth0/22`       | port 22 listening on 192.0.2.1 and interface eth0          |
//! | `%eth0/22`                | port 22 listening on any address of interface eth0         |
//! | `2000-5000,~3000-3010`    | rules 2000-2999 and 3011-5000                              |
//! | `192.0.2.1/20-30,~25`     | rules 20-24 and 26-30, listening on 192.0.2.1              |
//! | `~20000-20010`            | every non-ephemeral port but 20000-20010 (mode `All`)      |
//! | `auto`                    | any port bound on the other side                           |
//! | `::1/auto`                | the same, listening on `::1` only                          |
//! | `8000-8010,auto`          | ports 8000 to 8010, while bound on the other side          |
//!
//! # Accumulation
//!
//! `none`, `all`, `auto` without ranges and exclusion-only specs stand
//! alone: combined with any other spec for the same option they are a
//! [`PortSpecError::ModeConflict`], like in the original. Port lists add up,
//! and so do `auto` specs with ranges, but not the two together. A port may
//! be forwarded by one rule only, whatever the listening address, so that
//! [`FwdSpec::lookup`] has one answer ([`PortSpecError::Overlap`]).
//!
//! # Limits
//!
//! All allocation happens while parsing: the rules and a 65536-bit bitmap
//! that answers [`FwdSpec::is_forwarded`] with one memory access.
//! [`FwdSpec::lookup`] adds a binary search over the rules. Whether an
//! address family is enabled, whether `auto` is allowed (pasta only) and
//! whether a listening address is allowed (not for `-T`/`-U`) depend on the
//! rest of the configuration and are checked by the caller.

use core::fmt;
use core::net::IpAddr;

/// Longest interface name accepted after `%`: `IFNAMSIZ - 1` bytes.
pub const MAX_IFNAME_LEN: usize = 15;

/// Number of 64-bit words in a bitmap of all 65536 ports.
const MAP_WORDS: usize = 65536 / 64;

/// Highest port number, as a `u32` for overflow-free arithmetic.
const MAX_PORT: u32 = 65535;

/// Overall forwarding mode of one direction and protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FwdMode {
    /// Nothing is forwarded (`none`, or no option given).
    #[default]
    None,
    /// Every non-ephemeral port not excluded (`all`, or only exclusions);
    /// ports that cannot be bound are skipped without an error.
    All,
    /// Ports of the rules, only while bound on the target side (`auto`).
    Auto,
    /// Exactly the ports of the rules.
    Ports,
}

impl fmt::Display for FwdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FwdMode::None => "'none'",
            FwdMode::All => "'all' (or exclusion-only)",
            FwdMode::Auto => "'auto'",
            FwdMode::Ports => "port list",
        })
    }
}

/// One contiguous range of forwarded ports, and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FwdRule {
    /// Listening address; `None` means every address of both families.
    pub addr: Option<IpAddr>,
    /// Listening interface (`SO_BINDTODEVICE`), at most
    /// [`MAX_IFNAME_LEN`] bytes.
    pub ifname: Option<String>,
    /// First forwarded port.
    pub first: u16,
    /// Last forwarded port (inclusive, at least `first`).
    pub last: u16,
    /// Target port of `first`; the others follow in order.
    pub to_first: u16,
    /// Target address on the other side (`5000:192.0.2.5`); `None`: the
    /// guest's own address (or, for `-T`/`-U`, the host's loopback).
    pub to_addr: Option<IpAddr>,
}

impl FwdRule {
    /// Whether `port` falls within this rule.
    pub fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// Target port for `port`, or `None` if the rule does not cover it.
    pub fn target(&self, port: u16) -> Option<u16> {
        if !self.contains(port) {
            return None;
        }
        self.to_first.checked_add(port - self.first)
    }

    /// Target port of `last`.
    pub fn to_last(&self) -> u16 {
        self.to_first
            .saturating_add(self.last.saturating_sub(self.first))
    }

    /// Number of ports in the rule.
    pub fn port_count(&self) -> u32 {
        u32::from(self.last.saturating_sub(self.first)) + 1
    }
}

impl fmt::Display for FwdRule {
    /// In spec syntax: `[addr][%ifname]/first[-last][:to_first[-to_last]]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]")?,
            Some(IpAddr::V4(a)) => write!(f, "{a}")?,
            None => {}
        }
        if let Some(ifname) = &self.ifname {
            write!(f, "%{ifname}")?;
        }
        if self.addr.is_some() || self.ifname.is_some() {
            f.write_str("/")?;
        }
        write!(f, "{}", self.first)?;
        if self.last != self.first {
            write!(f, "-{}", self.last)?;
        }
        if self.to_first != self.first {
            write!(f, ":{}", self.to_first)?;
            if self.last != self.first {
                write!(f, "-{}", self.to_last())?;
            }
        }
        match self.to_addr {
            Some(IpAddr::V6(a)) => write!(f, ":[{a}]")?,
            Some(IpAddr::V4(a)) => write!(f, ":{a}")?,
            None => {}
        }
        Ok(())
    }
}

/// Bitmap of forwarded ports; empty (no allocation) while no port is.
#[derive(Clone, Default, PartialEq, Eq)]
struct PortBitmap(Vec<u64>);

impl PortBitmap {
    /// Whether `port` is set.
    fn get(&self, port: u16) -> bool {
        self.0
            .get(usize::from(port / 64))
            .is_some_and(|w| w & (1u64 << (port % 64)) != 0)
    }

    /// Rebuild from rules; stays unallocated if there are none, so that
    /// equal rule sets give equal bitmaps.
    fn rebuild(&mut self, rules: &[FwdRule]) {
        self.0.clear();
        if rules.is_empty() {
            self.0.shrink_to_fit();
            return;
        }
        self.0.resize(MAP_WORDS, 0);
        for r in rules {
            for port in r.first..=r.last {
                if let Some(w) = self.0.get_mut(usize::from(port / 64)) {
                    *w |= 1u64 << (port % 64);
                }
            }
        }
    }

    /// The lowest set port within `first..=last`.
    fn first_set_in(&self, first: u16, last: u16) -> Option<u16> {
        if self.0.is_empty() {
            return None;
        }
        (first..=last).find(|&p| self.get(p))
    }

    /// Number of set ports.
    fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
}

impl fmt::Debug for PortBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortBitmap({} ports)", self.count())
    }
}

/// The port-forwarding configuration of one direction and protocol, built
/// from one or more specs (see the [module documentation](self)).
///
/// Rules are kept sorted by first port and never overlap; a bitmap of
/// their ports answers [`FwdSpec::is_forwarded`]. The default forwards
/// nothing and has no spec given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwdSpec {
    /// Overall mode.
    mode: FwdMode,
    /// Forwarded ranges, sorted by `first`, disjoint.
    rules: Vec<FwdRule>,
    /// Every port of `rules`.
    map: PortBitmap,
    /// Whether any spec was added.
    given: bool,
    /// Whether the spec given cannot be combined with others (`none`,
    /// `all`, exclusion-only, `auto` without ranges).
    exclusive: bool,
}

/// An include range as parsed, before exclusions.
#[derive(Clone, Copy)]
struct Include<'a> {
    first: u16,
    last: u16,
    to_first: u16,
    to_addr: Option<IpAddr>,
    text: &'a str,
}

/// An exclusion as parsed.
#[derive(Clone, Copy)]
struct Exclude {
    first: u16,
    last: u16,
}

/// One element of a comma-separated list.
enum Element<'a> {
    All,
    Auto,
    None,
    Include(Include<'a>),
    Exclude(Exclude),
}

/// A range as parsed: first, last, whether `-last` was written, and the
/// text after it.
type ParsedRange<'a> = (u16, u16, bool, &'a str);

impl FwdSpec {
    /// Parse a single spec, as given to one `-t`, `-u`, `-T` or `-U` option.
    ///
    /// ```
    /// use passt_core::config::ports::{FwdMode, FwdSpec};
    /// let spec = FwdSpec::parse("2000-5000,~3000-3010").unwrap();
    /// assert_eq!(spec.mode(), FwdMode::Ports);
    /// assert_eq!(spec.lookup(4000).map(|(to, _)| to), Some(4000));
    /// assert!(!spec.is_forwarded(3005));
    /// ```
    ///
    /// # Errors
    /// A [`PortSpecError`] naming the offending part of `spec`.
    pub fn parse(spec: &str) -> Result<Self, PortSpecError> {
        let mut fwd = FwdSpec::default();
        fwd.add(spec)?;
        Ok(fwd)
    }

    /// Add one more spec for the same option (`-t 22 -t 80`).
    ///
    /// On error `self` is left as it was.
    ///
    /// # Errors
    /// A [`PortSpecError`] naming the offending part of `spec`, including
    /// [`PortSpecError::ModeConflict`] and [`PortSpecError::Overlap`] with
    /// what was added before.
    pub fn add(&mut self, spec: &str) -> Result<(), PortSpecError> {
        if spec.is_empty() {
            return Err(PortSpecError::Empty);
        }
        if spec == "none" {
            if self.given {
                return Err(PortSpecError::ModeConflict {
                    spec: spec.to_owned(),
                    new: FwdMode::None,
                    previous: self.mode,
                });
            }
            self.given = true;
            self.exclusive = true;
            self.mode = FwdMode::None;
            return Ok(());
        }

        let (addr, ifname, list) = match spec.split_once('/') {
            Some((prefix, list)) => {
                let (addr, ifname) = parse_prefix(spec, prefix)?;
                (addr, ifname, list)
            }
            None => (None, None, spec),
        };
        if list.is_empty() {
            return Err(PortSpecError::MissingPorts {
                spec: spec.to_owned(),
            });
        }

        let mut includes = Vec::new();
        let mut excludes = Vec::new();
        let (mut all, mut auto) = (false, false);
        let mut all_to = None;
        for (i, element) in list.split(',').enumerate() {
            if element.is_empty() {
                return Err(PortSpecError::EmptyElement {
                    spec: spec.to_owned(),
                    index: i + 1,
                });
            }
            let (element, to_addr) = split_target(spec, element)?;
            if let Some(target) = to_addr {
                let same_family = matches!(
                    (addr, target),
                    (Some(IpAddr::V4(_)), IpAddr::V4(_)) | (Some(IpAddr::V6(_)), IpAddr::V6(_))
                );
                let ranged = !(element.starts_with('~') || element == "auto");
                if !same_family || !ranged {
                    return Err(PortSpecError::TargetFamily {
                        spec: spec.to_owned(),
                        target,
                    });
                }
            }
            match parse_element(spec, element)? {
                Element::All | Element::Auto if all || auto => {
                    // A second keyword: the same again, or the other one.
                    let kw = if element == "all" { "all" } else { "auto" };
                    let twice = (kw == "all" && all) || (kw == "auto" && auto);
                    let reason = match (twice, kw) {
                        (true, _) => "is given twice",
                        (false, "all") => "cannot be combined with 'auto'",
                        (false, _) => "cannot be combined with 'all'",
                    };
                    return Err(keyword_error(spec, kw, reason));
                }
                Element::All => {
                    all = true;
                    all_to = to_addr;
                }
                Element::Auto => auto = true,
                Element::None => {
                    return Err(keyword_error(
                        spec,
                        "none",
                        "must be the whole spec, without address or ports",
                    ))
                }
                Element::Include(inc) => includes.push(Include { to_addr, ..inc }),
                Element::Exclude(exc) => excludes.push(exc),
            }
        }
        if all && !includes.is_empty() {
            return Err(keyword_error(
                spec,
                "all",
                "cannot be combined with port ranges (only with '~' exclusions)",
            ));
        }

        // Without include ranges, the set is every port (1-65535).
        let full = includes.is_empty();
        let mode = if auto {
            FwdMode::Auto
        } else if full {
            FwdMode::All
        } else {
            FwdMode::Ports
        };
        if self.given && (self.exclusive || full || self.mode != mode) {
            return Err(PortSpecError::ModeConflict {
                spec: spec.to_owned(),
                new: mode,
                previous: self.mode,
            });
        }
        if full {
            includes.push(Include {
                first: 1,
                last: 65535,
                to_first: 1,
                to_addr: all_to,
                text: if auto { "auto" } else { "all" },
            });
        }

        // The same port written twice in this spec (before exclusions).
        includes.sort_by_key(|inc| inc.first);
        for pair in includes.windows(2) {
            if let [a, b] = pair {
                if b.first <= a.last {
                    return Err(PortSpecError::Overlap {
                        spec: spec.to_owned(),
                        element: b.text.to_owned(),
                        port: b.first,
                        earlier: a.text.to_owned(),
                    });
                }
            }
        }

        // An exclusion that removes nothing is accepted, as the original
        // does.
        let excluded = merge_ranges(&excludes);
        let mut new_rules = Vec::new();
        for inc in &includes {
            subtract(spec, inc, &excluded, &addr, &ifname, &mut new_rules)?;
        }

        // A port already forwarded by an earlier spec.
        for (rule, text) in &new_rules {
            if let Some(port) = self.map.first_set_in(rule.first, rule.last) {
                let earlier = self
                    .lookup(port)
                    .map_or_else(String::new, |(_, r)| r.to_string());
                return Err(PortSpecError::Overlap {
                    spec: spec.to_owned(),
                    element: (*text).to_owned(),
                    port,
                    earlier,
                });
            }
        }

        self.rules.extend(new_rules.into_iter().map(|(r, _)| r));
        self.rules.sort_by_key(|r| r.first);
        self.map.rebuild(&self.rules);
        self.mode = mode;
        self.given = true;
        self.exclusive = full;
        Ok(())
    }

    /// The overall mode.
    pub fn mode(&self) -> FwdMode {
        self.mode
    }

    /// Forwarded ranges after exclusions, sorted by first port, disjoint.
    pub fn rules(&self) -> &[FwdRule] {
        &self.rules
    }

    /// Whether any spec was added (so the caller's default does not apply;
    /// `FwdSpec::parse("none")` differs from the default in this only).
    pub fn is_given(&self) -> bool {
        self.given
    }

    /// Whether `port` is forwarded (one bitmap access).
    pub fn is_forwarded(&self, port: u16) -> bool {
        self.map.get(port)
    }

    /// Target port and rule for a forwarded `port`, `None` if not forwarded.
    pub fn lookup(&self, port: u16) -> Option<(u16, &FwdRule)> {
        if !self.map.get(port) {
            return None;
        }
        let idx = self.rules.partition_point(|r| r.first <= port);
        let rule = self.rules.get(idx.checked_sub(1)?)?;
        Some((rule.target(port)?, rule))
    }

    /// Every forwarded port, in ascending order.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.rules.iter().flat_map(|r| r.first..=r.last)
    }

    /// Number of forwarded ports.
    pub fn port_count(&self) -> u32 {
        self.rules.iter().map(FwdRule::port_count).sum()
    }

    /// Remove the host's ephemeral port range (as read from
    /// `/proc/sys/net/ipv4/ip_local_port_range`) from an [`FwdMode::All`]
    /// spec, which forwards non-ephemeral ports only. Does nothing in other
    /// modes, where ranges were given explicitly, or if `first > last`.
    pub fn exclude_ephemeral(&mut self, first: u16, last: u16) {
        if self.mode != FwdMode::All || first > last {
            return;
        }
        let mut kept = Vec::with_capacity(self.rules.len() + 1);
        for r in self.rules.drain(..) {
            if r.last < first || r.first > last {
                kept.push(r);
                continue;
            }
            if r.first < first {
                kept.push(FwdRule {
                    last: first - 1,
                    ..r.clone()
                });
            }
            if r.last > last {
                let start = last + 1;
                let to_first = r.target(start).unwrap_or(start);
                kept.push(FwdRule {
                    first: start,
                    to_first,
                    ..r
                });
            }
        }
        self.rules = kept;
        self.map.rebuild(&self.rules);
    }

    /// Stop forwarding the ports of `other`'s rules (the configuration
    /// socket's "delete", see `doc/control.md`): each must be forwarded
    /// here by a rule with the same listening address and interface; the
    /// targets `other` names are not compared. Rules are split around the
    /// removed ports; a spec left without rules becomes the default (no
    /// spec given), so that later [`FwdSpec::add`]s start afresh.
    ///
    /// # Errors
    /// The first port of `other` that is not forwarded with its prefix
    /// here; `self` is then left as it was.
    pub fn remove(&mut self, other: &FwdSpec) -> Result<(), u16> {
        for o in &other.rules {
            for port in o.first..=o.last {
                match self.lookup(port) {
                    Some((_, r)) if r.addr == o.addr && r.ifname == o.ifname => {}
                    _ => return Err(port),
                }
            }
        }
        let mut kept = Vec::with_capacity(self.rules.len() + other.rules.len());
        for r in &self.rules {
            // The parts of `r` outside every rule of `other`, in order.
            let mut start = u32::from(r.first);
            let end = u32::from(r.last);
            for o in &other.rules {
                let (of, ol) = (u32::from(o.first), u32::from(o.last));
                if ol < start || of > end {
                    continue;
                }
                if of > start {
                    kept.push(Self::piece(r, start, of - 1));
                }
                start = ol + 1;
            }
            if start <= end {
                kept.push(Self::piece(r, start, end));
            }
        }
        if kept.is_empty() {
            *self = FwdSpec::default();
            return Ok(());
        }
        self.rules = kept;
        self.map.rebuild(&self.rules);
        Ok(())
    }

    /// Ports `first..=last` of `r` (within it) as a rule of their own.
    fn piece(r: &FwdRule, first: u32, last: u32) -> FwdRule {
        let first = u16::try_from(first).unwrap_or(r.first);
        let last = u16::try_from(last).unwrap_or(r.last);
        FwdRule {
            first,
            last,
            to_first: r.target(first).unwrap_or(r.to_first),
            ..r.clone()
        }
    }

    /// Check every structural invariant; panics if one does not hold.
    /// For tests and fuzzing only.
    #[cfg(any(test, feature = "fuzzing"))]
    fn assert_invariants(&self) {
        let mut prev_last: Option<u16> = None;
        let mut total = 0u32;
        for r in &self.rules {
            assert!(r.first >= 1, "rule {r} starts at port 0");
            assert!(r.first <= r.last, "rule {r} reversed");
            assert!(r.to_first >= 1, "rule {r} targets port 0");
            let to_last = u32::from(r.to_first) + u32::from(r.last - r.first);
            assert!(to_last <= MAX_PORT, "rule {r} targets beyond 65535");
            if let Some(p) = prev_last {
                assert!(p < r.first, "rule {r} overlaps or is out of order");
            }
            if let Some(name) = &r.ifname {
                assert!(!name.is_empty() && name.len() <= MAX_IFNAME_LEN);
            }
            prev_last = Some(r.last);
            total += r.port_count();
            for port in [r.first, r.last] {
                let (to, found) = self.lookup(port).expect("rule port not found");
                assert_eq!(found, r);
                assert_eq!(
                    u32::from(to),
                    u32::from(r.to_first) + u32::from(port - r.first)
                );
            }
            let outside = [r.first.checked_sub(1), r.last.checked_add(1)];
            for port in outside.into_iter().flatten() {
                assert!(self.lookup(port).map_or(true, |(_, o)| o != r));
            }
        }
        assert_eq!(self.map.count(), total, "bitmap and rules disagree");
        assert_eq!(self.port_count(), total);
        assert_eq!(self.ports().count(), total as usize);
        assert!(!self.is_forwarded(0));
        if self.mode == FwdMode::None {
            assert!(self.rules.is_empty());
        }
        if self.mode == FwdMode::All || self.mode == FwdMode::None {
            assert!(!self.given || self.exclusive);
        }
        if !self.given {
            assert_eq!(*self, FwdSpec::default());
        }
    }
}

/// Parse arbitrary bytes as specs and check every invariant: the input, as
/// UTF-8 (lossily), is parsed whole, then split at newlines into specs added
/// one after the other. Panics only if an invariant breaks.
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match FwdSpec::parse(&text) {
        Ok(spec) => spec.assert_invariants(),
        Err(e) => assert!(e.to_string().starts_with("invalid port spec '")),
    }
    let mut acc = FwdSpec::default();
    for part in text.split('\n').take(64) {
        let before = acc.clone();
        match acc.add(part) {
            Ok(()) => acc.assert_invariants(),
            Err(e) => {
                assert_eq!(acc, before, "failed add changed the spec");
                assert!(e.to_string().starts_with("invalid port spec '"));
            }
        }
    }
    // Removing the last line's ports: the rest stays forwarded as it was,
    // those ports no longer are; a refusal changes nothing.
    if let Some(Ok(other)) = text.split('\n').next_back().map(FwdSpec::parse) {
        let before = acc.clone();
        match acc.remove(&other) {
            Ok(()) => {
                acc.assert_invariants();
                for port in before.ports() {
                    if other.is_forwarded(port) {
                        assert!(!acc.is_forwarded(port), "port {port} still forwarded");
                    } else {
                        let was = before.lookup(port).map(|(to, r)| (to, r.addr, r.to_addr));
                        let now = acc.lookup(port).map(|(to, r)| (to, r.addr, r.to_addr));
                        assert_eq!(was, now, "port {port} changed");
                    }
                }
            }
            Err(port) => {
                assert!(other.is_forwarded(port));
                assert_eq!(acc, before, "a refused remove changed the spec");
            }
        }
    }
    // The ephemeral-range removal keeps the invariants too.
    let (a, b) = match data {
        [x, y, ..] => (u16::from(*x) << 8, u16::from(*y) << 8 | 0xff),
        _ => (32768, 60999),
    };
    acc.exclude_ephemeral(a, b);
    acc.assert_invariants();
}

/// Split the listening prefix into address and interface name.
fn parse_prefix(
    spec: &str,
    prefix: &str,
) -> Result<(Option<IpAddr>, Option<String>), PortSpecError> {
    let (addr_text, ifname) = match prefix.split_once('%') {
        Some((a, name)) => (a, Some(check_ifname(spec, name)?)),
        None => (prefix, None),
    };
    if (addr_text.is_empty() && ifname.is_some()) || addr_text == "*" {
        return Ok((None, ifname));
    }
    // Brackets are optional, for IPv4 too.
    let bare = addr_text
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr_text);
    let addr = bare
        .parse::<IpAddr>()
        .map_err(|_| PortSpecError::BadAddress {
            spec: spec.to_owned(),
            token: addr_text.to_owned(),
        })?;
    Ok((Some(addr.to_canonical()), ifname))
}

/// Split a target address off an element: `5000:192.0.2.5`,
/// `all:[2001:db8::5]`. The text after the first `:` is one if it holds a
/// dot (an IPv4 address: a port has none), or the element ends with a
/// bracketed IPv6 address.
fn split_target<'a>(
    spec: &str,
    element: &'a str,
) -> Result<(&'a str, Option<IpAddr>), PortSpecError> {
    let bad = |t: &str| PortSpecError::BadAddress {
        spec: spec.to_owned(),
        token: t.to_owned(),
    };
    if element.ends_with(']') {
        let Some((head, v6)) = element.split_once(":[") else {
            return Err(bad(element));
        };
        let a = v6
            .strip_suffix(']')
            .and_then(|a| a.parse::<core::net::Ipv6Addr>().ok())
            .ok_or_else(|| bad(v6))?;
        return Ok((head, Some(IpAddr::V6(a).to_canonical())));
    }
    match element.split_once(':') {
        Some((head, tail)) if tail.contains('.') => {
            let a = tail.parse::<core::net::Ipv4Addr>().map_err(|_| bad(tail))?;
            Ok((head, Some(IpAddr::V4(a))))
        }
        _ => Ok((element, None)),
    }
}

/// Validate an interface name as Linux would (`dev_valid_name()`).
fn check_ifname(spec: &str, name: &str) -> Result<String, PortSpecError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("cannot be '.' or '..'")
    } else if name
        .chars()
        .any(|c| matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control())
    {
        Some("contains '/', ':', '%', whitespace or a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PortSpecError::BadIfname {
            spec: spec.to_owned(),
            token: name.to_owned(),
            reason,
        }),
        None => Ok(name.to_owned()),
    }
}

/// Parse one element of the list.
fn parse_element<'a>(spec: &str, element: &'a str) -> Result<Element<'a>, PortSpecError> {
    match element {
        "all" => return Ok(Element::All),
        "auto" => return Ok(Element::Auto),
        "none" => return Ok(Element::None),
        _ => {}
    }
    let garbage = |rest: &str| PortSpecError::TrailingGarbage {
        spec: spec.to_owned(),
        element: element.to_owned(),
        token: rest.to_owned(),
    };

    if let Some(body) = element.strip_prefix('~') {
        let (first, last, _, rest) = parse_range(spec, element, body)?;
        if rest.starts_with(':') {
            return Err(PortSpecError::ExcludeMapping {
                spec: spec.to_owned(),
                element: element.to_owned(),
            });
        }
        if !rest.is_empty() {
            return Err(garbage(rest));
        }
        return Ok(Element::Exclude(Exclude { first, last }));
    }

    let (first, last, _, rest) = parse_range(spec, element, element)?;
    if first == 0 {
        return Err(port_zero(spec, element));
    }
    let (to_first, rest) = match rest.strip_prefix(':') {
        None => (first, rest),
        Some(target) => {
            let (to_first, to_last, to_ranged, rest) = parse_range(spec, element, target)?;
            if to_first == 0 {
                return Err(port_zero(spec, element));
            }
            let from = u32::from(last - first) + 1;
            if to_ranged {
                let to = u32::from(to_last - to_first) + 1;
                if to != from {
                    return Err(PortSpecError::LengthMismatch {
                        spec: spec.to_owned(),
                        element: element.to_owned(),
                        from,
                        to,
                    });
                }
            } else {
                let end = u32::from(to_first) + from - 1;
                if end > MAX_PORT {
                    return Err(PortSpecError::TargetOutOfRange {
                        spec: spec.to_owned(),
                        element: element.to_owned(),
                        last: end,
                    });
                }
            }
            (to_first, rest)
        }
    };
    if !rest.is_empty() {
        return Err(garbage(rest));
    }
    Ok(Element::Include(Include {
        first,
        last,
        to_first,
        to_addr: None,
        text: element,
    }))
}

/// Parse `port[-port]` at the start of `s`, a part of `element`.
fn parse_range<'a>(
    spec: &str,
    element: &str,
    s: &'a str,
) -> Result<ParsedRange<'a>, PortSpecError> {
    let (first, rest) = parse_port(spec, element, s)?;
    let Some(after_dash) = rest.strip_prefix('-') else {
        return Ok((first, first, false, rest));
    };
    let (last, rest) = parse_port(spec, element, after_dash)?;
    if last < first {
        let text = s.get(..s.len() - rest.len()).unwrap_or(s);
        return Err(PortSpecError::Reversed {
            spec: spec.to_owned(),
            token: text.to_owned(),
        });
    }
    Ok((first, last, true, rest))
}

/// Parse a decimal port number at the start of `s`, a part of `element`.
fn parse_port<'a>(spec: &str, element: &str, s: &'a str) -> Result<(u16, &'a str), PortSpecError> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    let Some((digits, rest)) = s.split_at_checked(len) else {
        return Err(not_a_number(spec, element, s));
    };
    if digits.is_empty() {
        return Err(not_a_number(spec, element, s));
    }
    let value = digits.bytes().fold(0u32, |v, b| {
        v.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    });
    let port = u16::try_from(value).map_err(|_| PortSpecError::OutOfRange {
        spec: spec.to_owned(),
        token: digits.to_owned(),
    })?;
    Ok((port, rest))
}

/// Sort exclusions and merge overlapping or adjacent ones.
fn merge_ranges(excludes: &[Exclude]) -> Vec<(u16, u16)> {
    let mut sorted: Vec<(u16, u16)> = excludes.iter().map(|e| (e.first, e.last)).collect();
    sorted.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(sorted.len());
    for (first, last) in sorted {
        match merged.last_mut() {
            Some(prev) if u32::from(first) <= u32::from(prev.1) + 1 => {
                prev.1 = prev.1.max(last);
            }
            _ => merged.push((first, last)),
        }
    }
    merged
}

/// Append the parts of `inc` not covered by `excluded` (sorted, merged) as
/// rules, each with the element it came from.
fn subtract<'a>(
    spec: &str,
    inc: &Include<'a>,
    excluded: &[(u16, u16)],
    addr: &Option<IpAddr>,
    ifname: &Option<String>,
    out: &mut Vec<(FwdRule, &'a str)>,
) -> Result<(), PortSpecError> {
    let end = u32::from(inc.last);
    let mut start = u32::from(inc.first);
    let mut segments = Vec::new();
    let mut j = excluded.partition_point(|&(_, last)| last < inc.first);
    while start <= end {
        match excluded.get(j) {
            Some(&(xf, xl)) if u32::from(xf) <= end => {
                if u32::from(xf) > start {
                    segments.push((start, u32::from(xf) - 1));
                }
                start = start.max(u32::from(xl) + 1);
                j += 1;
            }
            _ => {
                segments.push((start, end));
                break;
            }
        }
    }
    for (first, last) in segments {
        let to_first = u32::from(inc.to_first) + (first - u32::from(inc.first));
        let (Ok(first), Ok(last), Ok(to_first)) = (
            u16::try_from(first),
            u16::try_from(last),
            u16::try_from(to_first),
        ) else {
            // Ruled out by parse_element(); an error rather than a panic.
            return Err(PortSpecError::TargetOutOfRange {
                spec: spec.to_owned(),
                element: inc.text.to_owned(),
                last: to_first,
            });
        };
        let rule = FwdRule {
            addr: *addr,
            ifname: ifname.clone(),
            first,
            last,
            to_first,
            to_addr: inc.to_addr,
        };
        out.push((rule, inc.text));
    }
    Ok(())
}

/// [`PortSpecError::NotANumber`] for the text at `s`, up to the next
/// separator.
fn not_a_number(spec: &str, element: &str, s: &str) -> PortSpecError {
    let found = s.split(['-', ':']).next().unwrap_or_default();
    PortSpecError::NotANumber {
        spec: spec.to_owned(),
        element: element.to_owned(),
        found: found.to_owned(),
    }
}

/// [`PortSpecError::PortZero`] for `element`.
fn port_zero(spec: &str, element: &str) -> PortSpecError {
    PortSpecError::PortZero {
        spec: spec.to_owned(),
        element: element.to_owned(),
    }
}

/// [`PortSpecError::Keyword`] for `keyword`.
fn keyword_error(spec: &str, keyword: &'static str, reason: &'static str) -> PortSpecError {
    PortSpecError::Keyword {
        spec: spec.to_owned(),
        keyword,
        reason,
    }
}

/// `'text'`, or `nothing` for an empty text, for error messages.
fn quoted(text: &str) -> String {
    if text.is_empty() {
        "nothing".to_owned()
    } else {
        format!("'{text}'")
    }
}

/// Why a port-forwarding spec was refused. Every message starts with
/// `invalid port spec '<spec>':` and names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortSpecError {
    /// The spec is an empty string.
    #[error("invalid port spec '': empty (expected 'none', 'all', 'auto' or a list of ports)")]
    Empty,
    /// Nothing follows the `/` after an address or interface.
    #[error("invalid port spec '{spec}': nothing after '/' (expected ports, 'all' or 'auto')")]
    MissingPorts {
        /// The whole spec.
        spec: String,
    },
    /// Two commas in a row, or a comma at either end.
    #[error(
        "invalid port spec '{spec}': element {index} of the list is empty \
         (expected a port, a range, a '~' exclusion, 'all' or 'auto')"
    )]
    EmptyElement {
        /// The whole spec.
        spec: String,
        /// Position of the empty element, from 1.
        index: usize,
    },
    /// A port number is missing or not a decimal number.
    #[error(
        "invalid port spec '{spec}': expected a port number (1-65535) in '{element}', found {}",
        quoted(.found)
    )]
    NotANumber {
        /// The whole spec.
        spec: String,
        /// The list element.
        element: String,
        /// What stands where the number should be (may be empty).
        found: String,
    },
    /// A port number above 65535.
    #[error("invalid port spec '{spec}': port {token} out of range (1-65535)")]
    OutOfRange {
        /// The whole spec.
        spec: String,
        /// The number as written.
        token: String,
    },
    /// Port 0 as a forwarded or target port (it is accepted in exclusions).
    #[error(
        "invalid port spec '{spec}': port 0 in '{element}' cannot be forwarded (ports are 1-65535)"
    )]
    PortZero {
        /// The whole spec.
        spec: String,
        /// The list element.
        element: String,
    },
    /// A range whose last port is below its first.
    #[error("invalid port spec '{spec}': range '{token}' is reversed (expected first-last with first <= last)")]
    Reversed {
        /// The whole spec.
        spec: String,
        /// The range as written.
        token: String,
    },
    /// A mapping between ranges of different lengths.
    #[error(
        "invalid port spec '{spec}': '{element}' maps {from} ports to {to} ports \
         (both ranges must have the same length)"
    )]
    LengthMismatch {
        /// The whole spec.
        spec: String,
        /// The list element.
        element: String,
        /// Number of forwarded ports.
        from: u32,
        /// Number of target ports.
        to: u32,
    },
    /// A mapping given by its first target port runs beyond 65535.
    #[error("invalid port spec '{spec}': '{element}' maps to ports up to {last}, beyond 65535")]
    TargetOutOfRange {
        /// The whole spec.
        spec: String,
        /// The list element.
        element: String,
        /// The last target port it would need.
        last: u32,
    },
    /// A port forwarded twice, in this spec or by an earlier one.
    #[error("invalid port spec '{spec}': port {port} of '{element}' is already forwarded by '{earlier}'")]
    Overlap {
        /// The whole spec.
        spec: String,
        /// The list element forwarding the port again.
        element: String,
        /// The lowest port forwarded twice.
        port: u16,
        /// The earlier element or rule forwarding it.
        earlier: String,
    },
    /// The text before `/` (or `%`) is not an IP address.
    #[error(
        "invalid port spec '{spec}': expected an IPv4 or IPv6 address before '/', found {}",
        quoted(.token)
    )]
    BadAddress {
        /// The whole spec.
        spec: String,
        /// The address as written.
        token: String,
    },
    /// The interface name after `%` cannot be a Linux interface name.
    #[error("invalid port spec '{spec}': interface name '{token}' {reason}")]
    BadIfname {
        /// The whole spec.
        spec: String,
        /// The name as written.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A target address without a listening address of its family (the
    /// original refuses dual-stack and cross-family rules alike), or on
    /// an exclusion or `auto`.
    #[error(
        "invalid port spec '{spec}': target address {target} needs a listening address of \
         its family (0.0.0.0/... or [::]/...) and ports or 'all'"
    )]
    TargetFamily {
        /// The whole spec.
        spec: String,
        /// The target address.
        target: IpAddr,
    },
    /// Unexpected text after a port or range.
    #[error(
        "invalid port spec '{spec}': unexpected '{token}' at the end of '{element}' \
         (expected ',' or, after a port, '-' or ':')"
    )]
    TrailingGarbage {
        /// The whole spec.
        spec: String,
        /// The list element.
        element: String,
        /// The unexpected text.
        token: String,
    },
    /// An exclusion with a target (`~22:23`).
    #[error(
        "invalid port spec '{spec}': exclusion '{element}' cannot have a target port after ':'"
    )]
    ExcludeMapping {
        /// The whole spec.
        spec: String,
        /// The exclusion as written.
        element: String,
    },
    /// `none`, `all` or `auto` used where it is not allowed.
    #[error("invalid port spec '{spec}': '{keyword}' {reason}")]
    Keyword {
        /// The whole spec.
        spec: String,
        /// The keyword.
        keyword: &'static str,
        /// Why it is refused here.
        reason: &'static str,
    },
    /// A spec that cannot be combined with the ones given before for the
    /// same option.
    #[error(
        "invalid port spec '{spec}': this {new} spec conflicts with an earlier {previous} spec \
         for the same option (only port lists, or 'auto' with port ranges, add up)"
    )]
    ModeConflict {
        /// The whole spec.
        spec: String,
        /// The mode this spec asks for.
        new: FwdMode,
        /// The mode set by the earlier specs.
        previous: FwdMode,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn rule(first: u16, last: u16, to_first: u16) -> FwdRule {
        FwdRule {
            addr: None,
            ifname: None,
            first,
            last,
            to_first,
            to_addr: None,
        }
    }

    fn bound(addr: Option<IpAddr>, ifname: Option<&str>, r: FwdRule) -> FwdRule {
        FwdRule {
            addr,
            ifname: ifname.map(str::to_owned),
            ..r
        }
    }

    fn parsed(spec: &str) -> FwdSpec {
        let fwd = FwdSpec::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        fwd.assert_invariants();
        fwd
    }

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    #[test]
    fn man_page_examples() {
        let cases: &[(&str, FwdMode, Vec<FwdRule>)] = &[
            ("all", FwdMode::All, vec![rule(1, 65535, 1)]),
            (
                "::1/all",
                FwdMode::All,
                vec![bound(Some(LO6), None, rule(1, 65535, 1))],
            ),
            ("22", FwdMode::Ports, vec![rule(22, 22, 22)]),
            ("22:23", FwdMode::Ports, vec![rule(22, 22, 23)]),
            (
                "22,25",
                FwdMode::Ports,
                vec![rule(22, 22, 22), rule(25, 25, 25)],
            ),
            ("22-80", FwdMode::Ports, vec![rule(22, 80, 22)]),
            ("22-80:32-90", FwdMode::Ports, vec![rule(22, 80, 32)]),
            (
                "192.0.2.1/22",
                FwdMode::Ports,
                vec![bound(Some(V4), None, rule(22, 22, 22))],
            ),
            (
                "192.0.2.1%eth0/22",
                FwdMode::Ports,
                vec![bound(Some(V4), Some("eth0"), rule(22, 22, 22))],
            ),
            (
                "%eth0/22",
                FwdMode::Ports,
                vec![bound(None, Some("eth0"), rule(22, 22, 22))],
            ),
            (
                "2000-5000,~3000-3010",
                FwdMode::Ports,
                vec![rule(2000, 2999, 2000), rule(3011, 5000, 3011)],
            ),
            (
                "192.0.2.1/20-30,~25",
                FwdMode::Ports,
                vec![
                    bound(Some(V4), None, rule(20, 24, 20)),
                    bound(Some(V4), None, rule(26, 30, 26)),
                ],
            ),
            (
                "~20000-20010",
                FwdMode::All,
                vec![rule(1, 19999, 1), rule(20011, 65535, 20011)],
            ),
            ("auto", FwdMode::Auto, vec![rule(1, 65535, 1)]),
            (
                "::1/auto",
                FwdMode::Auto,
                vec![bound(Some(LO6), None, rule(1, 65535, 1))],
            ),
            (
                "8000-8010,auto",
                FwdMode::Auto,
                vec![rule(8000, 8010, 8000)],
            ),
        ];
        for (spec, mode, rules) in cases {
            let fwd = parsed(spec);
            assert_eq!(fwd.mode(), *mode, "{spec}");
            assert_eq!(fwd.rules(), rules.as_slice(), "{spec}");
            assert!(fwd.is_given());
        }
        let none = parsed("none");
        assert_eq!(none.mode(), FwdMode::None);
        assert!(none.rules().is_empty() && none.is_given());
        assert_ne!(none, FwdSpec::default());
    }

    #[test]
    fn address_forms() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for spec in ["2001:db8::1/22", "[2001:db8::1]/22"] {
            assert_eq!(
                parsed(spec).rules(),
                &[bound(Some(v6), None, rule(22, 22, 22))]
            );
        }
        assert_eq!(
            parsed("[192.0.2.1]/22").rules(),
            &[bound(Some(V4), None, rule(22, 22, 22))]
        );
        // IPv4-mapped IPv6 is stored as IPv4.
        assert_eq!(parsed("::ffff:192.0.2.1/22").rules()[0].addr, Some(V4));
        let ll: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(
            parsed("[fe80::1]%eth0/22").rules(),
            &[bound(Some(ll), Some("eth0"), rule(22, 22, 22))]
        );
        assert_eq!(
            parsed("fe80::1%eth0/22").rules(),
            &[bound(Some(ll), Some("eth0"), rule(22, 22, 22))]
        );
        assert_eq!(
            parsed("0.0.0.0/5000:6000").rules(),
            &[bound(
                Some(Ipv4Addr::UNSPECIFIED.into()),
                None,
                rule(5000, 5000, 6000)
            )]
        );
        let max = parsed("%abcdefghijklmno/1");
        assert_eq!(max.rules()[0].ifname.as_deref(), Some("abcdefghijklmno"));
    }

    #[test]
    fn mapping_and_exclusion_details() {
        // Mapped ranges keep their offset across exclusions.
        assert_eq!(
            parsed("22-80:32-90,~30-40").rules(),
            &[rule(22, 29, 32), rule(41, 80, 51)]
        );
        // Target given by its first port (extension).
        assert_eq!(parsed("22-80:32").rules(), &[rule(22, 80, 32)]);
        assert_eq!(parsed("1-10:65526").rules(), &[rule(1, 10, 65526)]);
        // Exclusions may overlap each other, partly overlap includes, and
        // come first; leading zeroes are fine; port 0 may be excluded.
        assert_eq!(
            parsed("~5-8,1-10,~7-12,~0-1,0020").rules(),
            &[rule(2, 4, 2), rule(20, 20, 20)]
        );
        // 'all' and 'auto' with exclusions.
        assert_eq!(parsed("all,~1-1023").rules(), &[rule(1024, 65535, 1024)]);
        let auto = parsed("~22,auto");
        assert_eq!(auto.mode(), FwdMode::Auto);
        assert_eq!(auto.rules(), &[rule(1, 21, 1), rule(23, 65535, 23)]);
        // An include range entirely excluded forwards nothing.
        let empty = parsed("25,~25");
        assert_eq!(empty.mode(), FwdMode::Ports);
        assert!(empty.rules().is_empty());
        // Rule display is spec syntax.
        assert_eq!(
            bound(Some(LO6), Some("lo"), rule(22, 80, 32)).to_string(),
            "[::1]%lo/22-80:32-90"
        );
        assert_eq!(rule(22, 22, 23).to_string(), "22:23");
    }

    #[test]
    fn accumulation() {
        let mut fwd = FwdSpec::default();
        assert!(!fwd.is_given());
        fwd.add("80").unwrap();
        fwd.add("22").unwrap();
        fwd.add("192.0.2.1/443:8443").unwrap();
        fwd.add("1000-2000,~1500").unwrap();
        fwd.assert_invariants();
        assert_eq!(fwd.mode(), FwdMode::Ports);
        assert_eq!(
            fwd.rules(),
            &[
                rule(22, 22, 22),
                rule(80, 80, 80),
                bound(Some(V4), None, rule(443, 443, 8443)),
                rule(1000, 1499, 1000),
                rule(1501, 2000, 1501),
            ]
        );
        // The excluded port of an earlier spec is free for a later one.
        fwd.add("1500:22").unwrap();
        assert_eq!(fwd.lookup(1500).map(|(to, _)| to), Some(22));

        // A failed add leaves everything as it was.
        let before = fwd.clone();
        let err = fwd.add("3000,80").unwrap_err();
        assert!(
            matches!(err, PortSpecError::Overlap { port: 80, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("'80'"), "{err}");
        assert_eq!(fwd, before);

        let mut auto = FwdSpec::parse("8000-8010,auto").unwrap();
        auto.add("9000,auto").unwrap();
        assert_eq!(auto.mode(), FwdMode::Auto);
        assert_eq!(
            auto.rules(),
            &[rule(8000, 8010, 8000), rule(9000, 9000, 9000)]
        );
    }

    #[test]
    fn mode_conflicts() {
        let cases: &[(&str, &str, FwdMode, FwdMode)] = &[
            ("none", "22", FwdMode::Ports, FwdMode::None),
            ("22", "none", FwdMode::None, FwdMode::Ports),
            ("none", "none", FwdMode::None, FwdMode::None),
            ("all", "all", FwdMode::All, FwdMode::All),
            ("all", "22", FwdMode::Ports, FwdMode::All),
            ("22", "all", FwdMode::All, FwdMode::Ports),
            ("auto", "auto", FwdMode::Auto, FwdMode::Auto),
            ("auto", "8000,auto", FwdMode::Auto, FwdMode::Auto),
            ("8000,auto", "auto", FwdMode::Auto, FwdMode::Auto),
            ("22", "8000,auto", FwdMode::Auto, FwdMode::Ports),
            ("8000,auto", "22", FwdMode::Ports, FwdMode::Auto),
            ("22", "~25", FwdMode::All, FwdMode::Ports),
            ("~25", "22", FwdMode::Ports, FwdMode::All),
        ];
        for (first, second, new, previous) in cases {
            let mut fwd = FwdSpec::parse(first).unwrap();
            let before = fwd.clone();
            let err = fwd.add(second).unwrap_err();
            assert_eq!(
                err,
                PortSpecError::ModeConflict {
                    spec: (*second).to_owned(),
                    new: *new,
                    previous: *previous,
                },
                "{first} then {second}"
            );
            assert!(err.to_string().contains(&format!("'{second}'")));
            assert_eq!(fwd, before);
        }
    }

    /// Parse `spec`, expect an error matching `check`, whose message names
    /// `token`.
    fn expect_err(spec: &str, token: &str, check: fn(&PortSpecError) -> bool) {
        let err = FwdSpec::parse(spec).expect_err(spec);
        assert!(check(&err), "{spec}: unexpected {err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("invalid port spec '"), "{msg}");
        assert!(msg.contains(token), "{spec}: {msg} lacks {token}");
    }

    /// The 2026 syntax: target addresses, `*`, exclusions that match
    /// nothing (accepted, as the original).
    #[test]
    fn target_addresses_star_and_idle_exclusions() {
        let v4 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let s = FwdSpec::parse("0.0.0.0/5000:192.0.2.5").unwrap();
        assert_eq!(s.rules().len(), 1);
        let r = &s.rules()[0];
        assert_eq!(
            (r.addr, r.first, r.to_first, r.to_addr),
            (v4("0.0.0.0"), 5000, 5000, v4("192.0.2.5"))
        );
        assert_eq!(r.to_string(), "0.0.0.0/5000:192.0.2.5");
        let s = FwdSpec::parse("[::]/5000-5001:[2001:db8::5]").unwrap();
        assert_eq!(s.rules()[0].to_addr, v4("2001:db8::5"));
        assert_eq!(
            s.lookup(5001).map(|(p, r)| (p, r.to_addr)),
            Some((5001, v4("2001:db8::5")))
        );
        let s = FwdSpec::parse("0.0.0.0/all:192.0.2.5,~22").unwrap();
        assert_eq!(s.mode(), FwdMode::All);
        assert!(s.rules().iter().all(|r| r.to_addr == v4("192.0.2.5")));
        assert!(!s.is_forwarded(22) && s.is_forwarded(23));
        // Mapped ports and a target address cannot be written together,
        // as in the original.
        assert!(FwdSpec::parse("0.0.0.0/5000:6000:192.0.2.5").is_err());
        // `*`: every address of both families, as no address.
        assert_eq!(
            FwdSpec::parse("*/5000").unwrap(),
            FwdSpec::parse("5000").unwrap()
        );
        assert_eq!(
            FwdSpec::parse("*/all").unwrap(),
            FwdSpec::parse("all").unwrap()
        );
        // An exclusion outside the ranges does nothing.
        assert_eq!(
            FwdSpec::parse("8000-8010,~9000").unwrap(),
            FwdSpec::parse("8000-8010").unwrap()
        );
        assert_eq!(
            FwdSpec::parse("22,~25").unwrap(),
            FwdSpec::parse("22").unwrap()
        );
    }

    #[test]
    fn errors_name_the_offending_text() {
        use PortSpecError as E;
        expect_err("", "''", |e| matches!(e, E::Empty));
        expect_err("192.0.2.1/", "'192.0.2.1/'", |e| {
            matches!(e, E::MissingPorts { .. })
        });
        expect_err("22,,25", "element 2", |e| {
            matches!(e, E::EmptyElement { index: 2, .. })
        });
        expect_err("22,", "element 2", |e| {
            matches!(e, E::EmptyElement { index: 2, .. })
        });
        expect_err(",22", "element 1", |e| {
            matches!(e, E::EmptyElement { index: 1, .. })
        });
        expect_err(
            "ssh",
            "'ssh'",
            |e| matches!(e, E::NotANumber { found, .. } if found == "ssh"),
        );
        expect_err(
            "22-",
            "found nothing",
            |e| matches!(e, E::NotANumber { element, .. } if element == "22-"),
        );
        expect_err("22:x", "'x'", |e| matches!(e, E::NotANumber { .. }));
        expect_err("~", "'~'", |e| matches!(e, E::NotANumber { .. }));
        expect_err(" 22", "' 22'", |e| matches!(e, E::NotANumber { .. }));
        expect_err("-5", "'-5'", |e| matches!(e, E::NotANumber { .. }));
        expect_err(
            "70000",
            "port 70000 out of range",
            |e| matches!(e, E::OutOfRange { token, .. } if token == "70000"),
        );
        expect_err("22:65536", "65536", |e| matches!(e, E::OutOfRange { .. }));
        expect_err("99999999999999999999999", "99999999999999999999999", |e| {
            matches!(e, E::OutOfRange { .. })
        });
        expect_err("0", "port 0", |e| matches!(e, E::PortZero { .. }));
        expect_err("0-10", "'0-10'", |e| matches!(e, E::PortZero { .. }));
        expect_err("22:0", "'22:0'", |e| matches!(e, E::PortZero { .. }));
        expect_err(
            "80-22",
            "'80-22'",
            |e| matches!(e, E::Reversed { token, .. } if token == "80-22"),
        );
        expect_err("~80-22", "'80-22'", |e| matches!(e, E::Reversed { .. }));
        expect_err("22-80:32-95", "'22-80:32-95'", |e| {
            matches!(
                e,
                E::LengthMismatch {
                    from: 59,
                    to: 64,
                    ..
                }
            )
        });
        expect_err("22-23:30-30", "'22-23:30-30'", |e| {
            matches!(e, E::LengthMismatch { from: 2, to: 1, .. })
        });
        expect_err("100-200:65500", "'100-200:65500'", |e| {
            matches!(e, E::TargetOutOfRange { last: 65600, .. })
        });
        expect_err(
            "20-30,25",
            "'25'",
            |e| matches!(e, E::Overlap { port: 25, earlier, .. } if earlier == "20-30"),
        );
        expect_err("22,22", "port 22", |e| matches!(e, E::Overlap { .. }));
        expect_err("300.0.0.1/22", "'300.0.0.1'", |e| {
            matches!(e, E::BadAddress { .. })
        });
        expect_err("/22", "found nothing", |e| {
            matches!(e, E::BadAddress { .. })
        });
        expect_err("eth0/22", "'eth0'", |e| matches!(e, E::BadAddress { .. }));
        expect_err("[::1/22", "'[::1'", |e| matches!(e, E::BadAddress { .. }));
        expect_err("[fe80::1%eth0]/22", "'[fe80::1'", |e| {
            matches!(e, E::BadAddress { .. })
        });
        expect_err("%/22", "is empty", |e| matches!(e, E::BadIfname { .. }));
        expect_err("%abcdefghijklmnop/22", "'abcdefghijklmnop'", |e| {
            matches!(e, E::BadIfname { .. })
        });
        expect_err("%eth 0/22", "'eth 0'", |e| matches!(e, E::BadIfname { .. }));
        expect_err("%eth0:1/22", "'eth0:1'", |e| {
            matches!(e, E::BadIfname { .. })
        });
        expect_err("%../22", "'..'", |e| matches!(e, E::BadIfname { .. }));
        expect_err("5000:192.0.2.5", "192.0.2.5", |e| {
            matches!(e, E::TargetFamily { .. })
        });
        expect_err("::/5000:192.0.2.5", "192.0.2.5", |e| {
            matches!(e, E::TargetFamily { .. })
        });
        expect_err("0.0.0.0/~5:192.0.2.5", "192.0.2.5", |e| {
            matches!(e, E::TargetFamily { .. })
        });
        expect_err("0.0.0.0/5:1.2.3", "'1.2.3'", |e| {
            matches!(e, E::BadAddress { .. })
        });
        expect_err(
            "22x",
            "'x'",
            |e| matches!(e, E::TrailingGarbage { token, .. } if token == "x"),
        );
        expect_err("22:23:24", "':24'", |e| {
            matches!(e, E::TrailingGarbage { .. })
        });
        expect_err("22-80-90", "'-90'", |e| {
            matches!(e, E::TrailingGarbage { .. })
        });
        expect_err("192.0.2.1", "'.0.2.1'", |e| {
            matches!(e, E::TrailingGarbage { .. })
        });
        expect_err("192.0.2.1/22/23", "'/23'", |e| {
            matches!(e, E::TrailingGarbage { .. })
        });
        expect_err("~25x", "'x'", |e| matches!(e, E::TrailingGarbage { .. }));
        expect_err("~22:23", "'~22:23'", |e| {
            matches!(e, E::ExcludeMapping { .. })
        });
        expect_err("::1/none", "'none'", |e| {
            matches!(
                e,
                E::Keyword {
                    keyword: "none",
                    ..
                }
            )
        });
        expect_err("22,none", "'none'", |e| matches!(e, E::Keyword { .. }));
        expect_err("all,all", "'all' is given twice", |e| {
            matches!(e, E::Keyword { .. })
        });
        expect_err("auto,auto", "'auto' is given twice", |e| {
            matches!(e, E::Keyword { .. })
        });
        expect_err("all,auto", "'auto'", |e| matches!(e, E::Keyword { .. }));
        expect_err("auto,all", "'all'", |e| matches!(e, E::Keyword { .. }));
        expect_err("all,22", "'all'", |e| {
            matches!(e, E::Keyword { keyword: "all", .. })
        });
        expect_err("ALL", "'ALL'", |e| matches!(e, E::NotANumber { .. }));
    }

    #[test]
    fn lookup_and_iteration() {
        let fwd = parsed("192.0.2.1/20-30:120-130,~25");
        assert_eq!(fwd.lookup(19), None);
        assert_eq!(fwd.lookup(25), None);
        assert_eq!(fwd.lookup(31), None);
        assert_eq!(fwd.lookup(0), None);
        let (to, r) = fwd.lookup(20).unwrap();
        assert_eq!((to, r.first, r.last, r.addr), (120, 20, 24, Some(V4)));
        let (to, r) = fwd.lookup(30).unwrap();
        assert_eq!((to, r.first, r.last), (130, 26, 30));
        assert!(fwd.is_forwarded(26) && !fwd.is_forwarded(25));
        assert_eq!(
            fwd.ports().collect::<Vec<_>>(),
            [20, 21, 22, 23, 24, 26, 27, 28, 29, 30]
        );
        assert_eq!(fwd.port_count(), 10);

        let top = parsed("65535:1");
        assert_eq!(top.lookup(65535).map(|(to, _)| to), Some(1));
        assert_eq!(top.lookup(65534), None);

        let none = FwdSpec::default();
        assert_eq!(none.lookup(22), None);
        assert_eq!(none.ports().count(), 0);
        assert!(!none.is_forwarded(22));
    }

    #[test]
    fn ephemeral_range_is_removed_from_all_only() {
        let mut all = parsed("~20000-20010");
        all.exclude_ephemeral(32768, 60999);
        all.assert_invariants();
        assert_eq!(
            all.rules(),
            &[
                rule(1, 19999, 1),
                rule(20011, 32767, 20011),
                rule(61000, 65535, 61000)
            ]
        );
        let mut ports = parsed("32768-40000");
        let before = ports.clone();
        ports.exclude_ephemeral(32768, 60999);
        assert_eq!(ports, before);
        let mut everything = parsed("all");
        everything.exclude_ephemeral(1, 65535);
        everything.assert_invariants();
        assert!(everything.rules().is_empty());
        assert_eq!(everything.mode(), FwdMode::All);
    }

    /// xorshift64*: enough to stir up strings.
    struct Prng(u64);

    impl Prng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn remove_splits_rules_and_refuses_ports_not_forwarded() {
        let mut fwd = parsed("8000-8010:9000,22");
        fwd.remove(&parsed("8003-8004")).unwrap();
        fwd.assert_invariants();
        assert_eq!(
            fwd.rules(),
            &[
                rule(22, 22, 22),
                rule(8000, 8002, 9000),
                rule(8005, 8010, 9005)
            ]
        );
        // A port not forwarded, or forwarded with another prefix: nothing
        // changes.
        let before = fwd.clone();
        assert_eq!(fwd.remove(&parsed("8002-8003")), Err(8003));
        assert_eq!(fwd.remove(&parsed("192.0.2.1/22")), Err(22));
        assert_eq!(fwd, before);
        fwd.remove(&parsed("22,8000-8002,8005-8010")).unwrap();
        assert_eq!(fwd, FwdSpec::default());
        // Afresh: a later add starts a new spec.
        fwd.add("80").unwrap();
        assert_eq!(fwd, parsed("80"));
    }

    #[test]
    fn random_strings_never_panic() {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "2",
            "5",
            "9",
            "22",
            "80",
            "65535",
            "65536",
            "70000",
            "-",
            ":",
            ",",
            "~",
            "/",
            "%",
            "[",
            "]",
            ".",
            "::",
            "all",
            "auto",
            "none",
            "eth0",
            "192.0.2.1",
            "::1",
            "fe80::1",
            " ",
            "\n",
            "é",
            "\0",
            "x",
            "99999999999",
        ];
        let mut rng = Prng(0x5eed_1234_abcd_0001);
        let mut ok = 0;
        for _ in 0..600 {
            let mut s = String::new();
            for _ in 0..rng.below(12) {
                s.push_str(PIECES[rng.below(PIECES.len())]);
            }
            if FwdSpec::parse(&s).is_ok() {
                ok += 1;
            }
            fuzz_parse(s.as_bytes());
        }
        // Raw bytes, including invalid UTF-8.
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
            fuzz_parse(&bytes);
        }
        // Well-formed lists, to exercise the success paths.
        for _ in 0..200 {
            let mut s = String::new();
            for i in 0..=rng.below(6) {
                if i > 0 {
                    s.push(',');
                }
                let a = 1 + rng.below(65535);
                let b = a + rng.below(200);
                if rng.below(3) == 0 {
                    s.push('~');
                }
                s.push_str(&format!("{a}-{b}"));
            }
            if FwdSpec::parse(&s).is_ok() {
                ok += 1;
            }
            fuzz_parse(s.as_bytes());
        }
        assert!(ok > 20, "only {ok} random specs parsed");
    }
}
