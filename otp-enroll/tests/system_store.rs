//! `store = "system"`: every otp-enroll command on root's files in
//! `<state_dir>/users/` and the plain user's refusals. Each test has its own config (`--config`, root's
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

/// A private config and state_dir.
struct Sys {
    base: RootDir,
    config: PathBuf,
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
        };
        sys.write_config(store);
        sys
    }

    /// Rewrites the config with another `store`, the same state_dir.
    fn write_config(&self, store: &str) {
        write_mode(
            &self.config,
            format!(
                "store = {store:?}\nstate_dir = {:?}\n",
                self.state().to_str().unwrap()
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

    fn user_file(&self, user: &TestUser) -> PathBuf {
        self.users_dir().join(format!("{}.toml", user.name))
    }

    fn with_config(&self, mut cmd: Command, args: &[&str]) -> Output {
        cmd.arg("--config").arg(&self.config).args(args);
        run(cmd, "")
    }

    /// As root, `--user user`.
    fn admin(&self, user: &TestUser, args: &[&str]) -> Output {
        let mut cmd = enroll();
        cmd.arg("--user").arg(&user.name);
        self.with_config(cmd, args)
    }

    /// As the user themselves.
    fn as_user(&self, user: &TestUser, args: &[&str]) -> Output {
        self.with_config(enroll_as(user), args)
    }

    /// The user's record in the system store, parsed as the module would.
    fn record(&self, user: &TestUser) -> SecretFile {
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
