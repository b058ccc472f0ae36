//! What a deleted account left in root's `state_dir` under its name
//! (issue 31, item 7; `otp-enroll remove --orphans`): the system store's
//! records, the exemptions, the "enroll at next login" marks and the
//! failure tallies of users without a token, each of a name that is no
//! account any more or recorded for a uid that is not the account's of
//! that name now. Logins already ignore or refuse each of them; this
//! finds them so that an admin can clear them.
//!
//! What records no uid (a record or a mark of a released version, a tally
//! written before) is an orphan only when its name is no account: it
//! cannot say whose it is. A name the name service cannot answer for is
//! never judged (an LDAP server away must not make every user an orphan):
//! it is returned in [`Found::unanswered`].
//!
//! Under `store = "postgresql"` the same things are the database's
//! ([`find_in`]): records and marks (`users`, with the uid), exemptions,
//! and the tallies of `pam_otp.unenrolled` (no uid), listed by
//! `admin_owners` and judged here against this host's name service, which
//! must be the fleet's (the same accounts on every host); each is removed
//! by `admin_remove_orphan` only while it records the uid it was found
//! with.

use std::path::Path;

use super::pending::Mark;
use super::{exempt, StoreError, PENDING_DIR, USERS_DIR};
use crate::account::{self, Account, LookupError};
use crate::config::Config;
use crate::config::StoreKind;
use crate::safe_fs::{self, Holds};
use crate::secret_file::SecretFile;
use crate::unenrolled;

/// What is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `<state_dir>/users/<user>.toml` (store = "system").
    Record,
    /// `<state_dir>/exempt/<user>`.
    Exemption,
    /// `<state_dir>/pending/<user>`.
    Mark,
    /// `<state_dir>/unenrolled/<user>.toml`.
    Tally,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Record => "record",
            Kind::Exemption => "exemption",
            Kind::Mark => "pending_mark",
            Kind::Tally => "unenrolled_tally",
        }
    }
}

/// One thing left by a deleted account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    pub user: String,
    pub kind: Kind,
    /// The uid it was made for, when it records one.
    pub recorded: Option<u32>,
    /// The uid of the account of that name now; `None`: no such account.
    pub account: Option<u32>,
}

impl Orphan {
    /// Why it is an orphan, for a person.
    pub fn why(&self) -> String {
        match (self.recorded, self.account) {
            (_, None) => "the name is no account any more".to_string(),
            (Some(r), Some(a)) => format!("made for uid {r}, the account is uid {a}"),
            (None, Some(a)) => format!("made for another uid, the account is uid {a}"),
        }
    }
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    pub orphans: Vec<Orphan>,
    /// Names the name service could not answer for, and why: left alone.
    pub unanswered: Vec<(String, String)>,
}

/// Every orphan of the store `cfg` names: [`find`] in its `state_dir` on
/// the file stores, the database's under `store = "postgresql"`.
pub fn find_in(
    cfg: &Config,
    lookup: &dyn Fn(&str) -> Result<Option<Account>, LookupError>,
) -> Result<Found, StoreError> {
    if cfg.store != StoreKind::Postgresql {
        return find(Path::new(&cfg.state_dir), cfg.store, lookup);
    }
    let mut found = Found::default();
    for (user, kind, recorded) in super::postgresql::PgOrphans::new(&cfg.postgresql).owners()? {
        if found.unanswered.iter().any(|(u, _)| u == &user) {
            continue;
        }
        let account = if account::plausible_user_name(&user) {
            match lookup(&user) {
                Ok(a) => a.map(|a| a.uid),
                Err(e) => {
                    found.unanswered.push((user, e.to_string()));
                    continue;
                }
            }
        } else {
            // Never an account's: no login ever uses it.
            None
        };
        if judge(kind, recorded, account) {
            found.orphans.push(Orphan {
                user,
                kind,
                recorded,
                account,
            });
        }
    }
    Ok(found)
}

/// Whether what records `recorded` is an orphan for the account of uid
/// `account` (`None`: no such account): of no account, or of another uid.
/// Something that records no uid is kept for an account (it cannot say
/// whose it is), but an exemption without one is honoured for nobody.
fn judge(kind: Kind, recorded: Option<u32>, account: Option<u32>) -> bool {
    match (account, recorded) {
        (None, _) => true,
        (Some(a), Some(r)) => r != a,
        (Some(_), None) => kind == Kind::Exemption,
    }
}

/// Every orphan under `state_dir` (records only under `store = "system"`),
/// in the order of the names, looking accounts up with `lookup`.
pub fn find(
    state_dir: &Path,
    store: StoreKind,
    lookup: &dyn Fn(&str) -> Result<Option<Account>, LookupError>,
) -> Result<Found, StoreError> {
    let mut names: Vec<(String, Kind)> = Vec::new();
    if store == StoreKind::System {
        for n in super::census::names_in(state_dir, USERS_DIR)? {
            if let Some(user) = n.strip_suffix(".toml") {
                names.push((user.to_string(), Kind::Record));
            }
        }
    }
    for n in super::census::names_in(state_dir, exempt::EXEMPT_DIR)? {
        names.push((n, Kind::Exemption));
    }
    for n in super::census::names_in(state_dir, PENDING_DIR)? {
        names.push((n, Kind::Mark));
    }
    for n in super::census::names_in(state_dir, unenrolled::DIR)? {
        if let Some(user) = n.strip_suffix(".toml") {
            names.push((user.to_string(), Kind::Tally));
        }
    }
    names.sort();
    names.dedup();
    let mut found = Found::default();
    for (user, kind) in names {
        if !account::plausible_user_name(&user) {
            continue;
        }
        let account = match lookup(&user) {
            Ok(a) => a,
            Err(e) => {
                if !found.unanswered.iter().any(|(u, _)| u == &user) {
                    found.unanswered.push((user, e.to_string()));
                }
                continue;
            }
        };
        let uid = account.as_ref().map(|a| a.uid);
        let recorded = match recorded_uid(state_dir, &user, kind, uid) {
            Judged::Keep => continue,
            Judged::Orphan(recorded) => recorded,
        };
        found.orphans.push(Orphan {
            user,
            kind,
            recorded,
            account: uid,
        });
    }
    Ok(found)
}

enum Judged {
    Keep,
    /// An orphan, with the uid it records if any.
    Orphan(Option<u32>),
}

/// Whether `user`'s `kind` is an orphan for the account of uid `uid`
/// (`None`: no account). What cannot be read is kept unless the name is
/// no account (report shows it, and a login refuses it).
fn recorded_uid(state_dir: &Path, user: &str, kind: Kind, uid: Option<u32>) -> Judged {
    let recorded: Result<Option<u32>, ()> = match kind {
        Kind::Record => {
            let path = state_dir.join(USERS_DIR).join(format!("{user}.toml"));
            safe_fs::read_trusted(&path, Holds::Secrets, 1 << 20)
                .ok()
                .and_then(|t| SecretFile::parse(&t).ok())
                .map(|f| f.uid)
                .ok_or(())
        }
        Kind::Exemption => exempt::read(state_dir, user)
            .ok()
            .flatten()
            .map(|e| e.uid)
            .ok_or(()),
        Kind::Mark => {
            let path = state_dir.join(PENDING_DIR).join(user);
            safe_fs::read_trusted(&path, Holds::Settings, 4096)
                .map(|t| super::pending::recorded_uid(&t).flatten())
                .map_err(|_| ())
        }
        Kind::Tally => {
            let path = unenrolled::path(state_dir, user);
            safe_fs::read_trusted(&path, Holds::Secrets, 4096)
                .map(|t| unenrolled::recorded_uid(&t))
                .map_err(|_| ())
        }
    };
    match (uid, recorded) {
        (None, Ok(r)) => Judged::Orphan(r),
        (None, Err(())) => Judged::Orphan(None),
        (Some(a), Ok(Some(r))) if r != a => Judged::Orphan(Some(r)),
        // An exemption without uid is never honoured: an orphan of no one.
        (Some(_), Ok(None)) if kind == Kind::Exemption => Judged::Orphan(None),
        _ => Judged::Keep,
    }
}

/// Why an orphan could not be removed.
#[derive(Debug)]
pub enum RemoveError {
    Store(StoreError),
    Tally(unenrolled::TallyError),
}

impl std::fmt::Display for RemoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoveError::Store(e) => e.fmt(f),
            RemoveError::Tally(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RemoveError {}

/// Removes one orphan: a record under its lock (as `AdminStore::remove`:
/// a login holding it finishes first), the rest by unlinking; under
/// `store = "postgresql"` in the database, only while it still records
/// the uid it was found with ([`StoreError::NotFound`] otherwise). The ids
/// of the tokens a record held, when known (the database's). The caller
/// notes it in the audit log.
pub fn remove_one(cfg: &Config, o: &Orphan) -> Result<Vec<String>, RemoveError> {
    if cfg.store == StoreKind::Postgresql {
        return super::postgresql::PgOrphans::new(&cfg.postgresql)
            .remove(o)
            .map_err(RemoveError::Store);
    }
    let state_dir = Path::new(&cfg.state_dir);
    let done = match o.kind {
        Kind::Record => super::AdminStore::remove(&super::file::FileStore::system(cfg, &o.user))
            .map_err(RemoveError::Store),
        Kind::Exemption => exempt::remove(state_dir, &o.user)
            .map(|_| ())
            .map_err(|e| RemoveError::Store(StoreError::Exemption(e))),
        Kind::Mark => {
            let mark = Mark::new(state_dir, &o.user);
            mark.clear().map_err(|err| {
                RemoveError::Store(StoreError::Pending {
                    mark: mark.path.clone(),
                    err,
                })
            })
        }
        Kind::Tally => unenrolled::remove(state_dir, &o.user)
            .map(|_| ())
            .map_err(RemoveError::Tally),
    };
    done.map(|()| Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.into(),
            uid,
            gid: uid,
            home: "/nonexistent".into(),
        }
    }

    fn record(state: &Path, user: &str, uid_line: &str) {
        let users = state.join(USERS_DIR);
        fs::create_dir_all(&users).unwrap();
        fs::set_permissions(&users, fs::Permissions::from_mode(0o700)).unwrap();
        let path = users.join(format!("{user}.toml"));
        fs::write(
            &path,
            format!(
                "version = 2\n{uid_line}scratch_codes = []\n\n[[token]]\nid = \"phone\"\n\
                 type = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn exemption(uid: Option<u32>) -> exempt::Exemption {
        exempt::Exemption {
            until: 2_000_000_000,
            granted: 1_999_000_000,
            by: "uid=0".into(),
            reason: String::new(),
            uid,
        }
    }

    #[test]
    fn what_a_deleted_account_left_is_found_and_removed() {
        let state = std::env::temp_dir().join(format!("pam_otp-orphans-{}", std::process::id()));
        let _ = fs::remove_dir_all(&state);
        fs::create_dir_all(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        // alice was deleted and made again (uid 1001 now, 2001 before).
        record(&state, "alice", "uid = 2001\n");
        exempt::write(&state, "alice", &exemption(Some(1001))).unwrap();
        Mark::new(&state, "alice").set().unwrap(); // no uid: kept
        let mut t = unenrolled::open(&state, "alice", 2001, safe_fs::Owner::current()).unwrap();
        t.state.failures = 3;
        t.save().unwrap();
        drop(t);
        // bob is no account any more.
        Mark::new(&state, "bob").of_uid(2002).set().unwrap();
        exempt::write(&state, "bob", &exemption(Some(2002))).unwrap();
        // dave is as he was; erin's record predates the uid.
        record(&state, "dave", "uid = 1003\n");
        record(&state, "erin", "");
        exempt::write(&state, "dave", &exemption(None)).unwrap();
        // carol: the name service does not answer.
        Mark::new(&state, "carol").set().unwrap();
        let lookup = |name: &str| -> Result<Option<Account>, LookupError> {
            match name {
                "alice" => Ok(Some(account("alice", 1001))),
                "dave" => Ok(Some(account("dave", 1003))),
                "erin" => Ok(Some(account("erin", 1004))),
                "carol" => Err(LookupError(nix::errno::Errno::EIO)),
                _ => Ok(None),
            }
        };
        let found = find(&state, StoreKind::System, &lookup).unwrap();
        let got: Vec<(&str, Kind, Option<u32>, Option<u32>)> = found
            .orphans
            .iter()
            .map(|o| (o.user.as_str(), o.kind, o.recorded, o.account))
            .collect();
        assert_eq!(
            got,
            [
                ("alice", Kind::Record, Some(2001), Some(1001)),
                ("alice", Kind::Tally, Some(2001), Some(1001)),
                ("bob", Kind::Exemption, Some(2002), None),
                ("bob", Kind::Mark, Some(2002), None),
                ("dave", Kind::Exemption, None, Some(1003)),
            ]
        );
        assert_eq!(found.unanswered.len(), 1);
        assert_eq!(found.unanswered[0].0, "carol");
        assert_eq!(
            found.orphans[0].why(),
            "made for uid 2001, the account is uid 1001"
        );
        assert_eq!(found.orphans[2].why(), "the name is no account any more");
        // Under home the records are the users' own: only root's files.
        let home = find(&state, StoreKind::Home, &lookup).unwrap();
        assert!(home.orphans.iter().all(|o| o.kind != Kind::Record));

        let cfg = Config {
            store: StoreKind::System,
            state_dir: state.to_string_lossy().into_owned(),
            ..Config::default()
        };
        for o in &found.orphans {
            remove_one(&cfg, o).unwrap();
        }
        assert!(!state.join("users/alice.toml").exists());
        assert!(!state.join("unenrolled/alice.toml").exists());
        assert!(!state.join("exempt/bob").exists());
        assert!(!state.join("pending/bob").exists());
        assert!(!state.join("exempt/dave").exists());
        // Kept: alice's own exemption and mark, dave's and erin's records,
        // carol's mark.
        for kept in [
            "exempt/alice",
            "pending/alice",
            "users/dave.toml",
            "users/erin.toml",
            "pending/carol",
        ] {
            assert!(state.join(kept).exists(), "{kept}");
        }
        assert!(find(&state, StoreKind::System, &lookup)
            .unwrap()
            .orphans
            .is_empty());
        let _ = fs::remove_dir_all(&state);
    }
}
