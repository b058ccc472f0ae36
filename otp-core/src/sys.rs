//! The core's only `unsafe` code: system calls that neither std nor nix
//! offers in the form needed. `lib.rs` denies `unsafe_code` everywhere else.

use std::ffi::CStr;
use std::io;

use nix::errno::Errno;

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

/// Closes every file descriptor from `first` on: what a process started
/// by a program we do not control (su keeps the caller's descriptors,
/// FreeRADIUS its sockets) inherited without close-on-exec.
///
/// close_range(2) (Linux 5.9, glibc 2.34), not a loop over /proc/self/fd:
/// one call, and no directory to open while descriptors are being closed.
pub fn close_descriptors_from(first: libc::c_uint) -> io::Result<()> {
    // SAFETY: closes descriptors only; the caller (the helper's main, before
    // it opens anything) owns no object that still refers to one of them.
    let rc = unsafe { libc::close_range(first, libc::c_uint::MAX, 0) };
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

/// The fields of one passwd entry, copied out of libc's static buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub dir: Vec<u8>,
    /// The login shell (`pw_shell`; empty when NULL).
    pub shell: Vec<u8>,
}

/// Every entry `getpwent(3)` enumerates (all NSS sources that enumerate;
/// LDAP or SSSD may be set up not to), in its order.
///
/// The cursor is process-wide state of libc, and the entry it returns is a
/// static buffer overwritten by the next call: so this is for a
/// single-threaded command (`otp-enroll migrate --all`), never for the
/// module inside sshd, and each entry's fields are copied before the next
/// call. Calls from several threads of this process are serialised (a
/// lock); code elsewhere that calls getpwent itself is not.
pub fn passwd_entries() -> Result<Vec<PasswdEntry>, Errno> {
    static CURSOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A panic of a holder cannot leave the cursor in a state that matters:
    // setpwent rewinds it.
    let _cursor = CURSOR.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: setpwent only rewinds libc's own cursor; it takes no
    // arguments and touches no memory of ours.
    unsafe { libc::setpwent() };
    let mut entries = Vec::new();
    let result = loop {
        Errno::clear();
        // SAFETY: no arguments; it returns NULL or a pointer to libc's
        // static entry, which stays valid until the next get/set/endpwent
        // call. Every field is copied out below before that call.
        let entry = unsafe { libc::getpwent() };
        if entry.is_null() {
            // NULL is the end, or an error when errno says one (some NSS
            // modules leave ENOENT at the end).
            break match Errno::last_raw() {
                0 | libc::ENOENT => Ok(()),
                raw => Err(Errno::from_raw(raw)),
            };
        }
        // SAFETY: `entry` is not NULL and points to a passwd struct that
        // libc keeps valid until the next getpwent call (see above).
        let pw = unsafe { &*entry };
        if pw.pw_name.is_null() || pw.pw_dir.is_null() {
            continue;
        }
        // SAFETY: pw_name is not NULL and, as every passwd string, points
        // to a NUL-terminated string in libc's buffer, alive until the next
        // getpwent call; it is copied at once.
        let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_bytes().to_vec();
        // SAFETY: as for pw_name.
        let dir = unsafe { CStr::from_ptr(pw.pw_dir) }.to_bytes().to_vec();
        let shell = if pw.pw_shell.is_null() {
            Vec::new()
        } else {
            // SAFETY: as for pw_name (not NULL, checked just above).
            unsafe { CStr::from_ptr(pw.pw_shell) }.to_bytes().to_vec()
        };
        entries.push(PasswdEntry {
            name,
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            dir,
            shell,
        });
    };
    // SAFETY: endpwent closes libc's cursor; no arguments, and the last
    // entry's fields were copied already.
    unsafe { libc::endpwent() };
    result.map(|()| entries)
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
    fn passwd_entries_include_root() {
        let all = passwd_entries().unwrap();
        let root = all.iter().find(|e| e.name == b"root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        // A second enumeration starts from the beginning again (other
        // tests may add accounts meanwhile, so only root is compared).
        let again = passwd_entries().unwrap();
        assert_eq!(again.iter().find(|e| e.name == b"root"), Some(root));
    }

    #[test]
    #[ignore = "needs root: make test"]
    fn thread_groups_are_set_for_this_thread_only() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (setgroups needs CAP_SETGID): make test runs it"
        );
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
