//! A recycled account name inherits nothing (issue 31, item 7), through
//! the real otp-enroll, the real module (pamtester), `userdel -r` and
//! `useradd` with the same name: under `store = "system"` and
//! `store = "postgresql"` the record keeps the uid of the account it was
//! made for; once the name is made again with another uid, the old token
//! is refused with a log line that says why, `otp-enroll report` shows
//! the record as unreadable and why, `otp-enroll` refuses to change the
//! record but removes it, and then the new account is a user without a
//! token.

use std::process::{Command, Output};

use testkit::fixtures::{output, AUTHINFO_UNAVAIL};
use testkit::harness::hotp_codes;
use testkit::pg::{fleet_config, Postgres};
use testkit::syslog::{logged_run, LogSink};
use testkit::{binary_path, require_root, PamService, TestUser, KEY_HEX, OTP_ONLY};

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
