//! Reading and writing the target's secret file, always through
//! pam_otp's safe_fs: the user's file-system identity, no symlinks, a lock,
//! temp file + fsync + rename.

use pam_otp::safe_fs::{self, FsError};
use pam_otp::secret_file::SecretFile;

use crate::error::Error;
use crate::target::Target;

/// Whether something exists at the secret path.
pub fn exists(t: &Target) -> Result<bool, Error> {
    safe_fs::exists(&t.path, t.owner()).map_err(|e| Error::file(&t.path_str(), e))
}

/// Saves a new file; replaces an existing one only with `force` (and then
/// under its lock).
pub fn save_new(t: &Target, file: &SecretFile, force: bool) -> Result<(), Error> {
    let text = file.to_toml();
    match safe_fs::create_new(&t.path, t.owner(), text.as_bytes()) {
        Ok(()) => Ok(()),
        Err(FsError::Exists) if force => {
            let (locked, _) = safe_fs::open_locked(&t.path, t.owner())
                .map_err(|e| Error::file(&t.path_str(), e))?;
            locked
                .replace(text.as_bytes())
                .map_err(|e| Error::file(&t.path_str(), e))
        }
        Err(e) => Err(Error::file(&t.path_str(), e)),
    }
}

/// Reads the file under its lock, lets `change` edit it, and saves it if
/// `change` returns `Ok((out, true))`.
pub fn update<T>(
    t: &Target,
    change: impl FnOnce(&mut SecretFile) -> Result<(T, bool), Error>,
) -> Result<T, Error> {
    let path = t.path_str();
    let (locked, bytes) =
        safe_fs::open_locked(&t.path, t.owner()).map_err(|e| Error::file(&path, e))?;
    let mut file =
        SecretFile::parse_bytes(&bytes).map_err(|e| Error::failed(format!("{path}: {e}")))?;
    let (out, save) = change(&mut file)?;
    if save {
        locked
            .replace(file.to_toml().as_bytes())
            .map_err(|e| Error::file(&path, e))?;
    }
    Ok(out)
}

/// Reads the file (under its lock, so a half-done login is not seen).
pub fn read(t: &Target) -> Result<SecretFile, Error> {
    update(t, |f| Ok((f.clone(), false)))
}
