//! An admin's `otp-enroll reset` (the next login enrolls again, whatever
//! `missing` says, and the old token's codes stop working) and `otp-enroll
//! migrate --to system` (the codes keep working from the system store),
//! through the real module: sshd and the real client for the reset,
//! pamtester for the migration.

use std::path::Path;
use std::process::Command;

use testkit::phone::{at, secret_of, ssh_line, with_phone, User, CONFIRM};
use testkit::{authorize_key, binary_path, now, oathtool_totp, secret_file};
use testkit::{totp_secret, PamService, Sshd, SshdSetup, TestUser, KEY_B32, OTP_ONLY, PROMPT};

fn otp_enroll(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("otp-enroll runs")
}

#[test]
#[ignore = "needs root: make test"]
fn after_a_reset_the_next_login_enrolls_and_the_old_codes_are_refused() {
    let sshd = Sshd::start(&SshdSetup {
        pam_auth: "auth required {module} config={config}\n",
        otp_config: "missing = \"deny\"\n",
        authentication_methods: "publickey,keyboard-interactive",
        sshd_extra: "",
    });
    let user = TestUser::new();
    let (key, public) = sshd.client_key();
    authorize_key(&user, &public);
    user.write_secret(&totp_secret());
    let old_code = || oathtool_totp(KEY_B32, Some(now()), &[]);
    // Enrolled: a code of the old token logs in.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &old_code())
        .run();
    assert!(run.success, "{run:#?}");

    let out = otp_enroll(&sshd.config_file, &["--user", &user.name, "reset"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!user.secret_path().exists(), "the tokens are gone");
    let status = otp_enroll(&sshd.config_file, &["--user", &user.name, "status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("enrollment pending"),
        "{status:?}"
    );

    // The old token's code, typed where the new one's is asked: refused,
    // nothing saved, and still pending.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(CONFIRM, &old_code())
        .answer(PROMPT, &old_code())
        .run();
    assert!(!run.success, "{run:#?}");
    assert_eq!(run.asked(PROMPT), 0, "enrollment, not a code: {run:#?}");
    assert!(run.asked(CONFIRM) >= 1, "{run:#?}");
    assert!(!user.secret_path().exists());

    // The next login, with a phone that scans the code: enrolled, under
    // missing = "deny".
    let line = ssh_line(
        &sshd,
        "ssh",
        &key,
        &format!("-T {} echo back-in", at(&user)),
    );
    let (run, phone) = with_phone(&line, User::default());
    assert!(run.success, "{run:#?}\n{}", sshd.log());
    assert!(run.output.contains("back-in"));
    let file = secret_file(&user.secret_path());
    let new_key = otp_core::key::encode_base32(&file.tokens[0].key);
    assert_eq!(new_key, secret_of(&phone.scanned[0]));
    assert_ne!(new_key, KEY_B32);
    let status = otp_enroll(&sshd.config_file, &["--user", &user.name, "status"]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("enrollment pending"),
        "the save cleared the mark: {status:?}"
    );
    // The old token's codes no longer work.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &old_code())
        .run();
    assert!(!run.success, "{run:#?}");
}

#[test]
#[ignore = "needs root: make test"]
fn after_migrating_to_the_system_store_the_codes_keep_working() {
    let pam = PamService::with_config(OTP_ONLY, "store = \"home\"\n");
    let users = [TestUser::new(), TestUser::new()];
    for u in &users {
        u.write_secret(&totp_secret());
    }
    let home_files: Vec<Vec<u8>> = users
        .iter()
        .map(|u| std::fs::read(u.secret_path()).unwrap())
        .collect();
    for u in &users {
        let out = otp_enroll(
            &pam.config_file,
            &["migrate", "--to", "system", "--user", &u.name],
        );
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&u.name),
            "{out:?}"
        );
    }
    pam.write_config("store = \"system\"\n");
    for (u, before) in users.iter().zip(&home_files) {
        testkit::wait_for_fresh_step(5);
        let code = oathtool_totp(KEY_B32, Some(now()), &[]);
        let run = pam.authenticate(&u.name, None, &format!("{code}\n"));
        assert!(run.success, "{}: {run:#?}", u.name);
        // The state went to the system store; the home file is as it was
        // (and no longer read).
        assert_eq!(&std::fs::read(u.secret_path()).unwrap(), before);
        let run = pam.authenticate(&u.name, None, &format!("{code}\n"));
        assert!(!run.success, "replay from the system store: {run:#?}");
    }
}
