//! Hardware HOTP tokens: association, look-ahead at login, resync. The
//! token is the RFC 4226 test key; oathtool -c N is the token pressed.

mod common;

use std::fs;

use common::*;
use testkit::{oathtool_hotp_hex, PamService, TestUser};

fn code(counter: u64) -> String {
    oathtool_hotp_hex(RFC4226_HEX, counter)
}

fn token(user: &TestUser, args: &[&str]) -> std::process::Output {
    let mut full = vec!["token", "--serial", "OATH00012345"];
    full.extend_from_slice(args);
    admin(user, &full)
}

fn login(svc: &PamService, user: &TestUser, code: &str) -> bool {
    svc.authenticate(&user.name, None, &format!("{code}\n"))
        .success
}

#[test]
#[ignore = "needs root: make test"]
fn association_lookahead_resync_and_used_codes() {
    let user = TestUser::new();
    // A wrong code: refused, nothing written.
    let out = token(&user, &["--secret", RFC4226_HEX, "--code", "000000"]);
    assert!(fails(&out, 1).contains("nothing was saved"));
    assert!(!user.secret_path().exists());
    // A code of the wrong length, a bad seed, missing flags: refused too.
    fails(
        &token(&user, &["--secret", RFC4226_HEX, "--code", "12345678"]),
        1,
    );
    fails(
        &token(&user, &["--secret", "31323g", "--code", &code(0)]),
        2,
    );
    fails(&token(&user, &["--secret", "3132", "--code", &code(0)]), 2);
    fails(&token(&user, &["--secret", RFC4226_HEX]), 2);
    fails(
        &admin(
            &user,
            &["token", "--secret", RFC4226_HEX, "--code", &code(0)],
        ),
        2,
    );
    fails(
        &token(
            &user,
            &[
                "--secret",
                RFC4226_HEX,
                "--code",
                &code(0),
                "--counter",
                "9007199254740992",
            ],
        ),
        2,
    );
    assert!(!user.secret_path().exists());

    // The token was pressed 5 times before: its code is counter 5.
    let out = ok(&token(
        &user,
        &["--secret", RFC4226_HEX, "--code", &code(5)],
    ));
    assert!(out.contains("counter now 6"), "{out}");
    let f = secret_file(&user);
    assert_eq!(
        (f.tokens[0].counter, f.tokens[0].serial.as_deref()),
        (6, Some("OATH00012345"))
    );
    assert_eq!(f.tokens[0].key, b"12345678901234567890");
    let s = ok(&admin(&user, &["status"]));
    assert!(
        s.contains("HOTP")
            && s.contains("serial:          OATH00012345")
            && s.contains("next counter 6"),
        "{s}"
    );
    assert!(!s.contains(RFC4226_HEX) && !s.contains("GEZDGNBV"), "{s}");

    let svc = PamService::new("auth required {module}\n");
    assert!(
        !login(&svc, &user, &code(5)),
        "the associating code is used"
    );
    // Look-ahead at login: counter 9 while 6 is expected.
    assert!(login(&svc, &user, &code(9)));
    assert!(!login(&svc, &user, &code(9)));
    // Far ahead (counter 500): login refused.
    assert!(!login(&svc, &user, &code(500)));
    ok(&admin(&user, &["unlock"]));

    // Resync: non-consecutive codes are refused, nothing changes.
    let before = fs::read(user.secret_path()).unwrap();
    let out = admin(&user, &["resync", &code(500), &code(502)]);
    assert!(fails(&out, 1).contains("nothing was changed"));
    let out = admin(&user, &["resync", &code(502), &code(501)]);
    fails(&out, 1);
    assert_eq!(fs::read(user.secret_path()).unwrap(), before);
    fails(&admin(&user, &["resync", &code(501)]), 2);
    fails(&admin(&user, &["resync", "12a456", &code(501)]), 2);
    // Consecutive ones: the counter moves past them.
    let out = ok(&admin(&user, &["resync", &code(501), &code(502)]));
    assert!(out.contains("counter now 503"), "{out}");
    // The resync codes are used up; the next one works.
    for c in [501, 502] {
        assert!(!login(&svc, &user, &code(c)), "resync code {c} reused");
    }
    assert!(login(&svc, &user, &code(503)));
    // Beyond 10 000 presses, resync cannot find them.
    let out = admin(&user, &["resync", &code(20_000), &code(20_001)]);
    fails(&out, 1);

    // Replacing a token needs --force.
    let out = token(&user, &["--secret", RFC4226_HEX, "--code", &code(700)]);
    assert!(fails(&out, 1).contains("--force"));
    ok(&token(
        &user,
        &["--secret", RFC4226_HEX, "--code", &code(700), "--force"],
    ));
    assert_eq!(secret_file(&user).tokens[0].counter, 701);
}

#[test]
#[ignore = "needs root: make test"]
fn seed_from_standard_input_base32_and_counter() {
    let user = TestUser::new();
    // '-': the seed is read from stdin, never a process argument.
    let mut cmd = enroll();
    cmd.args([
        "--user",
        &user.name,
        "token",
        "--serial",
        "T-1",
        "--secret",
        "-",
        "--counter",
        "2000",
        "--code",
    ])
    .arg(code(2500));
    let out = run(cmd, &format!("{RFC4226_HEX}\n"));
    assert!(ok(&out).contains("counter now 2501"));
    assert!(!text(&out).contains(RFC4226_HEX));
    // base32:KEY, as some vendors ship it.
    let other = TestUser::new();
    let out = admin(
        &other,
        &[
            "token",
            "--serial",
            "T-2",
            "--secret",
            "base32:GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "--code",
            &code(0),
        ],
    );
    ok(&out);
    assert_eq!(secret_file(&other).tokens[0].key, b"12345678901234567890");
    // A code below --counter is not searched.
    let third = TestUser::new();
    let out = admin(
        &third,
        &[
            "token",
            "--serial",
            "T-3",
            "--secret",
            RFC4226_HEX,
            "--counter",
            "10",
            "--code",
            &code(3),
        ],
    );
    fails(&out, 1);
    assert!(!third.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn resync_is_for_hotp_only() {
    let user = TestUser::new();
    ok(&admin(&user, &["new", "--no-confirm", "--qr", "none"]));
    let before = fs::read(user.secret_path()).unwrap();
    let out = admin(&user, &["resync", "123456", "654321"]);
    assert!(fails(&out, 1).contains("HOTP"));
    assert_eq!(fs::read(user.secret_path()).unwrap(), before);
}

/// The counter's one range (otp_core::secret_file::MAX_COUNTER, 2^53):
/// --counter beyond it is refused with the range in the message; a token
/// at its very top is associated, and the file saved is one the module
/// reads (a wrong code at login, not a broken file).
#[test]
#[ignore = "needs root: make test"]
fn counter_range_is_refused_on_input_and_never_produced() {
    use otp_core::secret_file::MAX_COUNTER;
    let user = TestUser::new();
    for counter in [
        MAX_COUNTER.to_string(),
        (MAX_COUNTER + 1).to_string(),
        u64::MAX.to_string(),
    ] {
        let out = token(
            &user,
            &[
                "--secret",
                RFC4226_HEX,
                "--counter",
                &counter,
                "--code",
                &code(0),
            ],
        );
        let err = fails(&out, 2);
        assert!(
            err.contains("--counter")
                && err.contains("out of range")
                && err.contains("9007199254740991"),
            "{err}"
        );
    }
    let out = token(
        &user,
        &[
            "--secret",
            RFC4226_HEX,
            "--counter",
            "99999999999999999999",
            "--code",
            &code(0),
        ],
    );
    assert!(fails(&out, 2).contains("--counter"));
    assert!(!user.secret_path().exists());

    let top = MAX_COUNTER - 1;
    let out = ok(&token(
        &user,
        &[
            "--secret",
            RFC4226_HEX,
            "--counter",
            &top.to_string(),
            "--code",
            &code(top),
        ],
    ));
    assert!(out.contains(&format!("counter now {MAX_COUNTER}")), "{out}");
    assert_eq!(secret_file(&user).tokens[0].counter, MAX_COUNTER);
    let svc = PamService::new("auth required {module}\n");
    let run = svc.authenticate(&user.name, None, &format!("{}\n", code(MAX_COUNTER)));
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("Authentication failure"), "{run:?}");
}
