//! Reading and writing the target's record through the admin seam
//! (`otp_core::store::AdminStore`): the `home` store is the user's own
//! file, handled with the user's file-system identity; `system` is root's
//! file in `<state_dir>/users/`; `postgresql` the fleet database through
//! the admin role. This file turns the store's answers into otp-enroll's
//! errors and messages; it never looks at how a store keeps a record.

use otp_core::secret_file::SecretFile;
use otp_core::store::{FsError, StoreError};

use crate::error::Error;
use crate::inventory;
use crate::output::{self, quoted, shown};
use crate::target::Target;

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
        StoreError::Pending { mark, err } => Error::failed(format!(
            "{}: {}",
            shown(&mark.display().to_string()),
            shown(&err.to_string())
        )),
        StoreError::CannotSave(why) => Error::CannotSave {
            path: t.path_str(),
            user: t.account.name.clone(),
            reason: why.to_string(),
        },
        // Only logins verify codes; nothing here does.
        err @ StoreError::NotSaved { .. } => Error::failed(format!(
            "{}: {}",
            shown(&t.path_str()),
            shown(&err.to_string())
        )),
        StoreError::Orphan { recorded, uid } => Error::failed(format!(
            "{}: the record was made for uid {recorded}, but the account {} is uid {uid} \
             (the name was deleted and made again?): nothing was changed; the new account \
             inherits nothing: otp-enroll --user {} remove deletes the old record",
            shown(&t.path_str()),
            shown(&t.account.name),
            shown(&t.account.name)
        )),
        StoreError::Database(err) => Error::failed(format!(
            "{}: {} (admin_conninfo = {})",
            shown(&t.path_str()),
            shown(&err.to_string()),
            quoted(&t.config.postgresql.admin_conninfo)
        )),
        StoreError::Exemption(err) => Error::failed(shown(&err.to_string())),
        StoreError::Unsupported(what) => Error::failed(format!(
            "{what}: not yet supported with store = \"{}\" (nothing was changed)",
            t.config.store.as_str()
        )),
    }
}

/// Whether the user has a record. Unlike a login's look, a directory that
/// cannot be looked at is an error (the home is missing, say), never
/// "enrolled".
pub fn exists(t: &Target) -> Result<bool, Error> {
    t.store.exists().map_err(|e| error(t, e))
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

/// Checks, before `new` shows a secret, that `save_new` can work: the
/// directories as the module will check them (a secret in a directory
/// others can write to would be refused at every login), that the user
/// can create the file there, and that an existing record is one `force`
/// may replace. The save itself still checks everything again.
pub fn check_can_save(t: &Target, force: bool) -> Result<(), Error> {
    t.store.check_can_save(force).map_err(|e| error(t, e))
}

/// Saves a new record (as version 2) with `create`, which never replaces
/// anything, even something that appeared a moment ago, and withdraws a
/// pending "enroll at next login". With `force` an existing record is
/// replaced under its lock (also one that does not parse).
pub fn save_new(t: &Target, file: &SecretFile, force: bool) -> Result<(), Error> {
    let mut file = file.clone();
    file.upgrade();
    encode(t, &file)?;
    let saved = match t.store.create(&file) {
        Err(StoreError::Exists) if force => t.store.replace(&file),
        other => other,
    };
    match saved {
        Ok(()) => Ok(()),
        // Saved; only the mark could not be removed. A plain user cannot
        // remove root's mark (and while a record is there it is not
        // acted on); root is told.
        Err(StoreError::Pending { mark, err }) => {
            if inventory::is_root() {
                output::warn(format_args!(
                    "otp-enroll: saved, but the pending enrollment mark {} could not be removed: {}",
                    shown(&mark.display().to_string()),
                    shown(&err.to_string())
                ));
            }
            Ok(())
        }
        Err(StoreError::NotCreated(FsError::NotFound)) if t.is_home() => {
            Err(Error::NoDirectory { path: t.path_str() })
        }
        Err(StoreError::NotCreated(FsError::Io { err, .. }))
            if t.is_home() && err.kind() == std::io::ErrorKind::NotFound =>
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

/// Opens the record (`AdminStore::open`: read and locked), lets `change` edit
/// it, and does what it says. A saved file is written as version 2 (see
/// `SecretFile::upgrade`). Nothing is written on an error.
pub fn edit<T>(
    t: &Target,
    change: impl FnOnce(&mut SecretFile) -> Result<(T, Edit), Error>,
) -> Result<T, Error> {
    let mut held = t.store.open().map_err(|e| error(t, e))?;
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
    let held = t.store.open().map_err(|e| error(t, e))?;
    Ok(held.file().clone())
}

/// Deletes the record (under its lock). Its contents are not parsed: a
/// corrupt file can be removed too.
pub fn remove(t: &Target) -> Result<(), Error> {
    t.store.remove().map_err(|e| error(t, e))
}

/// Whether root asked for enrollment at the next login (`reset`).
pub fn pending(t: &Target) -> Result<bool, Error> {
    t.store.pending().map_err(|e| error(t, e))
}

/// Asks for (`true`) or withdraws enrollment at the next login.
pub fn set_pending(t: &Target, pending: bool) -> Result<(), Error> {
    t.store.set_pending(pending).map_err(|e| error(t, e))
}
