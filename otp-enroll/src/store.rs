//! Reading and writing the target's secret file, always through
//! pam_otp's safe_fs: the user's file-system identity, no symlinks, a lock,
//! temp file + fsync + rename.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;

use otp_core::safe_fs::{self, FsError, FsIdentity};
use otp_core::secret_file::SecretFile;

use crate::error::Error;
use crate::target::Target;

/// Whether something exists at the secret path.
pub fn exists(t: &Target) -> Result<bool, Error> {
    safe_fs::exists(&t.path, t.home(), t.owner()).map_err(|e| t.file_error(e))
}

/// The file's text, checked to read back as what is meant: a file the
/// module could not parse (a counter pushed out of range, say) would lock
/// the user out, so it is never written.
fn encode(t: &Target, file: &SecretFile) -> Result<String, Error> {
    let invalid = |err| {
        Error::failed(format!(
            "{}: the new contents would not be valid ({err}); nothing was written",
            t.path_str()
        ))
    };
    let text = file.to_text().map_err(invalid)?;
    match SecretFile::parse(&text) {
        Ok(back) if back == *file => Ok(text),
        Ok(_) => Err(Error::failed(format!(
            "{}: the new contents would not read back the same; nothing was written",
            t.path_str()
        ))),
        Err(err) => Err(invalid(err)),
    }
}

/// Checks, as the user, that `save_new` can work, so that `new` says so
/// before it shows a secret: the directory is there and the user can create
/// a file in it (tried for real with an empty hidden file, removed at once:
/// permissions, ACLs, a read-only file system all count), and an existing
/// file is one that `force` may replace (a regular file of the user's, not
/// a symlink). The save itself still checks everything again.
pub fn check_can_save(t: &Target, force: bool) -> Result<(), Error> {
    let cannot = |reason: String| Error::CannotSave {
        path: t.path_str(),
        user: t.account.name.clone(),
        reason,
    };
    let (Some(dir), Some(name)) = (t.path.parent(), t.path.file_name()) else {
        return Err(cannot("not a file path".into()));
    };
    if exists(t)? {
        if !force {
            return Err(Error::AlreadyEnrolled { path: t.path_str() });
        }
        // What `save_new` does to replace it: open and lock it as the user.
        safe_fs::open_locked(&t.path, t.home(), t.owner()).map_err(|e| t.file_error(e))?;
    }
    let _id = FsIdentity::assume(t.owner()).map_err(|e| t.file_error(e))?;
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(cannot(format!("{} is not a directory", dir.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NoDirectory { path: t.path_str() })
        }
        Err(e) => return Err(cannot(format!("{}: {}", dir.display(), e))),
    }
    let mut probe_name = OsString::from(".");
    probe_name.push(name);
    probe_name.push(format!(".{}.probe", std::process::id()));
    let probe = dir.join(probe_name);
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&probe);
    match created {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        // A leftover of a killed run with our pid: not ours to remove, but
        // it proves nothing either way; the save will tell.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cannot(format!(
            "cannot create files in {} ({})",
            dir.display(),
            e
        ))),
    }
}

/// Saves a new file (as version 2); replaces an existing one only with
/// `force` (and then under its lock). Without `force` the creation is atomic and never
/// replaces anything, even something that appeared a moment ago.
pub fn save_new(t: &Target, file: &SecretFile, force: bool) -> Result<(), Error> {
    let mut file = file.clone();
    file.upgrade();
    let text = encode(t, &file)?;
    match safe_fs::create_new(&t.path, t.home(), t.owner(), text.as_bytes()) {
        Ok(()) => Ok(()),
        Err(FsError::Exists) if force => {
            let (locked, _) =
                safe_fs::open_locked(&t.path, t.home(), t.owner()).map_err(|e| t.file_error(e))?;
            locked.replace(text.as_bytes()).map_err(|e| t.file_error(e))
        }
        Err(FsError::NotFound) => Err(Error::NoDirectory { path: t.path_str() }),
        Err(FsError::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
            Err(Error::NoDirectory { path: t.path_str() })
        }
        Err(e) => Err(t.file_error(e)),
    }
}

/// What a change made of the file: [`edit`] then keeps, saves or deletes it.
pub enum Edit {
    Keep,
    Save,
    /// The last token went: the file goes (a file holds at least one).
    Delete,
}

/// Reads the file under its lock, lets `change` edit it, and does what it
/// says. A saved file is written as version 2 (see
/// `SecretFile::upgrade`). Nothing is written on an error.
pub fn edit<T>(
    t: &Target,
    change: impl FnOnce(&mut SecretFile) -> Result<(T, Edit), Error>,
) -> Result<T, Error> {
    let (locked, bytes) =
        safe_fs::open_locked(&t.path, t.home(), t.owner()).map_err(|e| t.file_error(e))?;
    let mut file = SecretFile::parse_bytes(&bytes).map_err(|err| Error::Corrupt {
        path: t.path_str(),
        err,
    })?;
    let (out, what) = change(&mut file)?;
    match what {
        Edit::Keep => {}
        Edit::Save => {
            file.upgrade();
            let text = encode(t, &file)?;
            locked
                .replace(text.as_bytes())
                .map_err(|e| t.file_error(e))?;
        }
        Edit::Delete => locked.remove().map_err(|e| t.file_error(e))?,
    }
    Ok(out)
}

/// [`edit`] for a change that keeps at least one token: saves if `change`
/// returns `Ok((out, true))`.
pub fn update<T>(
    t: &Target,
    change: impl FnOnce(&mut SecretFile) -> Result<(T, bool), Error>,
) -> Result<T, Error> {
    edit(t, |file| {
        let (out, save) = change(file)?;
        Ok((out, if save { Edit::Save } else { Edit::Keep }))
    })
}

/// Reads the file (under its lock, so a half-done login is not seen).
pub fn read(t: &Target) -> Result<SecretFile, Error> {
    update(t, |f| Ok((f.clone(), false)))
}

/// Deletes the file (under its lock). Its contents are not parsed: a
/// corrupt file can be removed too.
pub fn remove(t: &Target) -> Result<(), Error> {
    let (locked, _) =
        safe_fs::open_locked(&t.path, t.home(), t.owner()).map_err(|e| t.file_error(e))?;
    locked.remove().map_err(|e| t.file_error(e))
}
