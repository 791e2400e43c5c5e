//! The man pages in `doc/` document every option.
//!
//! Each long option that `passt --help` or `pasta --help` lists (the option
//! table, reached through [`passt_core::host::options::usage`]) must have an
//! entry of its own, a `.TP` heading naming it roff-escaped as
//! `\-\-long\-name`, in the OPTIONS section of that program's page, under
//! the subsection of its group as the original's page groups them:
//! "Options of passt and pasta", "passt-only options" or "pasta-only
//! options". Every heading there must name an option that exists. So an
//! option added to the table without documentation, or removed from it with
//! its documentation left behind, fails here.
//!
//! `doc/pasta.1` is a symbolic link to `doc/passt.1`, which documents both
//! programs (a `.so` link would be followed too).

use std::collections::BTreeMap;
use std::path::PathBuf;

use passt_core::config::Mode;
use passt_core::host::options::usage;

/// Longest chain of `.so` links followed.
const MAX_SO_DEPTH: usize = 4;

/// Subsection of the options both programs accept.
const COMMON: &str = "Options of passt and pasta";

/// The directory of the man pages.
fn doc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../doc")
}

/// The roff source of `name` (`passt.1`), following `.so` links (which
/// name the target as `man1/passt.1`, relative to a man hierarchy: only
/// the file name is used).
fn page(name: &str) -> String {
    let mut name = name.to_owned();
    for _ in 0..MAX_SO_DEPTH {
        let path = doc_dir().join(&name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let target = text
            .lines()
            .find(|l| !l.starts_with(".\\\""))
            .and_then(|l| l.strip_prefix(".so "));
        match target {
            Some(t) => name = t.trim().rsplit('/').next().unwrap_or(t).to_owned(),
            None => return text,
        }
    }
    panic!("too many .so links from {name}");
}

/// Long option names (without `--`) that `--help` lists for `mode`: the
/// first `--name` of every line that starts with an option.
fn long_options(mode: Mode) -> Vec<String> {
    usage(mode)
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("--"))
                .map(|w| w.trim_end_matches(',').to_owned())
        })
        .collect()
}

/// The option entries of a page's OPTIONS section: for each subsection
/// title (`.SS`), the long option named by each `.TP` heading, unescaped.
fn entries(text: &str) -> BTreeMap<String, Vec<String>> {
    let section = text
        .split_once("\n.SH OPTIONS\n")
        .map(|(_, rest)| rest.split("\n.SH ").next().unwrap_or(""))
        .expect("no OPTIONS section");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut sub = String::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix(".SS ") {
            title.trim_matches('"').clone_into(&mut sub);
            continue;
        }
        if line != ".TP" {
            continue;
        }
        let heading = lines.next().unwrap_or("");
        let Some(at) = heading.find("\\-\\-") else {
            panic!("option heading without a long option: {heading}");
        };
        let name: String = heading
            .get(at + 4..)
            .unwrap_or("")
            .replace("\\-", "-")
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        out.entry(sub.clone()).or_default().push(name);
    }
    out
}

#[test]
fn help_lists_the_options_this_test_expects() {
    let passt = long_options(Mode::Passt);
    let pasta = long_options(Mode::Pasta);
    for (list, here, not_here) in [
        (&passt, "socket-path", "netns"),
        (&pasta, "config-net", "one-off"),
    ] {
        assert!(list.len() > 40, "{list:?}");
        assert!(list.iter().any(|o| o == "debug"));
        assert!(list.iter().any(|o| o == here), "{here}");
        assert!(!list.iter().any(|o| o == not_here), "{not_here}");
    }
}

#[test]
fn every_option_has_an_entry_in_its_group() {
    let passt = long_options(Mode::Passt);
    let pasta = long_options(Mode::Pasta);
    for (mode, file, own, other) in [
        (Mode::Passt, "passt.1", "passt-only options", &pasta),
        (Mode::Pasta, "pasta.1", "pasta-only options", &passt),
    ] {
        let found = entries(&page(file));
        let missing: Vec<String> = long_options(mode)
            .into_iter()
            .filter(|o| {
                let group = if other.contains(o) { COMMON } else { own };
                !found.get(group).is_some_and(|names| names.contains(o))
            })
            .collect();
        assert!(missing.is_empty(), "{file} lacks entries for {missing:?}");
    }
}

#[test]
fn every_entry_names_an_option_of_its_group() {
    let passt = long_options(Mode::Passt);
    let pasta = long_options(Mode::Pasta);
    for file in ["passt.1", "pasta.1"] {
        let found = entries(&page(file));
        let mut count = 0;
        for (group, names) in &found {
            for name in names {
                let ok = match group.as_str() {
                    COMMON => passt.contains(name) && pasta.contains(name),
                    "passt-only options" => passt.contains(name) && !pasta.contains(name),
                    "pasta-only options" => pasta.contains(name) && !passt.contains(name),
                    _ => panic!("{file}: unexpected subsection {group:?}"),
                };
                assert!(ok, "{file}: --{name} does not belong under {group:?}");
                count += 1;
            }
        }
        assert!(count > 40, "{file}: only {count} entries");
    }
}
