//! Command line and host to [`Config`]: what the guest will see.
//!
//! 1. The host's template interfaces, routes and addresses over rtnetlink
//!    ([`passt_core::host::read_host_net`], `-i`, `--outbound-if4`,
//!    `--outbound-if6`) and `/etc/resolv.conf`
//!    ([`passt_core::host::resolv::ResolvConf`]);
//! 2. the guest's addresses, gateway and resolvers derived from them, with
//!    the command line's addresses taking precedence
//!    ([`passt_core::host::defaults::guest_defaults`]);
//! 3. every option laid over the result ([`Options::overrides`]), and the
//!    flow hash key from the kernel's random source (`getrandom(2)`).
//!
//! The steps both drivers take are [`passt_core::host::setup`]'s.
//!
//! A host that cannot be read (no netlink, say) is reported and treated as
//! an offline one: the guest gets the local-mode addresses, as the original
//! does without a default route. A named interface that does not exist is
//! an error.
//!
//! Syscalls: those of `passt_core::host` (netlink socket, `/etc/resolv.conf`),
//! `getrandom`.

use std::path::Path;

use passt_core::config::Config;
use passt_core::host::defaults::guest_defaults;
use passt_core::host::options::Options;
use passt_core::host::resolv::{ResolvConf, RESOLV_CONF};
use passt_core::host::{read_host_net, setup, HostError, HostNet};

use crate::Error;
use crate::{debug, warning};

/// The translator's configuration for `o`, read from the host.
///
/// # Errors
/// A named interface that does not exist; options that conflict with what
/// the host has (`Options::overrides`); no random source.
pub(crate) fn config(o: &Options) -> Result<(Config, Vec<String>), Error> {
    let host = match read_host_net(&setup::interface_choice(o)) {
        Ok(h) => h,
        Err(e @ HostError::NoSuchInterface(_)) => return Err(Error::msg(e.to_string())),
        Err(e) => {
            warning!("cannot read the host's network configuration ({e}); local mode");
            HostNet::default()
        }
    };
    let resolv = match ResolvConf::read(Path::new(RESOLV_CONF)) {
        Ok(r) => Some(r),
        Err(e) => {
            warning!("cannot read {RESOLV_CONF} ({e}): no DNS servers from the host");
            None
        }
    };
    let d = guest_defaults(&host, resolv.as_ref(), &setup::guest_overrides(o));
    debug!("host: {host:?}");
    let mut config = setup::config(&d, o).map_err(|e| Error::msg(e.to_string()))?;
    config.secret = setup::random_key()
        .map_err(|e| Error::sys("reading random bytes for the flow hash key", e))?;
    Ok((config, vec![d.summary4, d.summary6]))
}
