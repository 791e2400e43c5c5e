//! `qrap`: starts a qemu that cannot connect to a UNIX socket, handing it passt's socket as a descriptor.
//!
//! Foundation build: the binary exists so that every later capability has
//! its home; it parses `--help` and `--version` and refuses to run. The
//! frontend proper lands with its issue (see the README).

use argh::FromArgs;

/// qrap: starts a qemu that cannot connect to a UNIX socket, handing it passt's socket as a descriptor (not functional in this build yet).
#[derive(FromArgs)]
struct Args {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

fn main() {
    let args: Args = argh::from_env();
    if args.version {
        println!("qrap {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("qrap: not functional in this build yet; see README.md");
    std::process::exit(1);
}
