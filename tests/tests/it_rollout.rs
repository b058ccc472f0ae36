//! A rollout with a deadline and per-user exemptions (issue 31, items 4
//! and 5) through the real otp-enroll and the real libpam (pamtester,
//! pam_wrapper), on the `home` and `system` stores: before `enforce_after`
//! a user without a token is let in and told the date (and, where a first
//! factor shows, may skip the offered enrollment with an empty answer);
//! after it `missing` applies (a config date in the past and one in the
//! future: no waiting); an exemption lets the user in without a code
//! until its end, a few seconds ahead, and not after; `require` refuses a
//! user whose only token is disabled. `TZ=Pacific/Kiritimati` in the
//! caller's environment (otp-enroll's and pamtester's) changes nothing.

use std::process::Command;

use testkit::fixtures::*;
use testkit::harness::{state_dir, Store, StoreWorld};
use testkit::syslog::last_decision;

const FAR: &str = FAR_ZONES[0];
const PHONE_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// pam_otp with forward_pass before a password module: the password it
/// asks and hands on is the first factor an exemption and an enrollment
/// need (pam_permit stands for pam_unix here).
const FORWARD_PASS: &str =
    "auth required {module} config={config} forward_pass\nauth required pam_permit.so\n";

fn give_token(w: &StoreWorld, extra: &str) {
    w.write_secret(&format!(
        "version = 2\n\n[[token]]\nid = \"phone\"\ntype = \"totp\"\nsecret = \"{PHONE_B32}\"\n{extra}"
    ));
}

/// One login answering `input` (lines), `TZ` far away in pamtester's
/// environment: whether it succeeded, what the user saw, and the module's
/// decision line.
fn login(w: &StoreWorld, input: &str) -> (bool, String, String) {
    let (run, lines) = w.run_login(FAR, input);
    (run.success, output(&run), last_decision(&lines))
}

fn rollout_before_and_after_its_date(store: Store) {
    // After the date (2020): missing = "deny" applies.
    let w = StoreWorld::new(
        store,
        OTP_ONLY,
        "missing = \"deny\"\nenforce_after = \"2020-01-15\"\n",
    );
    let (ok, seen, line) = login(&w, "123456\n");
    assert!(!ok, "{store:?}: {seen} {line}");
    assert!(seen.contains(PROMPT), "{seen}");
    // Before the date (2099): let in, told the date; pam_otp alone shows
    // no first factor, so nothing is offered.
    let w = StoreWorld::new(
        store,
        OTP_ONLY,
        "missing = \"deny\"\nenforce_after = \"2099-01-15\"\n",
    );
    let (ok, seen, line) = login(&w, "");
    assert!(ok, "{store:?}: {seen} {line}");
    assert!(
        seen.contains("required from 2099-01-15T00:00:00Z"),
        "{seen}"
    );
    assert!(!seen.contains(PROMPT), "{seen}");
    assert!(line.contains("before enforce_after"), "{line}");
    // With a password module after a forward_pass line: the enrollment is
    // offered, and an empty answer skips it.
    let w = StoreWorld::new(
        store,
        FORWARD_PASS,
        "missing = \"enroll\"\nenforce_after = \"2099-01-15\"\n",
    );
    let (ok, seen, line) = login(&w, "hunter2\n\n");
    assert!(ok, "{store:?}: {seen} {line}");
    assert!(seen.contains("otpauth://"), "a key was offered: {seen}");
    assert!(seen.contains("Enter to skip"), "{seen}");
    assert!(line.contains("skipped"), "{line}");
    assert!(!w.secret_path().exists(), "nothing saved");
    // After its date the same stack enrolls and an empty answer refuses.
    let w = StoreWorld::new(
        store,
        FORWARD_PASS,
        "missing = \"enroll\"\nenforce_after = \"2020-01-15\"\n",
    );
    let (ok, seen, line) = login(&w, "hunter2\n\n\n\n");
    assert!(!ok, "{store:?}: {seen} {line}");
    assert!(!w.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn rollout_before_and_after_its_date_home() {
    rollout_before_and_after_its_date(Store::Home);
}

#[test]
#[ignore = "needs root: make test"]
fn rollout_before_and_after_its_date_system() {
    rollout_before_and_after_its_date(Store::System);
}

fn an_exemption_that_ends(store: Store) {
    let w = StoreWorld::new(store, FORWARD_PASS, "");
    give_token(&w, "");
    // Longer than max_exemption (30 days): refused, nothing written.
    let out = w.enroll(FAR, &["exempt", "--until", "2099-01-15"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_exemption"));
    // Eight seconds from now, written as a far-east admin would.
    let end = now() + 8;
    let until = Command::new("date")
        .env("TZ", "UTC")
        .arg("-d")
        .arg(format!("@{}", end + 14 * 3600))
        .arg("+%Y-%m-%dT%H:%M:%S+14:00")
        .output()
        .unwrap();
    let until = String::from_utf8(until.stdout).unwrap().trim().to_string();
    let out = w.enroll(
        FAR,
        &["exempt", "--until", &until, "--reason", "phone lost"],
    );
    assert!(out.status.success(), "{out:?}");
    let status = w.enroll(FAR, &["status", "--json"]);
    let json = String::from_utf8_lossy(&status.stdout);
    assert!(json.contains(&format!("\"until\":{end}")), "{json}");
    assert!(json.contains("\"reason\":\"phone lost\""), "{json}");
    let (ok, seen, line) = login(&w, "hunter2\n");
    assert!(ok, "{store:?}: exempt: {seen} {line}");
    assert!(!seen.contains(PROMPT), "{seen}");
    assert!(
        line.contains("exempt until") && line.contains("phone lost"),
        "{line}"
    );
    while now() < end {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let (ok, seen, line) = login(&w, "hunter2000000\n");
    assert!(!ok, "{store:?}: the exemption ended: {seen} {line}");
    assert!(seen.contains("Password & verification code"), "{seen}");
    // unexempt of an ended one, and require on a disabled only token.
    assert!(w.enroll(FAR, &["unexempt"]).status.success());
    give_token(&w, "disabled = true\n");
    let out = w.enroll(FAR, &["require"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!state_dir(&w.svc)
        .join("pending")
        .join(&w.user.name)
        .exists());
}

#[test]
#[ignore = "needs root: make test"]
fn an_exemption_that_ends_home() {
    an_exemption_that_ends(Store::Home);
}

#[test]
#[ignore = "needs root: make test"]
fn an_exemption_that_ends_system() {
    an_exemption_that_ends(Store::System);
}

// Under store = "postgresql": tests/tests/pg_exempt.rs.
