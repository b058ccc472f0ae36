//! The vendor token inventory's storage (root only): hardware tokens as
//! vendors ship their seeds, before an admin assigns one to a user. The
//! vendor files' parsers are otp-enroll's; where the tokens are kept, how
//! they are locked and read and written is here, behind the admin seam.
//!
//! One file, `<state_dir>/inventory/tokens.toml` (root 0600, directory root
//! 0700), read and written under a lock (`flock` on `tokens.lock` beside
//! it, held as long as an [`Inventory`] lives), replaced by a temp file,
//! fsync, rename and directory fsync. Only otp-enroll reads it: the PAM
//! module never does.
//!
//! Under `store = "postgresql"` the same text lives in the fleet database
//! instead (`pam_otp.inventory`, one row, read `FOR UPDATE` and written in
//! the same transaction through the admin role): vendor seeds then never
//! sit on an admin's host either.
//!
//! Anything that cannot be read or parsed fails closed: an error naming
//! the file and the problem, and the file left as it is.

use std::cell::RefCell;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::account;
use crate::config::{Config, Postgresql, StoreKind};
use crate::key;
use crate::log::{escape, escape_quoted};
use crate::otp::Algorithm;
use crate::pq::{Connection, PqError};
use crate::safe_fs::{self, FsError, Holds, LockedFile, Owner};
use crate::secret_file::{self, OtpKind, MAX_COUNTER};

/// The sub-directory of `state_dir` that holds the inventory.
pub const DIR: &str = "inventory";
/// The inventory itself.
pub const FILE: &str = "tokens.toml";
/// Held (flock) while an [`Inventory`] is alive; never replaced, so a
/// waiter never locks a file that is renamed away under it.
pub const LOCK_FILE: &str = "tokens.lock";
pub const VERSION: u32 = 1;
/// At most this many tokens in the inventory (and in one import).
pub const MAX_ENTRIES: usize = 100_000;
/// tokens.toml is refused past this (100 000 entries take about 30 MB).
pub const MAX_STORE_BYTES: u64 = 64 * 1024 * 1024;

const ROOT: Owner = Owner { uid: 0, gid: 0 };

/// Where the database's inventory is, for messages.
const DB_LOCATION: &str = "postgresql:inventory";

/// The message for anyone but root.
pub const NOT_ROOT: &str =
    "the token inventory is root's: run otp-enroll inventory as root (nothing was read or changed)";

/// Whether this process is root (real and effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::getuid().is_root() && nix::unistd::geteuid().is_root()
}

/// Text from input in double quotes, escaped (see [`escape_quoted`]).
fn quoted(text: &str) -> String {
    format!("\"{}\"", escape_quoted(text))
}

fn shown_path(path: &Path) -> String {
    escape(&path.to_string_lossy())
}

/// A hardware token as a vendor file describes it.
#[derive(Clone, PartialEq, Eq)]
pub struct HardwareToken {
    pub serial: String,
    pub kind: OtpKind,
    pub key: Vec<u8>,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub counter: u64,
    /// The vendor file's start and expiry dates (Unix seconds; expires is
    /// exclusive): the token's own once assigned (`Lifecycle`).
    pub not_before: Option<u64>,
    pub expires: Option<u64>,
}

impl fmt::Debug for HardwareToken {
    // Never print the key, even in a debug dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HardwareToken")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .field("key", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("counter", &self.counter)
            .field("not_before", &self.not_before)
            .field("expires", &self.expires)
            .finish()
    }
}

/// One hardware token in the inventory: the vendor's description, and
/// where it came from and went to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub token: HardwareToken,
    /// Unix time of the import.
    pub imported: u64,
    /// The name of the file it was imported from.
    pub source: String,
    /// The user it was given to, if any.
    pub assigned_to: Option<String>,
}

impl HardwareToken {
    /// The rules of the secret file, in words naming the value.
    pub fn check(&self) -> Result<(), String> {
        secret_file::check_serial(&self.serial).map_err(|e| e.to_string())?;
        check_values(&self.key, self.digits, self.period, self.counter)
    }
}

fn check_values(key: &[u8], digits: u8, period: u64, counter: u64) -> Result<(), String> {
    secret_file::check_key(key).map_err(|e| e.to_string())?;
    secret_file::check_digits(digits).map_err(|e| e.to_string())?;
    secret_file::check_period(period).map_err(|e| e.to_string())?;
    if counter > MAX_COUNTER {
        return Err(format!(
            "counter {counter} is out of range (at most {MAX_COUNTER})"
        ));
    }
    Ok(())
}

/// tokens.toml as TOML sees it.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default, rename = "token")]
    tokens: Vec<RawEntry>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    serial: String,
    #[serde(rename = "type")]
    kind: OtpKind,
    secret: String,
    algorithm: Algorithm,
    digits: u8,
    period: u64,
    counter: u64,
    imported: u64,
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assigned_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
}

const HEADER: &str = "# pam_otp token inventory: seeds of unassigned hardware tokens. Root only\n\
                      # (mode 0600). Managed by otp-enroll inventory.\n";

fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| escape(e.message().trim()))?;
    if raw.version != VERSION {
        return Err(format!(
            "version {} is not supported (this otp-enroll reads version {VERSION})",
            raw.version
        ));
    }
    if raw.tokens.len() > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} tokens"));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(raw.tokens.len());
    let mut seen = std::collections::HashSet::new();
    for (i, r) in raw.tokens.into_iter().enumerate() {
        let n = i + 1;
        let bad = |why: String| format!("token {n} (serial {}): {why}", quoted(&r.serial));
        secret_file::check_serial(&r.serial).map_err(|e| bad(e.to_string()))?;
        let key =
            key::decode_base32(&r.secret).ok_or_else(|| bad("secret is not base32".into()))?;
        check_values(&key, r.digits, r.period, r.counter).map_err(bad)?;
        if r.not_before.is_some_and(|t| t > MAX_COUNTER)
            || r.expires.is_some_and(|t| t > MAX_COUNTER)
        {
            return Err(bad("not_before or expires is out of range".into()));
        }
        if r.source.chars().any(char::is_control) {
            return Err(bad("source has control characters".into()));
        }
        if let Some(user) = &r.assigned_to {
            if !account::plausible_user_name(user) {
                return Err(bad(format!(
                    "assigned_to {} is not a user name",
                    quoted(user)
                )));
            }
        }
        if !seen.insert(r.serial.clone()) {
            return Err(bad("the serial is there twice".into()));
        }
        entries.push(Entry {
            token: HardwareToken {
                serial: r.serial,
                kind: r.kind,
                key,
                algorithm: r.algorithm,
                digits: r.digits,
                period: r.period,
                counter: r.counter,
                not_before: r.not_before,
                expires: r.expires,
            },
            imported: r.imported,
            source: r.source,
            assigned_to: r.assigned_to,
        });
    }
    Ok(entries)
}

fn to_text(entries: &[Entry]) -> Result<String, String> {
    let raw = RawFile {
        version: VERSION,
        tokens: entries
            .iter()
            .map(|e| RawEntry {
                serial: e.token.serial.clone(),
                kind: e.token.kind,
                secret: key::encode_base32(&e.token.key),
                algorithm: e.token.algorithm,
                digits: e.token.digits,
                period: e.token.period,
                counter: e.token.counter,
                imported: e.imported,
                source: e.source.clone(),
                assigned_to: e.assigned_to.clone(),
                not_before: e.token.not_before,
                expires: e.token.expires,
            })
            .collect(),
    };
    let body = toml::to_string(&raw).map_err(|e| e.to_string())?;
    Ok(format!("{HEADER}{body}"))
}

/// Why the inventory cannot be used. Its text names where and what, with
/// everything from input escaped ([`escape`]): it may be printed as it is.
#[derive(Debug)]
pub enum InventoryError {
    /// Only root may read or change the inventory.
    NotRoot,
    /// The directory that holds it is unsafe, or cannot be made.
    Dir { dir: PathBuf, why: DirError },
    /// tokens.toml or its lock file cannot be read or made as required.
    File { path: PathBuf, err: FsError },
    /// What the file or the database holds is not an inventory; it is
    /// left as it is.
    Unusable { at: String, why: String, file: bool },
    /// The fleet database cannot be reached, or refused.
    Database { err: PqError, conninfo: String },
    /// A save would hold more than [`MAX_ENTRIES`] tokens.
    TooMany { at: String },
    /// A save would not read back as the entries (nothing is written).
    Invalid { at: String, why: String },
    /// The save failed (nothing was written).
    NotWritten {
        at: PathBuf,
        err: String,
        file: bool,
    },
}

/// What is wrong with the inventory's directory.
#[derive(Debug)]
pub enum DirError {
    NotAbsolute,
    Create(io::Error),
    /// A directory on the way (from `/`) is unsafe (see `safe_fs::check_dirs`).
    Unsafe(FsError),
    Stat(io::Error),
    Symlink,
    NotDirectory,
    NotRoot {
        uid: u32,
    },
    /// Group or others may get in: it holds seeds.
    Open {
        mode: u32,
    },
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryError::NotRoot => f.write_str(NOT_ROOT),
            InventoryError::Dir { dir, why } => {
                let d = shown_path(dir);
                match why {
                    DirError::NotAbsolute => write!(f, "{d}: state_dir is not an absolute path"),
                    DirError::Create(e) => write!(f, "{d}: cannot create it: {e}"),
                    DirError::Unsafe(e) => write!(f, "{d}: {}", escape(&e.to_string())),
                    DirError::Stat(e) => write!(f, "{d}: {e}"),
                    DirError::Symlink => write!(f, "{d}: is a symbolic link (refused)"),
                    DirError::NotDirectory => write!(f, "{d}: is not a directory"),
                    DirError::NotRoot { uid } => write!(f, "{d}: owned by uid {uid}, not root"),
                    DirError::Open { mode } => write!(
                        f,
                        "{d}: mode {mode:04o} lets group or others in (must be 0700: chmod 700 {d})"
                    ),
                }?;
                write!(f, "; the token inventory was not read")
            }
            InventoryError::File { path, err } => {
                let p = shown_path(path);
                write!(
                    f,
                    "{p}: {} (it must be root's, mode 0600: chown root:root {p}; chmod 600 {p})",
                    escape(&err.to_string())
                )
            }
            InventoryError::Unusable { at, why, file } => {
                write!(
                    f,
                    "{}: cannot be used ({why}); it was left as it is",
                    escape(at)
                )?;
                if *file {
                    write!(f, ": fix it by hand")?;
                }
                Ok(())
            }
            InventoryError::Database { err, conninfo } => write!(
                f,
                "{DB_LOCATION}: {} (admin_conninfo = {}); nothing was changed",
                escape(&err.to_string()),
                quoted(conninfo)
            ),
            InventoryError::TooMany { at } => write!(
                f,
                "{}: more than {MAX_ENTRIES} tokens; nothing was written",
                escape(at)
            ),
            InventoryError::Invalid { at, why } => write!(
                f,
                "{}: the new contents would not be valid ({why}); nothing was written",
                escape(at)
            ),
            InventoryError::NotWritten {
                at,
                err,
                file: true,
            } => {
                let p = shown_path(at);
                write!(
                    f,
                    "{p}: cannot write {p}: {} (it must be root's, mode 0600: chown root:root {p}; chmod 600 {p})",
                    escape(err)
                )
            }
            InventoryError::NotWritten { at, err, .. } => {
                write!(f, "{}: {}", shown_path(at), escape(err))
            }
        }
    }
}

impl std::error::Error for InventoryError {}

/// The inventory, locked until dropped.
pub struct Inventory {
    path: PathBuf,
    entries: Vec<Entry>,
    keeper: Box<dyn Keeper>,
}

/// Where the inventory is kept, holding its lock while it lives: the file
/// store's tokens.toml or the fleet database's row.
trait Keeper {
    /// Writes `text` (checked to read back as the entries) in place of
    /// what is there; the lock stays held.
    fn write(&self, text: &str) -> Result<(), InventoryError>;
}

/// `flock` on `tokens.lock`, and the file it guards.
struct InventoryFile {
    path: PathBuf,
    _lock: LockedFile,
}

impl Keeper for InventoryFile {
    fn write(&self, text: &str) -> Result<(), InventoryError> {
        // safe_fs: temp file, fsync, rename, directory fsync.
        safe_fs::replace_file(&self.path, text.as_bytes()).map_err(|e| InventoryError::NotWritten {
            at: self.path.clone(),
            err: e.to_string(),
            file: true,
        })
    }
}

/// An open transaction holding the row `FOR UPDATE`; dropping the
/// connection rolls it back.
struct InventoryRow {
    conn: RefCell<Connection>,
}

impl Keeper for InventoryRow {
    fn write(&self, text: &str) -> Result<(), InventoryError> {
        let failed = |e: PqError| InventoryError::NotWritten {
            at: PathBuf::from(DB_LOCATION),
            err: e.to_string(),
            file: false,
        };
        let mut conn = self.conn.borrow_mut();
        conn.query("SELECT pam_otp.admin_inventory_write($1)", &[Some(text)])
            .and_then(|_| conn.query("COMMIT", &[]))
            .map_err(failed)?;
        // Committed: what follows (another save) starts anew.
        conn.query("BEGIN", &[])
            .and_then(|_| conn.query("SELECT pam_otp.admin_inventory_read(true)", &[]))
            .map(|_| ())
            .map_err(failed)
    }
}

impl fmt::Debug for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Inventory({}, {} tokens)",
            shown_path(&self.path),
            self.entries.len()
        )
    }
}

/// Creates `dir` (0700) if it is not there.
fn make_dir(dir: &Path) -> Result<(), InventoryError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(dir_error(dir, DirError::Create(e))),
    }
}

fn dir_error(dir: &Path, why: DirError) -> InventoryError {
    InventoryError::Dir {
        dir: dir.to_path_buf(),
        why,
    }
}

fn file_error(path: &Path, err: FsError) -> InventoryError {
    InventoryError::File {
        path: path.to_path_buf(),
        err,
    }
}

/// The inventory directory: root's, not a symlink, no access for group or
/// others at all (it holds seeds).
fn check_inventory_dir(dir: &Path) -> Result<(), InventoryError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| dir_error(dir, DirError::Stat(e)))?;
    let why = if meta.file_type().is_symlink() {
        DirError::Symlink
    } else if !meta.is_dir() {
        DirError::NotDirectory
    } else if meta.uid() != 0 {
        DirError::NotRoot { uid: meta.uid() }
    } else if meta.mode() & 0o077 != 0 {
        DirError::Open {
            mode: meta.mode() & 0o7777,
        }
    } else {
        return Ok(());
    };
    Err(dir_error(dir, why))
}

impl Inventory {
    /// Opens and locks the inventory of the store `cfg` names: the
    /// database's under `postgresql`, else `<state_dir>/inventory`.
    pub fn open(cfg: &Config) -> Result<Inventory, InventoryError> {
        if !is_root() {
            return Err(InventoryError::NotRoot);
        }
        if cfg.store == StoreKind::Postgresql {
            return Inventory::open_db(&cfg.postgresql);
        }
        Inventory::open_file(Path::new(&cfg.state_dir))
    }

    /// Whether there is an inventory to return tokens to (without making
    /// one).
    pub fn exists(cfg: &Config) -> bool {
        cfg.store == StoreKind::Postgresql
            || Path::new(&cfg.state_dir).join(DIR).join(FILE).exists()
    }

    fn open_db(pg: &Postgresql) -> Result<Inventory, InventoryError> {
        let conninfo = &pg.admin_conninfo;
        let failed = |err| InventoryError::Database {
            err,
            conninfo: conninfo.clone(),
        };
        let mut conn = Connection::connect(pg, conninfo).map_err(failed)?;
        conn.query("BEGIN", &[]).map_err(failed)?;
        let rows = conn
            .query("SELECT pam_otp.admin_inventory_read(true)", &[])
            .map_err(failed)?;
        let entries = match rows.get(0, 0) {
            None => Vec::new(),
            Some(text) => parse(text).map_err(|why| InventoryError::Unusable {
                at: DB_LOCATION.into(),
                why,
                file: false,
            })?,
        };
        Ok(Inventory {
            path: PathBuf::from(DB_LOCATION),
            entries,
            keeper: Box::new(InventoryRow {
                conn: RefCell::new(conn),
            }),
        })
    }

    /// Opens and locks `<state_dir>/inventory/tokens.toml`, creating the
    /// directory and the file if they are missing.
    fn open_file(state_dir: &Path) -> Result<Inventory, InventoryError> {
        if !state_dir.is_absolute() {
            return Err(dir_error(state_dir, DirError::NotAbsolute));
        }
        let dir = state_dir.join(DIR);
        let path = dir.join(FILE);
        let lock_path = dir.join(LOCK_FILE);
        // Every directory from / down, as the secret files' are checked:
        // root's, writable by nobody else (unless sticky), no symlinks.
        make_dir(state_dir)?;
        make_dir(&dir)?;
        safe_fs::check_dirs(&path, Path::new("/"), ROOT)
            .map_err(|e| dir_error(&dir, DirError::Unsafe(e)))?;
        check_inventory_dir(&dir)?;
        match safe_fs::create_new(
            &lock_path,
            Path::new("/"),
            ROOT,
            b"# pam_otp: held (flock) while otp-enroll changes tokens.toml\n",
        ) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(file_error(&lock_path, e)),
        }
        let (lock, _) = safe_fs::open_locked(&lock_path, Path::new("/"), ROOT)
            .map_err(|e| file_error(&lock_path, e))?;
        let empty = to_text(&[]).map_err(|why| InventoryError::Invalid {
            at: path.display().to_string(),
            why,
        })?;
        match safe_fs::create_new(&path, Path::new("/"), ROOT, empty.as_bytes()) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(file_error(&path, e)),
        }
        let unusable = |why| InventoryError::Unusable {
            at: path.display().to_string(),
            why,
            file: true,
        };
        let entries = match safe_fs::read_trusted(&path, Holds::Secrets, MAX_STORE_BYTES) {
            Ok(text) => parse(&text).map_err(unusable)?,
            Err(FsError::NotUtf8) => return Err(unusable(FsError::NotUtf8.to_string())),
            Err(e) => return Err(file_error(&path, e)),
        };
        Ok(Inventory {
            entries,
            keeper: Box::new(InventoryFile {
                path: path.clone(),
                _lock: lock,
            }),
            path,
        })
    }

    /// Where it is, for messages (`postgresql:inventory` in the database).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn find(&self, serial: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.token.serial == serial)
    }

    pub fn find_mut(&mut self, serial: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.token.serial == serial)
    }

    /// Adds `entry` (its serial must not be there yet) or replaces the
    /// entry with its serial.
    pub fn put(&mut self, entry: Entry) {
        match self.find_mut(&entry.token.serial) {
            Some(old) => *old = entry,
            None => self.entries.push(entry),
        }
    }

    /// Removes the entry with `serial`; whether there was one.
    pub fn remove(&mut self, serial: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.token.serial != serial);
        self.entries.len() != before
    }

    /// Writes the entries (temp file, fsync, rename, fsync; or the row and
    /// a commit), after checking that the text reads back as the same
    /// entries. The lock stays held.
    pub fn save(&self) -> Result<(), InventoryError> {
        let at = self.path.display().to_string();
        if self.entries.len() > MAX_ENTRIES {
            return Err(InventoryError::TooMany { at });
        }
        let invalid = |why| InventoryError::Invalid {
            at: at.clone(),
            why,
        };
        let text = to_text(&self.entries).map_err(invalid)?;
        match parse(&text) {
            Ok(back) if back == self.entries => {}
            Ok(_) => return Err(invalid("they would not read back the same".into())),
            Err(why) => return Err(invalid(why)),
        }
        self.keeper.write(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: &str) -> Entry {
        Entry {
            token: HardwareToken {
                serial: serial.into(),
                kind: OtpKind::Hotp,
                key: b"12345678901234567890".to_vec(),
                algorithm: Algorithm::SHA1,
                digits: 6,
                period: 30,
                counter: 3,
                not_before: None,
                expires: None,
            },
            imported: 1_700_000_000,
            source: "vendor.xml".into(),
            assigned_to: None,
        }
    }

    #[test]
    fn text_round_trip_and_rules() {
        let mut a = entry("A1");
        a.assigned_to = Some("alice".into());
        let entries = vec![a, entry("B2")];
        let text = to_text(&entries).unwrap();
        assert!(text.contains("[[token]]") && text.contains("version = 1"));
        assert_eq!(parse(&text).unwrap(), entries);
        assert_eq!(parse("version = 1\n").unwrap(), vec![]);
        assert!(parse("version = 2\n").unwrap_err().contains("version 2"));
        let twice = to_text(&[entry("A1"), entry("A1")]).unwrap();
        assert!(parse(&twice).unwrap_err().contains("twice"));
        let typo = text.replace("counter = 3", "countr = 3");
        assert!(parse(&typo).is_err());
        let short = text.replace("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "GEZA");
        assert!(parse(&short).unwrap_err().contains("key"));
        let digits = text.replace("digits = 6", "digits = 9");
        assert!(parse(&digits).is_err());
    }

    #[test]
    fn debug_redacts_the_key() {
        let d = format!("{:?}", entry("A1"));
        assert!(d.contains("redacted") && !d.contains("49, 50"), "{d}");
    }
}
