//! Domain names in DNS wire form (RFC 1035 §3.1), uncompressed, as DHCPv6
//! (RFC 8415 §10) and NDP's DNSSL (RFC 8106 §5.2) carry them; DHCP's search
//! list adds compression on top (RFC 3397, in [`super::dhcp`]).

use super::{Result, WireError};

/// Longest name in wire form, final zero included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Length of `name` (dotted, a final dot optional) in DNS wire form.
///
/// # Errors
///
/// [`WireError::Malformed`] for an empty name or label, a label longer than
/// 63 octets or a name longer than 255 octets in wire form (RFC 1035
/// §2.3.4).
pub fn name_len(name: &str) -> Result<usize> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(WireError::Malformed);
    }
    let mut len = 1; // final zero
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(WireError::Malformed);
        }
        len += 1 + label.len();
    }
    if len > MAX_NAME_LEN {
        return Err(WireError::Malformed);
    }
    Ok(len)
}

/// Encode `name` (dotted, a final dot optional) in uncompressed DNS wire
/// form (RFC 1035 §3.1) at the start of `out`; returns the length written.
///
/// # Errors
///
/// Those of [`name_len`], and [`WireError::BufferTooSmall`].
pub fn encode_name(name: &str, out: &mut [u8]) -> Result<usize> {
    let len = name_len(name)?;
    let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut pos = 0;
    for label in name.split('.') {
        let dst = out
            .get_mut(pos..pos + 1 + label.len())
            .ok_or(WireError::BufferTooSmall)?;
        if let Some((first, rest)) = dst.split_first_mut() {
            *first = label.len() as u8; // at most 63, checked above
            rest.copy_from_slice(label.as_bytes());
        }
        pos += 1 + label.len();
    }
    *out.get_mut(pos).ok_or(WireError::BufferTooSmall)? = 0;
    Ok(len)
}
