//! Users and groups from the system (NSS): who is logging in, where their
//! home is, which groups they are in.

use std::ffi::CString;
use std::fmt;

use nix::unistd::{getgrouplist, Group, User};

use crate::rules::Groups;
use crate::safe_fs::{self, FsError, Owner};

/// A user account as `getpwnam` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

impl Account {
    pub fn owner(&self) -> Owner {
        Owner {
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// A file of the user's outside any store (a `~/.google_authenticator`
    /// to import), read as a secret file is: with the user's identity, not
    /// through a symlink, not readable by others, small, in directories
    /// only the user and root can write to, under its lock.
    pub fn read_own_file(&self, path: &std::path::Path) -> Result<Vec<u8>, FsError> {
        let home = std::path::Path::new(&self.home);
        let (locked, bytes) = safe_fs::open_locked(path, home, self.owner())?;
        drop(locked);
        Ok(bytes)
    }
}

/// Whether `name` can safely appear in a path: no `/`, not `.` or `..`, no
/// control characters or white space, not empty, not absurdly long.
pub fn plausible_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && !name
            .chars()
            .any(|c| c == '/' || c.is_control() || c.is_whitespace())
}

/// The account database (NSS) gave no answer: an outage, not "no such user".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupError(nix::errno::Errno);

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user look-up failed: {}", self.0)
    }
}

impl std::error::Error for LookupError {}

fn from_passwd(found: nix::Result<Option<User>>) -> Result<Option<Account>, LookupError> {
    match found {
        Ok(Some(u)) => Ok(Some(Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir.to_string_lossy().into_owned(),
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(LookupError(e)),
    }
}

/// Looks a user up. `Ok(None)`: no such user. `Err`: NSS failed.
pub fn lookup(name: &str) -> Result<Option<Account>, LookupError> {
    from_passwd(User::from_name(name))
}

/// Looks a user up by uid.
pub fn lookup_uid(uid: u32) -> Result<Option<Account>, LookupError> {
    from_passwd(User::from_uid(nix::unistd::Uid::from_raw(uid)))
}

/// Every account `getpwent` enumerates, once each (the first entry of a
/// name wins, as for `getpwnam`), in its order. Entries whose name or home
/// is not UTF-8 are left out: no login could use them. Not for the module:
/// the enumeration cursor is process-wide (see [`crate::sys::passwd_entries`]).
pub fn all_accounts() -> Result<Vec<Account>, LookupError> {
    let entries = crate::sys::passwd_entries().map_err(LookupError)?;
    let mut seen = std::collections::HashSet::new();
    let mut accounts = Vec::new();
    for e in entries {
        let (Ok(name), Ok(home)) = (String::from_utf8(e.name), String::from_utf8(e.dir)) else {
            continue;
        };
        if seen.insert(name.clone()) {
            accounts.push(Account {
                name,
                uid: e.uid,
                gid: e.gid,
                home,
            });
        }
    }
    Ok(accounts)
}

/// The account's groups, fetched on first use.
pub struct SystemGroups<'a> {
    account: &'a Account,
    gids: std::cell::OnceCell<Vec<u32>>,
}

impl<'a> SystemGroups<'a> {
    pub fn new(account: &'a Account) -> SystemGroups<'a> {
        SystemGroups {
            account,
            gids: std::cell::OnceCell::new(),
        }
    }

    fn gids(&self) -> &[u32] {
        self.gids.get_or_init(|| {
            let Ok(name) = CString::new(self.account.name.as_str()) else {
                return vec![self.account.gid];
            };
            getgrouplist(&name, nix::unistd::Gid::from_raw(self.account.gid))
                .map(|v| v.into_iter().map(|g| g.as_raw()).collect())
                .unwrap_or_else(|_| vec![self.account.gid])
        })
    }
}

impl Groups for SystemGroups<'_> {
    fn contains(&self, group: &str) -> bool {
        match Group::from_name(group) {
            Ok(Some(g)) => self.gids().contains(&g.gid.as_raw()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_for_paths() {
        for ok in ["alice", "bob.smith", "svc_backup", "user@REALM", "x"] {
            assert!(plausible_user_name(ok), "{ok}");
        }
        for bad in [
            "", ".", "..", "a/b", "../etc", "a\nb", "a b", "-rf", "tab\t",
        ] {
            assert!(!plausible_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn root_is_found_with_its_group() {
        let root = lookup("root").unwrap().unwrap();
        assert_eq!(root.uid, 0);
        assert!(SystemGroups::new(&root).contains("root"));
        assert!(!SystemGroups::new(&root).contains("no-such-group-pam-otp"));
        assert_eq!(lookup("no-such-user-pam-otp").unwrap(), None);
    }

    #[test]
    fn all_accounts_agree_with_lookup() {
        let all = all_accounts().unwrap();
        let root = all.iter().find(|a| a.name == "root").unwrap();
        assert_eq!(Some(root.clone()), lookup("root").unwrap());
        let mut names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "each account once");
    }

    #[test]
    fn an_outage_says_so() {
        assert_eq!(
            from_passwd(Err(nix::errno::Errno::EIO))
                .unwrap_err()
                .to_string(),
            "user look-up failed: EIO: I/O error"
        );
    }
}
