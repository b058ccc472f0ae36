//! The vendor token inventory (root only): hardware tokens as vendors ship
//! their seeds, before an admin assigns one to a user.
//!
//! One file, `<state_dir>/inventory/tokens.toml` (root 0600, directory root
//! 0700), read and written under a lock (`flock` on `tokens.lock` beside
//! it, held as long as an [`Inventory`] lives), replaced by a temp file,
//! fsync, rename and directory fsync. Only otp-enroll reads it: the PAM
//! module never does, so nothing here is linked into pam_otp.so.
//!
//! Under `store = "postgresql"` the same text lives in the fleet database
//! instead (`pam_otp.inventory`, one row, read `FOR UPDATE` and written in
//! the same transaction through the admin role): vendor seeds then never
//! sit on an admin's host either.
//!
//! Anything that cannot be read or parsed fails closed: an error naming
//! the file and the problem, and the file left as it is.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use otp_core::account;
use otp_core::config::{Config, StoreKind};
use otp_core::key;
use otp_core::otp::Algorithm;
use otp_core::pq::Connection;
use otp_core::safe_fs::{self, FsError, LockedFile, Owner};
use otp_core::secret_file::{self, OtpKind, MAX_COUNTER};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::output::{quoted, shown, shown_path};

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
/// A vendor file (PSKC or CSV, read by `otp_enroll::vendor`) is refused
/// past this.
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

const ROOT: Owner = Owner { uid: 0, gid: 0 };

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
}

const HEADER: &str = "# pam_otp token inventory: seeds of unassigned hardware tokens. Root only\n\
                      # (mode 0600). Managed by otp-enroll inventory.\n";

fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| shown(e.message().trim()))?;
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
            })
            .collect(),
    };
    let body = toml::to_string(&raw).map_err(|e| e.to_string())?;
    Ok(format!("{HEADER}{body}"))
}

/// Whether this process is root (real and effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::getuid().is_root() && nix::unistd::geteuid().is_root()
}

/// The message for anyone else.
pub const NOT_ROOT: &str =
    "the token inventory is root's: run otp-enroll inventory as root (nothing was read or changed)";

/// The inventory, locked until dropped.
pub struct Inventory {
    path: PathBuf,
    entries: Vec<Entry>,
    held: Held,
}

/// What keeps the inventory locked.
enum Held {
    /// `flock` on `tokens.lock`.
    File(#[allow(dead_code)] LockedFile),
    /// An open transaction holding the row `FOR UPDATE`; dropping the
    /// connection rolls it back.
    Db(std::cell::RefCell<Connection>),
}

/// Where the database's inventory is, for messages.
const DB_LOCATION: &str = "postgresql:inventory";

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

fn dir_error(dir: &Path, why: impl fmt::Display) -> Error {
    Error::failed(format!(
        "{}: {why}; the token inventory was not read",
        shown_path(dir)
    ))
}

fn file_error(path: &Path, err: impl fmt::Display) -> Error {
    let hint = match path.file_name() {
        Some(_) => format!(
            " (it must be root's, mode 0600: chown root:root {0}; chmod 600 {0})",
            shown_path(path)
        ),
        None => String::new(),
    };
    Error::failed(format!("{}: {err}{hint}", shown_path(path)))
}

/// Creates `dir` (0700) if it is not there.
fn make_dir(dir: &Path) -> Result<(), Error> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(dir_error(dir, format!("cannot create it: {e}"))),
    }
}

/// The inventory directory: root's, not a symlink, no access for group or
/// others at all (it holds seeds).
fn check_inventory_dir(dir: &Path) -> Result<(), Error> {
    let meta = fs::symlink_metadata(dir).map_err(|e| dir_error(dir, e))?;
    if meta.file_type().is_symlink() {
        return Err(dir_error(dir, "is a symbolic link (refused)"));
    }
    if !meta.is_dir() {
        return Err(dir_error(dir, "is not a directory"));
    }
    if meta.uid() != 0 {
        return Err(dir_error(
            dir,
            format!("owned by uid {}, not root", meta.uid()),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(dir_error(
            dir,
            format!(
                "mode {mode:04o} lets group or others in (must be 0700: chmod 700 {})",
                shown_path(dir)
            ),
        ));
    }
    Ok(())
}

/// The file's metadata as required: a regular file of root's, mode 0600.
fn check_file(meta: &fs::Metadata) -> Result<(), String> {
    if meta.file_type().is_symlink() {
        return Err("is a symbolic link (refused)".into());
    }
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.uid() != 0 {
        return Err(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "mode {:04o} lets group or others in (must be 0600)",
            meta.mode() & 0o7777
        ));
    }
    if meta.len() > MAX_STORE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_STORE_BYTES} allowed",
            meta.len()
        ));
    }
    Ok(())
}

/// Reads tokens.toml without following a symlink, checked before and
/// after opening (a FIFO or device is never opened).
fn read_store(path: &Path) -> Result<Vec<u8>, String> {
    let pre = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    check_file(&pre)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    check_file(&file.metadata().map_err(|e| e.to_string())?)?;
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_STORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        return Err(format!("more than the {MAX_STORE_BYTES} bytes allowed"));
    }
    Ok(bytes)
}

/// Replaces `path` with `contents` (safe_fs: temp file, fsync, rename,
/// directory fsync).
fn write_store(path: &Path, contents: &[u8]) -> Result<(), String> {
    safe_fs::replace_file(path, contents).map_err(|e| {
        format!(
            "cannot write {}: {}",
            shown_path(path),
            shown(&e.to_string())
        )
    })
}

fn fs_error(path: &Path, err: FsError) -> Error {
    // FsError names directories as they are: escaped here, once.
    file_error(path, shown(&err.to_string()))
}

impl Inventory {
    /// Opens and locks the inventory of the store `cfg` names: the
    /// database's under `postgresql`, else `<state_dir>/inventory`.
    pub fn open(cfg: &Config) -> Result<Inventory, Error> {
        if !is_root() {
            return Err(Error::failed(NOT_ROOT));
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

    fn open_db(pg: &otp_core::config::Postgresql) -> Result<Inventory, Error> {
        let conninfo = &pg.admin_conninfo;
        let failed = |e: otp_core::pq::PqError| {
            Error::failed(format!(
                "{DB_LOCATION}: {} (admin_conninfo = {}); nothing was changed",
                shown(&e.to_string()),
                quoted(conninfo)
            ))
        };
        let mut conn = Connection::connect(pg, conninfo).map_err(failed)?;
        conn.query("BEGIN", &[]).map_err(failed)?;
        let rows = conn
            .query("SELECT pam_otp.admin_inventory_read(true)", &[])
            .map_err(failed)?;
        let entries = match rows.get(0, 0) {
            None => Vec::new(),
            Some(text) => parse(text).map_err(|why| {
                Error::failed(format!(
                    "{DB_LOCATION}: cannot be used ({why}); it was left as it is"
                ))
            })?,
        };
        Ok(Inventory {
            path: PathBuf::from(DB_LOCATION),
            entries,
            held: Held::Db(std::cell::RefCell::new(conn)),
        })
    }

    /// Opens and locks `<state_dir>/inventory/tokens.toml`, creating the
    /// directory and the file if they are missing.
    fn open_file(state_dir: &Path) -> Result<Inventory, Error> {
        if !state_dir.is_absolute() {
            return Err(dir_error(state_dir, "state_dir is not an absolute path"));
        }
        let dir = state_dir.join(DIR);
        let path = dir.join(FILE);
        let lock_path = dir.join(LOCK_FILE);
        // Every directory from / down, as the secret files' are checked:
        // root's, writable by nobody else (unless sticky), no symlinks.
        make_dir(state_dir)?;
        make_dir(&dir)?;
        safe_fs::check_dirs(&path, Path::new("/"), ROOT)
            .map_err(|e| dir_error(&dir, shown(&e.to_string())))?;
        check_inventory_dir(&dir)?;
        match safe_fs::create_new(
            &lock_path,
            Path::new("/"),
            ROOT,
            b"# pam_otp: held (flock) while otp-enroll changes tokens.toml\n",
        ) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(fs_error(&lock_path, e)),
        }
        let (lock, _) = safe_fs::open_locked(&lock_path, Path::new("/"), ROOT)
            .map_err(|e| fs_error(&lock_path, e))?;
        let empty = to_text(&[]).map_err(|e| file_error(&path, e))?;
        match safe_fs::create_new(&path, Path::new("/"), ROOT, empty.as_bytes()) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(fs_error(&path, e)),
        }
        let bytes = read_store(&path).map_err(|e| file_error(&path, e))?;
        let entries = std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8 text".to_string())
            .and_then(parse)
            .map_err(|why| {
                Error::failed(format!(
                    "{}: cannot be used ({why}); it was left as it is: fix it by hand",
                    shown_path(&path)
                ))
            })?;
        Ok(Inventory {
            path,
            entries,
            held: Held::File(lock),
        })
    }

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

    /// Writes the entries (temp file, fsync, rename, fsync), after checking
    /// that the text reads back as the same entries.
    pub fn save(&self) -> Result<(), Error> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(Error::failed(format!(
                "{}: more than {MAX_ENTRIES} tokens; nothing was written",
                shown_path(&self.path)
            )));
        }
        let invalid = |why: String| {
            Error::failed(format!(
                "{}: the new contents would not be valid ({why}); nothing was written",
                shown_path(&self.path)
            ))
        };
        let text = to_text(&self.entries).map_err(invalid)?;
        match parse(&text) {
            Ok(back) if back == self.entries => {}
            Ok(_) => return Err(invalid("they would not read back the same".into())),
            Err(why) => return Err(invalid(why)),
        }
        match &self.held {
            Held::File(_) => {
                write_store(&self.path, text.as_bytes()).map_err(|e| file_error(&self.path, e))
            }
            Held::Db(conn) => {
                let mut conn = conn.borrow_mut();
                conn.query("SELECT pam_otp.admin_inventory_write($1)", &[Some(&text)])
                    .and_then(|_| conn.query("COMMIT", &[]))
                    .map(|_| ())
                    .map_err(|e| file_error(&self.path, shown(&e.to_string())))?;
                // Committed: what follows (another save) starts anew.
                conn.query("BEGIN", &[])
                    .and_then(|_| conn.query("SELECT pam_otp.admin_inventory_read(true)", &[]))
                    .map(|_| ())
                    .map_err(|e| file_error(&self.path, shown(&e.to_string())))
            }
        }
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
