//! The first-login hook (contrib/profile.d/pam-otp.sh, installed as
//! /etc/profile.d/pam-otp.sh) run by an interactive shell on a real pty.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use testkit::{binary_path, TestUser, TEST_ROOT};

fn hook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/profile.d/pam-otp.sh")
}

/// Sources the hook in an interactive `sh` on a pty (script(1)) as `user`,
/// typing `input`; returns everything the terminal showed.
fn login_shell(user: &TestUser, config: &Path, input: &str) -> String {
    let bin_dir = binary_path("otp-enroll").parent().unwrap().to_path_buf();
    let inner = format!(". {}; echo HOOK-DONE", hook().display());
    let mut cmd = user.command("script");
    cmd.args(["-qec", &format!("sh -ic '{inner}'"), "/dev/null"])
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("PAM_OTP_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn config(tag: &str, text: &str) -> PathBuf {
    let dir = Path::new(TEST_ROOT).join(format!("hook-{tag}-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.join("pam_otp.toml");
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    p
}

#[test]
fn hook_offers_enrollment_only_when_enabled_and_missing() {
    let user = TestUser::new();
    let on = config("on", "enroll_on_login = true\n");
    let off = config("off", "enroll_on_login = false\n");

    // Enabled, no secret: the QR code is shown; wrong codes save nothing,
    // and the shell carries on.
    let screen = login_shell(&user, &on, "000000\n000000\n000000\n");
    assert!(screen.contains("Scan this QR code"), "{screen}");
    assert!(screen.contains("nothing was saved"), "{screen}");
    assert!(
        screen.contains("HOOK-DONE"),
        "the hook must not end the shell: {screen}"
    );
    assert!(!user.secret_path().exists());

    // Disabled: nothing happens.
    let screen = login_shell(&user, &off, "");
    assert!(!screen.contains("Scan this QR code"), "{screen}");
    assert!(screen.contains("HOOK-DONE"), "{screen}");

    // Enabled, already enrolled: nothing happens.
    user.write_secret(
        "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\n",
    );
    let screen = login_shell(&user, &on, "");
    assert!(!screen.contains("Scan this QR code"), "{screen}");
    assert!(screen.contains("HOOK-DONE"), "{screen}");
    for p in [on, off] {
        let _ = fs::remove_dir_all(p.parent().unwrap());
    }
}
