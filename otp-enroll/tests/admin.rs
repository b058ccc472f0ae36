//! status, scratch, unlock and remove, by the user and by root with --user.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;
use testkit::{oathtool_totp, wait_for_fresh_step, PamService, TestUser};

const KEY: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn enroll_with_key(user: &TestUser) {
    ok(&admin(
        user,
        &["new", "--secret", KEY, "--no-confirm", "--qr", "none"],
    ));
}

fn login(svc: &PamService, user: &TestUser, code: &str) -> bool {
    svc.authenticate(&user.name, None, &format!("{code}\n"))
        .success
}

#[test]
#[ignore = "needs root: make test"]
fn status_never_shows_the_secret() {
    let user = TestUser::new();
    enroll_with_key(&user);
    let hex = otp_core::key::encode_hex(&otp_core::key::decode_base32(KEY).unwrap());
    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    assert!(login(&svc, &user, &oathtool_totp(KEY, None, &[])));
    for out in [
        admin(&user, &["status"]),
        run(
            {
                let mut c = enroll_as(&user);
                c.arg("status");
                c
            },
            "",
        ),
    ] {
        let s = ok(&out);
        assert!(
            s.contains("TOTP")
                && s.contains("emergency codes: 5 left")
                && s.contains("not locked")
                && s.contains("last code used:")
                && s.contains(&user.name),
            "{s}"
        );
        let all = text(&out);
        for secret_form in [KEY, "JBSW Y3DP", &hex, &hex.to_uppercase(), &hex[..8]] {
            assert!(!all.contains(secret_form), "status shows the secret: {all}");
        }
        let file = fs::read_to_string(user.secret_path()).unwrap();
        for code in printed_codes(&file.replace('"', "\n")) {
            assert!(!all.contains(&code), "status shows an emergency code");
        }
    }
}

#[test]
#[ignore = "needs root: make test"]
fn only_root_acts_for_another_user() {
    let user = TestUser::new();
    let other = TestUser::new();
    enroll_with_key(&user);
    let before = fs::read(user.secret_path()).unwrap();
    for args in [
        &["status"][..],
        &["unlock"],
        &["scratch"],
        &["remove", "--yes"],
        &["new", "--no-confirm", "--force", "--qr", "none"],
        &[
            "token",
            "--serial",
            "S",
            "--secret",
            RFC4226_HEX,
            "--code",
            "755224",
        ],
    ] {
        let mut cmd = enroll_as(&other);
        cmd.arg("--user").arg(&user.name).args(args);
        let out = run(cmd, "");
        assert!(
            fails(&out, 1).contains("only root"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(out.stdout.is_empty());
    }
    assert_eq!(fs::read(user.secret_path()).unwrap(), before);
    // Naming oneself is fine.
    let mut cmd = enroll_as(&user);
    cmd.args(["--user", &user.name, "status"]);
    ok(&run(cmd, ""));
}

#[test]
#[ignore = "needs root: make test"]
fn unlock_scratch_and_remove_as_root_for_a_user() {
    let user = TestUser::new();
    enroll_with_key(&user);
    let svc = PamService::new("auth required {module}\n");

    // Lock the user out through PAM, then unlock as admin.
    for _ in 0..3 {
        assert!(!login(&svc, &user, "000000"));
    }
    let s = ok(&admin(&user, &["status"]));
    assert!(s.contains("locked for") && s.contains("3 failed"), "{s}");
    wait_for_fresh_step(5);
    assert!(
        !login(&svc, &user, &oathtool_totp(KEY, None, &[])),
        "locked: even a right code fails"
    );
    assert!(ok(&admin(&user, &["unlock"])).contains("cleared"));
    assert!(ok(&admin(&user, &["status"])).contains("lockout:         not locked"));
    wait_for_fresh_step(5);
    assert!(
        login(&svc, &user, &oathtool_totp(KEY, None, &[])),
        "unlock cleared the lock"
    );

    // New emergency codes replace the old ones.
    let first = printed_codes(&ok(&admin(&user, &["scratch", "-n", "3"])));
    assert_eq!(first.len(), 3);
    let second = printed_codes(&ok(&admin(&user, &["scratch"])));
    assert_eq!(second.len(), 5);
    assert!(!login(&svc, &user, &first[0]), "replaced codes are gone");
    assert!(login(&svc, &user, &second[1]));
    assert!(!login(&svc, &user, &second[1]), "each works once");
    assert!(ok(&admin(&user, &["status"])).contains("emergency codes: 4 left"));
    fails(&admin(&user, &["scratch", "-n", "0"]), 2);
    fails(&admin(&user, &["scratch", "-n", "1000"]), 2);
    let meta = fs::metadata(user.secret_path()).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (user.uid, user.gid, 0o600),
        "admin writes keep the user's ownership and mode"
    );
    // No temp files left beside it.
    let names: Vec<String> = fs::read_dir(&user.home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    // Remove (stdin is not a terminal: no question).
    assert!(ok(&admin(&user, &["remove"])).contains("no longer has"));
    assert!(!user.secret_path().exists());
    let out = admin(&user, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not enrolled"));
    for args in [
        &["remove"][..],
        &["unlock"],
        &["scratch"],
        &["resync", "1", "2"],
    ] {
        assert!(
            fails(&admin(&user, args), 1).contains("has no two-factor secret"),
            "{args:?}"
        );
    }
}

#[test]
#[ignore = "needs root: make test"]
fn broken_files_are_reported_and_can_be_removed() {
    let user = TestUser::new();
    user.write_secret(
        "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\ndigitz = 6\n",
    );
    let out = admin(&user, &["status"]);
    let msg = fails(&out, 1);
    assert!(
        msg.contains("digitz") && msg.contains("cannot be used"),
        "{msg}"
    );
    assert!(!msg.contains("JBSWY3DP"), "{msg}");
    fails(&admin(&user, &["unlock"]), 1);
    // Group-readable: refused with the fix.
    fs::set_permissions(
        user.secret_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    assert!(fails(&admin(&user, &["status"]), 1).contains("chmod 600"));
    fs::set_permissions(
        user.secret_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // A corrupt file can still be removed, or replaced with --force.
    let before = fs::read(user.secret_path()).unwrap();
    ok(&admin(
        &user,
        &["new", "--force", "--no-confirm", "--qr", "none"],
    ));
    assert_ne!(fs::read(user.secret_path()).unwrap(), before);
    user.write_secret("garbage");
    ok(&admin(&user, &["remove", "--yes"]));
    assert!(!user.secret_path().exists());
}

/// A drift pushed away from the real device (by someone holding the key)
/// makes the device's codes fail at login; `unlock` forgets it and says
/// so, and the device's next code works. The step already used stays used.
#[test]
#[ignore = "needs root: make test"]
fn unlock_resets_a_learned_drift() {
    let user = TestUser::new();
    wait_for_fresh_step(5);
    let now = testkit::now();
    let step = now / 30;
    user.write_secret(&format!(
        "version = 1\ntype = \"totp\"\nsecret = \"{KEY}\"\n\n[state]\n\
         last_step = {}\ndrift = 5\ndrift_moved = {now}\n",
        step - 1
    ));
    let svc = PamService::new("auth required {module}\n");
    assert!(
        !login(&svc, &user, &oathtool_totp(KEY, None, &[])),
        "the window is 5 steps ahead of the real device"
    );
    let out = ok(&admin(&user, &["unlock"]));
    assert!(
        out.contains("1 failed attempts cleared")
            && out.contains("clock drift reset to 0 for \"app\" (was 5 steps)"),
        "{out}"
    );
    let f = secret_file(&user);
    assert_eq!(
        (f.tokens[0].state.drift, f.tokens[0].state.drift_moved),
        (0, 0)
    );
    assert_eq!(
        f.tokens[0].state.last_step,
        Some(step - 1),
        "used steps stay used"
    );
    assert!(!ok(&admin(&user, &["status"])).contains("clock offset"));
    wait_for_fresh_step(5);
    assert!(
        login(&svc, &user, &oathtool_totp(KEY, None, &[])),
        "the real device works again"
    );
    // With nothing to reset, unlock says only what it cleared.
    let out = ok(&admin(&user, &["unlock"]));
    assert!(!out.contains("drift"), "{out}");
}

/// Emergency codes work only beside a token (a record left with a
/// temporary code alone, after the lost phone's token was removed):
/// `scratch` there would print codes that open nothing, so it refuses
/// and changes nothing.
#[test]
#[ignore = "needs root: make test"]
fn scratch_refuses_a_record_that_holds_only_a_temporary_code() {
    let user = TestUser::new();
    enroll_with_key(&user);
    ok(&admin(&user, &["temp-code"]));
    ok(&admin(&user, &["remove", "--token", "app"]));
    let before = fs::read(user.secret_path()).unwrap();
    let said = fails(&admin(&user, &["scratch", "-n", "3"]), 1);
    assert!(
        said.contains("no token") && said.contains("nothing was changed"),
        "{said}"
    );
    assert!(printed_codes(&said).is_empty(), "codes shown: {said}");
    assert_eq!(fs::read(user.secret_path()).unwrap(), before);
}
