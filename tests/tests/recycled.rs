//! A recycled account name inherits nothing (issue 31, item 7), through
//! the real otp-enroll, the real module (pamtester), `userdel -r` and
//! `useradd` with the same name: under `store = "system"` and
//! `store = "postgresql"` the record keeps the uid of the account it was
//! made for; once the name is made again with another uid, the old token
//! is refused with a log line that says why, `otp-enroll report` shows
//! the record as unreadable and why, `otp-enroll` refuses to change the
//! record but removes it, and then the new account is a user without a
//! token.
//!
//! What else was keyed by the name alone: an exemption, the failure tally
//! of a user without a token, and `unlock` and `remove --orphans` that
//! clear them ([`a_recycled_name_inherits_no_exemption_and_no_tally`]).

use std::process::{Command, Output};

use testkit::fixtures::{output, AUTHINFO_UNAVAIL};
use testkit::harness::{hotp_codes, state_dir};
use testkit::pg::{fleet_config, Postgres};
use testkit::syslog::{logged_run, LogSink};
use testkit::{binary_path, require_root, PamService, TestUser, KEY_HEX, OTP_ONLY, PROMPT};

fn enroll(pam: &PamService, user: &str, args: &[&str]) -> Output {
    Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args(["--user", user])
        .args(args)
        .output()
        .unwrap()
}

fn recycled_name_is_refused(pam: &PamService) {
    let mut user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 4);
    let out = enroll(
        pam,
        &user.name,
        &[
            "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[1]));
    assert!(run.success, "{run:?}");

    let old = user.uid;
    user.recycle();
    assert_ne!(user.uid, old);
    let sink = LogSink::new();
    let (run, lines) = logged_run(pam, &sink, &user.name, None, &format!("{}\n", codes[2]));
    assert!(
        !run.success && output(&run).contains(AUTHINFO_UNAVAIL),
        "{run:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("made for uid {old}"))
                && l.contains(&format!("is uid {}", user.uid))),
        "{lines:#?}"
    );
    // The report names it: unreadable, and why.
    let out = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args(["report", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let row = doc["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["user"] == user.name.as_str()))
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(row["state"], "unreadable", "{row}");
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("made for uid {old}"))),
        "{row}"
    );
    // otp-enroll will not change it, says why, and removes it.
    let out = enroll(pam, &user.name, &["disable", "--token", "OATH1"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("made for uid {old}")),
        "{out:?}"
    );
    let out = enroll(pam, &user.name, &["remove"]);
    assert!(out.status.success(), "{out:?}");
    // Now a user without a token (missing = "deny"): the old code is
    // nothing.
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[3]));
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(AUTHINFO_UNAVAIL), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn a_recycled_name_inherits_nothing_from_the_system_store() {
    require_root();
    let pam = PamService::with_config(OTP_ONLY, "store = \"system\"\nmissing = \"deny\"\n");
    recycled_name_is_refused(&pam);
}

#[test]
#[ignore = "needs root: make test"]
fn a_recycled_name_inherits_nothing_from_the_fleet_database() {
    require_root();
    let pg = Postgres::with_schema();
    let pam = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo("web1", &pam.dir, 5);
    let admin = pg.admin_conninfo("ops", &pam.dir, 5);
    pam.write_config(&fleet_config(&conninfo, &admin, "missing = \"deny\"\n"));
    recycled_name_is_refused(&pam);
}

/// pam_otp with forward_pass before a password module: the password it
/// asks and hands on is the first factor an exemption needs (pam_permit
/// stands for pam_unix here).
const FORWARD_PASS: &str =
    "auth required {module} config={config} forward_pass\nauth required pam_permit.so\n";

fn orphans_json(pam: &PamService) -> serde_json::Value {
    let out = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args(["remove", "--orphans", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
#[ignore = "needs root: make test"]
fn a_recycled_name_inherits_no_exemption_and_no_tally() {
    require_root();
    let pam = PamService::with_config(FORWARD_PASS, "store = \"system\"\nmissing = \"deny\"\n");
    let mut user = TestUser::new();
    let state = state_dir(&pam);
    // No token (missing = "deny"): a wrong code is tallied.
    let run = pam.authenticate(&user.name, None, "hunter2\n123456\n");
    assert!(!run.success, "{run:?}");
    let tally = state.join(format!("unenrolled/{}.toml", user.name));
    let text = std::fs::read_to_string(&tally).unwrap();
    assert!(text.contains(&format!("uid = {}\n", user.uid)), "{text}");
    // Exempt: let in without a code.
    let out = enroll(&pam, &user.name, &["exempt", "--reason", "phone lost"]);
    assert!(out.status.success(), "{out:?}");
    let sink = LogSink::new();
    let (run, lines) = logged_run(&pam, &sink, &user.name, None, "hunter2\n");
    assert!(run.success, "{run:?} {lines:#?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");

    // userdel -r, useradd of the same name with another uid.
    let old = user.uid;
    user.recycle();
    assert_ne!(user.uid, old);
    let (run, lines) = logged_run(&pam, &sink, &user.name, None, "hunter2\n123456\n");
    assert!(
        !run.success,
        "the old exemption let the new account in: {run:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("granted to uid {old}")) && l.contains("ignored")),
        "{lines:#?}"
    );
    // The old account's failures were not the new one's: counted afresh.
    let text = std::fs::read_to_string(&tally).unwrap();
    assert!(
        text.contains("failures = 1\n") && text.contains(&format!("uid = {}\n", user.uid)),
        "{text}"
    );
    // unlock clears the tally of a user without a token.
    let out = enroll(&pam, &user.name, &["unlock"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tally"),
        "{out:?}"
    );
    assert!(!tally.exists());

    // remove --orphans: the old exemption goes, and only it.
    let doc = orphans_json(&pam);
    let found: Vec<(&str, &str, u64)> = doc["orphans"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .filter_map(|o| {
            Some((
                o["user"].as_str()?,
                o["kind"].as_str()?,
                o["recorded_uid"].as_u64()?,
            ))
        })
        .collect();
    assert_eq!(
        found,
        [(user.name.as_str(), "exemption", u64::from(old))],
        "{doc}"
    );
    assert!(doc["orphans"][0]["removed"] == true, "{doc}");
    assert!(!state.join(format!("exempt/{}", user.name)).exists());
    let again = orphans_json(&pam);
    assert_eq!(again["orphans"], serde_json::json!([]), "{again}");
    // Still asked for a code, now without a word about the old exemption.
    let (run, lines) = logged_run(&pam, &sink, &user.name, None, "hunter2\n123456\n");
    assert!(!run.success, "{run:?}");
    assert!(
        !lines.iter().any(|l| l.contains("granted to uid")),
        "{lines:#?}"
    );
}
