//! Dropping privileges after start-up (`--runas`).
//!
//! Started as root, pasta does what needs root (entering namespaces,
//! creating the tap device, configuring it), then becomes `nobody` (or the
//! user of `--runas`) for the rest of its life, supplementary groups
//! cleared, real, effective and saved IDs all changed, so that a flaw in the
//! data path cannot act as root. The original refuses to run as root; this
//! one just drops it. An unprivileged user's pasta keeps its identity; with
//! `--runas` naming another user it fails (it cannot change).
//!
//! Nothing that needs privileges can happen afterwards: the event loop only
//! uses descriptors opened before (tap, capture and log files, watches), and
//! work inside the target namespace goes through a thread that entered it
//! before ([`crate::netns::NsThread`]).
//!
//! Names are looked up in `/etc/passwd` and `/etc/group` (files only, no
//! NSS); numbers need no entry: a UID without a group takes its primary
//! group if it has an entry, else the GID of the same number.
//!
//! Syscalls: `open`/`read` of `/etc/passwd` and `/etc/group`, `setgroups`,
//! `setresgid`, `setresuid`.

use passt_core::options::{IdSpec, RunAs};

use crate::{debug, sys, Error};

/// IDs of `nobody` when `/etc/passwd` has no entry.
const NOBODY: (u32, u32) = (65534, 65534);

/// Fields of the entry named `name` (field 0) or numbered `id` (field 2) in a
/// colon-separated database.
fn lookup<'a>(db: &'a str, name: Option<&str>, id: Option<u32>) -> Option<Vec<&'a str>> {
    db.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .find(|f| {
            name.is_some_and(|n| f[0] == n) || id.is_some_and(|i| f[2].parse::<u32>() == Ok(i))
        })
}

/// The UID and GID `runas` names, looked up in `passwd` and `group` (the
/// files' contents).
///
/// # Errors
/// A name with no entry.
pub(crate) fn resolve(runas: &RunAs, passwd: &str, group: &str) -> Result<(u32, u32), Error> {
    let (uid, primary) = match &runas.user {
        IdSpec::Id(uid) => {
            let gid = lookup(passwd, None, Some(*uid))
                .and_then(|f| f.get(3).and_then(|g| g.parse().ok()))
                .unwrap_or(*uid);
            (*uid, gid)
        }
        IdSpec::Name(name) => {
            let f = lookup(passwd, Some(name), None)
                .ok_or_else(|| Error::msg(format!("--runas: no user named {name:?}")))?;
            let uid = f[2]
                .parse()
                .map_err(|_| Error::msg(format!("--runas: bad entry for {name:?}")))?;
            let gid = f
                .get(3)
                .and_then(|g| g.parse().ok())
                .ok_or_else(|| Error::msg(format!("--runas: bad entry for {name:?}")))?;
            (uid, gid)
        }
    };
    let gid = match &runas.group {
        None => primary,
        Some(IdSpec::Id(g)) => *g,
        Some(IdSpec::Name(name)) => lookup(group, Some(name), None)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| Error::msg(format!("--runas: no group named {name:?}")))?,
    };
    Ok((uid, gid))
}

/// Become `runas`, or `nobody` if pasta was started as root.
///
/// `started_as_root`: the effective UID was 0 at start, in the user namespace
/// pasta started in. `joined_userns`: pasta moved into another user
/// namespace, which is its confinement already (its IDs there are mapped
/// ones): nothing is changed then unless `--runas` asks.
///
/// # Errors
/// A `--runas` user that does not exist, or IDs the kernel refuses.
pub(crate) fn drop_privileges(
    started_as_root: bool,
    joined_userns: bool,
    runas: Option<&RunAs>,
) -> Result<(), Error> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let (uid, gid) = match runas {
        Some(r) => resolve(r, &passwd, &group)?,
        None if started_as_root && !joined_userns => lookup(&passwd, Some("nobody"), None)
            .and_then(|f| Some((f[2].parse().ok()?, f.get(3)?.parse().ok()?)))
            .unwrap_or(NOBODY),
        None => return Ok(()),
    };
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    if (uid, gid) == (euid, egid) && !started_as_root {
        return Ok(());
    }
    sys::set_ids(uid, gid, started_as_root && !joined_userns)
        .map_err(|e| Error::sys(format!("changing to UID {uid}, GID {gid}"), e))?;
    debug!("running as UID {uid}, GID {gid}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                          alice:x:1000:1001::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:alice\nnogroup:x:65534:\n";

    fn runas(user: IdSpec, group: Option<IdSpec>) -> RunAs {
        RunAs { user, group }
    }

    #[test]
    fn users_and_groups_resolve() {
        let r = |u, g| resolve(&runas(u, g), PASSWD, GROUP);
        assert_eq!(r(IdSpec::Name("alice".into()), None).unwrap(), (1000, 1001));
        assert_eq!(r(IdSpec::Id(1000), None).unwrap(), (1000, 1001));
        assert_eq!(r(IdSpec::Id(4242), None).unwrap(), (4242, 4242));
        assert_eq!(
            r(
                IdSpec::Name("alice".into()),
                Some(IdSpec::Name("staff".into()))
            )
            .unwrap(),
            (1000, 50)
        );
        assert_eq!(r(IdSpec::Id(7), Some(IdSpec::Id(8))).unwrap(), (7, 8));
        let e = r(IdSpec::Name("bob".into()), None).unwrap_err();
        assert_eq!(e.to_string(), "--runas: no user named \"bob\"");
        let e = r(IdSpec::Id(1), Some(IdSpec::Name("wheel".into()))).unwrap_err();
        assert_eq!(e.to_string(), "--runas: no group named \"wheel\"");
    }
}
