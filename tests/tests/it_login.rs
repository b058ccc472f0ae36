//! Logins through the real libpam (pam_wrapper + pamtester) with the built
//! module and a private config: what only the real thing shows. PAM's
//! return codes (a right and a wrong code, no such user, an unreadable
//! home, a broken config, unknown placeholders); the conversation (the
//! prompt, the "not set up" message); PAM_AUTHTOK between pam_otp and
//! pam_unix (forward_pass, try_first_pass, use_first_pass); libpam's own
//! argument syntax (`[prompt=...]`); the file rewritten as the user, 0600
//! under any umask, one code once under 24 processes at once.
//!
//! Which code is accepted (TOTP and HOTP windows, algorithms and digits,
//! replays, scratch codes, spaces and dashes, the rate limit, parse errors
//! of the config) is decided in-process and proven there, as any user
//! runs it: otp-core's `verify::tests`, `otp::tests`, `auth::tests`,
//! `config::tests`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use otp_core::secret_file::SecretFile;
use testkit::fixtures::*;

const RHOST: Option<&str> = Some("203.0.113.7");

fn parse(user: &TestUser) -> SecretFile {
    secret_file(&user.secret_path())
}

#[test]
#[ignore = "needs root: make test"]
fn right_code_succeeds() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    let svc = simple_service("");
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains(SUCCESS), "{run:?}");
    assert!(output(&run).contains(PROMPT), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn wrong_code_fails_and_is_counted() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    let svc = simple_service("");
    let run = svc.authenticate(&user.name, RHOST, &format!("{}\n", wrong_code()));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(AUTH_ERR), "{run:?}");
    assert_eq!(parse(&user).state.failures, 1);
    assert_eq!(parse(&user).tokens[0].state.last_step, None);
}

/// A counter at the top of its range: the right code is accepted and the
/// file saved is still one the module reads; a code beyond the range is
/// refused (before, it was accepted and the file saved could never be read
/// again, failing every later login).
#[test]
#[ignore = "needs root: make test"]
fn hotp_counter_at_the_top_of_its_range_stays_readable() {
    use otp_core::secret_file::MAX_COUNTER;
    let user = TestUser::new();
    user.write_secret(&hotp_secret(MAX_COUNTER - 1));
    let svc = simple_service("hotp_window = 10\n");
    // The look-ahead window reaches past the range: refused, file kept.
    let beyond = oathtool_hotp_hex(KEY_HEX, MAX_COUNTER);
    let run = svc.authenticate(&user.name, None, &format!("{beyond}\n"));
    assert!(!run.success, "{run:?}");
    assert_eq!(parse(&user).tokens[0].counter, MAX_COUNTER - 1);
    let right = oathtool_hotp_hex(KEY_HEX, MAX_COUNTER - 1);
    let run = svc.authenticate(&user.name, None, &format!("{right}\n"));
    assert!(run.success, "{run:?}");
    assert_eq!(parse(&user).tokens[0].counter, MAX_COUNTER);
    // The next login reads the file (a wrong code, not a broken file).
    let run = svc.authenticate(&user.name, None, &format!("{beyond}\n"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(AUTH_ERR), "{run:?}");
    assert!(!output(&run).contains(AUTHINFO_UNAVAIL), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn missing_secret_deny_still_prompts() {
    let user = TestUser::new();
    let svc = simple_service("missing = \"deny\"\n");
    let run = svc.authenticate(&user.name, RHOST, "123456\n");
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(AUTH_ERR), "{run:?}");
    assert!(output(&run).contains(PROMPT), "no prompt: {run:?}");
    assert!(!user.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn missing_secret_allow_succeeds_with_a_message() {
    let user = TestUser::new();
    let svc = simple_service("missing = \"allow\"\n");
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains("not set up"), "{run:?}");
    assert!(!user.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn nullok_argument_allows_a_missing_secret() {
    let user = TestUser::new();
    let svc = PamService::with_config(
        "auth required {module} config={config} nullok\n",
        "missing = \"deny\"\n",
    );
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains("not set up"), "{run:?}");
    // nullok does not let an enrolled user in without a code.
    user.write_secret(&totp_secret());
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(!run.success, "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn forward_pass_hands_the_password_to_pam_unix() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user.set_password("s3cret-Pw");
    let svc = PamService::with_config(
        "auth required {module} config={config} forward_pass\nauth required pam_unix.so use_first_pass\n",
        "",
    );
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw{code}\n"));
    assert!(run.success, "{run:?}");
    // A wrong password with a fresh right code fails in pam_unix.
    wait_for_fresh_step(5);
    let t = now();
    let next = oathtool_totp(KEY_B32, Some(t + 30), &[]);
    let run = svc.authenticate(&user.name, RHOST, &format!("wrong-Pw{next}\n"));
    assert!(!run.success, "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn use_first_pass_without_authtok_fails_without_prompt() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    let before = snapshot(&user.secret_path()).ignoring_atime();
    let svc = PamService::with_config(
        "auth required {module} config={config} use_first_pass\n",
        "",
    );
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
    assert_eq!(snapshot(&user.secret_path()).ignoring_atime(), before);
}

#[test]
#[ignore = "needs root: make test"]
fn success_rewrites_the_file_atomically() {
    let user = TestUser::new();
    let path = user.write_secret(&format!(
        "# my comment\n{}scratch_codes = [\"31415926\"]\n",
        totp_secret()
    ));
    let before = fs::metadata(&path).unwrap();
    let svc = simple_service("");
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    let after = fs::symlink_metadata(&path).unwrap();
    assert!(after.file_type().is_file());
    assert_ne!(after.ino(), before.ino(), "not replaced by rename");
    assert_eq!(after.uid(), user.uid);
    assert_eq!(after.gid(), user.gid);
    assert_eq!(after.permissions().mode() & 0o7777, 0o600);
    let f = parse(&user);
    assert!(f.tokens[0].state.last_step.is_some());
    assert_eq!(f.tokens[0].key, b"12345678901234567890".to_vec());
    assert_eq!(f.scratch_codes, vec!["31415926".to_string()]);
    assert!(
        leftovers(&user.home).is_empty(),
        "{:?}",
        leftovers(&user.home)
    );
}

fn broken_config_fails_closed(config: &str, mode: u32) {
    broken_config_fails_closed_with(config, |cfg| set_mode(cfg, mode));
}

/// Every config here says `default = "skip"` or would otherwise let the
/// user in: a broken one must never be read half-way. Both the user's
/// secret file and the config are left exactly as they were.
fn broken_config_fails_closed_with(config: &str, spoil: impl FnOnce(&std::path::Path)) {
    let user = TestUser::new();
    let path = user.write_secret(&totp_secret());
    let svc = simple_service("");
    let cfg = svc.write_config(config);
    spoil(&cfg);
    let before = (
        snapshot(&path).ignoring_atime(),
        snapshot(&cfg).ignoring_atime(),
    );
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(!run.success, "broken config {config:?}: {run:?}");
    assert!(output(&run).contains(AUTHINFO_UNAVAIL), "{run:?}");
    assert!(output(&run).contains("unavailable"), "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
    assert_eq!(
        (
            snapshot(&path).ignoring_atime(),
            snapshot(&cfg).ignoring_atime()
        ),
        before
    );
}

#[test]
#[ignore = "needs root: make test"]
fn broken_config_owned_by_a_user_fails_closed() {
    let owner = TestUser::new();
    broken_config_fails_closed_with("default = \"skip\"\n", |cfg| owner.chown(cfg));
}

#[test]
#[ignore = "needs root: make test"]
fn broken_config_world_writable_fails_closed() {
    broken_config_fails_closed("default = \"skip\"\n", 0o646);
}

#[test]
#[ignore = "needs root: make test"]
fn broken_config_directory_fails_closed() {
    broken_config_fails_closed_with("", |cfg| {
        fs::remove_file(cfg).unwrap();
        fs::create_dir(cfg).unwrap();
    });
}

#[test]
#[ignore = "needs root: make test"]
fn absent_config_means_the_safe_defaults() {
    // SPEC: the config is optional, absent = defaults (require a code,
    // missing = "deny").
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    let unenrolled = TestUser::new();
    let svc = PamService::with_config("auth required {module} config={config}\n", "");
    fs::remove_file(&svc.config_file).unwrap();
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(!run.success, "no code needed without a config: {run:?}");
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    let run = svc.authenticate(&unenrolled.name, RHOST, &format!("{code}\n"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(PROMPT), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn implausible_user_names_fail_even_where_no_code_is_needed() {
    let svc = simple_service("default = \"skip\"\nmissing = \"allow\"\n");
    for name in ["..", ".", "a/../../etc", "-rf", "a b"] {
        let run = svc.authenticate(name, RHOST, "123456\n");
        assert!(!run.success, "{name:?}: {run:?}");
        assert!(!output(&run).contains(SUCCESS), "{name:?}: {run:?}");
    }
}

/// Restores a path's owner and mode on drop (also when a test fails), so
/// the user's home can be removed.
struct Restore {
    path: std::path::PathBuf,
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Restore {
    fn new(path: &std::path::Path) -> Restore {
        let m = fs::metadata(path).unwrap();
        Restore {
            path: path.to_path_buf(),
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::os::unix::fs::chown(&self.path, Some(self.uid), Some(self.gid));
        let _ = fs::set_permissions(&self.path, fs::Permissions::from_mode(self.mode));
    }
}

#[test]
#[ignore = "needs root: make test"]
fn an_unreadable_home_is_not_a_missing_secret() {
    // missing = "allow" lets users without a secret in; a secret the module
    // cannot even look for must not count as missing.
    let user = TestUser::new();
    let path = user.write_secret(&totp_secret());
    let svc = simple_service("missing = \"allow\"\n");
    let _restore = Restore::new(&user.home);
    std::os::unix::fs::chown(&user.home, Some(0), Some(0)).unwrap();
    set_mode(&user.home, 0o700);
    let before = snapshot(&path).ignoring_atime();
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(!run.success, "let in without a code: {run:?}");
    // Not even the right code helps: the file cannot be read.
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(AUTHINFO_UNAVAIL), "{run:?}");
    assert_eq!(snapshot(&path).ignoring_atime(), before);
}

#[test]
#[ignore = "needs root: make test"]
fn a_dangling_symlink_is_not_a_missing_secret() {
    let user = TestUser::new();
    let link = user.secret_path();
    std::os::unix::fs::symlink(user.home.join("gone.toml"), &link).unwrap();
    user.chown(&link);
    let svc = simple_service("missing = \"allow\"\n");
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(!run.success, "let in without a code: {run:?}");
    let run = svc.authenticate(&user.name, RHOST, "123456\n");
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(AUTHINFO_UNAVAIL), "{run:?}");
    assert!(!user.home.join("gone.toml").exists());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
#[ignore = "needs root: make test"]
fn no_such_user_fails() {
    let svc = simple_service("missing = \"allow\"\ndefault = \"require\"\n");
    let run = svc.authenticate("potnosuchuser", RHOST, "123456\n");
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(USER_UNKNOWN), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn try_first_pass_after_pam_unix_prompts_for_the_code() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user.set_password("s3cret-Pw");
    let svc = PamService::with_config(
        "auth required pam_unix.so\nauth required {module} config={config} try_first_pass\n",
        "",
    );
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw\n{code}\n"));
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains(PROMPT), "{run:?}");
    // The password was not tried as a code: no failure recorded.
    assert_eq!(parse(&user).state.failures, 0);
}

#[test]
#[ignore = "needs root: make test"]
fn use_first_pass_takes_the_code_from_the_earlier_module() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user.set_password("s3cret-Pw");
    let svc = PamService::with_config(
        "auth required pam_unix.so\nauth required {module} config={config} use_first_pass\n",
        "",
    );
    let code = fresh_code();
    // The password is taken as the code: refused, and no second prompt.
    let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw\n{code}\n"));
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn secret_and_prompt_arguments_override_the_config() {
    let user = TestUser::new();
    let custom = user.home.join("custom-otp.toml");
    user.write_owned(&custom, totp_secret(), 0o600);
    let svc = PamService::with_config(
        "auth required {module} config={config} secret=%h/custom-otp.toml [prompt=Token please: ]\n",
        "secret = \"%h/nowhere.toml\"\nprompt = \"Ignored: \"\n",
    );
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains("Token please: "), "{run:?}");
    assert!(!output(&run).contains("Ignored"), "{run:?}");
    let f = secret_file(&custom);
    assert!(f.tokens[0].state.last_step.is_some());
}

/// google-authenticator-libpam's `${USER}` and `${HOME}` work in
/// `secret=`, as `%u` and `%h` do, and in the config's `secret`.
#[test]
#[ignore = "needs root: make test"]
fn google_authenticator_placeholders_in_the_secret_template() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    // A file of its own for each case: each login rewrites it (a code is
    // accepted once per file).
    let enroll_at = |name: &str| {
        let path = user.home.join(name.replace("NAME", &user.name));
        fs::write(&path, totp_secret()).unwrap();
        user.chown(&path);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let by_argument = |template: &str| {
        PamService::with_config(
            &format!("auth required {{module}} config={{config}} secret={template}\n"),
            "",
        )
    };
    let by_config = |template: &str| simple_service(&format!("secret = {template:?}\n"));
    for (svc, file) in [
        (by_argument("${HOME}/.pam_otp.toml"), user.secret_path()),
        (by_argument("%h/${USER}.a.toml"), enroll_at("NAME.a.toml")),
        (
            by_argument("${HOME}/${USER}.b.toml"),
            enroll_at("NAME.b.toml"),
        ),
        (
            by_config("${HOME}/otp-${USER}-%u.toml"),
            enroll_at("otp-NAME-NAME.toml"),
        ),
    ] {
        let before = fs::read(&file).unwrap();
        let code = fresh_code();
        let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
        assert!(run.success, "{}: {run:?}", file.display());
        // The login used (and rewrote) the file the template names.
        assert_ne!(fs::read(&file).unwrap(), before, "{}", file.display());
    }
}

/// Any other placeholder fails closed: a mistyped template must not turn
/// into "no secret file", which nullok lets in without a code.
#[test]
#[ignore = "needs root: make test"]
fn unknown_placeholders_in_the_secret_template_fail_closed() {
    let enrolled = TestUser::new();
    enrolled.write_secret(&totp_secret());
    let unenrolled = TestUser::new();
    for template in [
        // Taken literally, these named a file that does not exist in a
        // safe home: nullok then let everyone in without a code.
        "%h/${FOO}.toml",
        "%h/$USER.toml",
        "${HOME}/${FOO}.toml",
        "/var/lib/otp/$USER",
        "/var/lib/otp/${user}",
        "${HOME",
        "%h/%x.toml",
        "%h/.pam_otp.toml%",
    ] {
        for (where_, svc) in [
            (
                "argument",
                PamService::with_config(
                    &format!(
                        "auth required {{module}} config={{config}} nullok secret={template}\n"
                    ),
                    "",
                ),
            ),
            (
                "config",
                PamService::with_config(
                    "auth required {module} config={config} nullok\n",
                    &format!("secret = {template:?}\n"),
                ),
            ),
        ] {
            for user in [&enrolled, &unenrolled] {
                let run = svc.authenticate(&user.name, RHOST, "");
                assert!(!run.success, "{template} ({where_}): {run:?}");
                assert!(
                    output(&run).contains(AUTHINFO_UNAVAIL),
                    "{template} ({where_}): {run:?}"
                );
            }
        }
    }
}

#[test]
#[ignore = "needs root: make test"]
fn concurrent_logins_accept_a_code_once() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    let svc = simple_service("[rate_limit]\nmax_failures = 0\n");
    let first = fresh_code();
    let second = totp_code(1);
    for code in [first, second] {
        // 24 logins at once, each run again should pam_wrapper kill it
        // before any module ran (see testkit::PamRun::died_before_pam).
        let start = std::sync::Barrier::new(24);
        let input = format!("{code}\n");
        let ok = std::thread::scope(|s| {
            let handles: Vec<_> = (0..24)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        testkit::run_pam_retrying(
                            || svc.pamtester_command(&user.name, RHOST, &["authenticate"]),
                            &input,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|run| run.success)
                .count()
        });
        assert_eq!(ok, 1, "the same code accepted {ok} times");
    }
    assert!(
        leftovers(&user.home).is_empty(),
        "{:?}",
        leftovers(&user.home)
    );
}

#[test]
#[ignore = "needs root: make test"]
fn forward_pass_with_a_skip_rule_still_forwards_the_password() {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user.set_password("s3cret-Pw");
    let svc = PamService::with_config(
        "auth required {module} config={config} forward_pass\nauth required pam_unix.so use_first_pass\n",
        "[[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n",
    );
    let run = svc.authenticate(&user.name, Some("10.1.1.1"), "s3cret-Pw\n");
    assert!(run.success, "{run:?}");
    let run = svc.authenticate(&user.name, Some("10.1.1.1"), "wrong-Pw\n");
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn rewrite_is_0600_whatever_the_callers_umask() {
    // The calling program's umask is not ours to trust: 0277 would make
    // the rewritten file 0400, 0477 one the user can no longer read.
    for umask in ["0277", "0477"] {
        let user = TestUser::new();
        let path = user.write_secret(&totp_secret());
        let svc = simple_service("");
        let make = || {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!("umask {umask} && exec \"$@\""))
                .arg("sh")
                .args(svc.pamtester_argv(&user.name, RHOST, &["authenticate"]));
            cmd
        };
        let code = fresh_code();
        let run = testkit::run_pam_retrying(make, &format!("{code}\n"));
        assert!(run.success, "umask {umask}: {run:?}");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "umask {umask}: mode {mode:o}");
        // And the next login can still read it.
        let next = totp_code(1);
        let run = svc.authenticate(&user.name, RHOST, &format!("{next}\n"));
        assert!(run.success, "umask {umask}: {run:?}");
    }
}

#[test]
#[ignore = "needs root: make test"]
fn forward_pass_with_an_emergency_code() {
    let user = TestUser::new();
    user.write_secret(&format!(
        "{}scratch_codes = [\"31415926\"]\n",
        totp_secret()
    ));
    user.set_password("pw-4711");
    let svc = PamService::with_config(
        "auth required {module} config={config} forward_pass\nauth required pam_unix.so use_first_pass\n",
        "",
    );
    // The password ends in digits: the trailing 8 are the emergency code.
    let run = svc.authenticate(&user.name, RHOST, "pw-471131415926\n");
    assert!(run.success, "{run:?}");
    assert!(parse(&user).scratch_codes.is_empty());
    // Used up: the same input now splits as password "pw-47113141" + a
    // 6-digit code, and fails.
    let run = svc.authenticate(&user.name, RHOST, "pw-471131415926\n");
    assert!(!run.success, "{run:?}");
}
