//! Why a command line was refused.
//!
//! Syntax errors are worded exactly as glibc's `getopt_long` words them
//! (glibc 2.26 and later), because scripts and wrappers (podman among them)
//! match on that text: `pasta: unrecognized option '--foo'`,
//! `pasta: option requires an argument -- 't'`, and so on. Errors in option
//! values name the option and the value: `pasta: Invalid MTU: 70000`.

use core::fmt;

use crate::config::ports::PortSpecError;
use crate::config::Mode;

/// A refused command line: which program, and why. `Display` gives the
/// whole message, program name first; the caller prints it and exits 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{program}: {kind}")]
pub struct OptionsError {
    /// `passt` or `pasta`.
    program: &'static str,
    /// What went wrong (not a `source`: the message already says it).
    kind: OptionsErrorKind,
}

impl OptionsError {
    /// An error of `mode`'s program.
    pub(crate) fn new(mode: Mode, kind: OptionsErrorKind) -> Self {
        OptionsError {
            program: super::program_name(mode),
            kind,
        }
    }

    /// What went wrong, without the program name.
    pub fn kind(&self) -> &OptionsErrorKind {
        &self.kind
    }

    /// The program named in the message.
    pub fn program(&self) -> &'static str {
        self.program
    }
}

/// What is wrong with a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsErrorKind {
    /// A long option that matches no option, not even as an abbreviation.
    /// Holds the argument as given, `=value` included.
    #[error("unrecognized option '{0}'")]
    UnrecognizedOption(String),
    /// A short option letter that is no option.
    #[error("invalid option -- '{0}'")]
    InvalidOption(char),
    /// An abbreviation of several long options.
    #[error("option '{given}' is ambiguous; possibilities:{}", Quoted(.possibilities))]
    Ambiguous {
        /// The argument as given.
        given: String,
        /// The long options it abbreviates, with their `--`.
        possibilities: Vec<String>,
    },
    /// A long option that needs an argument came last. Holds its full
    /// name, with `--`.
    #[error("option '{0}' requires an argument")]
    MissingArgument(String),
    /// A short option that needs an argument came last.
    #[error("option requires an argument -- '{0}'")]
    MissingShortArgument(char),
    /// `--flag=value` for an option without an argument. Holds its full
    /// name, with `--`.
    #[error("option '{0}' doesn't allow an argument")]
    UnexpectedArgument(String),
    /// An option of the other frontend (`--netns` given to passt).
    #[error("{option} is for {only} mode only")]
    WrongMode {
        /// The option as spelled: `-T` or `--netns`.
        option: String,
        /// The frontend it belongs to.
        only: &'static str,
    },
    /// A value that does not parse or is out of range:
    /// `Invalid MTU: 70000`.
    #[error("Invalid {what}: {value}")]
    InvalidValue {
        /// What the value is (`MTU`, `address`, `MAC address`, ...).
        what: &'static str,
        /// The value as given.
        value: String,
    },
    /// A port-forwarding spec refused by
    /// [`FwdSpec::add`](crate::config::ports::FwdSpec::add).
    #[error(transparent)]
    Ports(#[from] PortSpecError),
    /// An option of the original that this implementation recognises but
    /// does not provide (listed in the man page's NOTES).
    #[error("{option} is not supported by this implementation: {why}")]
    Unsupported {
        /// The option as spelled.
        option: String,
        /// Why, in a few words.
        why: &'static str,
    },
    /// Options that contradict each other, or that do not fit what was
    /// found on the host.
    #[error("{0}")]
    Conflict(String),
    /// A non-option argument where none is allowed (passt takes none).
    #[error("Extra non-option argument: {0}")]
    ExtraArgument(String),
}

/// Formats a list as glibc does after "possibilities:": ` '--a' '--b'`.
struct Quoted<'a>(&'a [String]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            write!(f, " '{p}'")?;
        }
        Ok(())
    }
}
