//! `store = "system"`: every otp-enroll command on root's files in
//! `<state_dir>/users/`, the plain user's refusals, `reset` and
//! `migrate --to system`. Each test has its own config (`--config`, root's
//! 0644 file) and its own state_dir (a fresh root 0755 directory), never
//! the machine's /var/lib/pam_otp.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use otp_core::secret_file::{OtpKind, SecretFile};
use testkit::harness::RootDir;
use testkit::{require_root, write_mode, TestUser};

const KEY: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// RFC 4226 appendix D: the codes of counters 0 to 9 for [`RFC4226_HEX`].
const RFC4226_CODES: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

/// A private config and state_dir, and for the tests that enumerate
/// accounts (`migrate --all`) a private passwd ([`Sys::with_accounts`]).
struct Sys {
    base: RootDir,
    config: PathBuf,
    accounts: Option<FakeAccounts>,
}

/// An account, by name: a machine account ([`TestUser`]) or one of
/// nss_wrapper's ([`Fake`]).
trait Named {
    fn name(&self) -> &str;
}

impl Named for TestUser {
    fn name(&self) -> &str {
        &self.name
    }
}

/// An account of [`FakeAccounts`], known only to the otp-enroll it is
/// given to.
struct Fake {
    name: String,
    uid: u32,
    home: PathBuf,
}

impl Named for Fake {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Fake {
    fn secret_path(&self) -> PathBuf {
        self.home.join(".pam_otp.toml")
    }

    /// Writes the home secret file as the account (0600).
    fn write_secret(&self, text: &str) {
        let path = self.secret_path();
        fs::write(&path, text).unwrap();
        std::os::unix::fs::lchown(&path, Some(self.uid), Some(self.uid)).unwrap();
        testkit::set_mode(&path, 0o600);
    }
}

impl Sys {
    /// `store = "system"`.
    fn new() -> Sys {
        Sys::with_store("system")
    }

    fn with_store(store: &str) -> Sys {
        require_root();
        // 0755 all the way: test users read the config.
        let base = RootDir::new("system-store", 0o755);
        let state = base.path.join("state");
        fs::create_dir(&state).unwrap();
        testkit::set_mode(&state, 0o755);
        let sys = Sys {
            config: base.path.join("pam_otp.toml"),
            base,
            accounts: None,
        };
        sys.write_config(store);
        sys
    }

    /// Rewrites the config with another `store`, the same state_dir.
    fn write_config(&self, store: &str) {
        write_mode(
            &self.config,
            // The built libpq helper: `migrate --to postgresql` must fail
            // on the database it cannot reach, not on a helper that is only
            // installed by the package.
            format!(
                "store = {store:?}\nstate_dir = {:?}\n[postgresql]\n{}",
                self.state().to_str().unwrap(),
                testkit::pg::helper_line()
            ),
            0o644,
        );
    }

    fn state(&self) -> PathBuf {
        self.base.path.join("state")
    }

    fn users_dir(&self) -> PathBuf {
        self.state().join("users")
    }

    fn user_file(&self, user: &impl Named) -> PathBuf {
        self.users_dir().join(format!("{}.toml", user.name()))
    }

    fn mark(&self, user: &impl Named) -> PathBuf {
        self.state().join("pending").join(user.name())
    }

    /// From now on every otp-enroll run here sees the accounts of a
    /// private passwd (nss_wrapper, [`FakeAccounts`]) and no other: root,
    /// and those [`Sys::account`] adds.
    fn with_accounts(mut self) -> Sys {
        self.accounts = Some(FakeAccounts::new());
        self
    }

    /// Adds `name` (uid `uid`, a home of its own) to the private passwd.
    fn account(&self, name: &str, uid: u32) -> Fake {
        let fake = self.accounts.as_ref().expect("Sys::with_accounts");
        Fake {
            name: name.into(),
            uid,
            home: fake.add(name, uid, "/bin/bash"),
        }
    }

    fn with_config(&self, mut cmd: Command, args: &[&str]) -> Output {
        cmd.arg("--config").arg(&self.config).args(args);
        if let Some(fake) = &self.accounts {
            fake.apply(&mut cmd);
        }
        run(cmd, "")
    }

    /// As root, no --user.
    fn root(&self, args: &[&str]) -> Output {
        self.with_config(enroll(), args)
    }

    /// As root, `--user user`.
    fn admin(&self, user: &impl Named, args: &[&str]) -> Output {
        let mut cmd = enroll();
        cmd.arg("--user").arg(user.name());
        self.with_config(cmd, args)
    }

    /// As an account of the private passwd.
    fn as_fake(&self, user: &Fake, args: &[&str]) -> Output {
        let mut cmd = enroll();
        cmd.arg("--config").arg(&self.config).args(args);
        if let Some(fake) = &self.accounts {
            fake.apply(&mut cmd);
        }
        run(as_uid(user.uid, &cmd), "")
    }

    /// As the user themselves.
    fn as_user(&self, user: &TestUser, args: &[&str]) -> Output {
        self.with_config(enroll_as(user), args)
    }

    /// The user's record in the system store, parsed as the module would.
    fn record(&self, user: &impl Named) -> SecretFile {
        SecretFile::parse(&fs::read_to_string(self.user_file(user)).unwrap()).unwrap()
    }

    /// Everything under state_dir, with owners and modes.
    fn tree(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let m = fs::symlink_metadata(e.path()).unwrap();
                out.push(format!(
                    "{} {}:{} {:o} {}",
                    e.path().display(),
                    m.uid(),
                    m.gid(),
                    m.mode() & 0o7777,
                    m.len()
                ));
                if m.is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.state(), &mut out);
        out
    }
}

/// Asserts `path` is root's, with permission bits `mode`.
fn assert_root_mode(path: &Path, mode: u32) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, 0, mode),
        "{}",
        path.display()
    );
}

/// The names in the user's home (dot files included).
fn home_names(user: &TestUser) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&user.home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn new_with_key(sys: &Sys, user: &TestUser) -> String {
    ok(&sys.admin(
        user,
        &["new", "--secret", KEY, "--no-confirm", "--qr", "none"],
    ))
}

#[test]
#[ignore = "needs root: make test"]
fn root_manages_a_user_on_the_system_store() {
    let sys = Sys::new();
    let user = TestUser::new();
    let home_before = home_names(&user);

    let out = new_with_key(&sys, &user);
    let file = sys.user_file(&user);
    assert!(out.contains(file.to_str().unwrap()), "{out}");
    assert_root_mode(&sys.users_dir(), 0o700);
    assert_root_mode(&file, 0o600);
    assert_eq!(home_names(&user), home_before, "nothing in the home");
    let record = sys.record(&user);
    assert_eq!(record.tokens.len(), 1);
    assert_eq!(record.uid, Some(user.uid), "the account's uid is kept");
    assert_eq!(
        record.tokens[0].key,
        otp_core::key::decode_base32(KEY).unwrap()
    );
    assert_eq!(record.scratch_codes.len(), 5);

    // A hardware token beside it, proven by one code.
    let out = ok(&sys.admin(
        &user,
        &[
            "token",
            "--serial",
            "HW1",
            "--secret",
            RFC4226_HEX,
            "--code",
            RFC4226_CODES[0],
        ],
    ));
    assert!(
        out.contains("HW1") && out.contains(file.to_str().unwrap()),
        "{out}"
    );
    assert_root_mode(&file, 0o600);
    let record = sys.record(&user);
    assert_eq!(
        record
            .tokens
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["app", "HW1"]
    );
    assert_eq!(record.tokens[1].kind, OtpKind::Hotp);
    assert_eq!(record.tokens[1].counter, 1);

    let list = ok(&sys.admin(&user, &["list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("app ") && l.contains("TOTP"))
            && list
                .lines()
                .any(|l| l.starts_with("HW1 ") && l.contains("HOTP")),
        "{list}"
    );
    let status = ok(&sys.admin(&user, &["status"]));
    assert!(
        status.contains(&format!("secret file:     {}", file.display()))
            && status.contains("tokens:          2")
            && status.contains("emergency codes: 5 left")
            && !status.contains("pending"),
        "{status}"
    );
    assert!(!text(&sys.admin(&user, &["status"])).contains(KEY));

    // resync, scratch and unlock change root's file, still 0600.
    ok(&sys.admin(&user, &["resync", RFC4226_CODES[3], RFC4226_CODES[4]]));
    assert_eq!(sys.record(&user).tokens[1].counter, 5);
    let out = ok(&sys.admin(&user, &["scratch", "-n", "3"]));
    let codes = printed_codes(&out);
    assert_eq!(codes.len(), 3);
    assert_eq!(sys.record(&user).scratch_codes, codes);
    ok(&sys.admin(&user, &["unlock"]));
    assert_root_mode(&file, 0o600);

    ok(&sys.admin(&user, &["remove", "--token", "HW1", "--yes"]));
    assert_eq!(sys.record(&user).tokens.len(), 1);
    let out = ok(&sys.admin(&user, &["remove", "--yes"]));
    assert!(out.contains(file.to_str().unwrap()), "{out}");
    assert!(!file.exists());
    let out = fails(&sys.admin(&user, &["status"]), 1);
    assert!(out.contains("not enrolled"), "{out}");
    fails(&sys.admin(&user, &["list"]), 1);
    assert_eq!(home_names(&user), home_before, "nothing in the home, ever");
}

#[test]
#[ignore = "needs root: make test"]
fn a_plain_user_is_told_how_enrollment_happens_and_nothing_changes() {
    let sys = Sys::new();
    let user = TestUser::new();
    let home_before = home_names(&user);
    let tree_before = sys.tree();

    // new: refused before any secret (the confirmation code it would ask
    // for is on stdin, so a secret shown and saved would show here).
    let mut cmd = enroll_as(&user);
    cmd.arg("--config")
        .arg(&sys.config)
        .args(["new", "--qr", "utf8"]);
    let out = run(cmd, "123456\n123456\n123456\n");
    let all = fails(&out, 1);
    assert!(
        all.contains("kept by the system (store = \"system\")")
            && all.contains(&format!("otp-enroll --user {}", user.name))
            && all.contains("nothing was changed"),
        "{all}"
    );
    assert!(
        !all.contains("otpauth://") && !all.contains("Key:"),
        "{all}"
    );
    assert!(out.stdout.is_empty(), "{all}");
    assert_eq!(sys.tree(), tree_before, "nothing in state_dir");
    assert_eq!(home_names(&user), home_before, "nothing in the home");

    // The login hook's `new --if-missing` has nothing to do in a shell.
    let out = sys.as_user(&user, &["new", "--if-missing"]);
    assert!(
        out.status.success() && text(&out).is_empty(),
        "{}",
        text(&out)
    );

    // missing = "enroll" in the config: the message says so.
    write_mode(
        &sys.config,
        format!(
            "store = \"system\"\nmissing = \"enroll\"\nstate_dir = {:?}\n",
            sys.state().to_str().unwrap()
        ),
        0o644,
    );
    let all = fails(&sys.as_user(&user, &["new"]), 1);
    assert!(all.contains("you are set up at your next login"), "{all}");
    sys.write_config("system");

    // Root enrolls the user; the user can neither read nor change it.
    new_with_key(&sys, &user);
    let file = sys.user_file(&user);
    let before = fs::read(&file).unwrap();
    let cat = user.command("cat").arg(&file).output().expect("cat");
    assert!(!cat.status.success());
    assert!(
        String::from_utf8_lossy(&cat.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    assert!(cat.stdout.is_empty());

    for args in [
        &["new", "--force", "--no-confirm", "--qr", "none"][..],
        &["new", "--add", "--no-confirm", "--qr", "none"],
        &[
            "token",
            "--serial",
            "HW1",
            "--secret",
            RFC4226_HEX,
            "--code",
            RFC4226_CODES[0],
        ],
        &["import-google"],
        &["scratch"],
        &["remove", "--yes"],
        &["resync", RFC4226_CODES[0], RFC4226_CODES[1]],
        &["unlock"],
    ] {
        let out = sys.as_user(&user, args);
        let all = fails(&out, 1);
        assert!(
            all.contains("kept by the system") && all.contains("nothing was changed"),
            "{args:?}: {all}"
        );
        assert!(!all.contains("otpauth://"), "{args:?}: {all}");
        assert!(out.stdout.is_empty(), "{args:?}: {all}");
    }
    for args in [&["status"][..], &["list"]] {
        let out = sys.as_user(&user, args);
        let all = fails(&out, 1);
        assert!(
            all.contains("kept by the system")
                && all.contains("only root can read them")
                && all.contains(&format!("otp-enroll --user {} status", user.name)),
            "{args:?}: {all}"
        );
        assert!(!all.contains(KEY), "{all}");
    }
    assert_eq!(fs::read(&file).unwrap(), before, "unchanged");
    assert_eq!(home_names(&user), home_before);

    // --secret-file names a home file: refused under system, for anyone.
    let elsewhere = user.home.join("otp.toml");
    for out in [
        sys.as_user(
            &user,
            &[
                "--secret-file",
                elsewhere.to_str().unwrap(),
                "new",
                "--no-confirm",
            ],
        ),
        sys.admin(
            &user,
            &[
                "--secret-file",
                elsewhere.to_str().unwrap(),
                "new",
                "--no-confirm",
                "--qr",
                "none",
            ],
        ),
        sys.admin(&user, &["--secret-file", "%h/x.toml", "status"]),
    ] {
        let all = fails(&out, 2);
        assert!(
            all.contains("--secret-file applies only to store = \"home\""),
            "{all}"
        );
        assert!(!all.contains("otpauth://"), "{all}");
    }
    assert!(!elsewhere.exists());
    assert_eq!(fs::read(&file).unwrap(), before);
}

#[test]
#[ignore = "needs root: make test"]
fn reset_removes_everything_marks_pending_and_returns_inventory_tokens() {
    let sys = Sys::new();
    let user = TestUser::new();
    let csv = sys.base.path.join("tokens.csv");
    write_mode(&csv, format!("INV1,{RFC4226_HEX},hotp,6,0\n"), 0o600);
    ok(&sys.root(&["inventory", "import", csv.to_str().unwrap()]));

    new_with_key(&sys, &user);
    ok(&sys.admin(
        &user,
        &["token", "--serial", "INV1", "--code", RFC4226_CODES[0]],
    ));
    // The counter moves on (to 7) before the token goes back.
    ok(&sys.admin(
        &user,
        &[
            "resync",
            "--token",
            "INV1",
            RFC4226_CODES[5],
            RFC4226_CODES[6],
        ],
    ));
    let inv = ok(&sys.root(&["inventory", "list"]));
    assert!(inv.contains(&user.name), "{inv}");

    // Only root, and only for a named user.
    let all = fails(&sys.as_user(&user, &["reset", "--yes"]), 1);
    assert!(all.contains("only root"), "{all}");
    let all = fails(
        &sys.with_config(
            {
                let mut c = enroll_as(&user);
                c.args(["--user", &user.name]);
                c
            },
            &["reset"],
        ),
        1,
    );
    assert!(all.contains("only root"), "{all}");
    let all = fails(&sys.root(&["reset"]), 2);
    assert!(all.contains("--user NAME"), "{all}");
    assert!(sys.user_file(&user).exists() && !sys.mark(&user).exists());

    let out = ok(&sys.admin(&user, &["reset"]));
    assert!(
        out.contains(&format!(
            "{0}: removed 2 tokens and 5 emergency codes; {0} will set up a new token at the next login",
            user.name
        )),
        "{out}"
    );
    assert!(
        out.contains("Back in the inventory, unassigned: INV1 (counter 7)"),
        "{out}"
    );
    assert!(!sys.user_file(&user).exists());
    assert_root_mode(&sys.mark(&user), 0o600);
    assert_root_mode(&sys.state().join("pending"), 0o700);

    let status = fails(&sys.admin(&user, &["status"]), 1);
    assert!(
        status.contains("not enrolled")
            && status.contains(
                "enrollment pending (otp-enroll reset or require): a new token is set up at the next login"
            ),
        "{status}"
    );
    // The inventory has the token back, unassigned, with its counter.
    let unassigned = ok(&sys.root(&["inventory", "list", "--unassigned"]));
    assert!(unassigned.contains("INV1"), "{unassigned}");
    let tokens: toml::Table =
        toml::from_str(&fs::read_to_string(sys.state().join("inventory/tokens.toml")).unwrap())
            .unwrap();
    let entry = &tokens["token"].as_array().unwrap()[0];
    assert_eq!(entry["serial"].as_str(), Some("INV1"));
    assert!(entry.get("assigned_to").is_none(), "{entry:?}");
    assert_eq!(entry["counter"].as_integer(), Some(7));

    // Again, with nothing left: it only marks.
    let out = ok(&sys.admin(&user, &["reset"]));
    assert!(out.contains("had no tokens"), "{out}");
    assert!(sys.mark(&user).exists());

    // A new token for the user withdraws the mark.
    new_with_key(&sys, &user);
    assert!(!sys.mark(&user).exists());
    let status = ok(&sys.admin(&user, &["status"]));
    assert!(!status.contains("pending"), "{status}");

    // A mark beside tokens (say, set while a removal failed) shows too.
    fs::write(sys.mark(&user), "").unwrap();
    testkit::set_mode(&sys.mark(&user), 0o600);
    let status = ok(&sys.admin(&user, &["status"]));
    assert!(
        status.contains("enrollment pending (otp-enroll reset or require)")
            && status.contains("tokens above"),
        "{status}"
    );

    // A user who never had tokens: just marked.
    let other = TestUser::new();
    let out = ok(&sys.admin(&other, &["reset", "--yes"]));
    assert!(out.contains("had no tokens"), "{out}");
    let status = fails(&sys.admin(&other, &["status"]), 1);
    assert!(status.contains("enrollment pending"), "{status}");
}

#[test]
#[ignore = "needs root: make test"]
fn reset_works_on_the_home_store_too() {
    let sys = Sys::with_store("home");
    let user = TestUser::new();
    ok(&enroll_with_config(&sys, &user));
    assert!(user.secret_path().exists());
    let out = ok(&sys.admin(&user, &["reset", "--yes"]));
    assert!(
        out.contains("removed 1 token and 5 emergency codes"),
        "{out}"
    );
    assert!(!user.secret_path().exists());
    assert!(sys.mark(&user).exists(), "the mark is root's, in state_dir");
    let status = fails(&sys.admin(&user, &["status"]), 1);
    assert!(status.contains("enrollment pending"), "{status}");
}

fn enroll_with_config(sys: &Sys, user: &TestUser) -> Output {
    sys.admin(
        user,
        &["new", "--secret", KEY, "--no-confirm", "--qr", "none"],
    )
}

const V1: &str = "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\nscratch_codes = [\"31415926\", \"27182818\"]\n";

const V2: &str = "version = 2\nscratch_codes = [\"31415926\"]\n\n[[token]]\nid = \"phone\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\n\n[[token]]\nid = \"OATH00012345\"\ntype = \"hotp\"\nserial = \"OATH00012345\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\ncounter = 12\n";

#[test]
#[ignore = "needs root: make test"]
fn migrate_copies_home_files_into_the_system_store() {
    // The config still says "home" while the files are copied. `--all`
    // walks the accounts of a private passwd, never the machine's (whose
    // users' home files are not this test's to read): a machine account
    // with a home file, the decoy, must not be copied.
    let sys = Sys::with_store("home").with_accounts();
    let decoy = TestUser::new();
    decoy.write_secret(V1);
    let (u1, u2, bare) = (
        sys.account("mig-one", 30401),
        sys.account("mig-two", 30402),
        sys.account("mig-bare", 30403),
    );
    u1.write_secret(V1);
    u2.write_secret(V2);
    // The copy is the home file with the account's uid (issue 31, item
    // 7: a recycled name inherits nothing), which needs version 2.
    let original = |u: &Fake| {
        let mut f = SecretFile::parse(&fs::read_to_string(u.secret_path()).unwrap()).unwrap();
        f.upgrade();
        f.uid = Some(u.uid);
        f
    };

    // Root only; a database that cannot be reached copies nothing and
    // says why; --user or --all.
    let all = fails(
        &sys.as_fake(&u1, &["migrate", "--to", "system", "--user", &u1.name]),
        1,
    );
    assert!(all.contains("only root"), "{all}");
    let all = fails(&sys.root(&["migrate", "--to", "postgresql", "--all"]), 1);
    assert!(
        all.contains(&format!(
            "{}: skipped: cannot write postgresql:{}",
            u1.name, u1.name
        )) && all.contains("pam_otp_admin"),
        "{all}"
    );
    fails(&sys.root(&["migrate", "--to", "system"]), 2);
    assert!(!sys.users_dir().exists(), "nothing copied");

    let out = ok(&sys.root(&["migrate", "--to", "system", "--user", &u1.name]));
    assert!(
        out.contains(&format!(
            "{}: copied 1 token and 2 emergency codes",
            u1.name
        )),
        "{out}"
    );
    assert_root_mode(&sys.users_dir(), 0o700);
    assert_root_mode(&sys.user_file(&u1), 0o600);
    assert_eq!(sys.record(&u1), original(&u1));
    assert_eq!(
        (sys.record(&u1).version, sys.record(&u1).uid),
        (2, Some(30401))
    );
    assert!(!sys.user_file(&u2).exists(), "only the one named");
    let out = ok(&sys.root(&["migrate", "--to", "system", "--user", &bare.name]));
    assert!(
        out.contains(&format!("{}: no home file", bare.name)),
        "{out}"
    );
    assert!(!sys.user_file(&bare).exists());

    // A reset mark stays where it is (it belongs to no store).
    fs::create_dir_all(sys.state().join("pending")).unwrap();
    testkit::set_mode(&sys.state().join("pending"), 0o700);
    write_mode(&sys.mark(&u2), "", 0o600);

    // The home file changes after the first copy: a second migration
    // must leave the copy as it is, and say so.
    u1.write_secret(&V1.replace("27182818", "11111111"));
    let home_files = (
        fs::read(u1.secret_path()).unwrap(),
        fs::read(u2.secret_path()).unwrap(),
    );
    let copy1 = fs::read(sys.user_file(&u1)).unwrap();
    let out = sys.root(&["migrate", "--to", "system", "--all"]);
    let s = ok(&out);
    assert!(
        s.lines().any(|l| l
            == format!(
                "{}: already in the system store ({}), left as it is",
                u1.name,
                sys.user_file(&u1).display()
            )),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "{}: copied 2 tokens and 1 emergency code",
            u2.name
        )),
        "{s}"
    );
    assert!(s.contains(&format!("{}: no home file", bare.name)), "{s}");
    assert!(
        s.lines().any(|l| l.starts_with("root: ")),
        "every account: {s}"
    );
    assert!(!s.contains(&decoy.name), "a machine account: {s}");
    assert!(!sys.user_file(&decoy).exists(), "the decoy was copied");
    assert_eq!(
        fs::read(sys.user_file(&u1)).unwrap(),
        copy1,
        "not overwritten"
    );
    assert_eq!(sys.record(&u2), original(&u2));
    assert_eq!(
        (sys.record(&u2).version, sys.record(&u2).uid),
        (2, Some(30402))
    );
    assert_eq!(sys.record(&u2).tokens[1].counter, 12);
    assert_root_mode(&sys.user_file(&u2), 0o600);
    assert!(sys.mark(&u2).exists(), "the mark stays");
    // The home files are left in place, as they were.
    assert_eq!(
        (
            fs::read(u1.secret_path()).unwrap(),
            fs::read(u2.secret_path()).unwrap()
        ),
        home_files
    );

    // Twice more: nothing changes, and each copy says so.
    let copy2 = fs::read(sys.user_file(&u2)).unwrap();
    let s = ok(&sys.root(&["migrate", "--to", "system", "--all"]));
    for u in [&u1, &u2] {
        assert!(
            s.contains(&format!("{}: already in the system store", u.name)),
            "{s}"
        );
    }
    assert_eq!(fs::read(sys.user_file(&u1)).unwrap(), copy1);
    assert_eq!(fs::read(sys.user_file(&u2)).unwrap(), copy2);

    // Once the config says "system", the copies are what otp-enroll sees.
    sys.write_config("system");
    let status = ok(&sys.admin(&u2, &["status"]));
    assert!(
        status.contains(sys.user_file(&u2).to_str().unwrap())
            && status.contains("tokens:          2"),
        "{status}"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn migrate_reports_a_home_file_it_cannot_use() {
    let sys = Sys::with_store("home");
    let user = TestUser::new();
    let path = user.write_secret(V1);
    testkit::set_mode(&path, 0o644);
    let out = sys.root(&["migrate", "--to", "system", "--user", &user.name]);
    let all = fails(&out, 1);
    assert!(
        all.contains(&format!("{}: skipped: ", user.name)) && all.contains("0644"),
        "{all}"
    );
    assert!(!sys.user_file(&user).exists());
    // Broken TOML: the same.
    user.write_secret("version = 1\ntype = \n");
    let all = fails(
        &sys.root(&["migrate", "--to", "system", "--user", &user.name]),
        1,
    );
    assert!(
        all.contains("skipped") && all.contains("cannot be used"),
        "{all}"
    );
    assert!(!sys.user_file(&user).exists());
}
