//! Reading and writing the target's record through the store seam
//! (`otp_core::store`): the `home` store is the user's own file, handled
//! with the user's file-system identity; `system` is root's file in
//! `<state_dir>/users/`. Either way: no symlinks, a lock, temp file + fsync
//! + rename.
//!
//! Most of this goes through [`Store`] and [`Held`]. Three things the trait
//! does not offer go to `safe_fs` with the [`FileStore`]'s own path, base
//! and identity: an `exists` that reports what it cannot see (the trait's
//! `presence` answers "tokens" for an unreadable directory, on purpose, so
//! that a login does not reveal who is enrolled; `new` must say instead
//! that the home is missing), the probe before a secret is shown, and
//! replacing or removing a record that does not parse (`new --force` and
//! `remove` repair a corrupt file; `Store::open` refuses to hold one).

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use otp_core::config::StoreKind;
use otp_core::safe_fs::{self, FsError, FsIdentity};
use otp_core::secret_file::SecretFile;
use otp_core::store::{FileStore, PgStore, Presence, Store, StoreError, PENDING_DIR, USERS_DIR};

use crate::error::Error;
use crate::inventory;
use crate::output::{self, quoted, shown};
use crate::target::{Backend, Target};

/// The file store of `t`, or what to do for the database instead.
fn file_store(t: &Target) -> Result<&FileStore, &PgStore> {
    match &t.store {
        Backend::File(s) => Ok(s),
        Backend::Db(db) => Err(db),
    }
}

/// The error a store operation on `t`'s record becomes.
pub fn error(t: &Target, err: StoreError) -> Error {
    match err {
        StoreError::NotFound => t.file_error(FsError::NotFound),
        StoreError::Unreadable(e) | StoreError::NotCreated(e) => t.file_error(e),
        StoreError::Malformed(err) => Error::Corrupt {
            path: t.path_str(),
            err,
        },
        StoreError::Unwritable { err, .. } => Error::failed(format!(
            "{}: the new contents would not be valid ({}); nothing was written",
            shown(&t.path_str()),
            shown(&err.to_string())
        )),
        StoreError::Exists => Error::AlreadyEnrolled { path: t.path_str() },
        StoreError::Pending(e) => Error::failed(format!(
            "{}: {}",
            shown(&mark_path(t)),
            shown(&e.to_string())
        )),
        // Only logins verify codes; nothing here does.
        err @ StoreError::NotSaved { .. } => Error::failed(format!(
            "{}: {}",
            shown(&t.path_str()),
            shown(&err.to_string())
        )),
        StoreError::Database(err) => Error::failed(format!(
            "{}: {} (admin_conninfo = {})",
            shown(&t.path_str()),
            shown(&err.to_string()),
            quoted(&t.config.postgresql.admin_conninfo)
        )),
    }
}

/// Where the "enroll at next login" mark of `t`'s user is, for messages.
pub fn mark_path(t: &Target) -> String {
    Path::new(&t.config.state_dir)
        .join(PENDING_DIR)
        .join(&t.account.name)
        .display()
        .to_string()
}

/// Whether something exists where the user's record goes. Unlike
/// `Store::presence`, a directory that cannot be looked at is an error
/// (the home is missing, say), never "enrolled".
pub fn exists(t: &Target) -> Result<bool, Error> {
    let s = match file_store(t) {
        Ok(s) => s,
        Err(db) => return Ok(db.presence().map_err(|e| error(t, e))? == Presence::Tokens),
    };
    if s.kind == StoreKind::System {
        // Root's directories not made yet: nobody has a record in them.
        match fs::symlink_metadata(s.base.join(USERS_DIR)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            _ => {}
        }
    }
    safe_fs::exists(&s.path, &s.base, s.owner).map_err(|e| t.file_error(e))
}

/// The file's text, checked to read back as what is meant: a file the
/// module could not parse (a counter pushed out of range, say) would lock
/// the user out, so it is never written.
fn encode(t: &Target, file: &SecretFile) -> Result<String, Error> {
    let invalid = |err: otp_core::secret_file::SecretFileError| {
        Error::failed(format!(
            "{}: the new contents would not be valid ({}); nothing was written",
            shown(&t.path_str()),
            shown(&err.to_string())
        ))
    };
    let text = file.to_text().map_err(invalid)?;
    match SecretFile::parse(&text) {
        Ok(back) if back == *file => Ok(text),
        Ok(_) => Err(Error::failed(format!(
            "{}: the new contents would not read back the same; nothing was written",
            shown(&t.path_str())
        ))),
        Err(err) => Err(invalid(err)),
    }
}

/// Checks the directories the record is reached through, as the module
/// will: a secret in a directory others can write to would be refused at
/// every login. For `system`, root's directories are made first (0700, as
/// `Store::create` makes them), so that a problem with `state_dir` shows
/// before a secret does.
pub fn check_dirs(t: &Target) -> Result<(), Error> {
    let Ok(s) = file_store(t) else {
        // No directories: the database is reached (or not) right here.
        return exists(t).map(|_| ());
    };
    if s.kind == StoreKind::System {
        for dir in [s.base.clone(), s.base.join(USERS_DIR)] {
            safe_fs::ensure_dir(&dir, s.owner).map_err(|e| t.file_error(e))?;
        }
    }
    safe_fs::check_dirs(&s.path, &s.base, s.owner).map_err(|e| t.file_error(e))
}

/// Checks, as the user, that `save_new` can work, so that `new` says so
/// before it shows a secret: the directory is there and the user can create
/// a file in it (tried for real with an empty hidden file, removed at once:
/// permissions, ACLs, a read-only file system all count), and an existing
/// file is one that `force` may replace (a regular file of the user's, not
/// a symlink). The save itself still checks everything again. For
/// `system` (root's directory, just checked by [`check_dirs`]) only the
/// existing record is looked at.
pub fn check_can_save(t: &Target, force: bool) -> Result<(), Error> {
    let Ok(s) = file_store(t) else {
        if exists(t)? && !force {
            return Err(Error::AlreadyEnrolled { path: t.path_str() });
        }
        return Ok(());
    };
    let cannot = |reason: String| Error::CannotSave {
        path: t.path_str(),
        user: t.account.name.clone(),
        reason,
    };
    let (Some(dir), Some(name)) = (s.path.parent(), s.path.file_name()) else {
        return Err(cannot("not a file path".into()));
    };
    if exists(t)? {
        if !force {
            return Err(Error::AlreadyEnrolled { path: t.path_str() });
        }
        // What `save_new` does to replace it: open and lock it.
        safe_fs::open_locked(&s.path, &s.base, s.owner).map_err(|e| t.file_error(e))?;
    }
    if s.kind == StoreKind::System {
        return Ok(());
    }
    let _id = FsIdentity::assume(s.owner).map_err(|e| t.file_error(e))?;
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

/// Saves a new record (as version 2) with `Store::create`, which never
/// replaces anything, even something that appeared a moment ago, and
/// withdraws a pending "enroll at next login". With `force` an existing
/// record is replaced under its lock (also one that does not parse).
pub fn save_new(t: &Target, file: &SecretFile, force: bool) -> Result<(), Error> {
    let mut file = file.clone();
    file.upgrade();
    let text = encode(t, &file)?;
    let s = match file_store(t) {
        Ok(s) => s,
        Err(db) => {
            return match db.create(&file) {
                Err(StoreError::Exists) if force => {
                    db.replace(&file).map_err(|e| error(t, e))?;
                    db.set_pending(false).map_err(|e| error(t, e))
                }
                other => other.map_err(|e| error(t, e)),
            }
        }
    };
    match s.create(&file) {
        Ok(()) => Ok(()),
        // Saved; only the mark could not be removed. A plain user cannot
        // remove root's mark (and while a record is there it is not
        // acted on); root is told.
        Err(StoreError::Pending(e)) => {
            if inventory::is_root() {
                output::warn(format_args!(
                    "otp-enroll: saved, but the pending enrollment mark {} could not be removed: {}",
                    shown(&mark_path(t)),
                    shown(&e.to_string())
                ));
            }
            Ok(())
        }
        Err(StoreError::Exists) if force => {
            let (locked, _) =
                safe_fs::open_locked(&s.path, &s.base, s.owner).map_err(|e| t.file_error(e))?;
            locked
                .replace(text.as_bytes())
                .map_err(|e| t.file_error(e))?;
            drop(locked);
            // As `create` does: the user has tokens again.
            if inventory::is_root() {
                let _ = s.set_pending(false);
            }
            Ok(())
        }
        Err(StoreError::NotCreated(FsError::NotFound)) if t.is_home() => {
            Err(Error::NoDirectory { path: t.path_str() })
        }
        Err(StoreError::NotCreated(FsError::Io { err, .. }))
            if t.is_home() && err.kind() == io::ErrorKind::NotFound =>
        {
            Err(Error::NoDirectory { path: t.path_str() })
        }
        Err(e) => Err(error(t, e)),
    }
}

/// What a change made of the file: [`edit`] then keeps, saves or deletes it.
pub enum Edit {
    Keep,
    Save,
    /// The last token went: the file goes (a file holds at least one).
    Delete,
}

/// Opens the record (`Store::open`: read and locked), lets `change` edit
/// it, and does what it says. A saved file is written as version 2 (see
/// `SecretFile::upgrade`). Nothing is written on an error.
pub fn edit<T>(
    t: &Target,
    change: impl FnOnce(&mut SecretFile) -> Result<(T, Edit), Error>,
) -> Result<T, Error> {
    let mut held = t.store.as_store().open().map_err(|e| error(t, e))?;
    let (out, what) = change(held.file_mut())?;
    match what {
        Edit::Keep => {}
        Edit::Save => {
            held.file_mut().upgrade();
            encode(t, held.file())?;
            held.save().map_err(|e| error(t, e))?;
        }
        Edit::Delete => held.remove().map_err(|e| error(t, e))?,
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

/// Reads the record (under its lock, so a half-done login is not seen).
pub fn read(t: &Target) -> Result<SecretFile, Error> {
    let held = t.store.as_store().open().map_err(|e| error(t, e))?;
    Ok(held.file().clone())
}

/// Deletes the record (under its lock). Its contents are not parsed: a
/// corrupt file can be removed too.
pub fn remove(t: &Target) -> Result<(), Error> {
    let s = match file_store(t) {
        Ok(s) => s,
        // The database holds no record it could not read back.
        Err(db) => {
            let held = db.open().map_err(|e| error(t, e))?;
            return held.remove().map_err(|e| error(t, e));
        }
    };
    let (locked, _) =
        safe_fs::open_locked(&s.path, &s.base, s.owner).map_err(|e| t.file_error(e))?;
    locked.remove().map_err(|e| t.file_error(e))
}

/// Whether root asked for enrollment at the next login (`reset`).
pub fn pending(t: &Target) -> Result<bool, Error> {
    match &t.store {
        Backend::File(s) => pending_of(s, &t.config.state_dir),
        Backend::Db(db) => db.pending(),
    }
    .map_err(|e| error(t, e))
}

/// `Store::pending`, but no pending/ directory means no marks
/// (`Store::pending` reports its absence as an error once state_dir
/// exists).
pub fn pending_of(store: &FileStore, state_dir: &str) -> Result<bool, StoreError> {
    let dir = Path::new(state_dir).join(PENDING_DIR);
    if let Err(e) = fs::symlink_metadata(dir) {
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(false);
        }
    }
    store.pending()
}

/// Asks for (`true`) or withdraws enrollment at the next login.
pub fn set_pending(t: &Target, pending: bool) -> Result<(), Error> {
    t.store
        .as_store()
        .set_pending(pending)
        .map_err(|e| error(t, e))
}
