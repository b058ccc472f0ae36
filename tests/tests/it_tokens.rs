//! Several tokens per user through the real libpam (pamtester, pam_wrapper)
//! and the real otp-enroll: a phone (TOTP) and a hardware token (HOTP)
//! both log in, each code once; removing one leaves the other; a wrong code
//! counts once; logins racing with one code let exactly one in; version 1
//! files keep working and stay version 1 until otp-enroll changes them.

use std::fs;
use std::process::Command;

use testkit::fixtures::*;
use testkit::harness::login_race;

/// The phone's key (not the test key: each token has its own).
const PHONE_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A user with a phone and a hardware token whose key is the RFC 4226
/// test key, next counter 0.
fn two_tokens() -> (TestUser, std::path::PathBuf) {
    let user = TestUser::new();
    let path = user.write_secret(&format!(
        "version = 2\nscratch_codes = [\"31415926\"]\n\n\
         [[token]]\nid = \"phone\"\ntype = \"totp\"\nsecret = \"{PHONE_B32}\"\n\n\
         [[token]]\nid = \"OATH0001\"\ntype = \"hotp\"\nserial = \"OATH0001\"\nsecret = \"{KEY_B32}\"\n"
    ));
    (user, path)
}

fn login(svc: &PamService, user: &TestUser, code: &str) -> PamRun {
    svc.authenticate(&user.name, None, &format!("{code}\n"))
}

fn enroll(args: &[&str]) -> std::process::Output {
    let out = Command::new(binary_path("otp-enroll"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
    out
}

fn stdout_ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
#[ignore = "needs root: make test"]
fn a_phone_and_a_hardware_token_each_log_in_once() {
    let (user, path) = two_tokens();
    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let phone = oathtool_totp(PHONE_B32, None, &[]);
    let first = login(&svc, &user, &phone);
    assert!(first.success, "phone: {first:?}");
    // One prompt, not one per token.
    assert_eq!(output(&first).matches(PROMPT).count(), 1, "{first:?}");
    let hw = oathtool_hotp_hex(KEY_HEX, 0);
    assert!(login(&svc, &user, &hw).success, "hardware token");
    // Each code a second time: refused.
    assert!(!login(&svc, &user, &phone).success, "phone code replayed");
    assert!(!login(&svc, &user, &hw).success, "HOTP code replayed");
    let f = secret_file(&path);
    assert_eq!(f.version, 2);
    assert_eq!(f.tokens[1].counter, 1);
    assert!(
        f.tokens.iter().all(|t| t.state.last_used.is_some()),
        "{f:?}"
    );
    assert_eq!(f.state.failures, 2, "the two replays");
    assert_eq!(
        f.scratch_codes,
        ["31415926"],
        "the emergency codes stay the user's"
    );

    // `list` names both, never a secret.
    let listed = stdout_ok(&enroll(&["--user", &user.name, "list"]));
    assert!(
        listed.contains("phone") && listed.contains("OATH0001"),
        "{listed}"
    );
    assert!(
        !listed.contains(PHONE_B32) && !listed.contains(KEY_B32),
        "{listed}"
    );

    let out = stdout_ok(&enroll(&["--user", &user.name, "unlock"]));
    assert!(out.contains("2 failed attempts cleared"), "{out}");

    // Removing the phone leaves the hardware token working.
    let out = stdout_ok(&enroll(&[
        "--user", &user.name, "remove", "--token", "phone",
    ]));
    assert!(
        out.contains("Removed the token \"phone\"") && out.contains("OATH0001"),
        "{out}"
    );
    wait_for_fresh_step(5);
    assert!(
        !login(&svc, &user, &oathtool_totp(PHONE_B32, None, &[])).success,
        "a removed token"
    );
    assert!(login(&svc, &user, &oathtool_hotp_hex(KEY_HEX, 1)).success);
    let f = secret_file(&path);
    assert_eq!(f.tokens.len(), 1);
    assert_eq!(f.tokens[0].id, "OATH0001");
    // The emergency code still works.
    assert!(login(&svc, &user, "31415926").success);
}

/// However many tokens the user has, a wrong code is one failure, and the
/// rate limit is the user's.
#[test]
#[ignore = "needs root: make test"]
fn a_wrong_code_counts_once_against_the_user() {
    let (user, path) = two_tokens();
    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let mut taken: Vec<String> = (-3..=3)
        .map(|s| oathtool_totp(PHONE_B32, Some(now().saturating_add_signed(30 * s)), &[]))
        .collect();
    taken.extend(testkit::harness::hotp_codes(KEY_HEX, 0, 11));
    let wrong = code_not_in(&taken);
    assert!(!login(&svc, &user, &wrong).success);
    let f = secret_file(&path);
    assert_eq!(f.state.failures, 1, "{f:?}");
    assert_eq!(f.tokens[1].counter, 0, "a wrong code moves no counter");
    // Two more make three (the default max_failures): then even a right
    // code of either token is refused.
    assert!(!login(&svc, &user, &wrong).success);
    assert!(!login(&svc, &user, &wrong).success);
    let locked = login(&svc, &user, &oathtool_hotp_hex(KEY_HEX, 0));
    assert!(!locked.success, "{locked:?}");
    assert!(
        output(&locked).contains("Too many failed attempts"),
        "{locked:?}"
    );
    assert_eq!(secret_file(&path).tokens[1].counter, 0);
}

/// 24 logins at once with one hardware token's code, while the user also
/// has a phone: exactly one is let in.
#[test]
#[ignore = "needs root: make test"]
fn racing_logins_with_one_code_let_one_in() {
    let (user, path) = two_tokens();
    let pam = PamService::named("otp-race2", OTP_ONLY, NO_RATE_LIMIT);
    let code = oathtool_hotp_hex(KEY_HEX, 0);
    let runs = login_race(&pam, &user.name, &code, 24);
    let winners = runs.iter().filter(|r| r.success).count();
    assert_eq!(winners, 1, "{runs:#?}");
    let f = secret_file(&path);
    assert_eq!(f.tokens[1].counter, 1);
    assert_eq!(f.state.failures, 23, "every loser's failure was recorded");
}

/// A version 1 file logs in and is written back as version 1 (an older
/// module still reads it); otp-enroll's first change makes it version 2.
#[test]
#[ignore = "needs root: make test"]
fn version_1_stays_version_1_until_otp_enroll_changes_it() {
    let user = TestUser::new();
    let path = user.write_secret(&totp_secret());
    let svc = PamService::new("auth required {module}\n");
    assert!(login(&svc, &user, &fresh_code()).success);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("version = 1") && !text.contains("[[token]]"),
        "{text}"
    );
    assert!(secret_file(&path).tokens[0].state.last_step.is_some());
    // status reads it as it is.
    let status = stdout_ok(&enroll(&["--user", &user.name, "status"]));
    assert!(
        status.contains("(version 1)") && status.contains("token:           app"),
        "{status}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "status changes nothing"
    );
    // Adding a hardware token changes it: version 2, both tokens.
    let out = stdout_ok(&enroll(&[
        "--user",
        &user.name,
        "token",
        "--serial",
        "OATH0002",
        "--secret",
        "3132333435363738393031323334353637383930313233343536373839303132",
        "--code",
        &oathtool_hotp_hex(
            "3132333435363738393031323334353637383930313233343536373839303132",
            3,
        ),
    ]));
    assert!(
        out.contains("Token OATH0002 (HOTP) associated with"),
        "{out}"
    );
    assert!(out.contains("\"app\", \"OATH0002\""), "{out}");
    let f = secret_file(&path);
    assert_eq!(f.version, 2);
    let ids: Vec<&str> = f.tokens.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["app", "OATH0002"]);
    assert_eq!(f.tokens[1].counter, 4);
    // And both still log in.
    assert!(
        login(
            &svc,
            &user,
            &oathtool_hotp_hex(
                "3132333435363738393031323334353637383930313233343536373839303132",
                4
            )
        )
        .success
    );
    wait_for_fresh_step(5);
    let step = now() / 30 + 1;
    assert!(login(&svc, &user, &oathtool_totp(KEY_B32, Some(step * 30), &[])).success);
}

/// A hardware TOTP token, associated with one code from it (oathtool
/// --totp with its own period and digits), logs in beside an app.
#[test]
#[ignore = "needs root: make test"]
fn a_hardware_totp_token_is_added_with_one_code() {
    let user = TestUser::new();
    let path = user.write_secret(&totp_secret());
    let seed = "3132333435363738393031323334353637383930313233343536373839303132";
    // The token's clock runs two 60 s steps behind. otp-enroll reads its
    // own clock to say how far behind: a 60 s boundary between `now()`
    // here and there makes it three. Start early in a step: 20 s is far
    // more than otp-enroll takes, however loaded the machine.
    wait_for_fresh_period(60, 20);
    let t = now() - 120;
    let code = oathtool(&[
        "--totp=sha256",
        "-s",
        "60",
        "-d",
        "8",
        &format!("--now=@{t}"),
        seed,
    ]);
    let out = stdout_ok(&enroll(&[
        "--user",
        &user.name,
        "token",
        "--totp",
        "--period",
        "60",
        "--digits",
        "8",
        "--algorithm",
        "SHA256",
        "--serial",
        "TOTP0001",
        "--secret",
        seed,
        "--code",
        &code,
    ]));
    assert!(
        out.contains("TOTP") && out.contains("2 step(s) behind"),
        "{out}"
    );
    let f = secret_file(&path);
    let hw = f.token("TOTP0001").unwrap();
    assert_eq!((hw.period, hw.digits, hw.state.drift), (60, 8, -2));
    // The code given is used up; the token's next one logs in.
    let svc = PamService::new("auth required {module}\n");
    assert!(
        !login(&svc, &user, &code).success,
        "the association code is used"
    );
    let next = oathtool(&[
        "--totp=sha256",
        "-s",
        "60",
        "-d",
        "8",
        &format!("--now=@{}", t + 60),
        seed,
    ]);
    let run = login(&svc, &user, &next);
    assert!(run.success, "{run:?}");
}

/// Broken version 2 files: the login is refused even with a right code, the
/// file is left as it was, and otp-enroll names the problem.
#[test]
#[ignore = "needs root: make test"]
fn broken_version_2_files_fail_closed_and_are_named() {
    let token =
        |id: &str| format!("[[token]]\nid = \"{id}\"\ntype = \"hotp\"\nsecret = \"{KEY_B32}\"\n\n");
    let seventeen: String = (0..17).map(|i| token(&format!("t{i}"))).collect();
    let cases = [
        (
            format!("version = 2\n{}{}", token("a"), token("a")),
            "token ids must be unique: \"a\"",
        ),
        (
            "version = 2\nscratch_codes = []\n".to_string(),
            "no [[token]] table",
        ),
        (format!("version = 2\n{seventeen}"), "17 tokens, at most 16"),
        (format!("version = 2\n{}digitz = 6\n", token("a")), "digitz"),
        (
            format!("version = 2\n{}[token.state]\nlast_stpe = 1\n", token("a")),
            "last_stpe",
        ),
        (
            format!("version = 2\ntype = \"hotp\"\n{}", token("a")),
            "in each [[token]] table",
        ),
        (
            format!("version = 2\n{}", token("my phone")),
            "token 1: id:",
        ),
    ];
    let svc = PamService::new("auth required {module}\n");
    for (text, named) in cases {
        let user = TestUser::new();
        let path = user.write_secret(&text);
        let before = fs::read(&path).unwrap();
        let run = login(&svc, &user, &oathtool_hotp_hex(KEY_HEX, 0));
        assert!(!run.success, "{named}: {run:?}");
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "{named}: the file was changed"
        );
        let out = enroll(&["--user", &user.name, "list"]);
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && said.contains(named),
            "{named}: {said}"
        );
        assert!(!said.contains(KEY_B32), "{said}");
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "{named}: otp-enroll changed it"
        );
    }
}
