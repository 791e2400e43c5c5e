//! `passt-ctl`: the client of the configuration socket of a running
//! `passt` or `pasta` (`-c/--conf-path`): lists and changes its `-t`/`-u`
//! forwarding rules (`doc/control.md`).
//!
//! ```text
//! passt-ctl PATH list [tcp|udp]
//! passt-ctl PATH add -t SPEC [-t SPEC]... [-u SPEC]...
//! passt-ctl PATH delete -t SPEC... [-u SPEC]...
//! passt-ctl PATH replace -t SPEC... [-u SPEC]...
//! passt-ctl PATH clear -t|-u
//! ```
//!
//! A SPEC is one `-t`/`-u` argument as passt(1) has it (`8080`,
//! `8000-8010:9000`, `127.0.0.1/2222:22`...). The specs of one protocol
//! make one request (one atomic change); TCP's go first. `list` prints
//! one rule a line, as the option that would make it (`-t 8080`);
//! `-t none` when nothing is forwarded, and `-t all` or `-t auto` before
//! the rules of those modes. Exits 0 on success; 1 with the server's
//! error text (or the connection's) on standard error; 2 for a bad
//! command line.
//!
//! Syscalls: `socket`, `connect`, `read`, `write`.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use passt_core::config::ports::FwdMode;
use passt_core::contract::Proto;
use passt_core::control::{
    encode_change, encode_hello, encode_list, encode_proto_only, msg, parse_header, parse_reply,
    ChangeKind, Reply, HEADER_LEN, MAX_REPLY_BODY, VERSION,
};

const USAGE: &str = "usage: passt-ctl PATH list [tcp|udp]
       passt-ctl PATH add|delete|replace -t SPEC|-u SPEC...
       passt-ctl PATH clear -t|-u";

/// What the command line asks for.
enum Command {
    /// The rules of these protocols.
    List(Vec<Proto>),
    /// One change per protocol with its specs.
    Change(ChangeKind, Vec<(Proto, Vec<String>)>),
    /// Clear these protocols.
    Clear(Vec<Proto>),
}

fn option(s: &str) -> Option<Proto> {
    match s {
        "-t" | "--tcp-ports" => Some(Proto::Tcp),
        "-u" | "--udp-ports" => Some(Proto::Udp),
        _ => None,
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Udp => "-u",
        _ => "-t",
    }
}

/// Parse the arguments after the path.
fn parse(args: &[String]) -> Result<Command, String> {
    let (verb, rest) = args.split_first().ok_or("no command")?;
    match verb.as_str() {
        "list" => match rest {
            [] => Ok(Command::List(vec![Proto::Tcp, Proto::Udp])),
            [p] if p == "tcp" => Ok(Command::List(vec![Proto::Tcp])),
            [p] if p == "udp" => Ok(Command::List(vec![Proto::Udp])),
            _ => Err(format!(
                "list: expected tcp or udp, got '{}'",
                rest.join(" ")
            )),
        },
        "clear" => {
            let mut protos = Vec::new();
            for a in rest {
                let p = option(a).ok_or_else(|| format!("clear: expected -t or -u, got '{a}'"))?;
                if !protos.contains(&p) {
                    protos.push(p);
                }
            }
            if protos.is_empty() {
                return Err("clear: give -t or -u".into());
            }
            Ok(Command::Clear(protos))
        }
        "add" | "delete" | "replace" => {
            let kind = match verb.as_str() {
                "add" => ChangeKind::Add,
                "delete" => ChangeKind::Delete,
                _ => ChangeKind::Replace,
            };
            let mut tcp = Vec::new();
            let mut udp = Vec::new();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                let (p, spec) = match option(a) {
                    Some(p) => (
                        p,
                        it.next()
                            .ok_or_else(|| format!("{verb}: {a} needs a SPEC"))?
                            .clone(),
                    ),
                    None => match (a.get(..2).and_then(option), a.get(2..)) {
                        // -t8080, as getopt takes it.
                        (Some(p), Some(v)) if !v.is_empty() => (p, v.to_owned()),
                        _ => return Err(format!("{verb}: expected -t SPEC or -u SPEC, got '{a}'")),
                    },
                };
                match p {
                    Proto::Udp => udp.push(spec),
                    _ => tcp.push(spec),
                }
            }
            let changes: Vec<_> = [(Proto::Tcp, tcp), (Proto::Udp, udp)]
                .into_iter()
                .filter(|(_, s)| !s.is_empty())
                .collect();
            if changes.is_empty() {
                return Err(format!("{verb}: give -t SPEC or -u SPEC"));
            }
            Ok(Command::Change(kind, changes))
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

/// One reply message, read whole.
fn read_reply(s: &mut UnixStream) -> Result<Vec<u8>, String> {
    let mut m = vec![0u8; HEADER_LEN];
    s.read_exact(&mut m)
        .map_err(|e| format!("reading a reply: {e}"))?;
    let h = parse_header(&m)
        .map_err(|e| format!("bad reply: {e}"))?
        .ok_or("bad reply: truncated")?;
    if h.len > MAX_REPLY_BODY {
        return Err(format!("bad reply: body of {} bytes", h.len));
    }
    m.resize(h.total(), 0);
    s.read_exact(&mut m[HEADER_LEN..])
        .map_err(|e| format!("reading a reply: {e}"))?;
    Ok(m)
}

/// Send `req` and read its reply; an error reply is an error, with the
/// server's text.
fn ask(s: &mut UnixStream, req: &[u8], out: &mut String) -> Result<(), String> {
    s.write_all(req)
        .map_err(|e| format!("writing a request: {e}"))?;
    let m = read_reply(s)?;
    match parse_reply(&m).map_err(|e| format!("bad reply: {e}"))? {
        Reply::Ok(_) => Ok(()),
        Reply::Error { code, text, .. } => Err(format!("{text} (error {code})")),
        Reply::Rules { proto, mode, rules } => {
            let o = proto_name(proto);
            match mode {
                FwdMode::None => out.push_str(&format!("{o} none\n")),
                FwdMode::All => out.push_str(&format!("{o} all\n")),
                FwdMode::Auto => out.push_str(&format!("{o} auto\n")),
                FwdMode::Ports => {}
            }
            for r in rules.iter() {
                out.push_str(&format!("{o} {r}\n"));
            }
            Ok(())
        }
    }
}

fn run(path: &str, cmd: &Command) -> Result<String, String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("connecting to {path}: {e}"))?;
    let mut out = String::new();
    let mut req = Vec::new();
    encode_hello(&mut req, VERSION, VERSION);
    ask(&mut s, &req, &mut out).map_err(|e| format!("hello: {e}"))?;
    match cmd {
        Command::List(protos) => {
            for &p in protos {
                req.clear();
                encode_list(&mut req, p);
                ask(&mut s, &req, &mut out)?;
            }
        }
        Command::Clear(protos) => {
            for &p in protos {
                req.clear();
                encode_proto_only(&mut req, msg::CLEAR, p);
                ask(&mut s, &req, &mut out)?;
            }
        }
        Command::Change(kind, changes) => {
            for (p, specs) in changes {
                req.clear();
                let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
                encode_change(&mut req, *kind, *p, &specs).map_err(|e| e.to_string())?;
                ask(&mut s, &req, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let Some((path, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let cmd = match parse(rest) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("passt-ctl: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(path, &cmd) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("passt-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}
