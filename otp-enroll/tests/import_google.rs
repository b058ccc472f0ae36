//! `otp-enroll import-google`: a google-authenticator file's codes work
//! through pam_otp afterwards; the old file is left alone.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use common::*;
use testkit::{now, oathtool_hotp_hex, oathtool_totp, wait_for_fresh_step, PamService, TestUser};

/// The reference example, as `google-authenticator -t -d -f -r 3 -R 30 -w 3
/// -Q NONE -e 3` writes it (128-bit key, 26 characters).
const KEY: &str = "GHSRB5Q7UU4JBGQUNM4WHIUVQE";

fn google_file(user: &TestUser, text: &str, mode: u32) -> PathBuf {
    let ga = user.home.join(".google_authenticator");
    fs::write(&ga, text).unwrap();
    user.chown(&ga);
    fs::set_permissions(&ga, fs::Permissions::from_mode(mode)).unwrap();
    ga
}

fn login(svc: &PamService, user: &TestUser, code: &str) -> bool {
    svc.authenticate(&user.name, None, &format!("{code}\n"))
        .success
}

#[test]
#[ignore = "needs root: make test"]
fn totp_codes_and_emergency_codes_work_after_import() {
    let user = TestUser::new();
    let original = format!("{KEY}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n59204058\n67424791\n35582731\n");
    let ga = google_file(&user, &original, 0o400);
    let mut cmd = enroll_as(&user);
    cmd.arg("import-google");
    let out = ok(&run(cmd, ""));
    assert!(out.contains("TOTP every 30 s, 3 emergency codes"), "{out}");
    assert!(
        out.contains("note: WINDOW_SIZE 3") && out.contains("note: RATE_LIMIT 3 30"),
        "{out}"
    );
    assert!(!out.contains(KEY), "the key is not printed");
    assert_eq!(
        fs::read_to_string(&ga).unwrap(),
        original,
        "the old file is left as it was"
    );
    let meta = fs::metadata(user.secret_path()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o600));

    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let code = oathtool_totp(KEY, None, &[]);
    assert!(login(&svc, &user, &code));
    assert!(!login(&svc, &user, &code), "no reuse");
    assert!(login(&svc, &user, "67424791"));
    assert!(
        !login(&svc, &user, "67424791"),
        "an emergency code works once"
    );
    assert!(login(&svc, &user, "35582731"));

    // Importing again needs --force.
    let mut cmd = enroll_as(&user);
    cmd.arg("import-google");
    assert!(fails(&run(cmd, ""), 1).contains("--force"));
}

#[test]
#[ignore = "needs root: make test"]
fn hotp_counter_step_size_and_used_steps_carry_over() {
    // HOTP: the counter is the next one expected.
    let user = TestUser::new();
    let b32 = otp_core::key::encode_base32(b"12345678901234567890");
    google_file(
        &user,
        &format!("{b32}\n\" HOTP_COUNTER 4\n\" WINDOW_SIZE 17\n12345678\n"),
        0o600,
    );
    let out = ok(&admin(&user, &["import-google"]));
    assert!(
        out.contains("HOTP, next counter 4") && out.contains("hotp_window = 16"),
        "{out}"
    );
    let meta = fs::metadata(user.secret_path()).unwrap();
    assert_eq!(meta.uid(), user.uid, "root imports as the user");
    let svc = PamService::new("auth required {module}\n");
    assert!(
        !login(&svc, &user, &oathtool_hotp_hex(RFC4226_HEX, 3)),
        "already used"
    );
    assert!(login(&svc, &user, &oathtool_hotp_hex(RFC4226_HEX, 4)));

    // TOTP with a 60 s step, a lenient key (lower case, groups, '0' for 'O')
    // and DISALLOW_REUSE's used step: a code already used with
    // google-authenticator stays used.
    let user = TestUser::new();
    let key = "GHSRB5Q7UU4JBGQUNM4WHIUVQO";
    let lenient = "ghsr b5q7 uu4j bgqu nm4w hiuv q0";
    testkit::wait_for_fresh_period(60, 8);
    let step = now() / 60;
    let path = user.home.join("elsewhere");
    fs::write(
        &path,
        format!("{lenient}\n\" STEP_SIZE 60\n\" DISALLOW_REUSE {step}\n\" TOTP_AUTH\n"),
    )
    .unwrap();
    user.chown(&path);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    ok(&admin(&user, &["import-google", path.to_str().unwrap()]));
    let used = oathtool_totp(key, None, &["--time-step-size=60s"]);
    assert!(!login(&svc, &user, &used), "used before the import");
    let next = oathtool_totp(key, Some(now() + 60), &["--time-step-size=60s"]);
    assert!(login(&svc, &user, &next), "the next step's code works");
}

#[test]
#[ignore = "needs root: make test"]
fn unsafe_or_broken_google_files_are_refused() {
    let user = TestUser::new();
    // Readable by others: refused, as pam_otp's own file would be.
    google_file(&user, &format!("{KEY}\n\" TOTP_AUTH\n"), 0o644);
    let out = admin(&user, &["import-google"]);
    assert!(fails(&out, 1).contains("chmod 600"), "{}", text(&out));
    // Not a key.
    google_file(&user, "hello, world!\n\" TOTP_AUTH\n", 0o600);
    assert!(fails(&admin(&user, &["import-google"]), 1).contains("line 1"));
    // Step size google-authenticator would refuse.
    google_file(
        &user,
        &format!("{KEY}\n\" STEP_SIZE 90\n\" TOTP_AUTH\n"),
        0o600,
    );
    assert!(fails(&admin(&user, &["import-google"]), 1).contains("STEP_SIZE"));
    // No file at all.
    let out = admin(
        &user,
        &["import-google", "/nonexistent/.google_authenticator"],
    );
    assert!(fails(&out, 1).contains("no such file"));
    assert!(!user.secret_path().exists());
}
