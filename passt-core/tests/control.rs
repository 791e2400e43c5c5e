//! The configuration socket's session through the harness
//! (`passt_core::control`, `doc/control.md`): hello, list, add, delete,
//! clear and replace as bytes in and bytes out, changes whose replies wait
//! for their listeners, failures, and hostile streams.

use passt_core::config::ports::{FwdMode, FwdSpec};
use passt_core::control::{
    code, encode_change, encode_hello, encode_list, encode_proto_only, msg, parse_header,
    parse_reply, ChangeKind, Reply, Session, HEADER_LEN, MAX_REQUEST_BODY,
};
use passt_core::testing::build::test_config;
use passt_core::testing::Harness;
use passt_core::{Completion, Done, Errno, Proto, SockOp};

fn harness(tcp: &str) -> Harness {
    let mut c = test_config();
    c.fwd.tcp_in = FwdSpec::parse(tcp).unwrap();
    c.limits.change_listeners = passt_core::config::CHANGE_LISTENERS_ANY;
    let mut h = Harness::new(c);
    for op in h.host.ops.drain(..).collect::<Vec<_>>() {
        if let SockOp::Open { id, .. } = op {
            h.complete(Completion {
                id,
                res: Ok(Done::Opened),
            });
        }
    }
    h
}

/// Every reply in `out`, as owned values: (type, the parsed reply's
/// debug form) is awkward to compare, so each is checked by the caller.
fn replies(out: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let h = parse_header(rest).unwrap().expect("a whole header");
        let (m, r) = rest.split_at(h.total());
        v.push(m.to_vec());
        rest = r;
    }
    v
}

#[track_caller]
fn one(out: &[u8]) -> Vec<u8> {
    let mut r = replies(out);
    assert_eq!(r.len(), 1, "{r:?}");
    r.pop().unwrap()
}

#[track_caller]
fn expect_ok(out: &[u8]) -> u32 {
    match parse_reply(&one(out)) {
        Ok(Reply::Ok(v)) => v,
        r => panic!("expected ok, got {r:?}"),
    }
}

#[track_caller]
fn expect_error(out: &[u8], want: u16) -> (u16, i32, String) {
    match parse_reply(&one(out)) {
        Ok(Reply::Error {
            code,
            port,
            errno,
            text,
        }) => {
            assert_eq!(code, want, "{text}");
            (port, errno, text.to_string())
        }
        r => panic!("expected error {want}, got {r:?}"),
    }
}

fn hello(h: &mut Harness, s: &mut Session) {
    let mut m = Vec::new();
    encode_hello(&mut m, 1, 9);
    assert_eq!(expect_ok(&h.control(s, &m)), 1);
}

fn list(h: &mut Harness, s: &mut Session, proto: Proto) -> (FwdMode, Vec<String>) {
    let mut m = Vec::new();
    encode_list(&mut m, proto);
    match parse_reply(&one(&h.control(s, &m))) {
        Ok(Reply::Rules {
            proto: p,
            mode,
            rules,
        }) => {
            assert_eq!(p, proto);
            (mode, rules.iter().map(String::from).collect())
        }
        r => panic!("expected rules, got {r:?}"),
    }
}

fn change(kind: ChangeKind, proto: Proto, specs: &[&str]) -> Vec<u8> {
    let mut m = Vec::new();
    encode_change(&mut m, kind, proto, specs).unwrap();
    m
}

fn opens(h: &mut Harness) -> Vec<(passt_core::SockId, u16)> {
    h.host
        .ops
        .drain(..)
        .filter_map(|op| match op {
            SockOp::Open { id, spec } => Some((id, spec.bind.unwrap().port)),
            _ => None,
        })
        .collect()
}

#[test]
fn hello_list_add_delete_clear_replace() {
    let mut h = harness("8080");
    let mut s = Session::new(Some((32768, 60999)));
    // Nothing before the hello.
    let mut m = Vec::new();
    encode_list(&mut m, Proto::Tcp);
    expect_error(&h.control(&mut s, &m), code::NO_HELLO);
    // No common version.
    let mut m = Vec::new();
    encode_hello(&mut m, 2, 5);
    expect_error(&h.control(&mut s, &m), code::BAD_VERSION);
    hello(&mut h, &mut s);
    assert_eq!(
        list(&mut h, &mut s, Proto::Tcp),
        (FwdMode::Ports, vec!["8080".to_string()])
    );
    assert_eq!(list(&mut h, &mut s, Proto::Udp), (FwdMode::None, vec![]));

    // Add: the reply waits for the new listener.
    let out = h.control(
        &mut s,
        &change(
            ChangeKind::Add,
            Proto::Tcp,
            &["9090", "0.0.0.0/5000:192.0.2.5"],
        ),
    );
    assert!(out.is_empty() && s.is_waiting());
    let o = opens(&mut h);
    assert_eq!(o.iter().map(|o| o.1).collect::<Vec<_>>(), [5000, 9090]);
    for (id, _) in &o {
        h.complete(Completion {
            id: *id,
            res: Ok(Done::Opened),
        });
    }
    let id = expect_ok(&h.control_run(&mut s));
    assert!(id >= 1 && !s.is_waiting());
    assert_eq!(
        list(&mut h, &mut s, Proto::Tcp).1,
        ["0.0.0.0/5000:192.0.2.5", "8080", "9090"]
    );

    // Delete: nothing to open, the reply comes with the drain; the
    // listener closes.
    let out = h.control(&mut s, &change(ChangeKind::Delete, Proto::Tcp, &["9090"]));
    assert!(expect_ok(&out) > id);
    let closed: Vec<_> = h.host.ops.drain(..).collect();
    assert!(
        closed.len() == 1 && matches!(closed[0], SockOp::Close { id } if id == o[1].0),
        "{closed:?}"
    );
    // Not forwarded, or with another prefix: refused with the port.
    let out = h.control(
        &mut s,
        &change(ChangeKind::Delete, Proto::Tcp, &["7000-7001"]),
    );
    assert_eq!(expect_error(&out, code::NOT_FORWARDED).0, 7000);
    let out = h.control(&mut s, &change(ChangeKind::Delete, Proto::Tcp, &["5000"]));
    assert_eq!(expect_error(&out, code::NOT_FORWARDED).0, 5000);
    let out = h.control(&mut s, &change(ChangeKind::Delete, Proto::Tcp, &["all"]));
    expect_error(&out, code::BAD_SPEC);

    // Replace with `all`: the ephemeral range is left out, as at start-up.
    let out = h.control(&mut s, &change(ChangeKind::Replace, Proto::Udp, &["all"]));
    assert!(out.is_empty());
    let o = opens(&mut h);
    assert_eq!(o.len(), 65535 - (60999 - 32768 + 1));
    for (id, _) in &o {
        h.complete(Completion {
            id: *id,
            res: Ok(Done::Opened),
        });
    }
    expect_ok(&h.control_run(&mut s));
    assert_eq!(
        list(&mut h, &mut s, Proto::Udp),
        (FwdMode::All, vec!["1-32767".into(), "61000-65535".into()])
    );
    // Clear closes them all.
    let mut m = Vec::new();
    encode_proto_only(&mut m, msg::CLEAR, Proto::Udp);
    expect_ok(&h.control(&mut s, &m));
    let closes = h
        .host
        .ops
        .drain(..)
        .filter(|op| matches!(op, SockOp::Close { .. }))
        .count();
    assert_eq!(closes, o.len());
    assert_eq!(list(&mut h, &mut s, Proto::Udp), (FwdMode::None, vec![]));
}

#[test]
fn a_failed_change_is_an_error_and_the_rules_stay() {
    let mut h = harness("8080");
    let mut s = Session::new(None);
    hello(&mut h, &mut s);
    let out = h.control(&mut s, &change(ChangeKind::Add, Proto::Tcp, &["80-81"]));
    assert!(out.is_empty());
    let o = opens(&mut h);
    h.complete(Completion {
        id: o[0].0,
        res: Err(Errno::EACCES),
    });
    // Still waiting for the second; requests sent meanwhile wait too.
    let mut m = Vec::new();
    encode_list(&mut m, Proto::Tcp);
    assert!(h.control(&mut s, &m).is_empty());
    h.complete(Completion {
        id: o[1].0,
        res: Ok(Done::Opened),
    });
    let out = h.control_run(&mut s);
    let r = replies(&out);
    assert_eq!(r.len(), 2, "the error, then the list");
    let (port, errno, text) = expect_error(&r[0], code::LISTEN_FAILED);
    assert_eq!((port, errno), (80, Errno::EACCES.0));
    assert!(text.contains("80"), "{text}");
    match parse_reply(&r[1]) {
        Ok(Reply::Rules { rules, .. }) => assert_eq!(rules.iter().collect::<Vec<_>>(), ["8080"]),
        r => panic!("{r:?}"),
    }
}

#[test]
fn bad_specs_and_a_second_client_during_a_change_are_refused() {
    let mut h = harness("8080");
    let mut a = Session::new(None);
    let mut b = Session::new(None);
    hello(&mut h, &mut a);
    hello(&mut h, &mut b);
    for bad in ["80-22", "ssh", "22,,23", "70000", "8080", "auto"] {
        let out = h.control(&mut a, &change(ChangeKind::Add, Proto::Tcp, &[bad]));
        let (_, _, text) = expect_error(&out, code::BAD_SPEC);
        assert!(text.starts_with("invalid port spec"), "{bad}: {text}");
    }
    let out = h.control(&mut a, &change(ChangeKind::Replace, Proto::Tcp, &["auto"]));
    expect_error(&out, code::REFUSED);
    let out = h.control(
        &mut a,
        &change(ChangeKind::Add, Proto::Tcp, &["0.0.0.0%eth0/80"]),
    );
    let (_, _, text) = expect_error(&out, code::REFUSED);
    assert!(text.contains("interface"), "{text}");
    // One change at a time, whoever asks.
    assert!(h
        .control(&mut a, &change(ChangeKind::Add, Proto::Tcp, &["9000"]))
        .is_empty());
    let out = h.control(&mut b, &change(ChangeKind::Add, Proto::Tcp, &["9001"]));
    expect_error(&out, code::BUSY);
    let o = opens(&mut h);
    h.complete(Completion {
        id: o[0].0,
        res: Ok(Done::Opened),
    });
    expect_ok(&h.control_run(&mut a));
    // The other session was not waiting: nothing for it.
    assert!(h.control_run(&mut b).is_empty());
}

#[test]
fn hostile_streams_never_panic_and_fatal_headers_close() {
    let mut h = harness("8080");
    // Bad magic: an error, then nothing more is taken.
    let mut s = Session::new(None);
    let out = h.control(&mut s, b"GET / HTTP/1.1\r\n\r\n");
    expect_error(&out, code::BAD_MAGIC);
    assert!(s.is_closed());
    assert!(h.control(&mut s, b"PCTL").is_empty());
    // An oversize length closes at once, without waiting for the body.
    let mut s = Session::new(None);
    let mut m = b"PCTL\x01\x03\x00\x00".to_vec();
    m.extend_from_slice(&(MAX_REQUEST_BODY + 1).to_be_bytes());
    expect_error(&h.control(&mut s, &m), code::TOO_LONG);
    assert!(s.is_closed());
    // A bad header version.
    let mut s = Session::new(None);
    let out = h.control(&mut s, b"PCTL\x02\x01\x00\x00\x00\x00\x00\x02\x01\x01");
    expect_error(&out, code::BAD_VERSION);
    assert!(s.is_closed());
    // A malformed body is an error; the stream goes on.
    let mut s = Session::new(None);
    hello(&mut h, &mut s);
    let out = h.control(&mut s, b"PCTL\x01\x02\x00\x00\x00\x00\x00\x02\x06\x00");
    expect_error(&out, code::MALFORMED);
    let out = h.control(&mut s, b"PCTL\x01\x02\x00\x00\x00\x00\x00\x01\x2a");
    expect_error(&out, code::BAD_PROTO);
    let out = h.control(&mut s, b"PCTL\x01\x77\x00\x00\x00\x00\x00\x00");
    expect_error(&out, code::UNKNOWN_TYPE);
    assert!(!s.is_closed());
    // A request fed a byte at a time is answered once whole.
    let mut m = Vec::new();
    encode_list(&mut m, Proto::Tcp);
    for (i, b) in m.iter().enumerate() {
        let out = h.control(&mut s, &[*b]);
        assert_eq!(out.is_empty(), i + 1 < m.len());
    }
    // A client sending far ahead is cut at one request's worth.
    let big = vec![0u8; HEADER_LEN + MAX_REQUEST_BODY as usize + 100];
    let mut s = Session::new(None);
    let mut m = b"PCTL\x01\x03\x00\x00".to_vec();
    m.extend_from_slice(&MAX_REQUEST_BODY.to_be_bytes());
    let mut stream = m.clone();
    stream.extend_from_slice(&big[..big.len() - HEADER_LEN]);
    let taken = s.input(&mut h.t, &stream);
    assert_eq!(taken, HEADER_LEN + MAX_REQUEST_BODY as usize);
    // (A body of zeroes: an add of protocol 0, answered, not fatal.)
    assert!(!s.is_closed());
    let out = s.output().to_vec();
    expect_error(&out, code::BAD_PROTO);
}

/// The example conversation of `doc/control.md`, byte for byte.
#[test]
fn the_documented_example_is_what_the_session_says() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../doc/control.md")).unwrap();
    let example = doc
        .split("## Example")
        .nth(1)
        .and_then(|s| s.split("```text\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("an example block");
    // Each line: who, then hex words up to two spaces before a comment
    // (continuation lines have no speaker).
    let mut turns: Vec<(bool, Vec<u8>)> = Vec::new();
    for line in example.lines() {
        let (who, rest) = match line.split_once(':') {
            Some((w, r)) if w == "client" || w == "server" => (Some(w == "client"), r),
            _ => (None, line),
        };
        let mut bytes = Vec::new();
        for word in rest.split_whitespace() {
            if !word.chars().all(|c| c.is_ascii_hexdigit()) || word.len() % 2 != 0 {
                break;
            }
            for i in (0..word.len()).step_by(2) {
                bytes.push(u8::from_str_radix(&word[i..i + 2], 16).unwrap());
            }
        }
        match who {
            Some(client) => turns.push((client, bytes)),
            None => turns.last_mut().unwrap().1.extend(bytes),
        }
    }
    assert_eq!(turns.len(), 6);
    let mut h = harness("8080");
    let mut s = Session::new(None);
    for pair in turns.chunks(2) {
        let [(true, ask), (false, answer)] = pair else {
            panic!("client, then server");
        };
        let mut out = h.control(&mut s, ask);
        for (id, _) in opens(&mut h) {
            h.complete(Completion {
                id,
                res: Ok(Done::Opened),
            });
            out.extend(h.control_run(&mut s));
        }
        assert_eq!(&out, answer, "reply to {ask:02x?}");
    }
}

#[test]
fn pipelined_changes_are_taken_one_after_the_other() {
    let mut h = harness("8080");
    let mut s = Session::new(None);
    hello(&mut h, &mut s);
    let mut m = change(ChangeKind::Add, Proto::Tcp, &["9000"]);
    m.extend(change(ChangeKind::Add, Proto::Tcp, &["9001"]));
    encode_list(&mut m, Proto::Tcp);
    assert!(h.control(&mut s, &m).is_empty());
    let mut replies_seen = Vec::new();
    for port in [9000, 9001] {
        let o = opens(&mut h);
        assert_eq!(o.iter().map(|o| o.1).collect::<Vec<_>>(), [port]);
        h.complete(Completion {
            id: o[0].0,
            res: Ok(Done::Opened),
        });
        replies_seen.extend(replies(&h.control_run(&mut s)));
    }
    assert_eq!(replies_seen.len(), 3, "two oks and the list");
    match parse_reply(&replies_seen[2]) {
        Ok(Reply::Rules { rules, .. }) => {
            assert_eq!(rules.iter().collect::<Vec<_>>(), ["8080", "9000", "9001"])
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_client_that_never_reads_is_not_buffered_without_bound() {
    let mut h = harness("8080");
    let mut s = Session::new(None);
    hello(&mut h, &mut s);
    let mut m = Vec::new();
    encode_list(&mut m, Proto::Tcp);
    let one_reply = h.control(&mut s, &m).len();
    // Thousands of lists in a row, none of the replies read.
    let mut taken_total = 0;
    for _ in 0..100_000 {
        taken_total += s.input(&mut h.t, &m);
        if s.output().len() >= passt_core::control::OUTPUT_HIGH {
            break;
        }
    }
    let held = s.output().len();
    assert!(
        held < passt_core::control::OUTPUT_HIGH + one_reply,
        "{held}"
    );
    // More input is taken only up to one request's worth now.
    let mut refused = 0;
    for _ in 0..10_000 {
        if s.input(&mut h.t, &m) == 0 {
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert!(
        s.output().len() == held,
        "no reply while the output is full"
    );
    // Once written, the rest is answered.
    s.consume(held);
    assert!(s.run(&mut h.t));
    assert!(!s.output().is_empty());
    assert!(taken_total > 0);
}
