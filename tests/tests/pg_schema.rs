//! The fleet schema (`otp-core/sql/schema.sql`) in a real PostgreSQL the
//! test starts itself (`testkit::pg`), created by the real `otp-enroll db
//! init`: the SQL code generator against the RFC 4226 / 6238 vectors and
//! oathtool; the SQL verifier against the Rust one (`otp_core::verify`),
//! step by step on the same record at the same times; what the host role
//! may not do; that `db init` again changes nothing; that one code typed
//! at once on two connections is accepted once; the temporary code of a
//! lost phone (issue 31, item 3) through both verifiers at its expiry
//! E−1 s, E and E+1 s, beside active and disabled tokens and alone.

use otp_core::otp::{Algorithm, Generator};
use otp_core::rate_limit::RateLimit;
use otp_core::secret_file::{OtpKind, SecretFile, TempCode, TempCodeGone, Token};
use otp_core::store::postgresql::SCHEMA_VERSION;
use otp_core::verify::{self, Method, Policy, Refusal, Verdict};
use testkit::pg::Postgres;
use testkit::{oathtool, require_root};

/// The RFC 6238 seeds for SHA1, SHA256, SHA512.
const SEED20: &[u8] = b"12345678901234567890";
const SEED32: &[u8] = b"12345678901234567890123456789012";
const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

use otp_core::key::encode_hex as hex;

/// `otp-enroll db init` as the database owner; its stdout.
fn db_init(pg: &Postgres) -> String {
    pg.otp_enroll_db_init()
}

fn server() -> Postgres {
    require_root();
    let pg = Postgres::start();
    assert!(db_init(&pg).contains(&format!("created schema pam_otp version {SCHEMA_VERSION}")));
    pg
}

fn otp_code_sql(pg: &Postgres, key: &[u8], counter: u64, digits: u8, alg: &str) -> String {
    pg.psql_ok(&format!(
        "SELECT pam_otp.otp_code('\\x{}'::bytea, {counter}, {digits}, '{alg}')",
        hex(key)
    ))
}

#[test]
#[ignore = "needs root: make test"]
fn codes_match_the_rfc_vectors_oathtool_and_the_rust_generator() {
    let pg = server();
    // RFC 4226 Appendix D.
    let hotp = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    for (counter, want) in hotp.iter().enumerate() {
        assert_eq!(otp_code_sql(&pg, SEED20, counter as u64, 6, "SHA1"), *want);
    }
    // RFC 6238 Appendix B (8 digits), at the table's times.
    let totp: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];
    for (t, sha1, sha256, sha512) in totp {
        let step = t / 30;
        assert_eq!(otp_code_sql(&pg, SEED20, step, 8, "SHA1"), sha1, "t={t}");
        assert_eq!(
            otp_code_sql(&pg, SEED32, step, 8, "SHA256"),
            sha256,
            "t={t}"
        );
        assert_eq!(
            otp_code_sql(&pg, SEED64, step, 8, "SHA512"),
            sha512,
            "t={t}"
        );
    }
    // 6, 7 and 8 digits of every algorithm, against the Rust generator and
    // oathtool, over counters the vectors do not cover.
    for (key, alg, name) in [
        (SEED20, Algorithm::SHA1, "SHA1"),
        (SEED32, Algorithm::SHA256, "SHA256"),
        (SEED64, Algorithm::SHA512, "SHA512"),
    ] {
        for digits in 6..=8u8 {
            let rust = Generator::new(key, alg, digits).unwrap();
            for counter in [0u64, 1, 7, 1_000_003, 56_666_666, (1 << 40) + 5] {
                let sql = otp_code_sql(&pg, key, counter, digits, name);
                assert_eq!(sql, rust.code(counter), "{name} {digits} digits, {counter}");
                // oathtool's HOTP is SHA1 only; its TOTP at time 30·c is
                // HOTP at c, for every algorithm.
                let tool = oathtool(&[
                    &format!("--totp={}", name.to_lowercase()),
                    "-d",
                    &digits.to_string(),
                    &format!("--now=@{}", counter * 30),
                    &hex(key),
                ]);
                assert_eq!(sql, tool, "oathtool {name} {digits} digits, {counter}");
            }
        }
    }
}

const POLICY: Policy = Policy {
    totp_skew: 1,
    hotp_window: 10,
    rate_limit: RateLimit {
        max_failures: 3,
        interval: 30,
    },
};
const T0: u64 = 1_111_111_111;

/// The record both verifiers start from: a TOTP token, an 8-digit HOTP
/// token at counter 5, and two emergency codes.
fn record() -> SecretFile {
    let mut file = SecretFile::with_token(Token::new("phone", OtpKind::Totp, SEED20.to_vec()));
    let mut key = Token::new("OATH1", OtpKind::Hotp, SEED32.to_vec());
    key.digits = 8;
    key.counter = 5;
    key.algorithm = Algorithm::SHA256;
    file.tokens.push(key);
    file.scratch_codes = vec!["31415926".into(), "27182818".into()];
    file.upgrade();
    file
}

fn record_json(file: &SecretFile) -> String {
    let tokens: Vec<String> = file
        .tokens
        .iter()
        .map(|t| {
            format!(
                r#"{{"id": "{}", "type": "{}", "secret": "{}", "algorithm": "{}", "digits": {}, "period": {}, "counter": {}}}"#,
                t.id,
                t.kind.as_str(),
                hex(&t.key),
                t.algorithm.as_str(),
                t.digits,
                t.period,
                t.counter
            )
        })
        .collect();
    let scratch: Vec<String> = file
        .scratch_codes
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    format!(
        r#"{{"scratch_codes": [{}], "tokens": [{}]}}"#,
        scratch.join(", "),
        tokens.join(", ")
    )
}

/// The Rust verdict as the schema spells it: "verdict|token|detail".
fn spelled(v: &Verdict) -> String {
    match v {
        Verdict::Accepted(Method::Totp { token, step }) => format!("totp|{token}|{step}"),
        Verdict::Accepted(Method::Hotp { token, counter }) => format!("hotp|{token}|{counter}"),
        Verdict::Accepted(Method::Scratch { left }) => format!("scratch||{left}"),
        Verdict::Refused(Refusal::Malformed) => "malformed||".into(),
        Verdict::Refused(Refusal::Wrong) => "wrong||".into(),
        Verdict::Refused(Refusal::Replay) => "replay||".into(),
        Verdict::Refused(Refusal::CounterExhausted) => "exhausted||".into(),
        Verdict::Locked { retry_in } => format!("locked||{retry_in}"),
        // The records compared here carry no lifecycle, so the Rust side
        // never says this (tests/tests/pg_lifecycle.rs compares those).
        Verdict::Inactive { .. } => {
            panic!("an inactive token in a record without lifecycle: {v:?}")
        }
        // Nor a temporary code (compared below, with `why`).
        Verdict::Accepted(Method::TempCode { .. }) | Verdict::Refused(Refusal::TempCodeGone(_)) => {
            panic!("a temporary code in a record without one: {v:?}")
        }
    }
}

/// What both sides keep, compared after every step.
fn state_of_rust(file: &SecretFile) -> String {
    let t: Vec<String> = file
        .tokens
        .iter()
        .map(|t| {
            format!(
                "{}:{}:{:?}:{}:{}",
                t.id, t.counter, t.state.last_step, t.state.drift, t.state.drift_moved
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
        "SELECT string_agg(id || ':' || counter || ':' || coalesce('Some(' || last_step || ')', 'None') || ':' || drift || ':' || drift_moved, ',' ORDER BY position) FROM pam_otp.tokens WHERE username = '{user}'"
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

#[test]
#[ignore = "needs root: make test"]
fn the_sql_verifier_agrees_with_the_rust_one_step_by_step() {
    let pg = server();
    let mut file = record();
    let user = "parity";
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT pam_otp.enroll('{user}', '{}'::jsonb)",
            record_json(&file)
        )),
        "created"
    );
    let totp = Generator::new(SEED20, Algorithm::SHA1, 6).unwrap();
    let hotp = Generator::new(SEED32, Algorithm::SHA256, 8).unwrap();
    let step = T0 / 30;
    let day = 86_400;
    let at = |t: u64| (totp.code(t / 30), t);
    let ahead = |t: u64, n: u64| (totp.code(t / 30 + n), t);
    // (typed, now): every rule of verify.rs in turn; the comment is what
    // both must answer.
    let steps: Vec<(String, u64)> = vec![
        at(T0),                            // totp
        at(T0 + 1),                        // replay
        (totp.code(step - 1), T0 + 2),     // replay (older step)
        ("12ab56".into(), T0 + 3),         // malformed: third failure
        ahead(T0 + 6, 1),                  // locked
        ahead(T0 + 33, 0),                 // lock over: totp
        ("1234567".into(), T0 + 34),       // malformed (no 7-digit token)
        ("12 34-56".into(), T0 + 35),      // wrong (spaces, dashes dropped)
        ahead(T0 + 40, 4),                 // wrong: outside the skew
        (hotp.code(9), T0 + 50),           // locked
        (hotp.code(9), T0 + 71),           // hotp 9, in the window
        (hotp.code(7), T0 + 72),           // wrong: behind the counter
        (hotp.code(25), T0 + 73),          // wrong: beyond the window
        ("31415926".into(), T0 + 74),      // scratch, 1 left
        ("31415926".into(), T0 + 75),      // wrong: used
        ("2718-2818".into(), T0 + 200),    // scratch, 0 left
        ahead(T0 + 300, 1),                // totp, drift learns +1
        ahead(T0 + 400, 2),                // totp, drift stays (once a day)
        ahead(T0 + day + 400, 2),          // totp, a day later: drift +2
        (String::new(), T0 + day + 401),   // malformed
        ("000000".into(), T0 + day + 402), // wrong: second failure
        ("000001".into(), T0 + 3 * day),   // wrong, the others forgotten
        ahead(T0 + 3 * day + 1, 2),        // totp: not locked
    ];
    for (i, (typed, now)) in steps.iter().enumerate() {
        let rust = spelled(&verify::verify(&mut file, typed, &POLICY, *now));
        let sql = pg.psql_ok(&format!(
            "SELECT verdict || '|' || coalesce(token, '') || '|' || coalesce(detail::text, '') FROM pam_otp.verify_at('{user}', '{typed}', NULL, 0, 1, 10, 3, 30, NULL, {now})"
        ));
        assert_eq!(sql, rust, "step {i}: {typed:?} at {now}");
        assert_eq!(
            state_of_sql(&pg, user),
            state_of_rust(&file),
            "state after step {i}"
        );
    }
}

#[test]
#[ignore = "needs root: make test"]
fn a_host_can_neither_read_a_seed_nor_change_state_nor_widen_the_policy() {
    let pg = server();
    pg.psql_ok(
        "CREATE ROLE web1 LOGIN IN ROLE pam_otp_host; CREATE ROLE ops LOGIN IN ROLE pam_otp_admin",
    );
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('alice', '{}'::jsonb)",
        record_json(&record())
    ));
    let denied = |role: &str, sql: &str| {
        let out = pg.psql_as(role, sql);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && err.contains("permission denied"),
            "{role}: {sql}: {err}"
        );
    };
    for role in ["web1", "ops"] {
        denied(role, "SELECT secret FROM pam_otp.tokens");
        denied(role, "SELECT * FROM pam_otp.users");
        denied(role, "UPDATE pam_otp.users SET failures = 0");
        denied(role, "UPDATE pam_otp.tokens SET counter = 0");
        denied(role, "UPDATE pam_otp.settings SET hotp_window = 1000");
        denied(
            role,
            "SELECT * FROM pam_otp.verify_at('alice', '1', NULL, 0, 1, 10, 3, 30, NULL, 0)",
        );
        denied(role, "SELECT pam_otp.read_record('alice')");
        // The temporary code's hash and salt: no role reads the table,
        // nor calls what spends or drops a code.
        denied(role, "SELECT hash, salt FROM pam_otp.temp_codes");
        denied(role, "SELECT pam_otp.temp_code_live('alice', 0)");
        denied(role, "SELECT pam_otp.prune_temp_code('alice', 0)");
    }
    denied("web1", "SELECT pam_otp.admin_read('alice', false)");
    denied("web1", "SELECT pam_otp.admin_write('alice', '{}')");
    denied("web1", "SELECT pam_otp.admin_inventory_read(false)");
    // The census (otp-enroll report) names every user: the admin's only.
    denied("web1", "SELECT * FROM pam_otp.admin_census(3, 30)");
    // What a host may do, it can.
    let ok = |role: &str, sql: &str| {
        let out = pg.psql_as(role, sql);
        assert!(
            out.status.success(),
            "{role}: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(ok("web1", "SELECT presence FROM pam_otp.login_info('alice')").contains("tokens"));
    // The admin's census has alice, and nothing of her seed.
    let census = ok(
        "ops",
        "SELECT name, tokens FROM pam_otp.admin_census(3, 30)",
    );
    assert!(census.starts_with("alice|"), "{census}");
    assert!(!census.contains("secret"), "{census}");
    // A host asking for a huge window and no rate limit gets the
    // settings': HOTP counter 5 + 200 is not found, and four wrong codes lock.
    let far = Generator::new(SEED32, Algorithm::SHA256, 8)
        .unwrap()
        .code(200);
    let wide = |code: &str| {
        ok(
            "web1",
            &format!(
                "SELECT verdict FROM pam_otp.verify('alice', '{code}', NULL, 0, 10, 100000, 0, 1)"
            ),
        )
    };
    assert_eq!(wide(&far), "wrong");
    assert_eq!(wide("00000000"), "wrong");
    assert_eq!(wide("00000001"), "wrong");
    assert_eq!(wide("00000002"), "locked");
    // The admin reads the record, never the host.
    assert!(ok("ops", "SELECT pam_otp.admin_read('alice', false)").contains(&hex(SEED20)));
    // A host cannot replace an enrolled user's token.
    assert_eq!(
        ok(
            "web1",
            &format!(
                "SELECT pam_otp.enroll('alice', '{}')",
                record_json(&record())
            )
        ),
        "exists"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn db_init_again_changes_nothing_and_keeps_the_data() {
    let pg = server();
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('alice', '{}'::jsonb); SELECT pam_otp.admin_set_pending('bob', true)",
        record_json(&record())
    ));
    let catalog = || {
        pg.psql_ok(
            "SELECT string_agg(p.proname || md5(p.prosrc) || array_to_string(p.proconfig, ',') || coalesce(array_to_string(p.proacl, ','), ''), ';' ORDER BY p.proname, p.oid)
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pam_otp'",
        ) + &pg.psql_ok(
            "SELECT string_agg(c.relname || coalesce(array_to_string(c.relacl, ','), ''), ';' ORDER BY c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pam_otp'",
        )
    };
    let data = || {
        pg.psql_ok(
            "SELECT string_agg(name || pending || failures, ',' ORDER BY name) FROM pam_otp.users",
        ) + &pg.psql_ok("SELECT count(*) FROM pam_otp.tokens")
    };
    let (before, rows) = (catalog(), data());
    let again = db_init(&pg);
    assert!(
        again.contains(&format!("at version {SCHEMA_VERSION}; nothing to change")),
        "{again}"
    );
    assert_eq!(catalog(), before);
    assert_eq!(data(), rows);
    assert_eq!(
        pg.psql_ok("SELECT version FROM pam_otp.meta"),
        SCHEMA_VERSION.to_string()
    );
    // Each db init is in the audit, saying what it did.
    assert_eq!(
        pg.psql_ok("SELECT string_agg(command || ': ' || detail, ', ' ORDER BY id) FROM pam_otp.audit WHERE kind = 'change'"),
        format!("db init: created version {SCHEMA_VERSION}, db init: at version {SCHEMA_VERSION}")
    );
}

#[test]
#[ignore = "needs root: make test"]
fn a_bad_record_is_refused_whole_and_a_pending_user_may_enroll() {
    let pg = server();
    let good = record_json(&record());
    for bad in [
        good.replace("\"phone\"", "\"no spaces\""),
        good.replace("\"digits\": 6", "\"digits\": 9"),
        good.replace("\"totp\"", "\"motp\""),
        good.replace("31415926", "3141"),
        r#"{"tokens": []}"#.to_string(),
    ] {
        let out = pg.psql(&format!("SELECT pam_otp.enroll('carol', '{bad}'::jsonb)"));
        assert!(!out.status.success(), "accepted {bad}");
    }
    assert_eq!(pg.psql_ok("SELECT count(*) FROM pam_otp.users"), "0");
    pg.psql_ok("SELECT pam_otp.admin_set_pending('carol', true)");
    assert_eq!(
        pg.psql_ok("SELECT presence FROM pam_otp.login_info('carol')"),
        "pending"
    );
    assert_eq!(
        pg.psql_ok(&format!("SELECT pam_otp.enroll('carol', '{good}'::jsonb)")),
        "created"
    );
    assert_eq!(
        pg.psql_ok(
            "SELECT presence || pam_otp.admin_pending('carol') FROM pam_otp.login_info('carol')"
        ),
        "tokensfalse"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn one_code_on_many_connections_at_once_is_accepted_once() {
    let pg = server();
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('dave', '{}'::jsonb)",
        record_json(&record())
    ));
    let code = Generator::new(SEED32, Algorithm::SHA256, 8)
        .unwrap()
        .code(6);
    for round in 0..3 {
        let code = if round == 0 {
            code.clone()
        } else {
            Generator::new(SEED32, Algorithm::SHA256, 8)
                .unwrap()
                .code(6 + round)
        };
        let verdicts: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        pg.psql_ok(&format!(
                            "SELECT verdict FROM pam_otp.verify('dave', '{code}', NULL, 0, 1, 10, 3, 30)"
                        ))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let accepted = verdicts.iter().filter(|v| *v == "hotp").count();
        assert_eq!(accepted, 1, "round {round}: {verdicts:?}");
        pg.psql_ok("UPDATE pam_otp.users SET failures = 0, last_failure = 0");
    }
}

/// The temporary code of the sequences below, and when it expires.
const TEMP: &str = "48151623";
const E: u64 = T0 + 1000;

/// The Rust verdict as the schema spells it with its fourth column:
/// "verdict|token|detail|why".
fn spelled_why(v: &Verdict) -> String {
    match v {
        Verdict::Accepted(Method::TempCode { left, expires }) => {
            format!("temp_code||{left}|{expires}")
        }
        Verdict::Refused(Refusal::TempCodeGone(TempCodeGone::UsedUp)) => {
            "temp_code_gone|||used_up".into()
        }
        Verdict::Refused(Refusal::TempCodeGone(TempCodeGone::Expired(t))) => {
            format!("temp_code_gone||{t}|expired")
        }
        Verdict::Inactive { token, why } => {
            let why = match why {
                otp_core::secret_file::Inactive::Disabled => "disabled",
                _ => panic!("only disabled tokens here: {v:?}"),
            };
            format!("inactive|{}||{why}", token.as_deref().unwrap_or(""))
        }
        other => format!("{}|", spelled(other)),
    }
}

/// `file` as admin_write takes it: lifecycle and temporary code too.
fn full_json(file: &SecretFile) -> String {
    let tokens: Vec<serde_json::Value> = file
        .tokens
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "type": t.kind.as_str(), "secret": hex(&t.key),
                "algorithm": t.algorithm.as_str(), "digits": t.digits, "period": t.period,
                "counter": t.counter, "disabled": t.lifecycle.disabled,
            })
        })
        .collect();
    let temp = file.temp_code.as_ref().map(|t| {
        serde_json::json!({
            "salt": hex(&t.salt), "hash": hex(&t.hash), "expires": t.expires,
            "uses_left": t.uses_left, "created": t.created, "created_by": t.created_by,
        })
    });
    serde_json::json!({"scratch_codes": file.scratch_codes, "tokens": tokens, "temp_code": temp})
        .to_string()
}

fn temp_of_rust(file: &SecretFile) -> String {
    file.temp_code
        .as_ref()
        .map_or("-".into(), |t| format!("{}:{}", t.uses_left, t.expires))
}

fn temp_of_sql(pg: &Postgres, user: &str) -> String {
    let t = pg.psql_ok(&format!(
        "SELECT uses_left || ':' || expires FROM pam_otp.temp_codes WHERE username = '{user}'"
    ));
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

type TempScenario = (
    &'static str,
    fn() -> SecretFile,
    &'static [(&'static str, u64)],
);

fn with_temp(mut file: SecretFile, uses: u32) -> SecretFile {
    file.temp_code = Some(TempCode::new(
        TEMP,
        (0..16).collect(),
        T0 - 100,
        E,
        uses,
        "root (login uid 1000)".into(),
    ));
    file
}

/// Each record, from E−1 s, E and E+1 s: what is typed, seconds after.
const TEMP_SCENARIOS: [TempScenario; 4] = [
    (
        "beside active tokens, 2 uses",
        || with_temp(record(), 2),
        &[
            ("00000000", 0),
            (TEMP, 0),
            ("4815-1623", 0),
            (TEMP, 0),
            ("31415926", 0),
        ],
    ),
    (
        "alone, 1 use",
        || {
            let mut f = with_temp(record(), 1);
            f.tokens.clear();
            f.scratch_codes.clear();
            f
        },
        &[
            (TEMP, 0),
            (TEMP, 0),
            ("00000000", 0),
            ("123456", 0),
            (TEMP, 40),
        ],
    ),
    (
        "beside disabled tokens, 1 use",
        || {
            let mut f = with_temp(record(), 1);
            for t in &mut f.tokens {
                t.lifecycle.disabled = true;
            }
            f
        },
        &[("31415926", 0), (TEMP, 0), ("31415926", 0), (TEMP, 0)],
    ),
    (
        "locked, then the lock is over",
        || {
            let mut f = with_temp(record(), 3);
            f.tokens.clear();
            f
        },
        &[
            ("00000000", 0),
            ("00000001", 0),
            ("00000002", 0),
            (TEMP, 0),
            (TEMP, 31),
            (TEMP, 31),
        ],
    ),
];

#[test]
#[ignore = "needs root: make test"]
fn the_sql_verifier_takes_the_temporary_code_as_the_rust_one_does_around_its_expiry() {
    let pg = server();
    let mut seen = Vec::new();
    for (i, (name, make, steps)) in TEMP_SCENARIOS.iter().enumerate() {
        for (k, base) in [E - 1, E, E + 1].into_iter().enumerate() {
            let user = format!("temp{i}t{k}");
            let mut file = make();
            pg.psql_ok(&format!(
                "SELECT pam_otp.admin_write('{user}', '{}'::jsonb)",
                full_json(&file)
            ));
            for (j, (typed, dt)) in steps.iter().enumerate() {
                let now = base + dt;
                // A live temporary code is a token, alone too.
                let presence = pg.psql_ok(&format!(
                    "SELECT presence FROM pam_otp.login_info_at('{user}', {now})"
                ));
                let want = if file.has_token_at(now) {
                    "tokens"
                } else {
                    "nothing"
                };
                assert_eq!(presence, want, "{name} from {base}, step {j}");
                let rust = spelled_why(&verify::verify(&mut file, typed, &POLICY, now));
                let sql = pg.psql_ok(&format!(
                    "SELECT verdict || '|' || coalesce(token, '') || '|' || coalesce(detail::text, '') || '|' || coalesce(why, '') \
                       FROM pam_otp.verify_at('{user}', '{typed}', NULL, 0, 1, 10, 3, 30, 'sshd', {now})"
                ));
                assert_eq!(
                    sql, rust,
                    "{name} from {base}, step {j}: {typed:?} at {now}"
                );
                assert_eq!(
                    (state_of_sql(&pg, &user), temp_of_sql(&pg, &user)),
                    (state_of_rust(&file), temp_of_rust(&file)),
                    "{name} from {base}: state after step {j}"
                );
                seen.push(((i, k, j), sql));
            }
        }
    }
    // Not a vacuous agreement: what both said where the expiry turns.
    let said = |i: usize, k: usize, j: usize| {
        seen.iter()
            .find(|(at, _)| *at == (i, k, j))
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    assert_eq!(said(0, 0, 1), format!("temp_code||1|{E}"));
    assert_eq!(said(0, 0, 2), format!("temp_code||0|{E}"));
    assert_eq!(said(0, 0, 3), "wrong|||", "spent and dropped beside tokens");
    assert_eq!(
        said(0, 1, 1),
        "wrong|||",
        "expired: dropped at the first write"
    );
    assert_eq!(said(1, 0, 0), format!("temp_code||0|{E}"));
    assert_eq!(said(1, 0, 1), "temp_code_gone|||used_up");
    assert_eq!(said(1, 0, 4), format!("temp_code_gone||{E}|expired"));
    assert_eq!(said(1, 1, 0), format!("temp_code_gone||{E}|expired"));
    assert_eq!(said(1, 2, 0), format!("temp_code_gone||{E}|expired"));
    assert_eq!(said(2, 0, 0), "inactive|||disabled");
    assert_eq!(said(2, 0, 1), format!("temp_code||0|{E}"));
    assert_eq!(said(2, 1, 0), "inactive|||disabled");
    assert_eq!(
        said(2, 1, 1),
        "wrong|||",
        "expired beside tokens: dropped at step 0"
    );
    assert!(said(3, 0, 3).starts_with("locked||"), "{}", said(3, 0, 3));
    assert_eq!(said(3, 0, 4), format!("temp_code_gone||{E}|expired"));
    // The admin's read gives the code back whole (its hash and salt: the
    // admin role's only), and the census its summary, never the hash.
    let back = pg.psql_ok("SELECT pam_otp.admin_read('temp0t0', true)->'temp_code'->>'uses_left'");
    assert_eq!(back, "", "spent beside tokens: dropped");
    let alone =
        pg.psql_ok("SELECT pam_otp.admin_read('temp1t0', false)->'temp_code'->>'uses_left'");
    assert_eq!(alone, "0");
    let census =
        pg.psql_ok("SELECT temp_code FROM pam_otp.admin_census(3, 30) WHERE name = 'temp3t0'");
    assert!(
        census.contains("\"uses_left\": 3") && !census.contains("hash"),
        "{census}"
    );
}
