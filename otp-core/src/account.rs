//! Users and groups from the system (NSS): who is logging in, where their
//! home is, which groups they are in.

use std::collections::HashSet;
use std::ffi::CString;
use std::fmt;
use std::path::Path;

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
pub struct LookupError(pub(crate) nix::errno::Errno);

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
    Ok(all_listed()?.into_iter().map(|l| l.account).collect())
}

/// An account as the enumeration lists it, with its login shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub account: Account,
    /// `pw_shell` as found (not UTF-8: lossily converted; it is only
    /// compared with `/etc/shells`).
    pub shell: String,
}

/// [`all_accounts`] with each account's shell (`otp-enroll report`).
pub fn all_listed() -> Result<Vec<Listed>, LookupError> {
    let entries = crate::sys::passwd_entries().map_err(LookupError)?;
    let mut seen = HashSet::new();
    let mut accounts = Vec::new();
    for e in entries {
        let (Ok(name), Ok(home)) = (String::from_utf8(e.name), String::from_utf8(e.dir)) else {
            continue;
        };
        if seen.insert(name.clone()) {
            accounts.push(Listed {
                account: Account {
                    name,
                    uid: e.uid,
                    gid: e.gid,
                    home,
                },
                shell: String::from_utf8_lossy(&e.shell).into_owned(),
            });
        }
    }
    Ok(accounts)
}

/// The file of valid login shells (getusershell(3)).
pub const SHELLS: &str = "/etc/shells";
/// The name service switch, whose `passwd` line says where accounts come
/// from.
pub const NSSWITCH: &str = "/etc/nsswitch.conf";

/// The shells that let a user log in: those `/etc/shells` lists (`text`;
/// getusershell's own default, /bin/sh and /bin/csh, when there is no such
/// file: `None`), less any named `nologin` or `false`, which some systems
/// list there too.
pub fn login_shells(text: Option<&str>) -> HashSet<String> {
    let listed: Vec<&str> = match text {
        Some(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect(),
        None => vec!["/bin/sh", "/bin/csh"],
    };
    listed
        .into_iter()
        .filter(|s| {
            let base = s.rsplit('/').next().unwrap_or(s);
            base != "nologin" && base != "false"
        })
        .map(str::to_string)
        .collect()
}

/// [`login_shells`] of the machine's [`SHELLS`] (root's file, read as
/// every settings file is).
pub fn read_login_shells() -> Result<HashSet<String>, FsError> {
    match safe_fs::read_trusted(Path::new(SHELLS), safe_fs::Holds::Settings, 1 << 20) {
        Ok(text) => Ok(login_shells(Some(&text))),
        Err(FsError::Io { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(login_shells(None))
        }
        Err(e) => Err(e),
    }
}

/// The sources the `passwd:` line of nsswitch.conf (`text`) names, in
/// order, without its `[STATUS=action]` items; glibc's default, `files`,
/// when there is no such line (or no file: `None`).
pub fn passwd_sources(text: Option<&str>) -> Vec<String> {
    let line = text.and_then(|t| {
        t.lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter_map(|l| l.strip_prefix("passwd"))
            .find_map(|rest| rest.trim_start().strip_prefix(':'))
    });
    let Some(line) = line else {
        return vec!["files".to_string()];
    };
    let mut sources = Vec::new();
    let mut in_action = false;
    for word in line.split_whitespace() {
        if word.starts_with('[') || in_action {
            in_action = !word.ends_with(']');
            continue;
        }
        sources.push(word.to_string());
    }
    sources
}

/// The sources whose accounts an enumeration lists in full: the
/// machine's own files and systemd's dynamic users. A directory service
/// (`sss`, `ldap`, `winbind`, `nis`...) is usually set up not to
/// enumerate, or enumerates only part: an account list read through one
/// may be incomplete.
pub const ENUMERATED_IN_FULL: &[&str] = &["files", "compat", "systemd", "db", "altfiles"];

/// The sources of [`passwd_sources`] that may not enumerate in full.
pub fn partial_sources(sources: &[String]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| !ENUMERATED_IN_FULL.contains(&s.as_str()))
        .cloned()
        .collect()
}

/// [`passwd_sources`] of the machine's [`NSSWITCH`].
pub fn read_passwd_sources() -> Result<Vec<String>, FsError> {
    match safe_fs::read_trusted(Path::new(NSSWITCH), safe_fs::Holds::Settings, 1 << 20) {
        Ok(text) => Ok(passwd_sources(Some(&text))),
        Err(FsError::Io { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(passwd_sources(None))
        }
        Err(e) => Err(e),
    }
}

/// The login uid the kernel keeps for this process (`/proc/self/loginuid`,
/// set by pam_loginuid at login and inherited): who logged in, whatever
/// su or sudo changed since. Evidence, not proof: a process with
/// CAP_AUDIT_CONTROL may change its own unless the system made it
/// immutable (`audit=1` and `auditctl --loginuid-immutable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginUid {
    Set(u32),
    /// 4294967295: no login set it (a daemon, a boot script, a container).
    Unset,
    /// Something else was found there: kept as found.
    Other(String),
    /// No such file (a kernel without audit support), or unreadable.
    Unavailable,
}

/// The login uid of this process.
pub fn login_uid() -> LoginUid {
    match std::fs::read_to_string("/proc/self/loginuid") {
        Ok(text) => parse_login_uid(&text),
        Err(_) => LoginUid::Unavailable,
    }
}

/// The text of `/proc/self/loginuid`, read.
pub fn parse_login_uid(text: &str) -> LoginUid {
    let t = text.trim();
    match t.parse::<u32>() {
        Ok(u32::MAX) => LoginUid::Unset,
        Ok(uid) => LoginUid::Set(uid),
        Err(_) => LoginUid::Other(t.to_string()),
    }
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
    fn login_shells_are_listed_less_nologin_and_false() {
        let shells = login_shells(Some(
            "# /etc/shells: valid login shells\n/bin/sh\n  /bin/bash  \n\n/usr/sbin/nologin\n/bin/false\n/usr/bin/tmux\n",
        ));
        let mut got: Vec<&str> = shells.iter().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, ["/bin/bash", "/bin/sh", "/usr/bin/tmux"]);
        // No file: getusershell's default.
        let mut default: Vec<String> = login_shells(None).into_iter().collect();
        default.sort_unstable();
        assert_eq!(default, ["/bin/csh", "/bin/sh"]);
    }

    #[test]
    fn passwd_sources_of_nsswitch() {
        let conf = "# comment passwd: ldap\ngroup: files sss\npasswd:   files [NOTFOUND=return] sss systemd # tail\nshadow: files\n";
        let sources = passwd_sources(Some(conf));
        assert_eq!(sources, ["files", "sss", "systemd"]);
        assert_eq!(partial_sources(&sources), ["sss"]);
        let debian = passwd_sources(Some("passwd:         files systemd\n"));
        assert_eq!(debian, ["files", "systemd"]);
        assert!(partial_sources(&debian).is_empty());
        assert_eq!(
            passwd_sources(Some("passwd: files [ SUCCESS=merge ] ldap\n")),
            ["files", "ldap"]
        );
        // passwdx: is another database; no passwd line: glibc's default.
        assert_eq!(passwd_sources(Some("passwdx: ldap\n")), ["files"]);
        assert_eq!(passwd_sources(None), ["files"]);
    }

    #[test]
    fn login_uids_as_found() {
        assert_eq!(parse_login_uid("1000"), LoginUid::Set(1000));
        assert_eq!(parse_login_uid("4294967295"), LoginUid::Unset);
        assert_eq!(parse_login_uid("0\n"), LoginUid::Set(0));
        assert_eq!(parse_login_uid("-1"), LoginUid::Other("-1".into()));
        // This process's, whatever it is, reads as something.
        assert_ne!(login_uid(), LoginUid::Other(String::new()));
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
