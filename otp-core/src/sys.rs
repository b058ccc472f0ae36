//! The core's only `unsafe` code: two system calls that neither std nor nix
//! offers in the form needed. `lib.rs` denies `unsafe_code` everywhere else.

use std::io;

/// Replaces the calling thread's supplementary groups.
///
/// The raw syscall, not nix's or glibc's `setgroups()`: those change every
/// thread of the process, and sshd's other threads must keep their groups.
pub fn set_thread_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: the kernel reads `groups.len()` gids from the slice, which
    // lives for the whole call; nothing is written to memory.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Fills `buf` from the kernel's random generator, waiting for it to be
/// seeded if it is not yet (only ever early at boot).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match getrandom(rest, 0) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Eight random bytes, or `None` rather than waiting for an unseeded
/// generator: for a login, where waiting is worse than a guessable value.
pub fn try_random_u64() -> Option<u64> {
    let mut bytes = [0u8; 8];
    match getrandom(&mut bytes, libc::GRND_NONBLOCK) {
        Ok(8) => Some(u64::from_ne_bytes(bytes)),
        _ => None,
    }
}

/// One getrandom(2) call: how many bytes it wrote.
fn getrandom(buf: &mut [u8], flags: libc::c_uint) -> io::Result<usize> {
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`, which
    // is borrowed mutably for the whole call.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_fill_the_buffer_and_differ() {
        let mut a = [0u8; 300];
        let mut b = [0u8; 300];
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(try_random_u64(), try_random_u64());
    }

    #[test]
    fn thread_groups_are_set_for_this_thread_only() {
        if !nix::unistd::geteuid().is_root() {
            return; // setgroups needs CAP_SETGID
        }
        let odd = nix::unistd::Gid::from_raw(4242);
        let before = nix::unistd::getgroups().unwrap();
        assert!(!before.contains(&odd));
        std::thread::spawn(move || {
            set_thread_groups(&[odd.as_raw()]).unwrap();
            assert_eq!(nix::unistd::getgroups().unwrap(), [odd]);
        })
        .join()
        .unwrap();
        assert_eq!(nix::unistd::getgroups().unwrap(), before);
    }
}
