//! A token's lifecycle (issue 31, items 1 and 2) through the real
//! otp-enroll and the real libpam (pamtester, pam_wrapper), on the `home`
//! and `system` stores: a disabled token is refused at the next login and
//! accepted again after `enable`; a token before its not-before date and
//! after its expiry is refused, inside them accepted; the log says why and
//! never the code; `TZ` set to a far zone in otp-enroll's and the login's
//! environment changes nothing; a vendor file's dates reach the token.

use std::path::PathBuf;
use std::process::Command;

use testkit::fixtures::*;
use testkit::harness::{Store, StoreWorld};
use testkit::syslog::only_decision;

/// The phone's key.
const PHONE_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// A second token's key: the RFC test key.
const LATER_B32: &str = KEY_B32;

/// A user with one TOTP token "phone" in `store`; no rate limit, so that
/// each refusal below is the token's, not a lockout.
fn world(store: Store) -> StoreWorld {
    let w = StoreWorld::new(store, OTP_ONLY, "");
    w.write_secret(&format!(
        "version = 2\nscratch_codes = [\"31415926\"]\n\n[[token]]\nid = \"phone\"\n\
         type = \"totp\"\nsecret = \"{PHONE_B32}\"\n"
    ));
    w
}

/// One login with `code`, `TZ` in pamtester's environment, and the
/// module's decision line.
fn login(w: &StoreWorld, tz: &str, code: &str) -> (bool, String) {
    let (run, lines) = w.run_login(tz, &format!("{code}\n"));
    let line = only_decision(&lines, code);
    // Whatever the reason, the user saw one prompt and nothing else that
    // tells a disabled token from a wrong code.
    assert_eq!(output(&run).matches(PROMPT).count(), 1, "{run:?}");
    (run.success, line)
}

/// Unix time `t` as RFC 3339 with the offset +14:00 (what a far-east
/// admin would type).
fn rfc3339_plus14(t: u64) -> String {
    let local = t as i64 + 14 * 3600;
    let out = Command::new("date")
        .env("TZ", "UTC")
        .arg("-d")
        .arg(format!("@{local}"))
        .arg("+%Y-%m-%dT%H:%M:%S+14:00")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits for the next TOTP step (and enough of it left): a code of it has
/// not been used yet.
fn next_step() {
    let step = now() / 30;
    while now() / 30 == step {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    wait_for_fresh_step(5);
}

fn phone_code() -> String {
    oathtool_totp(PHONE_B32, None, &[])
}

fn disable_then_enable(store: Store) {
    for tz in FAR_ZONES {
        let w = world(store);
        wait_for_fresh_step(5);
        let (ok, _) = login(&w, tz, &phone_code());
        assert!(ok, "{store:?}: the phone logs in");

        let out = w.enroll_ok(tz, &["disable", "--token", "phone"]);
        assert!(out.contains("Disabled the token \"phone\""), "{out}");
        let listed = w.enroll_ok(tz, &["list"]);
        assert!(
            listed.contains("STATE") && listed.contains("disabled"),
            "{listed}"
        );
        let json = w.enroll_ok(tz, &["status", "--json"]);
        assert!(
            json.contains("\"state\":\"disabled\",\"disabled\":true"),
            "{json}"
        );
        let before = w.secret();

        next_step();
        let code = phone_code();
        let (ok, line) = login(&w, tz, &code);
        assert!(!ok, "{store:?}: a disabled token is refused: {line}");
        assert!(line.contains("token phone, which is disabled"), "{line}");
        // Neither are the emergency codes, while no token is active.
        let (ok, line) = login(&w, tz, "31415926");
        assert!(!ok, "{line}");
        assert!(line.contains("no token of the user is active"), "{line}");
        let after = w.secret();
        assert_eq!(
            after.tokens[0].state, before.tokens[0].state,
            "its state did not move"
        );
        assert_eq!(after.scratch_codes, ["31415926"]);
        assert_eq!(after.state.failures, before.state.failures + 2, "counted");

        w.enroll_ok(tz, &["enable", "--token", "phone"]);
        // The same code, refused while disabled, now logs in: the
        // refusal did not use it up.
        let (ok, line) = login(&w, tz, &code);
        assert!(ok, "{store:?}: enabled again: {line}");
    }
}

#[test]
#[ignore = "needs root: make test"]
fn a_disabled_token_is_refused_until_enabled_home() {
    disable_then_enable(Store::Home);
}

#[test]
#[ignore = "needs root: make test"]
fn a_disabled_token_is_refused_until_enabled_system() {
    disable_then_enable(Store::System);
}

fn dates(store: Store) {
    for tz in FAR_ZONES {
        let w = world(store);
        // A day as YYYY-MM-DD is 00:00:00 UTC, whatever TZ says.
        w.enroll_ok(tz, &["expire", "--token", "phone", "2999-01-01"]);
        // `date -u -d 2999-01-01 +%s`
        assert_eq!(w.secret().tokens[0].lifecycle.expires, Some(32_472_144_000));

        // Inside: expiring in a minute (typed with a +14:00 offset).
        wait_for_fresh_step(5);
        let soon = rfc3339_plus14(now() + 60);
        w.enroll_ok(tz, &["expire", "--token", "phone", &soon]);
        assert_eq!(w.secret().tokens[0].lifecycle.expires, Some(now() + 60));
        let (ok, line) = login(&w, tz, &phone_code());
        assert!(ok, "{store:?}: inside its dates: {line}");

        // After: expired a second ago.
        wait_for_fresh_step(5);
        let past = rfc3339_plus14(now() - 1);
        let out = w.enroll_ok(tz, &["expire", "--token", "phone", &past]);
        assert!(out.contains("accepts nothing now"), "{out}");
        let (ok, line) = login(&w, tz, &phone_code());
        assert!(!ok, "{store:?}: expired: {line}");
        assert!(line.contains("token phone, which is expired"), "{line}");
        w.enroll_ok(tz, &["expire", "--token", "phone", "never"]);
        assert_eq!(w.secret().tokens[0].lifecycle.expires, None);

        // Before: a second token valid from an hour on.
        let later = rfc3339_plus14(now() + 3600);
        w.enroll_ok(
            tz,
            &[
                "new",
                "--add",
                "--id",
                "later",
                "--secret",
                LATER_B32,
                "--no-confirm",
                "--qr",
                "none",
                "--not-before",
                &later,
            ],
        );
        wait_for_fresh_step(5);
        let (ok, line) = login(&w, tz, &oathtool_totp(LATER_B32, None, &[]));
        assert!(!ok, "{store:?}: before its not-before: {line}");
        assert!(
            line.contains("token later, which is not yet valid"),
            "{line}"
        );
        // The phone, expiry cleared, is active beside it.
        next_step();
        let (ok, line) = login(&w, tz, &phone_code());
        assert!(ok, "{store:?}: {line}");
        // And a token valid since a past day logs in.
        w.enroll_ok(
            tz,
            &[
                "new",
                "--add",
                "--id",
                "since",
                "--secret",
                "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
                "--no-confirm",
                "--qr",
                "none",
                "--not-before",
                "2020-01-01",
            ],
        );
        let f = w.secret();
        assert_eq!(
            f.token("since").unwrap().lifecycle.not_before,
            Some(1_577_836_800)
        );
        let (ok, line) = login(
            &w,
            tz,
            &oathtool_totp("MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", None, &[]),
        );
        assert!(ok, "{store:?}: {line}");
    }
}

#[test]
#[ignore = "needs root: make test"]
fn not_before_and_expiry_decide_home() {
    dates(Store::Home);
}

#[test]
#[ignore = "needs root: make test"]
fn not_before_and_expiry_decide_system() {
    dates(Store::System);
}

/// A seed as otp-enroll/tests/pskc/fixtures.py makes it.
fn seed_hex(tag: u8, len: usize) -> String {
    (0..len)
        .map(|i| format!("{:02x}", (i as u8).wrapping_mul(37) ^ tag))
        .collect()
}

fn vendor_dates(store: Store) {
    let w = world(store);
    let policy =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../otp-enroll/tests/data/pskc/policy.xml");
    let out = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&w.svc.config_file)
        .args(["inventory", "import"])
        .arg(&policy)
        .env("TZ", FAR_ZONES[0])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        printed.contains("imported POL-DATES") && !printed.contains("not kept"),
        "{printed}"
    );
    // POL-DATES: python3-pskc wrote StartDate 2020-01-01T00:00:00+02:00
    // and ExpiryDate 2099-12-31T23:00:00-05:00; seed 0x41, TOTP.
    wait_for_fresh_step(5);
    let code = oathtool(&["--totp", &seed_hex(0x41, 20)]);
    w.enroll_ok(
        FAR_ZONES[1],
        &["token", "--serial", "POL-DATES", "--code", &code],
    );
    let f = w.secret();
    let t = f.token("POL-DATES").unwrap();
    assert_eq!(t.lifecycle.not_before, Some(1_577_829_600), "{t:?}");
    assert_eq!(t.lifecycle.expires, Some(4_102_459_200), "{t:?}");
    let json = w.enroll_ok("UTC", &["list", "--json"]);
    assert!(json.contains("\"expires\":4102459200"), "{json}");
    // Inside them: it logs in (the next step's code: the one given to
    // `token` is used up).
    next_step();
    let code = oathtool(&["--totp", &seed_hex(0x41, 20)]);
    let (ok, line) = login(&w, "UTC", &code);
    assert!(ok, "{store:?}: {line}");
}

#[test]
#[ignore = "needs root: make test"]
fn a_vendor_files_dates_reach_the_token_home() {
    vendor_dates(Store::Home);
}

#[test]
#[ignore = "needs root: make test"]
fn a_vendor_files_dates_reach_the_token_system() {
    vendor_dates(Store::System);
}

// Under store = "postgresql": tests/tests/pg_lifecycle.rs.
