//! TEMPORARY STUB (replaced by the seccomp branch).
#![allow(missing_docs)]
pub type Sysno = libc::c_long;
pub fn program(_groups: &[&[Sysno]]) -> Vec<libc::sock_filter> {
    vec![libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }]
}
pub fn install(p: &[libc::sock_filter], _tsync: bool) -> Result<(), rustix::io::Errno> {
    let prog = libc::sock_fprog {
        len: p.len() as u16,
        filter: p.as_ptr() as *mut _,
    };
    let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, 1, &prog as *const libc::sock_fprog) };
    if r == 0 {
        Ok(())
    } else {
        Err(rustix::io::Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(5),
        ))
    }
}
