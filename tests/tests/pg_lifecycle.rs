//! A token's lifecycle in the fleet database (issue 31, items 1 and 2;
//! schema version 3), against a private PostgreSQL the test starts
//! (`testkit::pg`):
//! - the SQL verifier (`verify_at`) against the Rust one
//!   (`otp_core::verify`) on records with disabled and dated tokens, at
//!   D−1 s, D and D+1 s: the same verdict (the reason and date of an
//!   inactive one included) and the same state after it; `login_info_at`
//!   calls a user whose every token is inactive enrolled, never "nothing";
//!   `admin_write`/`admin_read` keep the lifecycle;
//! - a populated version 2 database (tests/fixtures/schema-v2.sql, `git
//!   show fa012e2:otp-core/sql/schema.sql`) is upgraded in place by `db
//!   init`, keeps its data, and its version 2 `verify()` answers "wrong"
//!   for a code of a disabled token while `verify_code()` says why;
//! - through the real otp-enroll and the real module (pamtester) on two
//!   hosts, each with its own role and a far `TZ` in the caller's
//!   environment: a token disabled is refused on both at their next
//!   login, and the same code is accepted after `enable`; `expire` and
//!   `--not-before` likewise; `migrate --to postgresql` carries a disabled
//!   and a dated token.

use std::process::Command;

use otp_core::key::encode_hex as hex;
use otp_core::otp::{Algorithm, Generator};
use otp_core::rate_limit::RateLimit;
use otp_core::secret_file::{Inactive, OtpKind, SecretFile, Token};
use otp_core::store::postgresql::SCHEMA_VERSION;
use otp_core::verify::{self, Method, Policy, Refusal, Verdict};
use serde_json::{json, Value};
use testkit::fixtures::output;
use testkit::fleet::{db_now, host};
use testkit::harness::hotp_codes;
use testkit::pg::Postgres;
use testkit::syslog::{logged_run_in_zone, only_decision, LogSink};
use testkit::{
    otp_enroll_ok, require_root, PamService, TestUser, FAR_ZONES, KEY_B32, KEY_HEX, OTP_ONLY,
    PROMPT,
};

const SEED20: &[u8] = b"12345678901234567890";
const SEED32: &[u8] = b"12345678901234567890123456789012";
/// The date the lifecycle turns on: the start of a TOTP step.
const D: u64 = 1_111_111_110;
/// No lock gets in the way of the comparisons (the settings are raised
/// to match).
const POLICY: Policy = Policy {
    totp_skew: 1,
    hotp_window: 10,
    rate_limit: RateLimit {
        max_failures: 1000,
        interval: 30,
    },
};
/// The schema as version 2 shipped it.
const SCHEMA_V2: &str = include_str!("../fixtures/schema-v2.sql");

/// A TOTP token "phone", an 8-digit HOTP token "key" at counter 5, one
/// emergency code.
fn record() -> SecretFile {
    let mut file = SecretFile::with_token(Token::new("phone", OtpKind::Totp, SEED20.to_vec()));
    let mut key = Token::new("key", OtpKind::Hotp, SEED32.to_vec());
    key.digits = 8;
    key.counter = 5;
    key.algorithm = Algorithm::SHA256;
    file.tokens.push(key);
    file.scratch_codes = vec!["31415926".into()];
    file.upgrade();
    file
}

/// [`record`] and a third token "spare" with the phone's key.
fn with_spare() -> SecretFile {
    let mut file = record();
    file.tokens
        .push(Token::new("spare", OtpKind::Totp, SEED20.to_vec()));
    file
}

fn record_json(file: &SecretFile) -> String {
    let tokens: Vec<Value> = file
        .tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "type": t.kind.as_str(), "secret": hex(&t.key),
                "algorithm": t.algorithm.as_str(), "digits": t.digits, "period": t.period,
                "counter": t.counter, "last_step": t.state.last_step,
                "disabled": t.lifecycle.disabled, "not_before": t.lifecycle.not_before,
                "expires": t.lifecycle.expires,
            })
        })
        .collect();
    json!({"scratch_codes": file.scratch_codes, "tokens": tokens}).to_string()
}

/// The Rust verdict as the schema spells it: "verdict|token|detail|why".
fn spelled(v: &Verdict) -> String {
    match v {
        Verdict::Accepted(Method::Totp { token, step }) => format!("totp|{token}|{step}|"),
        Verdict::Accepted(Method::Hotp { token, counter }) => format!("hotp|{token}|{counter}|"),
        Verdict::Accepted(Method::Scratch { left }) => format!("scratch||{left}|"),
        Verdict::Refused(Refusal::Malformed) => "malformed|||".into(),
        Verdict::Refused(Refusal::Wrong) => "wrong|||".into(),
        Verdict::Refused(Refusal::Replay) => "replay|||".into(),
        Verdict::Refused(Refusal::CounterExhausted) => "exhausted|||".into(),
        // The fleet keeps no temporary code (yet): these sequences make
        // none, and a verdict of one would differ from every SQL row.
        Verdict::Accepted(Method::TempCode { left, expires }) => {
            format!("tempcode||{left}|{expires}")
        }
        Verdict::Refused(Refusal::TempCodeGone(_)) => "tempcode_gone|||".into(),
        Verdict::Locked { retry_in } => format!("locked||{retry_in}|"),
        Verdict::Inactive { token, why } => {
            let (why, date) = match why {
                Inactive::Disabled => ("disabled", String::new()),
                Inactive::NotYetValid(t) => ("not_yet_valid", t.to_string()),
                Inactive::Expired(t) => ("expired", t.to_string()),
            };
            format!("inactive|{}|{date}|{why}", token.as_deref().unwrap_or(""))
        }
    }
}

fn state_of_rust(file: &SecretFile) -> String {
    let t: Vec<String> = file
        .tokens
        .iter()
        .map(|t| {
            format!(
                "{}:{}:{:?}:{}:{}:{:?}",
                t.id,
                t.counter,
                t.state.last_step,
                t.state.drift,
                t.state.drift_moved,
                t.state.last_used
            )
        })
        .collect();
    format!(
        "{} {} {:?} {}",
        file.state.failures,
        file.state.last_failure,
        file.scratch_codes,
        t.join(",")
    )
}

fn state_of_sql(pg: &Postgres, user: &str) -> String {
    let users = pg.psql_ok(&format!(
        "SELECT failures || ' ' || last_failure || ' ' || array_to_string(scratch_codes, ',') FROM pam_otp.users WHERE name = '{user}'"
    ));
    let tokens = pg.psql_ok(&format!(
        "SELECT string_agg(id || ':' || counter || ':' || coalesce('Some(' || last_step || ')', 'None') || ':' || drift || ':' || drift_moved || ':' || coalesce('Some(' || last_used || ')', 'None'), ',' ORDER BY position) FROM pam_otp.tokens WHERE username = '{user}'"
    ));
    let mut parts = users.splitn(3, ' ');
    let (f, lf, sc) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let scratch: Vec<&str> = sc.split(',').filter(|s| !s.is_empty()).collect();
    format!("{f} {lf} {scratch:?} {tokens}")
}

type Scenario = (&'static str, fn() -> SecretFile, fn(u64) -> String);

fn phone_at(t: u64) -> String {
    Generator::new(SEED20, Algorithm::SHA1, 6)
        .unwrap()
        .code(t / 30)
}

fn key_code(_: u64) -> String {
    Generator::new(SEED32, Algorithm::SHA256, 8)
        .unwrap()
        .code(6)
}

/// Each record at D−1 s, D and D+1 s, with what is typed then.
const SCENARIOS: [Scenario; 11] = [
    (
        "phone valid from D",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.not_before = Some(D);
            f
        },
        phone_at,
    ),
    (
        "phone expires at D",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.expires = Some(D);
            f
        },
        phone_at,
    ),
    (
        "phone disabled",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.disabled = true;
            f
        },
        phone_at,
    ),
    (
        "HOTP key valid from D",
        || {
            let mut f = record();
            f.tokens[1].lifecycle.not_before = Some(D);
            f
        },
        key_code,
    ),
    (
        "HOTP key expires at D",
        || {
            let mut f = record();
            f.tokens[1].lifecycle.expires = Some(D);
            f
        },
        key_code,
    ),
    (
        "every token expires at D: the emergency code",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.expires = Some(D);
            f.tokens[1].lifecycle.expires = Some(D);
            f
        },
        |_| "31415926".into(),
    ),
    (
        "every token disabled: a wrong code",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.disabled = true;
            f.tokens[1].lifecycle.disabled = true;
            f
        },
        |_| "000000".into(),
    ),
    (
        "phone expires at D, the key active: the emergency code",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.expires = Some(D);
            f
        },
        |_| "31415926".into(),
    ),
    (
        "phone disabled, spare with the same key: the spare accepts",
        || {
            let mut f = with_spare();
            f.tokens[0].lifecycle.disabled = true;
            f
        },
        phone_at,
    ),
    (
        "phone expires at D, the spare has used the step: a replay",
        || {
            let mut f = with_spare();
            f.tokens[0].lifecycle.expires = Some(D);
            f.tokens[2].state.last_step = Some(D / 30 + 5);
            f
        },
        phone_at,
    ),
    (
        "every token valid from D, the phone's code already used",
        || {
            let mut f = record();
            f.tokens[0].lifecycle.not_before = Some(D);
            f.tokens[1].lifecycle.not_before = Some(D);
            f.tokens[0].state.last_step = Some(D / 30 + 5);
            f
        },
        phone_at,
    ),
];

fn started() -> Postgres {
    require_root();
    let pg = Postgres::with_schema();
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
    pg
}

#[test]
#[ignore = "needs root: make test"]
fn the_sql_verifier_skips_inactive_tokens_as_the_rust_one_does_around_each_date() {
    let pg = started();
    let mut seen = Vec::new();
    for (i, (name, make, typed_at)) in SCENARIOS.iter().enumerate() {
        for (k, now) in [D - 1, D, D + 1].into_iter().enumerate() {
            let user = format!("life{i}t{k}");
            let mut file = make();
            pg.psql_ok(&format!(
                "SELECT pam_otp.admin_write('{user}', '{}'::jsonb)",
                record_json(&file)
            ));
            // Whatever the dates, a user with tokens has tokens.
            assert_eq!(
                pg.psql_ok(&format!(
                    "SELECT presence FROM pam_otp.login_info_at('{user}', {now})"
                )),
                "tokens",
                "{name} at {now}"
            );
            let typed = typed_at(now);
            let rust = spelled(&verify::verify(&mut file, &typed, &POLICY, now));
            let sql = pg.psql_ok(&format!(
                "SELECT verdict || '|' || coalesce(token, '') || '|' || coalesce(detail::text, '') || '|' || coalesce(why, '') \
                   FROM pam_otp.verify_at('{user}', '{typed}', NULL, 0, 1, 10, 1000, 30, 'sshd', {now})"
            ));
            assert_eq!(sql, rust, "{name}: {typed:?} at {now}");
            assert_eq!(
                state_of_sql(&pg, &user),
                state_of_rust(&file),
                "{name}: state after {typed:?} at {now}"
            );
            seen.push((i, now, sql));
        }
    }
    // Not a vacuous agreement: what both said where each date turns.
    let said = |i: usize, now: u64| {
        seen.iter()
            .find(|(j, t, _)| *j == i && *t == now)
            .map(|(_, _, s)| s.clone())
            .unwrap()
    };
    let step = D / 30;
    assert_eq!(said(0, D - 1), format!("inactive|phone|{D}|not_yet_valid"));
    assert_eq!(said(0, D), format!("totp|phone|{step}|"));
    assert_eq!(said(1, D - 1), format!("totp|phone|{}|", step - 1));
    assert_eq!(said(1, D), format!("inactive|phone|{D}|expired"));
    assert_eq!(said(1, D + 1), format!("inactive|phone|{D}|expired"));
    assert_eq!(said(2, D), "inactive|phone||disabled");
    assert_eq!(said(3, D - 1), format!("inactive|key|{D}|not_yet_valid"));
    assert_eq!(said(3, D), "hotp|key|6|");
    assert_eq!(said(4, D), format!("inactive|key|{D}|expired"));
    assert_eq!(said(5, D - 1), "scratch||0|");
    assert_eq!(said(5, D), format!("inactive||{D}|expired"));
    assert_eq!(said(6, D), "wrong|||");
    assert_eq!(said(7, D + 1), "scratch||0|");
    assert_eq!(said(8, D), format!("totp|spare|{step}|"));
    assert_eq!(said(9, D - 1), format!("totp|phone|{}|", step - 1));
    assert_eq!(said(9, D), "replay|||");
    assert_eq!(said(10, D - 1), format!("inactive|phone|{D}|not_yet_valid"));
    assert_eq!(said(10, D), "replay|||");

    // The admin's read gives back what was written, lifecycle included.
    let back: Value =
        serde_json::from_str(&pg.psql_ok("SELECT pam_otp.admin_read('life5t0', false)")).unwrap();
    assert_eq!(back["tokens"][0]["expires"], json!(D), "{back}");
    assert_eq!(back["tokens"][0]["disabled"], json!(false), "{back}");
    let back: Value =
        serde_json::from_str(&pg.psql_ok("SELECT pam_otp.admin_read('life2t0', false)")).unwrap();
    assert_eq!(back["tokens"][0]["disabled"], json!(true), "{back}");
    assert_eq!(back["tokens"][0]["not_before"], Value::Null, "{back}");
    // The census shows the lifecycle (otp-enroll report).
    let census = pg.psql_ok(
        "SELECT tokens->0->>'disabled' || ',' || coalesce(tokens->0->>'expires', '') FROM pam_otp.admin_census(3, 30) WHERE name = 'life1t0'",
    );
    assert_eq!(census, format!("false,{D}"));
}

/// `sql` as `role` succeeds; its output.
fn allowed(pg: &Postgres, role: &str, sql: &str) -> String {
    let out = pg.psql_as(role, sql);
    assert!(
        out.status.success(),
        "{role}: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root: make test"]
fn a_version_2_database_is_upgraded_in_place_and_its_hosts_refuse_a_disabled_token() {
    require_root();
    let pg = Postgres::start();
    pg.psql_script(SCHEMA_V2);
    assert_eq!(pg.psql_ok("SELECT version FROM pam_otp.meta"), "2");
    // Populated as version 2 left it: an enrolled user with a hardware
    // token and an emergency code, a pending user, the inventory, a host
    // role, audit rows.
    let a = "alice";
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('{a}', '{{\"scratch_codes\": [\"31415926\"], \"tokens\": [{{\"id\": \"OATH1\", \"type\": \"hotp\", \"secret\": \"{KEY_HEX}\", \"serial\": \"OATH1\"}}]}}'::jsonb)"
    ));
    pg.psql_ok("SELECT pam_otp.admin_set_pending('bob', true)");
    pg.psql_ok(
        "SELECT pam_otp.admin_inventory_write('version = 1' || chr(10) || '# kept' || chr(10))",
    );
    pg.psql_ok("CREATE ROLE web0 LOGIN IN ROLE pam_otp_host");
    let codes = hotp_codes(KEY_HEX, 0, 6);
    // A version 2 host, as its module calls the database.
    let v2_host = |code: &str| {
        allowed(
            &pg,
            "web0",
            &format!("SELECT presence FROM pam_otp.login_info('{a}')"),
        );
        allowed(
            &pg,
            "web0",
            &format!(
                "SELECT verdict, token, detail FROM pam_otp.verify('{a}', '{code}', NULL, '0', '1', '10', '3', '30', 'sshd', '192.0.2.1')"
            ),
        )
    };
    assert_eq!(v2_host(&codes[0]), "hotp|OATH1|0");
    assert_eq!(v2_host("000000"), "wrong||");
    let data = || {
        pg.psql_ok(
            "SELECT (SELECT string_agg(name || ':' || pending || ':' || failures || ':' || array_to_string(scratch_codes, ','), ';' ORDER BY name) FROM pam_otp.users)
                 || '|' || (SELECT string_agg(username || ':' || id || ':' || type || ':' || counter || ':' || coalesce(serial, '') || ':' || encode(secret, 'hex'), ';') FROM pam_otp.tokens)
                 || '|' || (SELECT doc FROM pam_otp.inventory)
                 || '|' || (SELECT totp_skew || ',' || hotp_window || ',' || max_failures || ',' || lock_interval || ',' || audit_days FROM pam_otp.settings)
                 || '|' || (SELECT string_agg(kind || ':' || username || ':' || coalesce(service, '') || ':' || result, ';' ORDER BY id) FROM pam_otp.audit)",
        )
    };
    let before = data();
    assert!(
        before.contains(&format!("{a}:false:1:31415926")),
        "{before}"
    );

    let said = pg.otp_enroll_db_init();
    assert!(
        said.contains(&format!("upgraded from version 2 to {SCHEMA_VERSION}")),
        "{said}"
    );
    assert_eq!(SCHEMA_VERSION, 3);
    assert_eq!(pg.psql_ok("SELECT version FROM pam_otp.meta"), "3");
    assert_eq!(data(), before, "version 2's data, kept");
    assert_eq!(
        pg.psql_ok("SELECT disabled || ':' || coalesce(not_before::text, '-') || ':' || coalesce(expires::text, '-') FROM pam_otp.tokens"),
        "false:-:-",
        "the new columns: an active token"
    );

    // The version 2 host logs in as before...
    assert_eq!(v2_host(&codes[1]), "hotp|OATH1|1");
    // ...and once the token is disabled, its next code is "wrong" to it
    // (it knows no other word), the counter unmoved; verify_code says why.
    pg.psql_ok(&format!(
        "UPDATE pam_otp.tokens SET disabled = true WHERE username = '{a}'"
    ));
    assert_eq!(v2_host(&codes[2]), "wrong||");
    assert_eq!(
        allowed(
            &pg,
            "web0",
            &format!("SELECT verdict, token, detail, why FROM pam_otp.verify_code('{a}', '{}', NULL, 0, 1, 10, 3, 30, 'sshd', NULL)", codes[2])
        ),
        "inactive|OATH1||disabled"
    );
    // Emergency codes too, while no token is active.
    assert_eq!(v2_host("31415926"), "wrong||");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT counter || ':' || failures || ':' || array_to_string(scratch_codes, ',') FROM pam_otp.tokens JOIN pam_otp.users ON name = username WHERE name = '{a}'"
        )),
        "2:3:31415926"
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT string_agg(result, ',' ORDER BY id) FROM pam_otp.audit WHERE username = '{a}' AND id > (SELECT max(id) FROM pam_otp.audit WHERE result = 'hotp')"
        )),
        "inactive,inactive,inactive",
        "the audit says what the version 2 host could not"
    );
    // Again: nothing to change.
    assert!(pg
        .otp_enroll_db_init()
        .contains(&format!("at version {SCHEMA_VERSION}; nothing to change")));
}

/// One login on `pam` with `code`, `TZ` in pamtester's environment; the
/// module's decision line.
fn login(pam: &PamService, sink: &LogSink, user: &str, tz: &str, code: &str) -> (bool, String) {
    let (run, lines) = logged_run_in_zone(pam, sink, user, tz, &format!("{code}\n"));
    let line = only_decision(&lines, code);
    // One prompt, and nothing that tells an inactive token from a wrong code.
    assert_eq!(output(&run).matches(PROMPT).count(), 1, "{run:?}");
    (run.success, line)
}

/// The day before the database's today, as `expire` takes it.
fn yesterday(pg: &Postgres) -> String {
    let out = Command::new("date")
        .env("TZ", "UTC")
        .args(["-d", &format!("@{}", db_now(pg) - 86_400), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root: make test"]
fn a_token_disabled_by_otp_enroll_is_refused_on_two_hosts_at_their_next_login() {
    require_root();
    let pg = Postgres::with_schema();
    // Room for the refusals below without a lock.
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 20");
    let hosts = [
        host(&pg, "web1", OTP_ONLY, ""),
        host(&pg, "web2", OTP_ONLY, ""),
    ];
    let sink = LogSink::new();
    let user = TestUser::new();
    let u = user.name.as_str();
    let codes = hotp_codes(KEY_HEX, 0, 8);
    let [east, west] = FAR_ZONES;
    otp_enroll_ok(
        &hosts[0],
        u,
        east,
        &[
            "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
        ],
    );
    let (ok, line) = login(&hosts[0], &sink, u, east, &codes[1]);
    assert!(ok, "{line}");

    // Disabled from one host's otp-enroll (the admin role)...
    let out = otp_enroll_ok(&hosts[1], u, west, &["disable", "--token", "OATH1"]);
    assert!(out.contains("Disabled the token \"OATH1\""), "{out}");
    let listed = otp_enroll_ok(&hosts[0], u, east, &["list"]);
    assert!(listed.contains("disabled"), "{listed}");
    let json = otp_enroll_ok(&hosts[0], u, east, &["status", "--json"]);
    assert!(
        json.contains("\"state\":\"disabled\",\"disabled\":true"),
        "{json}"
    );
    // ...refused on both at their next login, the code unused.
    for (h, tz) in [(0, west), (1, east)] {
        let (ok, line) = login(&hosts[h], &sink, u, tz, &codes[2]);
        assert!(!ok, "host {h}: {line}");
        assert!(line.contains("token OATH1, which is disabled"), "{line}");
    }
    let (ok, line) = login(&hosts[1], &sink, u, west, "31415926");
    assert!(!ok, "{line}");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT counter || ':' || disabled FROM pam_otp.tokens WHERE username = '{u}'"
        )),
        "2:true"
    );
    // Enabled again: the same code, refused while disabled, logs in.
    otp_enroll_ok(&hosts[0], u, east, &["enable", "--token", "OATH1"]);
    let (ok, line) = login(&hosts[1], &sink, u, west, &codes[2]);
    assert!(ok, "{line}");

    // Expired since yesterday (00:00 UTC, whatever TZ says): refused on
    // both; "never" lets it in again.
    let day = yesterday(&pg);
    let out = otp_enroll_ok(&hosts[1], u, east, &["expire", "--token", "OATH1", &day]);
    assert!(out.contains("expired at"), "{out}");
    for (h, tz) in [(0, east), (1, west)] {
        let (ok, line) = login(&hosts[h], &sink, u, tz, &codes[3]);
        assert!(!ok, "host {h}: {line}");
        assert!(
            line.contains("token OATH1, which is expired (at "),
            "{line}"
        );
    }
    otp_enroll_ok(&hosts[0], u, west, &["expire", "--token", "OATH1", "never"]);
    let (ok, line) = login(&hosts[0], &sink, u, east, &codes[3]);
    assert!(ok, "{line}");

    // A second token valid only from 2999: enrolled now, refused now.
    let other = "0102030405060708090a0b0c0d0e0f1011121314";
    let other_codes = hotp_codes(other, 0, 2);
    otp_enroll_ok(
        &hosts[1],
        u,
        east,
        &[
            "token",
            "--serial",
            "OATH2",
            "--secret",
            other,
            "--code",
            &other_codes[0],
            "--not-before",
            "2999-01-01",
        ],
    );
    let (ok, line) = login(&hosts[0], &sink, u, west, &other_codes[1]);
    assert!(!ok, "{line}");
    assert!(
        line.contains("token OATH2, which is not yet valid (valid from 32472144000)"),
        "{line}"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn migrate_to_postgresql_carries_a_disabled_and_a_dated_token() {
    require_root();
    let pg = Postgres::with_schema();
    let web1 = host(&pg, "web1", OTP_ONLY, "");
    let user = TestUser::new();
    let u = user.name.as_str();
    user.write_secret(&format!(
        "version = 2\nscratch_codes = [\"31415926\"]\n\n[[token]]\nid = \"phone\"\ntype = \"totp\"\n\
         secret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\ndisabled = true\n\n[[token]]\nid = \"OATH1\"\n\
         type = \"hotp\"\nsecret = \"{KEY_B32}\"\nnot_before = 1000\nexpires = 32472144000\n"
    ));
    let out = otp_enroll_ok(&web1, u, "UTC", &["migrate", "--to", "postgresql"]);
    assert!(out.contains(&format!("{u}: copied 2 token")), "{out}");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT string_agg(id || ':' || disabled || ':' || coalesce(not_before::text, '-') || ':' || coalesce(expires::text, '-'), ',' ORDER BY position) FROM pam_otp.tokens WHERE username = '{u}'"
        )),
        "phone:true:-:-,OATH1:false:1000:32472144000"
    );
    // The dated token logs in; the disabled one's lifecycle is the
    // database's now.
    let code = &hotp_codes(KEY_HEX, 0, 1)[0];
    let run = web1.authenticate(u, None, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
}
