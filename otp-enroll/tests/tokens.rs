//! Several tokens per user, through the real otp-enroll and libpam: a
//! second phone with `new --add`, ids, `list`, `remove --token`, `resync
//! --token`, `status`; every command says what it changed, and one that
//! would drop a token nobody named refuses.

mod common;

use common::*;
use testkit::{oathtool_hotp_hex, oathtool_totp, wait_for_fresh_step, PamService, TestUser};

const PHONE1: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const PHONE2: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const HW2_HEX: &str = "3132333435363738393031323334353637383930313233343536373839303132";

fn new_phone(user: &TestUser, key: &str, extra: &[&str]) -> std::process::Output {
    wait_for_fresh_step(5);
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "new", "--qr", "none", "--secret", key]);
    cmd.args(extra);
    run(cmd, &format!("{}\n", oathtool_totp(key, None, &[])))
}

fn login(svc: &PamService, user: &TestUser, code: &str) -> bool {
    svc.authenticate(&user.name, None, &format!("{code}\n"))
        .success
}

#[test]
#[ignore = "needs root: make test"]
fn a_second_phone_is_added_beside_the_first() {
    let user = TestUser::new();
    let out = ok(&new_phone(&user, PHONE1, &["--id", "pixel"]));
    assert!(out.contains("token \"pixel\""), "{out}");
    let codes = printed_codes(&out);
    assert_eq!(codes.len(), 5, "{out}");
    // Without --add (or --force) the first is kept and nothing is written.
    let before = std::fs::read(user.secret_path()).unwrap();
    let out = new_phone(&user, PHONE2, &[]);
    assert!(fails(&out, 1).contains("already exists"), "{}", text(&out));
    assert_eq!(std::fs::read(user.secret_path()).unwrap(), before);
    // --add and --force contradict each other.
    fails(&new_phone(&user, PHONE2, &["--add", "--force"]), 2);
    // The id must be free and valid.
    let out = new_phone(&user, PHONE2, &["--add", "--id", "pixel"]);
    assert!(
        fails(&out, 1).contains("there is a token \"pixel\" already"),
        "{}",
        text(&out)
    );
    fails(&new_phone(&user, PHONE2, &["--add", "--id", "my phone"]), 2);
    assert_eq!(std::fs::read(user.secret_path()).unwrap(), before);

    let out = ok(&new_phone(&user, PHONE2, &["--add"]));
    assert!(
        out.contains("Added token \"app\"") && out.contains("beside \"pixel\""),
        "{out}"
    );
    assert!(out.contains("Emergency codes: unchanged (5 left"), "{out}");
    assert!(
        printed_codes(&out).is_empty(),
        "no new emergency codes: {out}"
    );
    let f = secret_file(&user);
    let ids: Vec<&str> = f.tokens.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["pixel", "app"]);
    assert_eq!(f.scratch_codes, codes);

    // Both phones log in (each code was used once, at confirmation, so
    // the next step's codes).
    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let next = testkit::now() + 30;
    assert!(login(&svc, &user, &oathtool_totp(PHONE1, Some(next), &[])));
    assert!(login(&svc, &user, &oathtool_totp(PHONE2, Some(next), &[])));

    // list and status name both, never a secret.
    let listed = ok(&admin(&user, &["list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[0].starts_with("ID") && lines[1].starts_with("pixel") && lines[2].starts_with("app"),
        "{listed}"
    );
    assert!(
        !lines[1].contains("never"),
        "a login sets last used: {listed}"
    );
    let status = ok(&admin(&user, &["status"]));
    assert!(status.contains("tokens:          2"), "{status}");
    for out in [&listed, &status] {
        assert!(!out.contains(PHONE1) && !out.contains(PHONE2), "{out}");
    }

    // remove without --token would drop both: refused without --force.
    let out = admin(&user, &["remove", "--yes"]);
    assert!(
        fails(&out, 1).contains("has 2 tokens (\"pixel\", \"app\")"),
        "{}",
        text(&out)
    );
    let out = admin(&user, &["remove", "--token", "nope"]);
    assert!(
        fails(&out, 1).contains("no token \"nope\""),
        "{}",
        text(&out)
    );
    let out = ok(&admin(&user, &["remove", "--token", "pixel"]));
    assert!(
        out.contains("Removed the token \"pixel\"") && out.contains("left: \"app\""),
        "{out}"
    );
    // The last one takes the file with it, and says so.
    let out = ok(&admin(&user, &["remove", "--token", "app"]));
    assert!(out.contains("the last of"), "{out}");
    assert!(!user.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn remove_force_takes_all_and_says_which() {
    let user = TestUser::new();
    ok(&new_phone(&user, PHONE1, &[]));
    ok(&new_phone(&user, PHONE2, &["--add", "--id", "tablet"]));
    let out = ok(&admin(&user, &["remove", "--force", "--yes"]));
    assert!(out.contains("tokens \"app\", \"tablet\""), "{out}");
    assert!(!user.secret_path().exists());
}

/// `new --force` replaces every token, and says which went.
#[test]
#[ignore = "needs root: make test"]
fn new_force_names_what_it_replaced() {
    let user = TestUser::new();
    ok(&new_phone(&user, PHONE1, &[]));
    ok(&new_phone(&user, PHONE2, &["--add", "--id", "tablet"]));
    let out = ok(&new_phone(&user, PHONE2, &["--force"]));
    assert!(
        out.contains("Replaced the tokens \"app\", \"tablet\""),
        "{out}"
    );
    assert_eq!(secret_file(&user).tokens.len(), 1);
}

#[test]
#[ignore = "needs root: make test"]
fn resync_picks_the_token_by_id() {
    let user = TestUser::new();
    let hw1 = ok(&admin(
        &user,
        &[
            "token",
            "--serial",
            "HW1",
            "--secret",
            RFC4226_HEX,
            "--code",
            &oathtool_hotp_hex(RFC4226_HEX, 0),
        ],
    ));
    assert!(hw1.contains("tokens now: \"HW1\""), "{hw1}");
    let hw2 = ok(&admin(
        &user,
        &[
            "token",
            "--serial",
            "HW2",
            "--secret",
            HW2_HEX,
            "--code",
            &oathtool_hotp_hex(HW2_HEX, 0),
        ],
    ));
    assert!(hw2.contains("tokens now: \"HW1\", \"HW2\""), "{hw2}");
    // The same serial again: refused without --force.
    let again = admin(
        &user,
        &[
            "token",
            "--serial",
            "HW2",
            "--secret",
            HW2_HEX,
            "--code",
            &oathtool_hotp_hex(HW2_HEX, 1),
        ],
    );
    assert!(
        fails(&again, 1).contains("has a token HW2 already"),
        "{}",
        text(&again)
    );
    // Two HOTP tokens: resync must be told which.
    let (c1, c2) = (
        oathtool_hotp_hex(HW2_HEX, 50),
        oathtool_hotp_hex(HW2_HEX, 51),
    );
    let out = admin(&user, &["resync", &c1, &c2]);
    assert!(
        fails(&out, 1).contains("there are 2 HOTP tokens (\"HW1\", \"HW2\")"),
        "{}",
        text(&out)
    );
    let out = admin(&user, &["resync", "--token", "HW1", &c1, &c2]);
    assert!(
        fails(&out, 1).contains("no two consecutive codes match"),
        "{}",
        text(&out)
    );
    let out = ok(&admin(&user, &["resync", "--token", "HW2", &c1, &c2]));
    assert!(
        out.contains("token \"HW2\"") && out.contains("counter now 52"),
        "{out}"
    );
    let f = secret_file(&user);
    assert_eq!((f.tokens[0].counter, f.tokens[1].counter), (1, 52));
    let svc = PamService::new("auth required {module}\n");
    assert!(login(&svc, &user, &oathtool_hotp_hex(HW2_HEX, 52)));
    assert!(login(&svc, &user, &oathtool_hotp_hex(RFC4226_HEX, 1)));
}

/// A serial is text from the user's own file (store "home"), which may hold
/// a bidi override: `list`, `status` and `remove` show it escaped, never
/// raw on root's terminal.
#[test]
#[ignore = "needs root: make test"]
fn a_serial_from_the_users_file_is_shown_escaped() {
    let user = TestUser::new();
    user.write_secret(&format!(
        "version = 2\n\n[[token]]\nid = \"hw\"\ntype = \"hotp\"\nsecret = \"{PHONE2}\"\nserial = \"AB\\u202eCD\"\ncounter = 0\n"
    ));
    for args in [&["list"][..], &["status"]] {
        let mut cmd = enroll();
        cmd.args(["--user", &user.name]).args(args);
        let out = run(cmd, "");
        let said = ok(&out);
        assert!(
            !out.stdout.windows(3).any(|w| w == "\u{202e}".as_bytes()),
            "{args:?} printed the bidi override raw: {said}"
        );
        assert!(said.contains("AB\\u{202e}CD"), "{args:?}: {said}");
    }
}
