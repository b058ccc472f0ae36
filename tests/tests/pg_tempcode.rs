//! The temporary code of a lost phone in the fleet database (issue 31,
//! item 3; schema version 3, `pam_otp.temp_codes`), through the real
//! otp-enroll and the real module (pamtester) on hosts that each have
//! their own role, against a private PostgreSQL the test starts
//! (`testkit::pg`), with a far `TZ` in every caller's environment:
//! - the guide's lost-phone recipe: `disable` + `temp-code` from one
//!   host, the code accepted once on another and refused after its use
//!   on a third (the database took the use; `status`, `report` and their
//!   `--json` show it, never the code; the audit has the change and each
//!   verdict);
//! - a code made with the shortest `--valid` (1 minute), logging in before
//!   its expiry and refused after it by the database's clock: the test
//!   makes it first and waits out the rest of the minute at the end
//!   (the boundary itself, E−1 s, E and E+1 s, is tests/tests/pg_schema.rs's,
//!   with the time injected into `verify_at`);
//! - a user with no token and only the code: not let in without a code
//!   under `missing = "allow"` while it is live, let in by it, and a user
//!   without a token again once it is used up;
//! - `migrate --to postgresql` carries a home file's code; removing the
//!   last token keeps it, a new token is enrolled beside it, and
//!   `temp-code --revoke` removes it.

use std::process::{Command, Stdio};

use serde_json::Value;
use testkit::fixtures::output;
use testkit::fleet::{db_now, host};
use testkit::harness::hotp_codes;
use testkit::pg::Postgres;
use testkit::syslog::{logged_run_in_zone, only_decision, LogSink};
use testkit::{
    binary_path, otp_enroll_ok, printed_temp_code, require_root, PamService, TestUser, FAR_ZONES,
    KEY_HEX, OTP_ONLY, PROMPT,
};

/// `temp-code ARGS`: the code as printed ("dddd dddd").
fn temp_code(pam: &PamService, user: &str, tz: &str, args: &[&str]) -> String {
    let mut all = vec!["temp-code"];
    all.extend_from_slice(args);
    printed_temp_code(&otp_enroll_ok(pam, user, tz, &all))
}

fn status_json(pam: &PamService, user: &str, tz: &str) -> Value {
    serde_json::from_str(&otp_enroll_ok(pam, user, tz, &["status", "--json"])).unwrap()
}

/// One login on `pam` with `typed`, `TZ` in pamtester's environment:
/// whether it succeeded, the module's decision line, what the user saw.
fn login(
    pam: &PamService,
    sink: &LogSink,
    user: &str,
    tz: &str,
    typed: &str,
) -> (bool, String, String) {
    let (run, lines) = logged_run_in_zone(pam, sink, user, tz, &format!("{typed}\n"));
    (run.success, only_decision(&lines, typed), output(&run))
}

/// [`login`] that must have shown one prompt.
fn prompted(pam: &PamService, sink: &LogSink, user: &str, tz: &str, typed: &str) -> (bool, String) {
    let (ok, line, seen) = login(pam, sink, user, tz, typed);
    assert_eq!(seen.matches(PROMPT).count(), 1, "{line}: {seen}");
    (ok, line)
}

/// A user with one hardware token "OATH1" enrolled through `pam`.
fn with_token(pam: &PamService, tz: &str) -> TestUser {
    let user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 1);
    otp_enroll_ok(
        pam,
        &user.name,
        tz,
        &[
            "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
        ],
    );
    user
}

#[test]
#[ignore = "needs root: make test"]
fn a_temp_code_is_accepted_once_across_hosts_and_refused_after_its_expiry() {
    require_root();
    let pg = Postgres::with_schema();
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 20");
    let hosts = [
        host(&pg, "web1", OTP_ONLY, ""),
        host(&pg, "web2", OTP_ONLY, ""),
        host(&pg, "web3", OTP_ONLY, ""),
    ];
    let sink = LogSink::new();
    let [east, west] = FAR_ZONES;

    // First, the code with the shortest --valid: its minute runs while
    // the rest is tested. The phone is lost: disabled, then the code.
    let bob = with_token(&hosts[0], east);
    let b = bob.name.as_str();
    otp_enroll_ok(&hosts[1], b, west, &["disable", "--token", "OATH1"]);
    let code_b = temp_code(&hosts[1], b, west, &["--valid", "1m", "--uses", "3"]);
    let json = status_json(&hosts[0], b, east);
    let expires_b = json["temp_code"]["expires"].as_u64().unwrap();
    assert_eq!(json["temp_code"]["state"], "active", "{json}");
    assert_eq!(json["temp_code"]["uses_left"], 3, "{json}");
    let (ok, line) = prompted(&hosts[0], &sink, b, west, &code_b);
    assert!(ok, "before its expiry: {line}");
    assert!(
        line.contains(&format!(
            "temporary code accepted (2 uses left, expires at {expires_b})"
        )),
        "{line}"
    );

    // The lost-phone recipe, across three hosts.
    let alice = with_token(&hosts[0], west);
    let a = alice.name.as_str();
    otp_enroll_ok(&hosts[1], a, east, &["disable", "--token", "OATH1"]);
    let code_a = temp_code(&hosts[2], a, west, &[]);
    let digits: String = code_a.chars().filter(char::is_ascii_digit).collect();
    let status = otp_enroll_ok(&hosts[0], a, east, &["status"]);
    assert!(
        status.contains("temporary code:  active, 1 use left"),
        "{status}"
    );
    let out = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&hosts[1].config_file)
        .args(["report", "--json"])
        .env("TZ", west)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!report.contains(&digits), "never the code: {report}");
    let report: Value = serde_json::from_str(&report).unwrap();
    let row = report["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["user"] == a))
        .unwrap_or_else(|| panic!("{a} in {report}"));
    assert_eq!(row["temp_code"]["uses_left"], 1, "{row}");
    assert_eq!(row["temp_code"]["state"], "active", "{row}");
    let (ok, line) = prompted(&hosts[0], &sink, a, west, &code_a);
    assert!(ok, "{line}");
    assert!(
        line.contains("temporary code accepted (0 uses left"),
        "{line}"
    );
    // Used up: refused on another host, and gone from the database (her
    // token is there, disabled: the spent code went with that write).
    let (ok, line) = prompted(&hosts[1], &sink, a, east, &code_a);
    assert!(!ok, "after its use: {line}");
    assert!(line.contains("wrong code"), "{line}");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT count(*) FROM pam_otp.temp_codes WHERE username = '{a}'"
        )),
        "0"
    );
    assert_eq!(status_json(&hosts[2], a, west)["temp_code"], Value::Null);
    // The audit: the change (who made it), and each host's verdict.
    let audit = pg.psql_ok(&format!(
        "SELECT string_agg(CASE kind WHEN 'change' THEN command || coalesce(' ' || detail, '') ELSE db_role || ':' || result END, ',' ORDER BY id) \
           FROM pam_otp.audit WHERE username = '{a}'"
    ));
    assert!(
        audit.ends_with("disable,temp-code uses=1 valid=28800s,web1:temp_code,web2:wrong"),
        "{audit}"
    );

    // A user with no token and only a code, on a host under missing =
    // "allow": asked for a code while it is live, let in by it, and
    // without a token again once it is used up.
    let allow = host(&pg, "web4", OTP_ONLY, "missing = \"allow\"\n");
    let carol = TestUser::new();
    let c = carol.name.as_str();
    let (ok, line, seen) = login(&allow, &sink, c, east, "");
    assert!(ok && !seen.contains(PROMPT), "no token: let in: {line}");
    let code_c = temp_code(&hosts[0], c, west, &["--valid", "30m"]);
    assert_eq!(
        pg.psql_ok(&format!("SELECT presence FROM pam_otp.login_info('{c}')")),
        "tokens"
    );
    let (ok, line) = prompted(&allow, &sink, c, west, "");
    assert!(!ok, "a live code is a token: {line}");
    let (ok, line) = prompted(&allow, &sink, c, east, &code_c);
    assert!(ok, "{line}");
    let (ok, line, seen) = login(&allow, &sink, c, west, "");
    assert!(
        ok && !seen.contains(PROMPT),
        "used up: without a token again: {line}"
    );

    // migrate --to postgresql carries a home file's code.
    let home = PamService::with_config(OTP_ONLY, "");
    let dave = TestUser::new();
    let d = dave.name.as_str();
    dave.write_secret(&format!(
        "version = 2\n\n[[token]]\nid = \"OATH1\"\ntype = \"hotp\"\nsecret = \"{}\"\n",
        testkit::KEY_B32
    ));
    let code_d = temp_code(&home, d, east, &["--uses", "2"]);
    let out = otp_enroll_ok(&hosts[0], d, west, &["migrate", "--to", "postgresql"]);
    assert!(out.contains(&format!("{d}: copied 1 token")), "{out}");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT uses_left FROM pam_otp.temp_codes WHERE username = '{d}'"
        )),
        "2"
    );
    let (ok, line) = prompted(&hosts[1], &sink, d, east, &code_d);
    assert!(ok, "the migrated code: {line}");
    // The lost token removed, the last one: the record keeps the code;
    // a new token is enrolled beside it (the login hook's new
    // --if-missing: there is no token to keep).
    let out = otp_enroll_ok(&hosts[1], d, east, &["remove", "--token", "OATH1", "--yes"]);
    assert!(out.contains("left: the temporary code"), "{out}");
    let held = || {
        pg.psql_ok(&format!(
            "SELECT (SELECT count(*) FROM pam_otp.tokens WHERE username = '{d}') || ':' || \
                    (SELECT uses_left FROM pam_otp.temp_codes WHERE username = '{d}')"
        ))
    };
    assert_eq!(held(), "0:1");
    let out = otp_enroll_ok(
        &hosts[2],
        d,
        west,
        &[
            "new",
            "--if-missing",
            "--no-confirm",
            "--qr",
            "none",
            "--secret",
            "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
        ],
    );
    assert!(out.contains("beside the temporary code"), "{out}");
    assert_eq!(held(), "1:1");
    // Revoked: gone, and refused.
    let out = otp_enroll_ok(&hosts[2], d, west, &["temp-code", "--revoke"]);
    assert!(out.contains("Revoked the temporary code"), "{out}");
    assert_eq!(status_json(&hosts[0], d, east)["temp_code"], Value::Null);
    let (ok, line) = prompted(&hosts[0], &sink, d, west, &code_d);
    assert!(!ok, "revoked: {line}");

    // Bob's minute is over by the database's clock: refused on every
    // host, with uses left, whatever TZ says.
    while db_now(&pg) < expires_b + 1 {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let json = status_json(&hosts[2], b, west);
    assert_eq!(json["temp_code"]["state"], "expired", "{json}");
    assert_eq!(json["temp_code"]["uses_left"], 2, "{json}");
    let (ok, line) = prompted(&hosts[1], &sink, b, east, &code_b);
    assert!(!ok, "after its expiry: {line}");
    assert!(
        line.contains(&format!(
            "refused: the temporary code, which is expired (at {expires_b})"
        )),
        "{line}"
    );
    // Dropped by that refusal's write (bob's token is there): the next
    // host finds no code at all.
    let (ok, line) = prompted(&hosts[2], &sink, b, west, &code_b);
    assert!(!ok && line.contains("wrong code"), "{line}");
    assert_eq!(status_json(&hosts[0], b, east)["temp_code"], Value::Null);
}
