//! `--help` and `--version` texts, built from the option table so that
//! every option a frontend accepts is listed, and nothing else.

use core::fmt::Write;

use super::program_name;
use super::table::{Group, TABLE};
use crate::config::Mode;

/// Column where help text starts.
const HELP_COLUMN: usize = 30;

/// Width of the text.
const WIDTH: usize = 80;

/// Split `text` into lines of at most `width` bytes at spaces (a longer
/// word gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(core::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// The `--help` text of `mode`'s program, ending with a newline.
pub fn usage(mode: Mode) -> String {
    let name = program_name(mode);
    let mut out = String::new();
    match mode {
        Mode::Passt => {
            let _ = write!(
                out,
                "Usage: {name} [OPTION]...\n\n\
                 Connect a qemu virtual machine, through a UNIX domain socket, to the\n\
                 host's network: guest frames become host TCP, UDP and ICMP sockets.\n"
            );
        }
        Mode::Pasta => {
            let _ = write!(
                out,
                "Usage: {name} [OPTION]... [COMMAND [ARG]...]\n\
                 \x20      {name} [OPTION]... PID\n\
                 \x20      {name} [OPTION]... --netns PATH|NAME\n\n\
                 Connect a network namespace, through a tap interface, to the host's\n\
                 network. Without PID or --netns, run COMMAND (default: a shell) in a\n\
                 new user and network namespace. Options end at the first argument\n\
                 that is not one, or at --.\n"
            );
        }
    }

    let groups = [
        (Group::General, "General"),
        (Group::Guest, "Addresses and services"),
        (Group::Forwarding, "Port forwarding"),
        (
            Group::Frontend,
            match mode {
                Mode::Passt => "passt only",
                Mode::Pasta => "pasta only",
            },
        ),
    ];
    for (group, heading) in groups {
        let _ = write!(out, "\n{heading}:\n");
        for spec in TABLE
            .iter()
            .filter(|s| s.group == group && s.only.allows(mode))
        {
            let mut left = match spec.short {
                Some(c) => format!("  -{c}, --{}", spec.long),
                None => format!("      --{}", spec.long),
            };
            if let Some(value) = spec.value {
                left.push(' ');
                left.push_str(value);
            }
            let mut lines = wrap(spec.help, WIDTH - HELP_COLUMN).into_iter();
            let first = lines.next().unwrap_or_default();
            if left.len() < HELP_COLUMN {
                let _ = writeln!(out, "{left:<HELP_COLUMN$}{first}");
            } else {
                let _ = writeln!(out, "{left}\n{:HELP_COLUMN$}{first}", "");
            }
            for line in lines {
                let _ = writeln!(out, "{:HELP_COLUMN$}{line}", "");
            }
        }
    }

    let guest = match mode {
        Mode::Passt => "guest",
        Mode::Pasta => "namespace",
    };
    let _ = match mode {
        Mode::Passt => write!(out, "\nSPEC, for -t and -u:\n"),
        Mode::Pasta => write!(
            out,
            "\nSPEC, for -t, -u, -T and -U (-T and -U take no ADDR):\n"
        ),
    };
    let mut items = vec![
        ("  none", "forward nothing".to_owned()),
        (
            "  ADDR/PORTS",
            "forward PORTS, listening on ADDR (no %IF in this build)".to_owned(),
        ),
        (
            "  PORTS",
            "forward PORTS, listening on any address".to_owned(),
        ),
        ("PORTS is a comma-separated list of:", String::new()),
        (
            "  FIRST[-LAST][:TO[-TOLAST]]",
            format!("these ports, to the same ports on the {guest}, or to TO-TOLAST"),
        ),
        (
            "  ~FIRST[-LAST]",
            "not these ports; alone: all the others".to_owned(),
        ),
        ("  all", "every unbound, non-ephemeral port".to_owned()),
    ];
    if mode == Mode::Pasta {
        items.push((
            "  auto",
            "the ports bound on the other side (checked every second), alone or with ranges"
                .to_owned(),
        ));
    }
    for (left, right) in items {
        if right.is_empty() {
            let _ = writeln!(out, "{left}");
            continue;
        }
        let mut lines = wrap(&right, WIDTH - HELP_COLUMN).into_iter();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(out, "{left:<HELP_COLUMN$}{first}");
        for line in lines {
            let _ = writeln!(out, "{:HELP_COLUMN$}{line}", "");
        }
    }
    let _ = writeln!(out, "Repeated options add up.");
    let _ = match mode {
        Mode::Passt => write!(
            out,
            "\nDefaults: no port forwarding; DNS servers and search list from\n\
             /etc/resolv.conf, offered by DHCP, DHCPv6 and NDP.\n"
        ),
        Mode::Pasta => write!(
            out,
            "\nDefaults: -t, -u, -T and -U are 'auto'; DNS servers and search list\n\
             are not offered by DHCP, DHCPv6 or NDP (see --dhcp-dns, --dhcp-search).\n"
        ),
    };
    out
}

/// The `--version` text of `mode`'s program, without a newline:
/// `pasta 0.1.0`.
pub fn version(mode: Mode) -> String {
    format!("{} {}", program_name(mode), env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_of_the_table_is_listed_for_its_frontends() {
        for mode in [Mode::Passt, Mode::Pasta] {
            let text = usage(mode);
            for spec in TABLE {
                let long = format!("--{} ", spec.long);
                let listed = text.lines().any(|l| format!("{l} ").contains(&long));
                let shown = spec.only.allows(mode) && spec.group != Group::Refused;
                assert_eq!(listed, shown, "{mode:?} {long}");
                if let (Some(c), true) = (spec.short, listed) {
                    assert!(text.contains(&format!("-{c}, --{}", spec.long)), "{c}");
                }
            }
        }
    }

    #[test]
    fn lines_fit_80_columns() {
        for mode in [Mode::Passt, Mode::Pasta] {
            for line in usage(mode).lines() {
                assert!(line.len() <= WIDTH, "{line}");
            }
        }
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdef g", 4), ["abcdef", "g"]);
        assert_eq!(wrap("", 4), [""]);
    }

    #[test]
    fn help_column_is_kept() {
        for mode in [Mode::Passt, Mode::Pasta] {
            for line in usage(mode).lines().filter(|l| l.starts_with("  -")) {
                let help = line.get(HELP_COLUMN..).unwrap_or("");
                assert!(
                    help.is_empty() || line.as_bytes()[HELP_COLUMN - 1] == b' ',
                    "{line}"
                );
            }
        }
    }
}
