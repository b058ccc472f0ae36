//! Safe access to files under a user's control, and the one reader of
//! root's own files ([`read_trusted`]).
//!
//! Every operation runs with the file-system identity switched to the file's
//! owner (`setfsuid`/`setfsgid`), so the kernel applies that user's
//! permissions: a symlink planted anywhere in the path cannot make us read or
//! write what the user could not. On top of that the last component is never
//! followed if it is a symlink, the file must be a regular file owned by the
//! user (or root) with no group/other permissions, and it is read only up to
//! [`MAX_FILE_SIZE`].
//!
//! The directories the file is reached through count as much as the file:
//! whoever can write to one of them can rename the file away, put back an
//! older copy, or swap the whole directory. So every directory from the
//! file's parent up to the user's home (or up to `/` for a path outside the
//! home) must be the user's or root's and writable by no one else
//! ([`check_dirs`], the rule OpenSSH's `StrictModes` applies to
//! `authorized_keys`). It is checked before a file is opened or created,
//! and before "there is none" is believed.
//!
//! Updates are a new file in the same directory, fsync'd, renamed over the
//! old one, then the directory fsync'd: a crash or a full disk at any moment
//! leaves the old file or the new one. Writers are serialised by `flock` on
//! the file itself; a waiter re-checks after locking that the path still
//! names the inode it locked (a rename by the previous holder replaces it).
//! A lock dies with its process, so a killed login leaves nothing stale.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::unistd::{setfsgid, setfsuid, Gid, Uid};

use crate::sys::{self, set_thread_groups};

/// A secret file is a few hundred bytes; anything past this is refused.
pub const MAX_FILE_SIZE: u64 = 64 * 1024;
/// Lock attempts (with growing sleeps, about 5 s in all) before giving up.
const LOCK_ATTEMPTS: u32 = 120;

/// Whose identity to assume, and who may own the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Whoever runs this (root, in the module): the owner of root's own
    /// state files.
    pub fn current() -> Owner {
        Owner {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

#[derive(Debug)]
pub enum FsError {
    NotFound,
    Symlink,
    NotRegular,
    /// Owned by someone other than the user or root.
    Owner {
        uid: u32,
    },
    /// A root-owned file ([`read_trusted`]) owned by someone else.
    NotRoot {
        uid: u32,
    },
    /// A file of secrets that group or others may get at.
    Mode {
        mode: u32,
    },
    /// A file of settings that group or others may change.
    Writable {
        mode: u32,
    },
    TooLarge {
        size: u64,
        max: u64,
    },
    /// [`read_trusted`]: the file is not text.
    NotUtf8,
    /// Another process held the lock for too long.
    Busy,
    /// `create_new` found a file already there.
    Exists,
    /// The file-system identity could not be switched.
    Identity {
        uid: u32,
    },
    /// A directory on the way to the file lets someone else change what
    /// the path names (see [`check_dirs`]).
    UnsafeDir {
        dir: PathBuf,
        why: DirProblem,
    },
    /// A directory on the way to the file (the home, say) does not exist or
    /// cannot be looked at: whether the file is there is unknown.
    NoDir {
        dir: PathBuf,
        err: io::Error,
    },
    Io {
        op: &'static str,
        err: io::Error,
    },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotFound => write!(f, "no such file"),
            FsError::Symlink => write!(f, "is a symbolic link (refused)"),
            FsError::NotRegular => write!(f, "not a regular file"),
            FsError::Owner { uid } => write!(f, "owned by uid {uid}, not by the user or root"),
            FsError::NotRoot { uid } => write!(f, "owned by uid {uid}, not root"),
            FsError::Mode { mode } => {
                write!(f, "mode {mode:04o} lets group or others in (must be 0600)")
            }
            FsError::Writable { mode } => {
                write!(f, "writable by group or others (mode {mode:04o})")
            }
            FsError::TooLarge { size, max } => write!(f, "{size} bytes, more than {max}"),
            FsError::NotUtf8 => write!(f, "not UTF-8 text"),
            FsError::Busy => write!(f, "locked by another process for too long"),
            FsError::Exists => write!(f, "already exists"),
            FsError::Identity { uid } => {
                write!(f, "cannot switch file-system identity to uid {uid}")
            }
            FsError::UnsafeDir { dir, why } => {
                let dir = dir.display();
                match why {
                    DirProblem::NotPlain => {
                        write!(f, "path {dir} is not absolute or has a '..' component")
                    }
                    DirProblem::Symlink => write!(
                        f,
                        "directory {dir} is a symbolic link (refused below the home and in a path outside it)"
                    ),
                    DirProblem::NotDirectory => write!(f, "{dir} is not a directory"),
                    DirProblem::Owner { uid } => write!(
                        f,
                        "directory {dir} is owned by uid {uid}, not by the user or root"
                    ),
                    DirProblem::GroupWritable { gid, mode } => write!(
                        f,
                        "directory {dir} is writable by group {gid} (mode {mode:04o})"
                    ),
                    DirProblem::WorldWritable { mode } => {
                        write!(f, "directory {dir} is writable by others (mode {mode:04o})")
                    }
                }
            }
            FsError::NoDir { dir, err } => {
                let dir = dir.display();
                match err.raw_os_error() {
                    Some(libc::ENOENT) => write!(f, "directory {dir} does not exist"),
                    Some(libc::EACCES) => {
                        write!(f, "directory {dir} cannot be reached as the user: {err}")
                    }
                    _ => write!(f, "directory {dir}: {err}"),
                }
            }
            FsError::Io { op, err } => write!(f, "{op}: {err}"),
        }
    }
}

/// What is wrong with a directory on the way to the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirProblem {
    /// The path is relative or has a `..`: the walk would not check the
    /// directories the kernel goes through.
    NotPlain,
    /// A symlink below the home (or anywhere in a path outside it).
    Symlink,
    NotDirectory,
    Owner {
        uid: u32,
    },
    /// Group members may rename entries (not sticky).
    GroupWritable {
        gid: u32,
        mode: u32,
    },
    /// Anyone may rename entries (not sticky).
    WorldWritable {
        mode: u32,
    },
}

impl std::error::Error for FsError {}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> FsError {
    move |err| match err.raw_os_error() {
        Some(libc::ENOENT) => FsError::NotFound,
        Some(libc::ELOOP) => FsError::Symlink,
        _ => FsError::Io { op, err },
    }
}

/// The file-system identity of a user, held until dropped.
///
/// setfsuid/setfsgid act on the calling thread only. When running as root,
/// the thread's supplementary groups are emptied too (with the raw syscall:
/// glibc's setgroups() changes every thread of the process, and sshd's
/// other threads must keep theirs), so only the user's own uid and gid
/// count. Everything is restored on drop, also when unwinding.
pub struct FsIdentity {
    prev_uid: Uid,
    prev_gid: Gid,
    /// The thread's groups before, when they were replaced.
    prev_groups: Option<Vec<libc::gid_t>>,
}

/// The calling thread's supplementary groups.
fn thread_groups() -> Option<Vec<libc::gid_t>> {
    let groups = nix::unistd::getgroups().ok()?;
    Some(groups.into_iter().map(Gid::as_raw).collect())
}

impl FsIdentity {
    pub fn assume(owner: Owner) -> Result<FsIdentity, FsError> {
        let uid = Uid::from_raw(owner.uid);
        let gid = Gid::from_raw(owner.gid);
        let prev_groups = if nix::unistd::geteuid().is_root() && owner.uid != 0 {
            let saved = thread_groups().ok_or(FsError::Identity { uid: owner.uid })?;
            if set_thread_groups(&[]).is_err() {
                return Err(FsError::Identity { uid: owner.uid });
            }
            Some(saved)
        } else {
            None
        };
        // setfsuid/setfsgid return the previous value whether or not they
        // succeed; a second call returns the value now in force.
        let prev_gid = setfsgid(gid);
        let prev_uid = setfsuid(uid);
        let guard = FsIdentity {
            prev_uid,
            prev_gid,
            prev_groups,
        };
        if setfsgid(gid) != gid || setfsuid(uid) != uid {
            drop(guard);
            return Err(FsError::Identity { uid: owner.uid });
        }
        Ok(guard)
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        setfsuid(self.prev_uid);
        setfsgid(self.prev_gid);
        if let Some(groups) = &self.prev_groups {
            let _ = set_thread_groups(groups);
        }
    }
}

/// The current file-system uid of this thread (for tests and assertions).
pub fn current_fsuid() -> u32 {
    // setfsuid(-1) is an invalid id: nothing changes, the current value comes back.
    setfsuid(Uid::from_raw(u32::MAX)).as_raw()
}

/// The sticky bit: in such a directory only an entry's owner (or the
/// directory's, or root) may rename or remove it.
const STICKY: u32 = 0o1000;

/// Checks, as `owner`, every directory the file at `path` is reached
/// through; `home` is the user's home directory. Ok means no one but the
/// user and root can change which file (or whether any file) `path` names.
///
/// Walked: the home, then each directory below it down to the file's
/// parent, when `path` is under `home`; otherwise every directory from `/`
/// down to the parent. Directories above the home are not checked (nor
/// are they by OpenSSH): they are the admin's, like the passwd entry that
/// names the home. Each walked directory must
/// - exist and be reachable as the user: a missing or unmounted home is
///   an error ([`FsError::NoDir`]), never "no secret file";
/// - be a directory, owned by the user or root (a directory's owner can
///   rename anything in it, and chmod it);
/// - not be writable by group or others, unless it is sticky. POSIX ACLs
///   need no check of their own: a named user or group with write access
///   shows as group write in the mode (the ACL mask).
///
/// A sticky directory that others may write to (`/tmp`, or a 1770 team
/// directory) is allowed: the kernel lets only the owner of an entry, the
/// owner of the directory (checked above: the user or root) or root rename
/// or remove it, so nobody else can take the user's file or directory away
/// or put another in its place. What they can do is create a name that is
/// free, and what they create is theirs: a directory below fails the owner
/// check here, a file fails the file's owner check. That can deny a login,
/// not get one in.
///
/// Group write is refused even in the user's own private group (Debian's
/// OpenSSH patch user-group-modes accepts it when no other account has that
/// group). Proving that means enumerating every account of every NSS
/// source: LDAP and SSSD do not enumerate by default, so such a proof is
/// false exactly where accounts come from a directory, slow where they do
/// enumerate, and getpwent's cursor is process-wide state inside sshd.
/// Debian's useradd and adduser make homes 0700 or 0755 anyway, so only a
/// home chmodded by hand (or a subdirectory in a `secret` template made
/// under umask 002) is affected, and the log says which and why.
///
/// Symlinks: the home itself is followed (stat, not lstat): a link at the
/// home's own name lives in a directory above the home, which is the
/// admin's, and homes reached through a link are common (OpenSSH accepts
/// them too). Below the home, and everywhere in a path outside it, a
/// symlinked directory is refused. OpenSSH instead resolves the whole path
/// (realpath) and walks the result, but that checks neither the directories
/// the links themselves sit in (whoever can write to one of those can point
/// the link elsewhere) nor, at the later open, that the path still resolves
/// as it did. Refusing links means the walked directories are exactly the
/// ones the kernel goes through when the file is opened by the same path;
/// and since each of them is writable only by the user or root (or sticky),
/// nobody else can change any of them between this check and that open.
/// `..` is refused for the same reason (after a link it would go elsewhere
/// than the walk did), and so is a relative path.
pub fn check_dirs(path: &Path, home: &Path, owner: Owner) -> Result<(), FsError> {
    let _id = FsIdentity::assume(owner)?;
    walk_dirs(path, home, owner)
}

/// [`check_dirs`], with the identity already assumed.
fn walk_dirs(path: &Path, home: &Path, owner: Owner) -> Result<(), FsError> {
    let not_plain = || FsError::UnsafeDir {
        dir: path.to_path_buf(),
        why: DirProblem::NotPlain,
    };
    let parent = match path.parent() {
        Some(p) if path.is_absolute() => p,
        _ => return Err(not_plain()),
    };
    let plain = |p: &Path| {
        p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    let (start, below) = match parent.strip_prefix(home) {
        Ok(rest) if home.is_absolute() && plain(home) => (home, rest),
        _ => (Path::new("/"), parent),
    };
    if !plain(below) {
        return Err(not_plain());
    }
    let meta = fs::metadata(start).map_err(|err| FsError::NoDir {
        dir: start.to_path_buf(),
        err,
    })?;
    check_dir(start, &meta, owner)?;
    let mut dir = start.to_path_buf();
    for part in below.components() {
        let Component::Normal(name) = part else {
            continue; // the leading `/` of a walk from the root
        };
        dir.push(name);
        let meta = fs::symlink_metadata(&dir).map_err(|err| FsError::NoDir {
            dir: dir.clone(),
            err,
        })?;
        check_dir(&dir, &meta, owner)?;
    }
    Ok(())
}

fn check_dir(dir: &Path, meta: &fs::Metadata, owner: Owner) -> Result<(), FsError> {
    let refuse = |why| {
        Err(FsError::UnsafeDir {
            dir: dir.to_path_buf(),
            why,
        })
    };
    if meta.file_type().is_symlink() {
        return refuse(DirProblem::Symlink);
    }
    if !meta.file_type().is_dir() {
        return refuse(DirProblem::NotDirectory);
    }
    if meta.uid() != owner.uid && meta.uid() != 0 {
        return refuse(DirProblem::Owner { uid: meta.uid() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & STICKY == 0 {
        if mode & 0o002 != 0 {
            return refuse(DirProblem::WorldWritable { mode });
        }
        if mode & 0o020 != 0 {
            return refuse(DirProblem::GroupWritable {
                gid: meta.gid(),
                mode,
            });
        }
    }
    Ok(())
}

/// Makes `dir` (mode 0700, as the current identity) if it is missing, and
/// checks it as [`check_dirs`] checks a directory, but owned by `owner`
/// alone: for root's own state directories (`state_dir` and those below).
pub fn ensure_dir(dir: &Path, owner: Owner) -> Result<(), FsError> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(FsError::NoDir {
                dir: dir.to_path_buf(),
                err,
            })
        }
    }
    let meta = fs::symlink_metadata(dir).map_err(|err| FsError::NoDir {
        dir: dir.to_path_buf(),
        err,
    })?;
    if meta.uid() != owner.uid {
        return Err(FsError::UnsafeDir {
            dir: dir.to_path_buf(),
            why: DirProblem::Owner { uid: meta.uid() },
        });
    }
    check_dir(dir, &meta, owner)
}

/// Whether anything exists at `path` (not following a final symlink),
/// looked at as `owner`. `Ok(false)` only for a name that is free in
/// directories nobody else can write to ([`check_dirs`]); `Ok(true)` says
/// nothing about the directories.
pub fn exists(path: &Path, home: &Path, owner: Owner) -> Result<bool, FsError> {
    let _id = FsIdentity::assume(owner)?;
    // Something there: it is used only through open_locked, which checks
    // the directories before it opens anything. No answer, or nothing
    // there, is believed only once the directories are shown safe: in one
    // others can write to, the file may have been taken away.
    let err = match fs::symlink_metadata(path) {
        Ok(_) => return Ok(true),
        Err(err) => err,
    };
    walk_dirs(path, home, owner)?;
    match err.kind() {
        io::ErrorKind::NotFound => Ok(false),
        _ => Err(FsError::Io { op: "stat", err }),
    }
}

/// What a file holds, which decides who besides its owner may get at it
/// and whether its name may be a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// Settings (the config, its address lists, libpq's service file):
    /// others may read it, nobody but its owner may change it, and a
    /// symlink at its name (the admin's own, in /etc) is followed.
    Settings,
    /// Secrets (a secret file, the token inventory): nobody else may even
    /// read it, and it is never reached through a symlink.
    Secrets,
}

/// The one check of a file before it is read: a regular file, owned by
/// `owner` or root, that group and others may do with only what `holds`
/// allows, at most `max` bytes. `trusted`: a file of root's (or of whoever
/// runs this), named so in the error.
fn check_metadata(
    meta: &fs::Metadata,
    owner: Owner,
    holds: Holds,
    max: u64,
    trusted: bool,
) -> Result<(), FsError> {
    if meta.file_type().is_symlink() {
        return Err(FsError::Symlink);
    }
    if !meta.file_type().is_file() {
        return Err(FsError::NotRegular);
    }
    if meta.uid() != owner.uid && meta.uid() != 0 {
        let uid = meta.uid();
        return Err(if trusted {
            FsError::NotRoot { uid }
        } else {
            FsError::Owner { uid }
        });
    }
    let mode = meta.mode() & 0o7777;
    match holds {
        Holds::Secrets if mode & 0o077 != 0 => return Err(FsError::Mode { mode }),
        Holds::Settings if mode & 0o022 != 0 => return Err(FsError::Writable { mode }),
        _ => {}
    }
    if meta.len() > max {
        return Err(FsError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    Ok(())
}

/// The file, checked, and its size when opened.
fn open_checked(
    path: &Path,
    owner: Owner,
    max: u64,
    trusted: bool,
) -> Result<(File, u64), FsError> {
    // Look before opening, so a device or FIFO is never opened at all; the
    // fstat after opening is the check that counts.
    let pre = fs::symlink_metadata(path).map_err(io_err("stat"))?;
    check_metadata(&pre, owner, Holds::Secrets, max, trusted)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err("open"))?;
    let meta = file.metadata().map_err(io_err("fstat"))?;
    check_metadata(&meta, owner, Holds::Secrets, max, trusted)?;
    Ok((file, meta.len()))
}

/// At most `max` bytes of `file`, more being an error. Sized from fstat
/// (`size`), so that a large address list is not copied as it grows.
fn read_at_most(file: &File, size: u64, max: u64) -> Result<Vec<u8>, FsError> {
    let mut bytes =
        Vec::with_capacity(usize::try_from(size.min(max).saturating_add(1)).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err("read"))?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > max {
        // It grew between fstat and read.
        return Err(FsError::TooLarge { size, max });
    }
    Ok(bytes)
}

/// Reads a file that whoever could write the config could have put there,
/// whole, as UTF-8 text: the one reader of every root-owned file read
/// without a user's identity (the config, its address lists, libpq's
/// service file, the token inventory). It is trusted only as a regular
/// file owned by root (or by whoever runs this: tests, a user's own
/// `otp-enroll --config`), kept from group and others as `holds` says, at
/// most `max` bytes. A FIFO or device at the path is never waited on
/// (`O_NONBLOCK`, then fstat).
pub fn read_trusted(path: &Path, holds: Holds, max: u64) -> Result<String, FsError> {
    let owner = Owner::current();
    let (file, size) = match holds {
        Holds::Secrets => open_checked(path, owner, max, true)?,
        Holds::Settings => {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path)
                .map_err(io_err("open"))?;
            let meta = file.metadata().map_err(io_err("fstat"))?;
            check_metadata(&meta, owner, holds, max, true)?;
            (file, meta.len())
        }
    };
    String::from_utf8(read_at_most(&file, size, max)?).map_err(|_| FsError::NotUtf8)
}

/// [`read_trusted`]'s check of a file of settings, without reading it
/// (the pq helper, which is run rather than read).
pub fn check_trusted(path: &Path) -> Result<(), FsError> {
    let meta = fs::metadata(path).map_err(io_err("stat"))?;
    check_metadata(&meta, Owner::current(), Holds::Settings, u64::MAX, true)
}

/// An exclusive `flock` without waiting: `Ok(false)` while another holds it.
fn try_lock(file: &File) -> Result<bool, FsError> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(TryLockError::Error(err)) => Err(FsError::Io { op: "flock", err }),
    }
}

fn same_inode(path: &Path, file: &File) -> Result<bool, FsError> {
    let on_disk = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FsError::Io { op: "stat", err: e }),
    };
    let held = file.metadata().map_err(io_err("fstat"))?;
    Ok(on_disk.dev() == held.dev() && on_disk.ino() == held.ino())
}

/// A secret file, opened and exclusively locked. Dropping it unlocks.
pub struct LockedFile {
    file: File,
    path: PathBuf,
    owner: Owner,
}

impl fmt::Debug for LockedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockedFile({})", self.path.display())
    }
}

/// Opens `path` as `owner`, after [`check_dirs`], locks it, and reads it
/// whole.
pub fn open_locked(
    path: &Path,
    home: &Path,
    owner: Owner,
) -> Result<(LockedFile, Vec<u8>), FsError> {
    let _id = FsIdentity::assume(owner)?;
    walk_dirs(path, home, owner)?;
    let mut attempt = 0u32;
    let (file, size) = loop {
        let (file, size) = open_checked(path, owner, MAX_FILE_SIZE, false)?;
        let mut locked = false;
        while attempt < LOCK_ATTEMPTS {
            if try_lock(&file)? {
                locked = true;
                break;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(u64::from(attempt.min(50))));
        }
        if !locked {
            return Err(FsError::Busy);
        }
        if same_inode(path, &file)? {
            break (file, size);
        }
        // The holder before us replaced (or removed) the file: start again
        // on whatever the path names now.
        attempt += 1;
        if attempt >= LOCK_ATTEMPTS {
            return Err(FsError::Busy);
        }
    };
    let bytes = read_at_most(&file, size, MAX_FILE_SIZE)?;
    Ok((
        LockedFile {
            file,
            path: path.to_path_buf(),
            owner,
        },
        bytes,
    ))
}

impl LockedFile {
    /// Atomically replaces the file's contents; the lock stays held on the
    /// old inode until this value is dropped, which is what waiters expect.
    pub fn replace(&self, contents: &[u8]) -> Result<(), FsError> {
        let _id = FsIdentity::assume(self.owner)?;
        // The file may have been unlinked by hand under us; then there is
        // nothing to replace.
        if !same_inode(&self.path, &self.file)? {
            return Err(FsError::NotFound);
        }
        let temp = write_temp(&self.path, contents)?;
        if let Err(err) = fs::rename(&temp, &self.path) {
            let _ = fs::remove_file(&temp);
            return Err(FsError::Io { op: "rename", err });
        }
        sync_parent(&self.path)
    }

    /// Deletes the file.
    pub fn remove(self) -> Result<(), FsError> {
        let _id = FsIdentity::assume(self.owner)?;
        if !same_inode(&self.path, &self.file)? {
            return Err(FsError::NotFound);
        }
        fs::remove_file(&self.path).map_err(io_err("unlink"))?;
        sync_parent(&self.path)
    }
}

/// Replaces `path` with `contents` as the current file-system identity:
/// a temp file beside it (O_EXCL, O_NOFOLLOW, 0600), fsync'd, renamed over
/// it, the directory fsync'd. For root's own files whose directory and
/// lock the caller has already checked (otp-enroll's token inventory, which
/// may be larger than [`MAX_FILE_SIZE`]).
pub fn replace_file(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    let temp = write_temp(path, contents)?;
    if let Err(err) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(FsError::Io { op: "rename", err });
    }
    sync_parent(path)
}

/// Creates `path` with `contents` as `owner`, after [`check_dirs`], never
/// replacing anything already there (a file, a symlink, anything): the new
/// file appears whole or not at all.
pub fn create_new(path: &Path, home: &Path, owner: Owner, contents: &[u8]) -> Result<(), FsError> {
    let _id = FsIdentity::assume(owner)?;
    walk_dirs(path, home, owner)?;
    let temp = write_temp(path, contents)?;
    // link() fails with EEXIST instead of replacing: an atomic no-clobber.
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(FsError::Exists),
        Err(err) => Err(FsError::Io { op: "link", err }),
    }
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_name(path: &Path) -> PathBuf {
    let mut n = sys::try_random_u64().unwrap_or(0);
    // Unique within the process even without randomness; O_EXCL does the rest.
    n ^= (u64::from(std::process::id()) << 32) ^ TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let base = path
        .file_name()
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    // Hidden, like the file it replaces (no second dot if it has one).
    let mut name = OsString::from(if base.first() == Some(&b'.') { "" } else { "." });
    name.push(std::ffi::OsStr::from_bytes(&base));
    name.push(format!(".{n:016x}.tmp"));
    path.with_file_name(name)
}

/// Writes `contents` to a fresh temp file beside `path` and fsyncs it.
/// O_EXCL|O_NOFOLLOW: a name planted in advance (file or symlink) is never
/// opened, so nothing is written through it.
fn write_temp(path: &Path, contents: &[u8]) -> Result<PathBuf, FsError> {
    if contents.is_empty() {
        return Err(FsError::Io {
            op: "write",
            err: io::Error::new(
                io::ErrorKind::InvalidData,
                "refusing to write an empty file",
            ),
        });
    }
    for _ in 0..8 {
        let temp = temp_name(path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(&temp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(FsError::Io {
                    op: "create temp file",
                    err,
                })
            }
        };
        // The caller's umask is not ours to trust (0477 would leave a file
        // its owner cannot read at the next login): 0600 exactly, by fchmod.
        let written = file
            .set_permissions(fs::Permissions::from_mode(0o600))
            .and_then(|()| file.write_all(contents))
            .and_then(|()| file.sync_all());
        if let Err(err) = written {
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(FsError::Io {
                op: "write temp file",
                err,
            });
        }
        return Ok(temp);
    }
    Err(FsError::Io {
        op: "create temp file",
        err: io::Error::new(io::ErrorKind::AlreadyExists, "no free temp name"),
    })
}

fn sync_parent(path: &Path) -> Result<(), FsError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(parent)
        .map_err(io_err("open directory"))?;
    dir.sync_all().map_err(io_err("fsync directory"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn me() -> Owner {
        Owner::current()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pam_otp-safe_fs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        dir
    }

    fn write_mode(path: &Path, body: &[u8], mode: u32) {
        fs::write(path, body).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn create_read_replace_remove() {
        let dir = tempdir("crr");
        let p = dir.join("s.toml");
        create_new(&p, &dir, me(), b"one").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        assert!(matches!(
            create_new(&p, &dir, me(), b"two"),
            Err(FsError::Exists)
        ));
        let (locked, bytes) = open_locked(&p, &dir, me()).unwrap();
        assert_eq!(bytes, b"one");
        locked.replace(b"three").unwrap();
        drop(locked);
        let (locked, bytes) = open_locked(&p, &dir, me()).unwrap();
        assert_eq!(bytes, b"three");
        locked.remove().unwrap();
        assert!(!exists(&p, &dir, me()).unwrap());
        // No temp files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_files_are_refused_and_left_alone() {
        let dir = tempdir("hostile");
        let target = dir.join("target");
        write_mode(&target, b"target", 0o600);

        let link = dir.join("link");
        symlink(&target, &link).unwrap();
        assert!(matches!(
            open_locked(&link, &dir, me()),
            Err(FsError::Symlink)
        ));

        let sub = dir.join("sub");
        fs::create_dir(&sub).unwrap();
        assert!(matches!(
            open_locked(&sub, &dir, me()),
            Err(FsError::NotRegular)
        ));

        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            open_locked(&fifo, &dir, me()),
            Err(FsError::NotRegular)
        ));

        for mode in [0o640, 0o604, 0o660, 0o610] {
            let p = dir.join(format!("m{mode:o}"));
            write_mode(&p, b"x", mode);
            assert!(
                matches!(open_locked(&p, &dir, me()), Err(FsError::Mode { .. })),
                "{mode:o}"
            );
            assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, mode);
        }

        let big = dir.join("big");
        write_mode(&big, &vec![b'a'; 20 * 1024 * 1024], 0o600);
        assert!(matches!(
            open_locked(&big, &dir, me()),
            Err(FsError::TooLarge { .. })
        ));

        assert!(matches!(
            open_locked(&dir.join("none"), &dir, me()),
            Err(FsError::NotFound)
        ));
        assert_eq!(fs::read(&target).unwrap(), b"target");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn planted_temp_names_are_never_written_through() {
        let dir = tempdir("planted");
        let p = dir.join("s.toml");
        let victim = dir.join("victim");
        write_mode(&victim, b"victim", 0o600);
        create_new(&p, &dir, me(), b"v1").unwrap();
        // Plant a symlink at every temp name the next few writes could pick.
        // Names are random, so instead check that a planted name is skipped.
        let planted = temp_name(&p);
        symlink(&victim, &planted).unwrap();
        let (locked, _) = open_locked(&p, &dir, me()).unwrap();
        locked.replace(b"v2").unwrap();
        drop(locked);
        assert_eq!(fs::read(&victim).unwrap(), b"victim");
        assert_eq!(fs::read(&p).unwrap(), b"v2");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lock_is_exclusive_and_waiters_see_the_new_file() {
        let dir = tempdir("lock");
        let p = dir.join("s.toml");
        create_new(&p, &dir, me(), b"0").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        let (locked, bytes) = open_locked(&p, &dir, me()).unwrap();
                        let n: u32 = std::str::from_utf8(&bytes).unwrap().parse().unwrap();
                        locked.replace((n + 1).to_string().as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "80", "no update lost");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identity_is_restored() {
        let before = current_fsuid();
        {
            let _id = FsIdentity::assume(me()).unwrap();
            assert_eq!(current_fsuid(), me().uid);
        }
        assert_eq!(current_fsuid(), before);
    }

    fn mkdir_mode(path: &Path, mode: u32) -> PathBuf {
        fs::create_dir(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        path.to_path_buf()
    }

    fn unsafe_dir(r: Result<impl fmt::Debug, FsError>) -> (PathBuf, DirProblem) {
        match r {
            Err(FsError::UnsafeDir { dir, why }) => (dir, why),
            other => panic!("not UnsafeDir: {other:?}"),
        }
    }

    fn no_dir(r: Result<impl fmt::Debug, FsError>) -> (PathBuf, Option<i32>) {
        match r {
            Err(FsError::NoDir { dir, err }) => (dir, err.raw_os_error()),
            other => panic!("not NoDir: {other:?}"),
        }
    }

    #[test]
    fn writable_directories_are_refused_unless_sticky() {
        let dir = tempdir("dirmodes");
        let gid = me().gid;
        for (mode, want) in [
            (0o755, None),
            (0o700, None),
            (0o555, None),
            (0o1777, None),
            (0o1770, None),
            (0o775, Some(DirProblem::GroupWritable { gid, mode: 0o775 })),
            (0o770, Some(DirProblem::GroupWritable { gid, mode: 0o770 })),
            (
                0o2775,
                Some(DirProblem::GroupWritable { gid, mode: 0o2775 }),
            ),
            (0o757, Some(DirProblem::WorldWritable { mode: 0o757 })),
            (0o777, Some(DirProblem::WorldWritable { mode: 0o777 })),
        ] {
            // As the home, and as a directory between the home and the file.
            let home = mkdir_mode(&dir.join(format!("h{mode:o}")), mode);
            let file = home.join("s.toml");
            let safe_home = mkdir_mode(&dir.join(format!("s{mode:o}")), 0o755);
            let sub = mkdir_mode(&safe_home.join("sub"), mode);
            let deep = sub.join("s.toml");
            for (path, home, named) in [(&file, &home, &home), (&deep, &safe_home, &sub)] {
                let got = check_dirs(path, home, me());
                match want {
                    None => assert!(got.is_ok(), "{mode:o}: {got:?}"),
                    Some(why) => {
                        let err = got.unwrap_err();
                        assert!(
                            matches!(&err, FsError::UnsafeDir { dir, why: w } if dir == named && *w == why),
                            "{mode:o}: {err:?}"
                        );
                        let text = err.to_string();
                        assert!(
                            text.contains(&format!("directory {} ", named.display())),
                            "{text}"
                        );
                        assert!(text.contains(&format!("(mode {mode:04o})")), "{text}");
                    }
                }
            }
            fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
            fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let msg = FsError::UnsafeDir {
            dir: "/home/alice".into(),
            why: DirProblem::GroupWritable {
                gid: 1234,
                mode: 0o775,
            },
        };
        assert_eq!(
            msg.to_string(),
            "directory /home/alice is writable by group 1234 (mode 0775)"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_walk_stops_at_the_home_and_goes_to_the_root_outside_it() {
        // dir/open (0777, not sticky)/home/sub/s.toml: under the home only
        // home and sub are walked; as a path outside the home (an absolute
        // template) everything from / is, and `open` is refused.
        let dir = tempdir("dirstop");
        let open = mkdir_mode(&dir.join("open"), 0o777);
        let home = mkdir_mode(&open.join("home"), 0o755);
        let sub = mkdir_mode(&home.join("sub"), 0o700);
        let file = sub.join("s.toml");
        assert!(check_dirs(&file, &home, me()).is_ok());
        let elsewhere = dir.join("another-home");
        let (named, why) = unsafe_dir(check_dirs(&file, &elsewhere, me()));
        assert_eq!(named, open);
        assert_eq!(why, DirProblem::WorldWritable { mode: 0o777 });
        // A home that is a prefix of a name but not a directory above it.
        let homeish = open.join("hom");
        assert_eq!(unsafe_dir(check_dirs(&file, &homeish, me())).0, open);
        // /tmp itself (sticky, root's) is fine on the way from /.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_dirs(&file, &elsewhere, me()).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinked_directories_are_refused_below_the_home_but_the_home_may_be_one() {
        let dir = tempdir("dirlinks");
        let real = mkdir_mode(&dir.join("real"), 0o755);
        let linked_home = dir.join("home-link");
        symlink(&real, &linked_home).unwrap();
        assert!(check_dirs(&linked_home.join("s.toml"), &linked_home, me()).is_ok());
        // The home's target is what is checked.
        let loose = mkdir_mode(&dir.join("loose"), 0o775);
        let loose_home = dir.join("loose-link");
        symlink(&loose, &loose_home).unwrap();
        let (named, why) = unsafe_dir(check_dirs(&loose_home.join("s.toml"), &loose_home, me()));
        assert_eq!(named, loose_home);
        assert!(matches!(why, DirProblem::GroupWritable { .. }), "{why:?}");
        // Below the home, a link is refused, also to a safe directory.
        let sub = real.join("sub");
        symlink(dir.join("real"), &sub).unwrap();
        let (named, why) = unsafe_dir(check_dirs(&sub.join("s.toml"), &real, me()));
        assert_eq!((named, why), (sub.clone(), DirProblem::Symlink));
        // And anywhere in a path outside the home.
        let (named, why) = unsafe_dir(check_dirs(&linked_home.join("s.toml"), &real, me()));
        assert_eq!((named, why), (linked_home.clone(), DirProblem::Symlink));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directories_are_errors_not_absence() {
        let dir = tempdir("dirmissing");
        let gone = dir.join("gone");
        let (named, errno) = no_dir(exists(&gone.join("s.toml"), &gone, me()));
        assert_eq!(
            (named.as_path(), errno),
            (gone.as_path(), Some(libc::ENOENT))
        );
        let err = exists(&gone.join("s.toml"), &gone, me()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("directory {} does not exist", gone.display())
        );
        let home = mkdir_mode(&dir.join("home"), 0o700);
        let deep = home.join("a").join("b").join("s.toml");
        assert_eq!(no_dir(exists(&deep, &home, me())).0, home.join("a"));
        assert_eq!(no_dir(open_locked(&deep, &home, me())).0, home.join("a"));
        assert_eq!(
            no_dir(create_new(&deep, &home, me(), b"x")).0,
            home.join("a")
        );
        // A file where a directory should be.
        write_mode(&home.join("a"), b"x", 0o600);
        let (named, why) = unsafe_dir(exists(&deep, &home, me()));
        assert_eq!((named, why), (home.join("a"), DirProblem::NotDirectory));
        // The free name in a safe, existing directory is the one "no".
        assert!(!exists(&home.join("s.toml"), &home, me()).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn relative_paths_and_dotdot_are_refused() {
        let dir = tempdir("dirplain");
        let home = mkdir_mode(&dir.join("home"), 0o700);
        for path in [
            PathBuf::from("relative/s.toml"),
            home.join("..").join("other").join("s.toml"),
            home.join("sub").join("..").join("s.toml"),
        ] {
            let (_, why) = unsafe_dir(check_dirs(&path, &home, me()));
            assert_eq!(why, DirProblem::NotPlain, "{}", path.display());
        }
        // A home with a `..` is not trusted as a stopping point: the walk
        // then starts at / and meets the `..` itself.
        let odd_home = home.join("..").join("home");
        let (_, why) = unsafe_dir(check_dirs(&odd_home.join("s.toml"), &odd_home, me()));
        assert_eq!(why, DirProblem::NotPlain);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_entry_point_checks_the_directories() {
        // A home group members may write to: the file there is refused by
        // open_locked, a free name by exists and create_new, and nothing
        // is changed.
        let dir = tempdir("direntry");
        let home = mkdir_mode(&dir.join("home"), 0o755);
        let p = home.join("s.toml");
        create_new(&p, &home, me(), b"v1").unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(unsafe_dir(open_locked(&p, &home, me())).0, home);
        // exists says a file is there; only its absence needs the walk.
        assert!(exists(&p, &home, me()).unwrap());
        assert_eq!(unsafe_dir(exists(&home.join("none"), &home, me())).0, home);
        let q = home.join("new.toml");
        assert_eq!(unsafe_dir(create_new(&q, &home, me(), b"v1")).0, home);
        assert!(!q.exists());
        assert_eq!(fs::read(&p).unwrap(), b"v1");
        assert_eq!(fs::read_dir(&home).unwrap().count(), 1, "nothing created");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[ignore = "needs root: make test"]
    fn directories_of_other_owners_are_refused_and_the_users_are_not() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (chown to other owners): make test runs it"
        );
        // An account that need not exist: only its ids matter here.
        let user = Owner {
            uid: 48_213,
            gid: 48_213,
        };
        let chown =
            |p: &Path, uid: u32| std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
        let dir = tempdir("dirowners");
        let home = mkdir_mode(&dir.join("home"), 0o755);
        chown(&home, user.uid);
        let theirs = mkdir_mode(&home.join("theirs"), 0o755);
        chown(&theirs, user.uid + 1);
        let roots = mkdir_mode(&home.join("roots"), 0o755);
        assert!(check_dirs(&home.join("s.toml"), &home, user).is_ok());
        assert!(check_dirs(&roots.join("s.toml"), &home, user).is_ok());
        let (named, why) = unsafe_dir(check_dirs(&theirs.join("s.toml"), &home, user));
        assert_eq!(named, theirs);
        assert_eq!(why, DirProblem::Owner { uid: user.uid + 1 });
        // Another user's sticky directory: its owner may rename anything
        // in it, so sticky does not help.
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o1777)).unwrap();
        let (_, why) = unsafe_dir(check_dirs(&theirs.join("s.toml"), &home, user));
        assert_eq!(why, DirProblem::Owner { uid: user.uid + 1 });
        // A home the user cannot reach (in a directory only root may
        // enter): an error naming it, looked at as the user, not as root.
        let shut = mkdir_mode(&dir.join("shut"), 0o700);
        let shut_home = mkdir_mode(&shut.join("home"), 0o700);
        chown(&shut_home, user.uid);
        let (named, errno) = no_dir(exists(&shut_home.join("s.toml"), &shut_home, user));
        assert_eq!((named, errno), (shut_home.clone(), Some(libc::EACCES)));
        assert_eq!(current_fsuid(), 0, "root again after the walk");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_contents_are_never_written() {
        let dir = tempdir("empty");
        let p = dir.join("s.toml");
        assert!(create_new(&p, &dir, me(), b"").is_err());
        assert!(!p.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// One reader for root's files: settings may be read by others and
    /// reached through a symlink, secrets neither; both are refused when
    /// others may write them, too large, not text or not regular files.
    #[test]
    fn root_files_are_read_by_one_reader_with_one_error_type() {
        let dir = tempdir("trusted");
        let read = |p: &Path, holds| read_trusted(p, holds, 16);
        let open = dir.join("open");
        write_mode(&open, b"shared = 1\n", 0o644);
        assert_eq!(read(&open, Holds::Settings).unwrap(), "shared = 1\n");
        assert!(matches!(
            read(&open, Holds::Secrets),
            Err(FsError::Mode { mode: 0o644 })
        ));
        let private = dir.join("private");
        write_mode(&private, b"seed\n", 0o600);
        assert_eq!(read(&private, Holds::Secrets).unwrap(), "seed\n");
        let link = dir.join("link");
        symlink(&open, &link).unwrap();
        assert_eq!(read(&link, Holds::Settings).unwrap(), "shared = 1\n");
        assert!(matches!(read(&link, Holds::Secrets), Err(FsError::Symlink)));
        let writable = dir.join("writable");
        write_mode(&writable, b"x\n", 0o664);
        let err = read(&writable, Holds::Settings).unwrap_err();
        assert_eq!(err.to_string(), "writable by group or others (mode 0664)");
        let big = dir.join("big");
        write_mode(&big, &[b'#'; 17], 0o600);
        for holds in [Holds::Settings, Holds::Secrets] {
            let err = read(&big, holds).unwrap_err();
            assert_eq!(err.to_string(), "17 bytes, more than 16");
            assert!(matches!(
                read(&dir.join("none"), holds),
                Err(FsError::NotFound)
            ));
            assert!(matches!(read(&dir, holds), Err(FsError::NotRegular)));
        }
        let binary = dir.join("binary");
        write_mode(&binary, b"\xff\n", 0o600);
        assert!(matches!(
            read(&binary, Holds::Secrets),
            Err(FsError::NotUtf8)
        ));
        assert!(check_trusted(&open).is_ok());
        assert!(matches!(
            check_trusted(&writable),
            Err(FsError::Writable { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
