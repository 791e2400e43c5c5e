//! The drivers' fatal error (feature `host`): what the program was doing,
//! and the system's reason if there is one. `main` logs it
//! ([`error!`](crate::error)) and exits with status 1.
//!
//! The reason reads as each program always gave it (the logger's program,
//! [`super::log::set_program`]): passt as Rust shows an error number
//! (`Permission denied (os error 13)`), pasta as strerror(3) does
//! (`Permission denied`, [`errno_text`]).

use core::fmt;

use rustix::io::Errno;

/// A fatal error: what we were doing, and the system's reason if any.
#[derive(Debug)]
pub struct Error {
    what: String,
    cause: Option<Errno>,
}

impl Error {
    /// An error with a message only.
    pub fn msg(what: impl Into<String>) -> Self {
        Error {
            what: what.into(),
            cause: None,
        }
    }

    /// A failed system call while doing `what`.
    pub fn sys(what: impl Into<String>, cause: Errno) -> Self {
        Error {
            what: what.into(),
            cause: Some(cause),
        }
    }

    /// A failed `std::io` operation while doing `what`: its error number
    /// if it has one, else its text.
    pub fn io(what: impl Into<String>, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Error::sys(what, Errno::from_raw_os_error(n)),
            None => Error::msg(format!("{}: {e}", what.into())),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Some(e) if super::log::pasta() => write!(f, "{}: {}", self.what, errno_text(e)),
            Some(e) => write!(f, "{}: {}", self.what, e),
            None => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for Error {}

/// The system's text for `e`, as strerror(3) gives it ("Permission
/// denied"), without Rust's " (os error 13)".
pub fn errno_text(e: Errno) -> String {
    let text = std::io::Error::from_raw_os_error(e.raw_os_error()).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_as_the_systems_text() {
        assert_eq!(errno_text(Errno::ACCESS), "Permission denied");
        let e = Error::io("opening x", &std::io::Error::other("odd"));
        assert_eq!(e.to_string(), "opening x: odd");
        assert_eq!(Error::msg("plain").to_string(), "plain");
    }
}
