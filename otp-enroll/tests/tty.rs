//! What happens on a terminal (a real pty through script(1)): remove asks
//! first, a key typed in is not echoed.

mod common;

use std::process::Command;

use common::*;
use testkit::{binary_path, oathtool_hotp_hex, TestUser};

/// Runs `otp-enroll ARGS` as root on a pty, typing `input`; what the
/// terminal showed.
fn on_terminal(args: &str, input: &str) -> (bool, String) {
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!("{} {args}", binary_path("otp-enroll").display()),
        "/dev/null",
    ]);
    let out = run(cmd, input);
    (out.status.success(), text(&out))
}

#[test]
#[ignore = "needs root: make test"]
fn remove_asks_on_a_terminal_unless_yes() {
    let user = TestUser::new();
    ok(&admin(&user, &["new", "--no-confirm", "--qr", "none"]));
    let (done, screen) = on_terminal(&format!("--user {} remove", user.name), "n\n");
    assert!(!done && screen.contains("[y/N]"), "{screen}");
    assert!(screen.contains("not removed"), "{screen}");
    assert!(user.secret_path().exists());
    let (done, screen) = on_terminal(&format!("--user {} remove", user.name), "yes\n");
    assert!(done, "{screen}");
    assert!(!user.secret_path().exists());

    ok(&admin(&user, &["new", "--no-confirm", "--qr", "none"]));
    let (done, screen) = on_terminal(&format!("--user {} remove --yes", user.name), "");
    assert!(done && !screen.contains("[y/N]"), "{screen}");
    assert!(!user.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn a_seed_typed_on_the_terminal_is_not_echoed() {
    let user = TestUser::new();
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!(
            "{} --user {} token --serial S1 --secret - --code {}; stty -a",
            binary_path("otp-enroll").display(),
            user.name,
            oathtool_hotp_hex(RFC4226_HEX, 0)
        ),
        "/dev/null",
    ]);
    let mut typed = false;
    let screen = testkit::drive_pty(cmd, |screen| {
        (!typed && screen.contains("Seed (hex, or base32:KEY): ")).then(|| {
            typed = true;
            RFC4226_HEX.to_string()
        })
    })
    .output;
    assert!(screen.contains("associated"), "{screen}");
    assert!(screen.contains("Seed (hex, or base32:KEY): "), "{screen}");
    assert!(
        !screen.contains(RFC4226_HEX),
        "the seed was echoed: {screen}"
    );
    assert_eq!(secret_file(&user).tokens[0].key, b"12345678901234567890");
    // The terminal's echo is back on afterwards, in the same session.
    assert!(screen.contains(" echo "), "{screen}");
}
