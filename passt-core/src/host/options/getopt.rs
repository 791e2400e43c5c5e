//! A GNU `getopt_long` work-alike over the option [`table`].
//!
//! Splits a command line into options (with their arguments) and non-option
//! arguments, accepting every form `getopt_long` accepts:
//!
//! - `--name value` and `--name=value`; `--name=` gives an empty value;
//!   the argument after `--name` is taken as its value even if it starts
//!   with `-`, as glibc does;
//! - `-t value`, `-tvalue`, and clusters of short flags (`-fd`), the last
//!   of which may take a value (`-ft22`, `-ft 22`);
//! - abbreviations of long names (`--conf` for `--config-net`): an exact
//!   name wins, an abbreviation of exactly one option is that option, an
//!   abbreviation of several is an error listing them;
//! - `--` ends the options; a lone `-` is a non-option argument.
//!
//! Exact long names and short letters are looked up in the whole table, so
//! that an option of the other frontend is recognised and refused with a
//! clear message by the caller; abbreviations are expanded among the
//! options of the running frontend only, so that passt-only options never
//! make a pasta abbreviation ambiguous.
//!
//! Two orderings, as `getopt_long` has: [`Ordering::Permute`] (the GNU
//! default: non-option arguments may come between options) and
//! [`Ordering::RequireOrder`] (an optstring starting with `+`: the first
//! non-option argument ends the options, and it and everything after it are
//! non-option arguments, `--` included).
//!
//! The scan is bounded: each step consumes at least one character of one
//! argument, and ends with the last argument.

use super::error::OptionsErrorKind;
use super::table::{self, Spec, TABLE};
use crate::config::Mode;

/// Where the options may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ordering {
    /// Options and non-option arguments in any order, until `--`.
    Permute,
    /// Options first; the first non-option argument ends them.
    RequireOrder,
}

/// How an option was written, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spelled {
    /// As `-c`.
    Short(char),
    /// As `--name` (or an abbreviation of it).
    Long,
}

/// One element of the command line.
#[derive(Debug)]
pub(crate) enum Token<'a> {
    /// An option and, if it takes one, its argument.
    Opt {
        /// The option's row.
        spec: &'static Spec,
        /// How it was written.
        spelled: Spelled,
        /// Its argument; `Some` exactly when the option takes one.
        value: Option<&'a str>,
    },
    /// A non-option argument.
    Arg {
        /// The argument.
        arg: &'a str,
        /// Whether it came after a `--` that ended the options.
        after_double_dash: bool,
    },
}

/// Iterator over the [`Token`]s of a command line; stops at the first
/// error.
pub(crate) struct Getopt<'a> {
    args: &'a [String],
    mode: Mode,
    ordering: Ordering,
    /// Next argument to look at.
    next: usize,
    /// Inside a cluster of short options: argument index and byte offset
    /// of the next letter.
    cluster: Option<(usize, usize)>,
    /// Options have ended: everything left is a non-option argument.
    options_ended: bool,
    /// They ended with `--`.
    after_double_dash: bool,
    /// An error was returned; nothing more follows.
    failed: bool,
}

impl<'a> Getopt<'a> {
    /// Scan `args` (without the program name) for `mode`'s options.
    pub(crate) fn new(args: &'a [String], mode: Mode, ordering: Ordering) -> Self {
        Getopt {
            args,
            mode,
            ordering,
            next: 0,
            cluster: None,
            options_ended: false,
            after_double_dash: false,
            failed: false,
        }
    }

    /// Take the next argument as an option's value.
    fn take_value(&mut self) -> Option<&'a str> {
        let v = self.args.get(self.next)?;
        self.next += 1;
        Some(v.as_str())
    }

    /// The next letter of the cluster in `args[index]` at byte `offset`.
    fn short(&mut self, index: usize, offset: usize) -> Result<Token<'a>, OptionsErrorKind> {
        self.cluster = None;
        let arg = self.args.get(index).map_or("", String::as_str);
        let rest = arg.get(offset..).unwrap_or("");
        let Some(c) = rest.chars().next() else {
            // Not reached: a cluster always has a letter left.
            return Err(OptionsErrorKind::UnrecognizedOption(arg.to_owned()));
        };
        let after = rest.get(c.len_utf8()..).unwrap_or("");
        let spec = table::by_short(c).ok_or(OptionsErrorKind::InvalidOption(c))?;
        let value = if spec.value.is_some() {
            if after.is_empty() {
                Some(
                    self.take_value()
                        .ok_or(OptionsErrorKind::MissingShortArgument(c))?,
                )
            } else {
                Some(after)
            }
        } else {
            if !after.is_empty() {
                self.cluster = Some((index, offset + c.len_utf8()));
            }
            None
        };
        Ok(Token::Opt {
            spec,
            spelled: Spelled::Short(c),
            value,
        })
    }

    /// A long option: `arg` is the whole argument, `body` what follows
    /// `--`.
    fn long(&mut self, arg: &'a str, body: &'a str) -> Result<Token<'a>, OptionsErrorKind> {
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        if name.is_empty() {
            return Err(OptionsErrorKind::UnrecognizedOption(arg.to_owned()));
        }
        let spec = match table::by_long(name) {
            Some(spec) => spec,
            None => self.abbreviation(arg, name)?,
        };
        let full = format!("--{}", spec.long);
        let value = match (spec.value.is_some(), inline) {
            (true, Some(v)) => Some(v),
            (true, None) => Some(
                self.take_value()
                    .ok_or(OptionsErrorKind::MissingArgument(full))?,
            ),
            (false, Some(_)) => return Err(OptionsErrorKind::UnexpectedArgument(full)),
            (false, None) => None,
        };
        Ok(Token::Opt {
            spec,
            spelled: Spelled::Long,
            value,
        })
    }

    /// The one option of this frontend that `name` abbreviates.
    fn abbreviation(&self, arg: &str, name: &str) -> Result<&'static Spec, OptionsErrorKind> {
        let mut found: Option<&'static Spec> = None;
        let mut all: Vec<&'static Spec> = Vec::new();
        for spec in TABLE {
            if !spec.only.allows(self.mode) || !spec.long.starts_with(name) {
                continue;
            }
            // Several names of one option (--socket, --socket-path) are
            // not ambiguous, as in glibc.
            if !all.iter().any(|s| s.opt == spec.opt) {
                all.push(spec);
            }
            found.get_or_insert(spec);
        }
        match (found, all.len()) {
            (Some(spec), 1) => Ok(spec),
            (None, _) => Err(OptionsErrorKind::UnrecognizedOption(arg.to_owned())),
            _ => Err(OptionsErrorKind::Ambiguous {
                given: arg.to_owned(),
                possibilities: all.iter().map(|s| format!("--{}", s.long)).collect(),
            }),
        }
    }

    /// The next token, or `None` at the end.
    fn step(&mut self) -> Option<Result<Token<'a>, OptionsErrorKind>> {
        if let Some((index, offset)) = self.cluster {
            return Some(self.short(index, offset));
        }
        loop {
            let arg = self.args.get(self.next)?.as_str();
            self.next += 1;
            if self.options_ended {
                return Some(Ok(Token::Arg {
                    arg,
                    after_double_dash: self.after_double_dash,
                }));
            }
            if arg == "--" {
                self.options_ended = true;
                self.after_double_dash = true;
                continue;
            }
            if let Some(body) = arg.strip_prefix("--") {
                return Some(self.long(arg, body));
            }
            if arg.len() > 1 && arg.starts_with('-') {
                return Some(self.short(self.next - 1, 1));
            }
            if self.ordering == Ordering::RequireOrder {
                self.options_ended = true;
            }
            return Some(Ok(Token::Arg {
                arg,
                after_double_dash: false,
            }));
        }
    }
}

impl<'a> Iterator for Getopt<'a> {
    type Item = Result<Token<'a>, OptionsErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.step();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::options::table::Opt;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Tokens as (long name or "ARG", value) pairs, or the error.
    fn scan(
        mode: Mode,
        ordering: Ordering,
        list: &[&str],
    ) -> Result<Vec<(String, Option<String>)>, OptionsErrorKind> {
        let a = args(list);
        Getopt::new(&a, mode, ordering)
            .map(|t| {
                t.map(|t| match t {
                    Token::Opt { spec, value, .. } => {
                        (spec.long.to_owned(), value.map(str::to_owned))
                    }
                    Token::Arg {
                        arg,
                        after_double_dash,
                    } => (
                        if after_double_dash { "ARG--" } else { "ARG" }.to_owned(),
                        Some(arg.to_owned()),
                    ),
                })
            })
            .collect()
    }

    fn pair(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn every_form_of_value() {
        let expect = vec![pair("tcp-ports", Some("22"))];
        for form in [
            &["-t", "22"][..],
            &["-t22"],
            &["--tcp-ports", "22"],
            &["--tcp-ports=22"],
            &["--tcp=22"],
            &["--tcp-p", "22"],
        ] {
            assert_eq!(
                scan(Mode::Passt, Ordering::Permute, form).as_ref(),
                Ok(&expect),
                "{form:?}"
            );
        }
        // The next argument is the value even if it looks like an option.
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["--mtu", "--debug"]),
            Ok(vec![pair("mtu", Some("--debug"))])
        );
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["-m", "-d"]),
            Ok(vec![pair("mtu", Some("-d"))])
        );
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["--mtu="]),
            Ok(vec![pair("mtu", Some(""))])
        );
        // Only the first '=' splits.
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["--search=a=b"]),
            Ok(vec![pair("search", Some("a=b"))])
        );
    }

    #[test]
    fn clusters() {
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["-fdq"]),
            Ok(vec![
                pair("foreground", None),
                pair("debug", None),
                pair("quiet", None)
            ])
        );
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["-ft22", "-fu", "53"]),
            Ok(vec![
                pair("foreground", None),
                pair("tcp-ports", Some("22")),
                pair("foreground", None),
                pair("udp-ports", Some("53")),
            ])
        );
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["-fx"]),
            Err(OptionsErrorKind::InvalidOption('x'))
        );
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["-fé"]),
            Err(OptionsErrorKind::InvalidOption('é'))
        );
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["-ft"]),
            Err(OptionsErrorKind::MissingShortArgument('t'))
        );
    }

    #[test]
    fn orderings_and_double_dash() {
        let line = &["-f", "x", "-d", "--", "-q"];
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, line),
            Ok(vec![
                pair("foreground", None),
                pair("ARG", Some("x")),
                pair("debug", None),
                pair("ARG--", Some("-q")),
            ])
        );
        assert_eq!(
            scan(Mode::Pasta, Ordering::RequireOrder, line),
            Ok(vec![
                pair("foreground", None),
                pair("ARG", Some("x")),
                pair("ARG", Some("-d")),
                pair("ARG", Some("--")),
                pair("ARG", Some("-q")),
            ])
        );
        assert_eq!(
            scan(Mode::Pasta, Ordering::RequireOrder, &["-", "-f"]),
            Ok(vec![pair("ARG", Some("-")), pair("ARG", Some("-f"))])
        );
    }

    #[test]
    fn abbreviations() {
        let a = args(&["--config"]);
        let t: Vec<_> = Getopt::new(&a, Mode::Pasta, Ordering::RequireOrder).collect();
        assert!(matches!(
            t.as_slice(),
            [Ok(Token::Opt { spec, spelled: Spelled::Long, value: None })] if spec.opt == Opt::ConfigNet
        ));
        // As in the original: `--conf` is both --config-net and the
        // --conf-path.
        let a = args(&["--conf"]);
        let t: Vec<_> = Getopt::new(&a, Mode::Pasta, Ordering::RequireOrder).collect();
        assert!(
            matches!(
                t.as_slice(),
                [Err(OptionsErrorKind::Ambiguous { possibilities, .. })]
                    if possibilities == &["--config-net", "--conf-path"]
            ),
            "{t:?}"
        );
        // Aliases of one option are no ambiguity.
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["--sock", "/s"]),
            Ok(vec![pair("socket", Some("/s"))])
        );
        // An exact name wins over longer ones.
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["--no-dhcp"]),
            Ok(vec![pair("no-dhcp", None)])
        );
        // Only this frontend's options are candidates.
        assert_eq!(
            scan(Mode::Passt, Ordering::Permute, &["--config"]),
            Err(OptionsErrorKind::UnrecognizedOption("--config".into()))
        );
        assert_eq!(
            scan(Mode::Pasta, Ordering::Permute, &["--no-dhcp-s"]),
            Err(OptionsErrorKind::UnrecognizedOption("--no-dhcp-s".into()))
        );
        assert_eq!(
            scan(Mode::Pasta, Ordering::Permute, &["--dns-"]),
            Err(OptionsErrorKind::Ambiguous {
                given: "--dns-".into(),
                possibilities: vec!["--dns-forward".into(), "--dns-host".into()],
            })
        );
        assert_eq!(
            scan(Mode::Pasta, Ordering::Permute, &["--=x"]),
            Err(OptionsErrorKind::UnrecognizedOption("--=x".into()))
        );
    }

    #[test]
    fn stops_after_an_error() {
        let a = args(&["--bogus", "-d"]);
        let t: Vec<_> = Getopt::new(&a, Mode::Passt, Ordering::Permute).collect();
        assert_eq!(t.len(), 1);
    }
}
