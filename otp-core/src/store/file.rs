//! The `home` and `system` stores: one TOML secret file per user, read and
//! written through `safe_fs` (no symlinks, a lock, temp file + fsync +
//! rename). They differ only in where the file is and whose it is:
//!
//! | store | file | identity | directories checked from |
//! | --- | --- | --- | --- |
//! | `home` | the `secret` template | the user's | the user's home |
//! | `system` | `<state_dir>/users/<user>.toml` | root's | `state_dir` |

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::pending::Mark;
use super::{Held, Presence, Shape, Store, StoreError, USERS_DIR};
use crate::account::Account;
use crate::config::{self, Config, StoreKind};
use crate::grace;
use crate::safe_fs::{self, FsError, LockedFile, Owner};
use crate::secret_file::SecretFile;
use crate::verify::{self, Policy, Verdict};

pub struct FileStore {
    pub kind: StoreKind,
    pub path: PathBuf,
    /// Where the directory walk starts (`safe_fs::check_dirs`).
    pub base: PathBuf,
    /// Whose identity the file is read and written with.
    pub owner: Owner,
    state_dir: PathBuf,
    mark: Mark,
}

impl FileStore {
    /// `account`'s file in the store `cfg` names (`home` or `system`);
    /// `secret` overrides the `home` template.
    pub fn new(cfg: &Config, account: &Account, secret: Option<&str>) -> FileStore {
        let state_dir = PathBuf::from(&cfg.state_dir);
        let mark = Mark::new(&state_dir, &account.name);
        match cfg.store {
            StoreKind::System => FileStore {
                kind: StoreKind::System,
                path: system_path(&state_dir, &account.name),
                base: state_dir.clone(),
                owner: Owner::current(),
                state_dir,
                mark,
            },
            StoreKind::Home | StoreKind::Postgresql => {
                let template = secret.unwrap_or(&cfg.secret);
                FileStore {
                    kind: StoreKind::Home,
                    path: PathBuf::from(config::expand_template(
                        template,
                        &account.name,
                        &account.home,
                    )),
                    base: PathBuf::from(&account.home),
                    owner: account.owner(),
                    state_dir,
                    mark,
                }
            }
        }
    }

    fn read_locked(&self) -> Result<FileRecord, StoreError> {
        let (locked, bytes) = match safe_fs::open_locked(&self.path, &self.base, self.owner) {
            Ok(x) => x,
            Err(FsError::NotFound) => return Err(StoreError::NotFound),
            Err(err) => return Err(StoreError::Unreadable(err)),
        };
        let file = SecretFile::parse_bytes(&bytes).map_err(StoreError::Malformed)?;
        Ok(FileRecord { locked, file })
    }

    /// The directories a `system` file lives in, made (root, 0700) if
    /// missing and checked.
    fn make_dirs(&self) -> Result<(), StoreError> {
        if self.kind == StoreKind::System {
            safe_fs::ensure_dir(&self.state_dir, self.owner).map_err(StoreError::NotCreated)?;
            safe_fs::ensure_dir(&self.state_dir.join(USERS_DIR), self.owner)
                .map_err(StoreError::NotCreated)?;
        }
        Ok(())
    }
}

/// Where the `system` store keeps `user`'s file.
pub fn system_path(state_dir: &Path, user: &str) -> PathBuf {
    state_dir.join(USERS_DIR).join(format!("{user}.toml"))
}

struct FileRecord {
    locked: LockedFile,
    file: SecretFile,
}

impl Held for FileRecord {
    fn file(&self) -> &SecretFile {
        &self.file
    }

    fn file_mut(&mut self) -> &mut SecretFile {
        &mut self.file
    }

    fn save(&self) -> Result<(), StoreError> {
        let text = self
            .file
            .to_text()
            .map_err(|err| StoreError::Unwritable { verdict: None, err })?;
        self.locked
            .replace(text.as_bytes())
            .map_err(StoreError::Unreadable)
    }

    fn remove(self: Box<Self>) -> Result<(), StoreError> {
        self.locked.remove().map_err(StoreError::Unreadable)
    }
}

impl Store for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn presence(&self) -> Result<Presence, StoreError> {
        // Only a name free in directories nobody else can write to means
        // "not enrolled". Anything else (an unsafe, missing or unreadable
        // directory: the home, say) goes on as if enrolled, so that the
        // open after the prompt reports it as it would with a file there:
        // whether one is there must not show.
        let present = match self.kind {
            // No users directory yet (it is made with the first file):
            // nobody has a file in it. It is root's, so nobody else can
            // have taken one away.
            StoreKind::System if !self.state_dir.join(USERS_DIR).exists() => false,
            _ => safe_fs::exists(&self.path, &self.base, self.owner).unwrap_or(true),
        };
        if present {
            return Ok(Presence::Tokens);
        }
        match self.mark.is_set() {
            Ok(true) => Ok(Presence::Pending),
            Ok(false) => Ok(Presence::Nothing),
            Err(err) => Err(StoreError::Pending(err)),
        }
    }

    fn shape(&self) -> Result<Shape, StoreError> {
        let record = self.read_locked()?;
        Ok(Shape {
            digits: record.file.tokens.first().map_or(6, |t| t.digits),
            scratch_codes: record.file.scratch_codes.clone(),
        })
    }

    fn verify(
        &self,
        code: &str,
        policy: &Policy,
        now: u64,
        grace_from: Option<(IpAddr, u64)>,
    ) -> Result<Verdict, StoreError> {
        let mut record = self.read_locked()?;
        let verdict = verify::verify(&mut record.file, code, policy, now);
        if !verdict.changes_state() {
            return Ok(verdict);
        }
        if let (Verdict::Accepted(_), Some((from, period))) = (&verdict, grace_from) {
            // Grace entries need version 2 (an older module refuses a
            // version 1 file with them as it refuses any version 2 file).
            record.file.upgrade();
            grace::record(&mut record.file.state, from, period, now);
        }
        match record.save() {
            Ok(()) => Ok(verdict),
            Err(StoreError::Unwritable { err, .. }) => Err(StoreError::Unwritable {
                verdict: Some(Box::new(verdict)),
                err,
            }),
            Err(StoreError::Unreadable(err) | StoreError::NotCreated(err)) => {
                Err(StoreError::NotSaved {
                    verdict: Box::new(verdict),
                    err,
                })
            }
            Err(other) => Err(other),
        }
    }

    fn grace(&self, from: IpAddr, period: u64, now: u64) -> Result<Option<u64>, StoreError> {
        let record = self.read_locked()?;
        Ok(grace::granted_at(&record.file.state, from, period, now))
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        let text = file
            .to_text()
            .map_err(|err| StoreError::Unwritable { verdict: None, err })?;
        self.make_dirs()?;
        match safe_fs::create_new(&self.path, &self.base, self.owner, text.as_bytes()) {
            Ok(()) => {}
            Err(FsError::Exists) => return Err(StoreError::Exists),
            Err(err) => return Err(StoreError::NotCreated(err)),
        }
        // The mark is root's: a user enrolling themselves with otp-enroll
        // (store = "home") cannot remove it, and need not: with tokens
        // there, a mark changes nothing.
        match self.mark.clear() {
            Err(FsError::Io { err, .. }) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                Ok(())
            }
            other => other.map_err(StoreError::Pending),
        }
    }

    fn open(&self) -> Result<Box<dyn Held + '_>, StoreError> {
        Ok(Box::new(self.read_locked()?))
    }

    fn pending(&self) -> Result<bool, StoreError> {
        self.mark.is_set().map_err(StoreError::Pending)
    }

    fn set_pending(&self, pending: bool) -> Result<(), StoreError> {
        if pending {
            self.mark.set()
        } else {
            self.mark.clear()
        }
        .map_err(StoreError::Pending)
    }
}
