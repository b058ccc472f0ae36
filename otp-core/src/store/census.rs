//! What `otp-enroll report` learns of a whole store ([`Census`]): every
//! user it holds a record or an "enroll at next login" mark for, with
//! what the record says ([`Summary`]: token ids, types, serials, dates,
//! the rate limit's count; never a key, never an emergency code).
//!
//! - `system`: the names in `<state_dir>/users/` and `<state_dir>/pending/`
//!   (root's directories, checked as every reader checks them); each
//!   record is read as a login reads it, under its lock.
//! - `home`: a record is in a home, so the store knows only the homes it
//!   is shown: each account's home is read as that user, with the usual
//!   checks, by a thread of its own that is given `per_user` to answer. A
//!   home that does not answer in time (an automount that hangs, an NFS
//!   server gone, a lock held by a stuck login) is reported
//!   [`Found::TimedOut`] and left behind; after [`MAX_STUCK`] of them the
//!   rest are not tried (each waiting thread holds a little memory until
//!   the program exits). Marks are root's, in `<state_dir>/pending/`.
//! - `postgresql`: one query, `pam_otp.admin_census` through the admin
//!   role ([`super::postgresql::PgCensus`]): every user the database holds
//!   a row for, the lock judged by the database itself ([`Lock::Judged`]:
//!   its clock, its settings' ceilings), as a login's `verify` judges it.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::file::FileStore;
use super::pending::Mark;
use super::postgresql::PgCensus;
use super::{AdminStore, StoreError, PENDING_DIR, USERS_DIR};
use crate::account::{self, Account};
use crate::config::{Config, StoreKind};
use crate::rate_limit::RateLimit;
use crate::safe_fs::{self, FsError, Owner};
use crate::secret_file::{OtpKind, SecretFile, State, TempCode, TempCodeGone};

/// Homes that may stay unanswered before the rest are not tried.
pub const MAX_STUCK: usize = 32;

/// One token as a report shows it: never its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    pub id: String,
    pub kind: OtpKind,
    pub serial: Option<String>,
    /// When it was made (Unix seconds), if recorded.
    pub created: Option<u64>,
    /// When a code of it was last accepted (Unix seconds): recorded by
    /// logins in a version 2 file; a version 1 file's TOTP token has only
    /// its last step, whose start is taken.
    pub last_used: Option<u64>,
    /// Disabled, and the dates it is valid between.
    pub lifecycle: crate::secret_file::Lifecycle,
}

/// What a record holds, as a report shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub tokens: Vec<TokenSummary>,
    pub scratch_codes: usize,
    /// The rate limit's count and its last failure (Unix seconds).
    pub failures: u32,
    pub last_failure: u64,
    /// Who judges the lock.
    pub lock: Lock,
    /// The temporary code (`otp-enroll temp-code`), if there is one.
    pub temp_code: Option<TempCodeSummary>,
}

/// A temporary code as status, list and report show it: never the code,
/// its hash or its salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempCodeSummary {
    pub expires: u64,
    pub uses_left: u32,
    pub created: u64,
    pub created_by: String,
}

impl TempCodeSummary {
    pub fn of(t: &TempCode) -> TempCodeSummary {
        TempCodeSummary {
            expires: t.expires,
            uses_left: t.uses_left,
            created: t.created,
            created_by: t.created_by.clone(),
        }
    }

    /// Why it accepts nothing at `now` (see [`TempCode::gone_at`]).
    pub fn gone_at(&self, now: u64) -> Option<TempCodeGone> {
        TempCodeGone::at(self.expires, self.uses_left, now)
    }

    /// "active", "used_up" or "expired" at `now`.
    pub fn state_at(&self, now: u64) -> &'static str {
        match self.gone_at(now) {
            None => "active",
            Some(TempCodeGone::UsedUp) => "used_up",
            Some(TempCodeGone::Expired(_)) => "expired",
        }
    }
}

/// Who judges whether a user is locked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lock {
    /// The reader, from the count and the last failure, with its own rate
    /// limit and clock (the file stores: as a login on this host would).
    #[default]
    FromCount,
    /// The store, which has a clock and a policy of its own (postgresql):
    /// until when (Unix seconds, its clock), or not locked.
    Judged(Option<u64>),
}

impl Summary {
    pub fn of(file: &SecretFile) -> Summary {
        Summary {
            tokens: file
                .tokens
                .iter()
                .map(|t| TokenSummary {
                    id: t.id.clone(),
                    kind: t.kind,
                    serial: t.serial.clone(),
                    created: t.created,
                    last_used: match (t.state.last_used, t.kind, t.state.last_step) {
                        (Some(at), _, _) => Some(at),
                        (None, OtpKind::Totp, Some(step)) => Some(step.saturating_mul(t.period)),
                        _ => None,
                    },
                    lifecycle: t.lifecycle,
                })
                .collect(),
            scratch_codes: file.scratch_codes.len(),
            failures: file.state.failures,
            last_failure: file.state.last_failure,
            lock: Lock::FromCount,
            temp_code: file.temp_code.as_ref().map(TempCodeSummary::of),
        }
    }

    /// The latest use of any token.
    pub fn last_used(&self) -> Option<u64> {
        self.tokens.iter().filter_map(|t| t.last_used).max()
    }

    /// Until when (Unix seconds) `rate_limit` keeps the user locked at
    /// `now`, if it does; where the store judged it, what it judged.
    pub fn locked_until(&self, rate_limit: &RateLimit, now: u64) -> Option<u64> {
        if let Lock::Judged(until) = self.lock {
            return until;
        }
        let state = State {
            failures: self.failures,
            last_failure: self.last_failure,
            ..State::default()
        };
        rate_limit
            .locked_for(&state, now)
            .map(|s| now.saturating_add(s))
    }
}

/// What the store has of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Record(Summary),
    /// No record.
    Nothing,
    /// Something is there that cannot be read or used, and why (a file
    /// that does not parse, an unsafe directory, a home that cannot be
    /// looked at as the user).
    Unreadable(String),
    /// The home did not answer within the time given: not read.
    TimedOut,
    /// Not tried: [`MAX_STUCK`] homes had not answered already.
    NotTried,
}

/// One user the store knows, or one account it was asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub found: Found,
    /// Root asked for enrollment at the next login (`otp-enroll reset`).
    pub pending: bool,
}

/// A whole store, for `otp-enroll report`.
pub trait Census {
    /// Every user the store holds a record or a mark for; under `home`,
    /// where records are in the homes, every one of `accounts` too (each
    /// home given at most `per_user` to answer), [`Found::Nothing`]
    /// included. In no particular order.
    fn census(&self, accounts: &[Account], per_user: Duration) -> Result<Vec<Known>, StoreError>;

    /// Every exemption the store keeps (`otp-enroll exempt`), by name.
    /// The file stores keep them in root's `<state_dir>/exempt/`; the
    /// fleet's store keeps none yet.
    fn exemptions(&self) -> Result<Vec<(String, super::exempt::Exemption)>, StoreError> {
        Ok(Vec::new())
    }

    /// [`super::AdminStore::exemption_judged_by`], as of the last
    /// [`Census::exemptions`].
    fn exemption_judged_by(&self) -> Option<(u64, u64)> {
        None
    }
}

/// The exemptions in `<state_dir>/exempt/`, each read as a login reads it.
fn exemptions_in(state_dir: &Path) -> Result<Vec<(String, super::exempt::Exemption)>, StoreError> {
    let mut out = Vec::new();
    for name in names_in(state_dir, super::exempt::EXEMPT_DIR)? {
        if !account::plausible_user_name(&name) {
            continue;
        }
        if let Some(e) = super::exempt::read(state_dir, &name).map_err(StoreError::Exemption)? {
            out.push((name, e));
        }
    }
    Ok(out)
}

/// The census of the store `cfg` names.
pub fn census(cfg: &Config) -> Box<dyn Census> {
    match cfg.store {
        StoreKind::Home => Box::new(HomeCensus {
            cfg: Arc::new(cfg.clone()),
        }),
        StoreKind::System => Box::new(SystemCensus { cfg: cfg.clone() }),
        StoreKind::Postgresql => Box::new(PgCensus::new(&cfg.postgresql, cfg.rate_limit)),
    }
}

/// The names in `dir`, one of root's directories under `state_dir`
/// (`users`, `pending`): none when it is not there yet (it is made with
/// its first file); refused when `state_dir` or it could be changed by
/// anyone but root, as every reader of them refuses it.
pub(super) fn names_in(state_dir: &Path, sub: &str) -> Result<Vec<String>, StoreError> {
    let dir = state_dir.join(sub);
    match fs::symlink_metadata(&dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(StoreError::Unreadable(FsError::Io { op: "stat", err })),
        Ok(_) => {}
    }
    // The walk of every file read in it: state_dir and dir itself (the
    // directories on the way to a file in dir; the name need not exist).
    safe_fs::check_dirs(&dir.join("x"), state_dir, Owner::current())
        .map_err(StoreError::Unreadable)?;
    let entries = fs::read_dir(&dir)
        .map_err(|err| StoreError::Unreadable(FsError::Io { op: "readdir", err }))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|err| StoreError::Unreadable(FsError::Io { op: "readdir", err }))?;
        // Not UTF-8: no user name of pam_otp's (account::plausible_user_name
        // is checked by whoever uses the name).
        if let Ok(name) = entry.file_name().into_string() {
            // Dot files: a save's temporary file, a probe.
            if !name.starts_with('.') {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// The users with an "enroll at next login" mark, each checked as a login
/// checks it.
fn marked(state_dir: &Path, accounts: &[Account]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for name in names_in(state_dir, PENDING_DIR)? {
        if !account::plausible_user_name(&name) {
            continue;
        }
        // As a login sees it: the mark of a deleted account whose name
        // was given again is no mark for the new one (remove --orphans
        // lists it); a name that is no account keeps its mark (the report
        // says "no account").
        let mark = match accounts.iter().find(|a| a.name == name) {
            Some(a) => Mark::new(state_dir, &name).of_uid(a.uid),
            None => Mark::new(state_dir, &name),
        };
        match mark.is_set() {
            Ok(true) => out.push(name),
            Ok(false) => {}
            Err(err) => {
                return Err(StoreError::Pending {
                    mark: mark.path,
                    err,
                })
            }
        }
    }
    Ok(out)
}

/// What a record's open gave, as a census says it.
fn found(read: Result<SecretFile, StoreError>) -> Found {
    match read {
        Ok(file) => Found::Record(Summary::of(&file)),
        Err(StoreError::NotFound) => Found::Nothing,
        Err(e) => Found::Unreadable(e.to_string()),
    }
}

struct SystemCensus {
    cfg: Config,
}

impl Census for SystemCensus {
    fn exemptions(&self) -> Result<Vec<(String, super::exempt::Exemption)>, StoreError> {
        exemptions_in(Path::new(&self.cfg.state_dir))
    }

    /// A record made for another uid than the account of its name has now
    /// (the name deleted and made again) is unreadable, and says why.
    fn census(&self, accounts: &[Account], _: Duration) -> Result<Vec<Known>, StoreError> {
        let state_dir = Path::new(&self.cfg.state_dir);
        let marks = marked(state_dir, accounts)?;
        let mut out = Vec::new();
        for file in names_in(state_dir, USERS_DIR)? {
            let Some(name) = file.strip_suffix(".toml") else {
                continue;
            };
            let pending = marks.iter().any(|m| m == name);
            let found = if account::plausible_user_name(name) {
                let store = FileStore::system(&self.cfg, name);
                let store = match accounts.iter().find(|a| a.name == name) {
                    Some(a) => store.of_uid(a.uid),
                    None => store,
                };
                found(store.read())
            } else {
                Found::Unreadable("not a plausible user name (never used by a login)".into())
            };
            out.push(Known {
                name: name.to_string(),
                found,
                pending,
            });
        }
        for name in marks {
            if !out.iter().any(|k| k.name == name) {
                out.push(Known {
                    name,
                    found: Found::Nothing,
                    pending: true,
                });
            }
        }
        Ok(out)
    }
}

struct HomeCensus {
    /// Shared with the threads that read the homes.
    cfg: Arc<Config>,
}

/// One home's record, read as its user. Nothing at the record's place
/// (looked at as the user) is no record, whatever the directories on the
/// way are like (a system account's home, /var/mail say, may be group
/// writable); something there is opened with every check.
fn read_home(cfg: &Config, account: &Account) -> Found {
    if !account::plausible_user_name(&account.name) {
        return Found::Unreadable("not a plausible user name (never used by a login)".into());
    }
    let store = FileStore::new(cfg, account, None);
    match store.anything_there() {
        Ok(false) => Found::Nothing,
        Ok(true) => found(store.read()),
        Err(e) => Found::Unreadable(e.to_string()),
    }
}

impl Census for HomeCensus {
    fn exemptions(&self) -> Result<Vec<(String, super::exempt::Exemption)>, StoreError> {
        exemptions_in(Path::new(&self.cfg.state_dir))
    }

    fn census(&self, accounts: &[Account], per_user: Duration) -> Result<Vec<Known>, StoreError> {
        let marks = marked(Path::new(&self.cfg.state_dir), accounts)?;
        let mut out = Vec::with_capacity(accounts.len());
        let mut stuck = 0usize;
        for a in accounts {
            let found = if stuck >= MAX_STUCK {
                Found::NotTried
            } else {
                let (tx, rx) = mpsc::channel();
                let (cfg, account) = (Arc::clone(&self.cfg), a.clone());
                let reader = std::thread::Builder::new()
                    .name("home reader".into())
                    .spawn(move || {
                        // The receiver may have stopped waiting.
                        let _ = tx.send(read_home(&cfg, &account));
                    });
                match reader {
                    Err(e) => Found::Unreadable(format!("cannot start a reader thread: {e}")),
                    Ok(_) => match rx.recv_timeout(per_user) {
                        Ok(found) => found,
                        Err(_) => {
                            stuck += 1;
                            Found::TimedOut
                        }
                    },
                }
            };
            out.push(Known {
                name: a.name.clone(),
                pending: marks.contains(&a.name),
                found,
            });
        }
        for name in marks {
            if !accounts.iter().any(|a| a.name == name) {
                out.push(Known {
                    name,
                    found: Found::Nothing,
                    pending: true,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_file::Token;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A fresh directory of this test's, mode 0700.
    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pam_otp-census-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn one_token() -> SecretFile {
        SecretFile::with_token(Token::new("app", OtpKind::Totp, vec![7; 20]))
    }

    fn config(store: StoreKind, state_dir: &Path) -> Config {
        Config {
            store,
            state_dir: state_dir.to_str().unwrap().into(),
            ..Config::default()
        }
    }

    /// An account of this process's own uid (whoever runs the tests).
    fn account(name: &str, home: &Path) -> Account {
        let me = Owner::current();
        Account {
            name: name.into(),
            uid: me.uid,
            gid: me.gid,
            home: home.to_str().unwrap().into(),
        }
    }

    fn sorted(mut known: Vec<Known>) -> Vec<Known> {
        known.sort_by(|a, b| a.name.cmp(&b.name));
        known
    }

    #[test]
    fn the_system_census_lists_records_and_marks() {
        let state = tempdir("system");
        let cfg = config(StoreKind::System, &state);
        // Nothing made yet: nobody.
        assert_eq!(
            census(&cfg).census(&[], Duration::from_secs(1)).unwrap(),
            []
        );
        let users = state.join(USERS_DIR);
        fs::create_dir(&users).unwrap();
        fs::set_permissions(&users, fs::Permissions::from_mode(0o700)).unwrap();
        write(&users.join("alice.toml"), &one_token().to_text().unwrap());
        write(&users.join("broken.toml"), "not [ toml");
        // A save's temporary file and anything not a record: not users.
        write(&users.join(".alice.toml.0123456789abcdef.tmp"), "x");
        write(&users.join("notes.txt"), "x");
        Mark::new(&state, "alice").set().unwrap();
        Mark::new(&state, "bob").set().unwrap();
        let known = sorted(census(&cfg).census(&[], Duration::from_secs(1)).unwrap());
        assert_eq!(known.len(), 3, "{known:?}");
        assert_eq!(
            known[0],
            Known {
                name: "alice".into(),
                found: Found::Record(Summary::of(&one_token())),
                pending: true,
            }
        );
        assert_eq!(
            known[1],
            Known {
                name: "bob".into(),
                found: Found::Nothing,
                pending: true,
            }
        );
        assert_eq!(known[2].name, "broken");
        assert!(matches!(&known[2].found, Found::Unreadable(why) if !why.is_empty()));
        // A record made for another uid than alice's account has now: the
        // name was made again; unreadable, and why.
        let mut orphan = one_token();
        orphan.uid = Some(Owner::current().uid.wrapping_add(1));
        write(&users.join("alice.toml"), &orphan.to_text().unwrap());
        let alice = account("alice", &state);
        let known = sorted(
            census(&cfg)
                .census(std::slice::from_ref(&alice), Duration::from_secs(1))
                .unwrap(),
        );
        assert!(
            matches!(&known[0].found, Found::Unreadable(why) if why.contains("made for uid")),
            "{known:?}"
        );
        // Its own uid: a record as any other.
        orphan.uid = Some(alice.uid);
        write(&users.join("alice.toml"), &orphan.to_text().unwrap());
        let known = sorted(
            census(&cfg)
                .census(&[alice], Duration::from_secs(1))
                .unwrap(),
        );
        assert_eq!(known[0].found, Found::Record(Summary::of(&orphan)));
        // A users directory others may write to is refused, as every reader
        // of it refuses it.
        fs::set_permissions(&users, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(census(&cfg).census(&[], Duration::from_secs(1)).is_err());
        fs::remove_dir_all(&state).unwrap();
    }

    /// Each home is read on its own thread; one whose file another holds
    /// locked past the time given is reported, and the census goes on;
    /// after MAX_STUCK of them the rest are not tried.
    #[test]
    fn the_home_census_bounds_the_time_a_home_may_take() {
        let base = tempdir("home");
        let state = base.join("state");
        let cfg = config(StoreKind::Home, &state);
        let home = |name: &str| {
            let h = base.join(name);
            fs::create_dir(&h).unwrap();
            fs::set_permissions(&h, fs::Permissions::from_mode(0o700)).unwrap();
            h
        };
        let a = home("a");
        write(&a.join(".pam_otp.toml"), &one_token().to_text().unwrap());
        let b = home("b");
        let c = home("c");
        write(&c.join(".pam_otp.toml"), &one_token().to_text().unwrap());
        let held = fs::File::open(c.join(".pam_otp.toml")).unwrap();
        held.lock().unwrap();
        let mut accounts = vec![account("a", &a), account("b", &b)];
        // Many accounts sharing the locked home: each one stuck.
        for i in 0..=MAX_STUCK {
            accounts.push(account(&format!("c{i:02}"), &c));
        }
        accounts.push(account("z", &a));
        #[allow(clippy::disallowed_methods)] // the test measures the bound itself
        let start = std::time::Instant::now();
        let per_user = Duration::from_millis(50);
        let known = census(&cfg).census(&accounts, per_user).unwrap();
        let took = start.elapsed();
        assert_eq!(known.len(), accounts.len());
        assert_eq!(known[0].found, Found::Record(Summary::of(&one_token())));
        assert_eq!(known[1].found, Found::Nothing);
        for k in &known[2..2 + MAX_STUCK] {
            assert_eq!(k.found, Found::TimedOut, "{}", k.name);
        }
        // The 33rd stuck home and everything after it: not tried.
        assert_eq!(known[2 + MAX_STUCK].found, Found::NotTried);
        assert_eq!(known[3 + MAX_STUCK].found, Found::NotTried);
        // Bounded: about MAX_STUCK times the time given, not the lock's
        // own patience (some 5 s a home).
        assert!(took < Duration::from_secs(5), "{took:?}");
        drop(held);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_summary_holds_no_key_and_derives_last_use() {
        let mut file = SecretFile::with_token(Token::new("app", OtpKind::Totp, vec![7; 20]));
        file.tokens[0].created = Some(1_000);
        file.tokens[0].state.last_step = Some(100);
        let mut hw = Token::new("OATH1", OtpKind::Hotp, vec![9; 20]);
        hw.serial = Some("OATH1".into());
        hw.state.last_used = Some(5_000);
        file.tokens.push(hw);
        file.scratch_codes = vec!["12345678".into(), "23456789".into()];
        file.state.failures = 4;
        file.state.last_failure = 2_000;
        let s = Summary::of(&file);
        assert_eq!(s.tokens.len(), 2);
        // A version 1 TOTP token: the start of its last step.
        assert_eq!(s.tokens[0].last_used, Some(3_000));
        assert_eq!(s.tokens[1].last_used, Some(5_000));
        assert_eq!(s.tokens[1].serial.as_deref(), Some("OATH1"));
        assert_eq!(s.last_used(), Some(5_000));
        assert_eq!(s.scratch_codes, 2);
        // Nothing of the key or the codes: the Debug text is all there is.
        let text = format!("{s:?}");
        assert!(
            !text.contains("12345678") && !text.contains("[7, 7"),
            "{text}"
        );
    }

    #[test]
    fn locked_until_follows_the_rate_limit() {
        let rl = RateLimit::default();
        let mut s = Summary {
            tokens: Vec::new(),
            scratch_codes: 0,
            failures: 0,
            last_failure: 0,
            lock: Lock::FromCount,
            temp_code: None,
        };
        assert_eq!(s.locked_until(&rl, 10_000), None);
        s.failures = 100;
        s.last_failure = 10_000;
        let until = s.locked_until(&rl, 10_001).unwrap();
        assert!(until > 10_001);
        let state = State {
            failures: 100,
            last_failure: 10_000,
            ..State::default()
        };
        assert_eq!(until, 10_001 + rl.locked_for(&state, 10_001).unwrap());
    }
}
