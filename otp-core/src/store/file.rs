//! The `home` and `system` stores: one TOML secret file per user, read and
//! written through `safe_fs` (no symlinks, a lock, temp file + fsync +
//! rename). They differ only in where the file is and whose it is:
//!
//! | store | file | identity | directories checked from |
//! | --- | --- | --- | --- |
//! | `home` | the `secret` template | the user's | the user's home |
//! | `system` | `<state_dir>/users/<user>.toml` | root's | `state_dir` |

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::exempt::{self, Exemption};
use super::pending::{Mark, MarkState};
use super::{AdminStore, CannotSave, Held, LoginStore, Presence, Shape, StoreError, USERS_DIR};
use crate::account::Account;
use crate::audit::Origin;
use crate::config::{self, Config, StoreKind};
use crate::grace;
use crate::safe_fs::{self, FsError, FsIdentity, LockedFile, Owner};
use crate::secret_file::SecretFile;
use crate::verify::{self, Policy, Verdict};

pub struct FileStore {
    kind: StoreKind,
    path: PathBuf,
    /// Where the directory walk starts (`safe_fs::check_dirs`).
    base: PathBuf,
    /// Whose identity the file is read and written with.
    owner: Owner,
    state_dir: PathBuf,
    mark: Mark,
    /// Whose record it is (the exemption's name).
    user: String,
    /// The login's time (see `LoginStore`, "Whose clock"); an admin's
    /// store reads and writes records and never needs it.
    now: u64,
    /// `system`: the account's uid, written into a new record and checked
    /// against the one a record holds (`SecretFile::uid`); `None` when no
    /// account is known (a census) or in the user's own home.
    uid: Option<u32>,
    /// The record as `presence` read it (under its lock, parsed, its uid
    /// checked), for `grace`, which a login asks right after, before any
    /// prompt: parsing the file is most of what reading it costs. Never
    /// used after a prompt (`verify` and `shape` read afresh).
    before_prompt: RefCell<Option<SecretFile>>,
}

impl FileStore {
    /// `account`'s file in the store `cfg` names (`home` or `system`);
    /// `secret` overrides the `home` template.
    pub fn new(cfg: &Config, account: &Account, secret: Option<&str>) -> FileStore {
        let state_dir = PathBuf::from(&cfg.state_dir);
        let mark = Mark::new(&state_dir, &account.name).of_uid(account.uid);
        match cfg.store {
            StoreKind::System => FileStore {
                kind: StoreKind::System,
                path: system_path(&state_dir, &account.name),
                base: state_dir.clone(),
                owner: Owner::current(),
                state_dir,
                mark,
                user: account.name.clone(),
                now: 0,
                uid: Some(account.uid),
                before_prompt: RefCell::new(None),
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
                    user: account.name.clone(),
                    now: 0,
                    uid: None,
                    before_prompt: RefCell::new(None),
                }
            }
        }
    }

    /// The store as a login at `now` uses it.
    pub fn at(self, now: u64) -> FileStore {
        FileStore { now, ..self }
    }

    /// The `system` store's file of `user`, who need not be an account
    /// (a census finds the names in the store's directory).
    pub(super) fn system(cfg: &Config, user: &str) -> FileStore {
        let state_dir = PathBuf::from(&cfg.state_dir);
        FileStore {
            kind: StoreKind::System,
            path: system_path(&state_dir, user),
            base: state_dir.clone(),
            owner: Owner::current(),
            mark: Mark::new(&state_dir, user),
            user: user.to_string(),
            state_dir,
            now: 0,
            uid: None,
            before_prompt: RefCell::new(None),
        }
    }

    /// This store for the account of uid `uid`: a record made for another
    /// uid is refused ([`StoreError::Orphan`]).
    pub(super) fn of_uid(self, uid: u32) -> FileStore {
        FileStore {
            uid: Some(uid),
            mark: self.mark.of_uid(uid),
            ..self
        }
    }

    /// The record, parsed, read under its lock (released at once).
    pub(super) fn read(&self) -> Result<SecretFile, StoreError> {
        Ok(self.read_locked()?.file)
    }

    fn read_locked(&self) -> Result<FileRecord, StoreError> {
        let (locked, bytes) = self.lock()?;
        let file = SecretFile::parse_bytes(&bytes).map_err(StoreError::Malformed)?;
        check_uid(file.uid, self.uid)?;
        Ok(FileRecord { locked, file })
    }

    /// `file` as this store writes a new record: in `system`, with the
    /// account's uid (version 2).
    fn stamped(&self, file: &SecretFile) -> SecretFile {
        let mut file = file.clone();
        if self.uid.is_some() {
            file.upgrade();
            file.uid = self.uid;
        }
        file
    }

    /// The file, opened and locked, and what it holds (not parsed).
    fn lock(&self) -> Result<(LockedFile, Vec<u8>), StoreError> {
        match safe_fs::open_locked(&self.path, &self.base, self.owner) {
            Ok(x) => Ok(x),
            Err(FsError::NotFound) => Err(StoreError::NotFound),
            Err(err) => Err(StoreError::Unreadable(err)),
        }
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

    fn pending_error(&self, err: FsError) -> StoreError {
        StoreError::Pending {
            mark: self.mark.path.clone(),
            err,
        }
    }

    /// Withdraws a pending enrollment once the user has tokens. The mark
    /// is root's: a user saving their own file (store = "home") cannot
    /// remove it, and need not: with tokens there, a mark changes nothing.
    fn clear_mark(&self) -> Result<(), StoreError> {
        match self.mark.clear() {
            Err(FsError::Io { err, .. }) if err.kind() == io::ErrorKind::PermissionDenied => Ok(()),
            other => other.map_err(|e| self.pending_error(e)),
        }
    }

    /// Whether the user can create a file in the record's directory, as
    /// themselves: tried for real with an empty hidden file, removed at
    /// once (permissions, ACLs, a read-only file system all count).
    fn probe(&self) -> Result<(), StoreError> {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return Err(StoreError::CannotSave(CannotSave::NotAFilePath));
        };
        let _id = FsIdentity::assume(self.owner).map_err(StoreError::Unreadable)?;
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::CannotSave(CannotSave::NotADirectory(
                    dir.to_path_buf(),
                )))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotCreated(FsError::NoDir {
                    dir: dir.to_path_buf(),
                    err,
                }))
            }
            Err(err) => {
                return Err(StoreError::CannotSave(CannotSave::Unreachable {
                    dir: dir.to_path_buf(),
                    err,
                }))
            }
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
            // A leftover of a killed run with our pid: not ours to remove,
            // but it proves nothing either way; the save will tell.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(StoreError::CannotSave(CannotSave::NoCreate {
                dir: dir.to_path_buf(),
                err,
            })),
        }
    }
}

/// A record made for another account of the same name is refused
/// (`recorded`: the record's uid; `account`: this account's).
pub(super) fn check_uid(recorded: Option<u32>, account: Option<u32>) -> Result<(), StoreError> {
    match (recorded, account) {
        (Some(recorded), Some(uid)) if recorded != uid => Err(StoreError::Orphan { recorded, uid }),
        _ => Ok(()),
    }
}

/// Where the `system` store keeps `user`'s file.
fn system_path(state_dir: &Path, user: &str) -> PathBuf {
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

impl LoginStore for FileStore {
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
        // A record that holds only a temporary code used up or expired is
        // no token. Anything that cannot be read counts as tokens: the
        // open after the prompt reports it.
        if present {
            let read = self.read();
            let tokens = read.as_ref().map_or(true, |f| f.has_token_at(self.now));
            *self.before_prompt.borrow_mut() = read.ok();
            if tokens {
                return Ok(Presence::Tokens);
            }
        }
        match self.mark.state() {
            Ok(MarkState::Set) => Ok(Presence::Pending),
            Ok(MarkState::Unset) => Ok(Presence::Nothing),
            Ok(MarkState::OtherAccount { recorded }) => {
                Ok(Presence::OtherAccountsMark { recorded })
            }
            Err(err) => Err(self.pending_error(err)),
        }
    }

    fn shape(&self) -> Result<Shape, StoreError> {
        let record = self.read_locked()?;
        Ok(Shape {
            digits: record.file.tokens.first().map_or(6, |t| t.digits),
            scratch_codes: record.file.scratch_codes.clone(),
            temp_code: record.file.temp_code.clone(),
        })
    }

    fn verify(
        &self,
        code: &str,
        policy: &Policy,
        grace_from: Option<(IpAddr, u64)>,
        origin: &Origin<'_>,
    ) -> Result<Verdict, StoreError> {
        let now = self.now;
        // After the prompt: what presence read may be stale now.
        self.before_prompt.take();
        let mut record = self.read_locked()?;
        let verdict = verify::verify(&mut record.file, code, policy, now);
        if !verdict.changes_state() {
            return Ok(verdict);
        }
        if let (Verdict::Accepted(_), Some((from, period))) = (&verdict, grace_from) {
            // Grace entries need version 2 (an older module refuses a
            // version 1 file with them as it refuses any version 2 file).
            record.file.upgrade();
            grace::record(&mut record.file.state, from, origin.service, period, now);
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

    fn grace(&self, from: IpAddr, service: &str, period: u64) -> Result<Option<u64>, StoreError> {
        let granted =
            |file: &SecretFile| grace::granted_at(&file.state, from, service, period, self.now);
        if let Some(file) = self.before_prompt.borrow().as_ref() {
            return Ok(granted(file));
        }
        Ok(granted(&self.read_locked()?.file))
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        let text = self
            .stamped(file)
            .to_text()
            .map_err(|err| StoreError::Unwritable { verdict: None, err })?;
        self.make_dirs()?;
        match safe_fs::create_new(&self.path, &self.base, self.owner, text.as_bytes()) {
            Ok(()) => {}
            Err(FsError::Exists) => {
                // A record holding no token and only a temporary code that
                // accepts nothing at the login's time is no token (see
                // presence): a first token takes its place, under its lock.
                // One that cannot be read is a record all the same, as it
                // was before temporary codes: `Exists` (otp-enroll new
                // --force then replaces it; a login never does).
                let Ok(record) = self.read_locked() else {
                    return Err(StoreError::Exists);
                };
                if record.file.has_token_at(self.now) {
                    return Err(StoreError::Exists);
                }
                record
                    .locked
                    .replace(text.as_bytes())
                    .map_err(StoreError::NotCreated)?;
            }
            Err(err) => return Err(StoreError::NotCreated(err)),
        }
        self.clear_mark()
    }
}

impl AdminStore for FileStore {
    fn location(&self) -> String {
        LoginStore::location(self)
    }

    /// The file stores keep no audit of their own: the record is the
    /// syslog line otp-enroll writes.
    fn record_change(&self, _change: &crate::audit::Change) -> Result<(), StoreError> {
        Ok(())
    }

    fn exists(&self) -> Result<bool, StoreError> {
        if self.kind == StoreKind::System {
            // Root's directories not made yet: nobody has a record in them.
            match fs::symlink_metadata(self.state_dir.join(USERS_DIR)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                _ => {}
            }
        }
        safe_fs::exists(&self.path, &self.base, self.owner).map_err(StoreError::Unreadable)
    }

    fn anything_there(&self) -> Result<bool, StoreError> {
        let _id = FsIdentity::assume(self.owner).map_err(StoreError::Unreadable)?;
        match fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(StoreError::Unreadable(FsError::Io {
                op: "cannot be looked at as the user",
                err,
            })),
        }
    }

    fn check_can_save(&self, replace: bool) -> Result<(), StoreError> {
        // A secret in a directory others can write to would be refused at
        // every login. Root's directories are made first (0700, as create
        // makes them), so that a problem with state_dir shows before a
        // secret does.
        self.make_dirs()?;
        safe_fs::check_dirs(&self.path, &self.base, self.owner).map_err(StoreError::Unreadable)?;
        if self.path.parent().is_none() || self.path.file_name().is_none() {
            return Err(StoreError::CannotSave(CannotSave::NotAFilePath));
        }
        if AdminStore::exists(self)? {
            if !replace {
                return Err(StoreError::Exists);
            }
            // What replace does to it: open and lock it.
            self.lock()?;
        }
        match self.kind {
            // Root's directory, just checked.
            StoreKind::System => Ok(()),
            _ => self.probe(),
        }
    }

    fn open(&self) -> Result<Box<dyn Held + '_>, StoreError> {
        Ok(Box::new(self.read_locked()?))
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        LoginStore::create(self, file)
    }

    fn replace(&self, file: &SecretFile) -> Result<(), StoreError> {
        let text = self
            .stamped(file)
            .to_text()
            .map_err(|err| StoreError::Unwritable { verdict: None, err })?;
        let (locked, _) = self.lock()?;
        locked
            .replace(text.as_bytes())
            .map_err(StoreError::Unreadable)?;
        drop(locked);
        // As create does: the user has tokens again.
        self.clear_mark()
    }

    fn remove(&self) -> Result<(), StoreError> {
        let (locked, _) = self.lock()?;
        locked.remove().map_err(StoreError::Unreadable)
    }

    fn pending(&self) -> Result<bool, StoreError> {
        self.mark.is_set().map_err(|e| self.pending_error(e))
    }

    fn set_pending(&self, pending: bool) -> Result<(), StoreError> {
        if pending {
            self.mark.set()
        } else {
            self.mark.clear()
        }
        .map_err(|e| self.pending_error(e))
    }

    fn exemption(&self) -> Result<Option<Exemption>, StoreError> {
        exempt::read(&self.state_dir, &self.user).map_err(StoreError::Exemption)
    }

    fn set_exemption(&self, e: Option<&Exemption>) -> Result<bool, StoreError> {
        match e {
            Some(e) => {
                let before = self.exemption()?;
                exempt::write(&self.state_dir, &self.user, e).map_err(StoreError::Exemption)?;
                Ok(before.as_ref() != Some(e))
            }
            None => exempt::remove(&self.state_dir, &self.user).map_err(StoreError::Exemption),
        }
    }
}
