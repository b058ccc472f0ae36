//! Who is enrolled, and who exists, must not show under `store =
//! "postgresql"` (issue 31, item 6), against a private PostgreSQL the test
//! starts (`testkit::pg`), with the real module through pamtester:
//! - an account without a token is rate-limited by the database's limits
//!   (`settings.max_failures`, `lock_interval`), as an enrolled user is,
//!   not by the host's looser `[rate_limit]`: both are told "Too many
//!   failed attempts" after the same wrong codes; its failures are counted
//!   in the database (`pam_otp.unenrolled`), none on the host;
//! - an enrolled user, an account without a token and a name that is no
//!   account send the same statements in the same order (the server's own
//!   statement log): `login_info`, then one verify (`verify_code`, or
//!   `verify_no_token`); a name that is no account leaves no tally. The
//!   time each takes: `cargo bench -p testkit --bench fleet_oracle`.

use std::process::Command;

use testkit::harness::{hotp_codes, state_dir};
use testkit::pg::{fleet_config, Postgres};
use testkit::{require_root, unique, PamService, TestUser, KEY_HEX, OTP_ONLY};

const TIMEOUT: u64 = 5;
const LOCKED: &str = "Too many failed attempts";

fn host(pg: &Postgres, role: &str, extra: &str) -> PamService {
    let pam = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo(role, &pam.dir, TIMEOUT);
    let admin = pg.admin_conninfo("ops", &pam.dir, TIMEOUT);
    pam.write_config(&fleet_config(&conninfo, &admin, extra));
    pam
}

fn enroll(pg: &Postgres, user: &str) {
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('{user}', '{{\"tokens\": [{{\"id\": \"OATH1\", \"type\": \"hotp\", \"secret\": \"{KEY_HEX}\"}}]}}'::jsonb)"
    ));
}

/// A wrong code for `user`: refused; whether it was told it is locked.
fn wrong(pam: &PamService, user: &str) -> bool {
    let run = pam.authenticate(user, Some("203.0.113.7"), "000000\n");
    assert!(!run.success, "{run:#?}");
    run.stderr.contains(LOCKED) || run.stdout.contains(LOCKED)
}

#[test]
#[ignore = "needs root: make test"]
fn an_account_without_a_token_is_locked_by_the_databases_limits_like_an_enrolled_one() {
    require_root();
    let pg = Postgres::with_schema();
    // The host is far looser than the database (3 failures, 30 s).
    let web1 = host(
        &pg,
        "web1",
        "missing = \"deny\"\n[rate_limit]\nmax_failures = 1000\ninterval = 1\n",
    );
    let enrolled = TestUser::new();
    enroll(&pg, &enrolled.name);
    let bare = TestUser::new();
    // Interleaved, eight wrong codes each: the first three refused, the
    // next five locked, for both.
    let (mut e, mut b) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        e.push(wrong(&web1, &enrolled.name));
        b.push(wrong(&web1, &bare.name));
    }
    let want = [false, false, false, true, true, true, true, true];
    assert_eq!(e, want, "the enrolled user");
    assert_eq!(
        b, want,
        "the account without a token: the database's limits"
    );
    // Counted in the database, not on the host.
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT failures FROM pam_otp.unenrolled WHERE name = '{}'",
            bare.name
        )),
        "3"
    );
    assert!(
        !state_dir(&web1)
            .join("unenrolled")
            .join(format!("{}.toml", bare.name))
            .exists(),
        "no tally on the host"
    );
    // A right code for the enrolled user once the lock is over still
    // works (the lock is the database's 30 s, not the host's 1 s).
    pg.psql_ok(&format!(
        "UPDATE pam_otp.users SET last_failure = last_failure - 31 WHERE name = '{}'",
        enrolled.name
    ));
    let code = &hotp_codes(KEY_HEX, 0, 1)[0];
    let run = web1.authenticate(&enrolled.name, None, &format!("{code}\n"));
    assert!(run.success, "{run:#?}");
}

/// The pam_otp functions the server was asked to run in `log` (its
/// statement log), in order.
fn calls(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in log
        .lines()
        .filter(|l| l.contains("statement:") || l.contains("execute"))
    {
        let mut rest = line;
        while let Some(i) = rest.find("pam_otp.") {
            rest = &rest[i + "pam_otp.".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with('(') {
                out.push(name);
            }
        }
    }
    out
}

/// What the server logged during one wrong-code login of `user`.
fn statements_of(pg: &Postgres, pam: &PamService, user: &str) -> Vec<String> {
    let before = pg.log().len();
    let run = pam.authenticate(user, Some("203.0.113.7"), "000000\n");
    assert!(!run.success, "{run:#?}");
    calls(&pg.log()[before..])
}

#[test]
#[ignore = "needs root: make test"]
fn enrolled_unenrolled_and_unknown_names_make_the_same_round_trips() {
    require_root();
    let pg = Postgres::with_schema();
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
    pg.psql_ok("ALTER SYSTEM SET log_statement = 'all'");
    pg.psql_ok("SELECT pg_reload_conf()");
    let deny = host(&pg, "web1", "missing = \"deny\"\n");
    let enrolled = TestUser::new();
    enroll(&pg, &enrolled.name);
    let bare = TestUser::new();
    let nobody = unique("nosuch");
    let id = Command::new("id").arg(&nobody).output().unwrap();
    assert!(!id.status.success(), "{nobody} is an account");

    let e = statements_of(&pg, &deny, &enrolled.name);
    let b = statements_of(&pg, &deny, &bare.name);
    let n = statements_of(&pg, &deny, &nobody);
    assert_eq!(e, ["login_info", "verify_code"]);
    assert_eq!(b, ["login_info", "verify_no_token"]);
    assert_eq!(n, b, "a name that is no account asks what an account asks");
    // The invented name is in the audit, like the others, and in no tally.
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT string_agg(username || ':' || result, ',' ORDER BY id) FROM pam_otp.audit WHERE kind = 'verify' AND username IN ('{}', '{}', '{nobody}')",
            enrolled.name, bare.name
        )),
        format!("{}:wrong,{}:wrong,{nobody}:wrong", enrolled.name, bare.name)
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT count(*) FROM pam_otp.unenrolled WHERE name = '{nobody}'"
        )),
        "0"
    );

    // Under "allow" and "enroll", the first query too (the enrollment's
    // QR code is no question to the database).
    for missing in ["allow", "enroll"] {
        let pam = host(&pg, "web1", &format!("missing = \"{missing}\"\n"));
        for user in [bare.name.as_str(), nobody.as_str()] {
            let before = pg.log().len();
            let _ = pam.authenticate(user, Some("203.0.113.7"), "\n");
            assert_eq!(
                calls(&pg.log()[before..]),
                ["login_info"],
                "{missing}: {user}"
            );
        }
    }
}

/// `verify_no_token_at` against `otp_core::verify::verify_no_token`, step
/// by step on the same tally at the same times, across a lock's end (D−1 s,
/// D, D+1 s): the same verdict and the same count; for a name that is no
/// account, the same verdicts and nothing kept.
#[test]
#[ignore = "needs root: make test"]
fn verify_no_token_at_agrees_with_the_rust_one_around_a_locks_end() {
    use otp_core::rate_limit::RateLimit;
    use otp_core::secret_file::State;
    use otp_core::verify::{self, Policy, Refusal, Verdict};
    require_root();
    let pg = Postgres::with_schema();
    let policy = Policy {
        totp_skew: 1,
        hotp_window: 10,
        rate_limit: RateLimit {
            max_failures: 3,
            interval: 30,
        },
    };
    let spelled = |v: &Verdict| match v {
        Verdict::Refused(Refusal::Wrong) => "wrong|".to_string(),
        Verdict::Refused(Refusal::Malformed) => "malformed|".to_string(),
        Verdict::Locked { retry_in } => format!("locked|{retry_in}"),
        other => panic!("no token, yet {other:?}"),
    };
    let t = 1_700_000_000u64;
    // The third failure at t+2 locks until t+32 (D).
    let d = t + 32;
    let steps: Vec<(&str, u64)> = vec![
        ("000000", t),
        ("12ab56", t + 1),
        ("0000-0000", t + 2),
        ("000000", d - 1),
        ("000000", d),
        ("000000", d + 1),
        ("1234567", d + 200),
        ("000000", d + 200 + 86_400 * 2),
    ];
    for (account, user) in [(true, "bare"), (false, "nobody")] {
        let mut state = State::default();
        let mut said = Vec::new();
        for (typed, now) in &steps {
            let rust = spelled(&verify::verify_no_token(&mut state, typed, &policy, *now));
            let sql = pg.psql_ok(&format!(
                "SELECT verdict || '|' || coalesce(detail::text, '') FROM pam_otp.verify_no_token_at('{user}', '{typed}', 1, 3, 30, {account}, {now})"
            ));
            if account {
                assert_eq!(sql, rust, "{typed:?} at {now}");
                assert_eq!(
                    pg.psql_ok(&format!(
                        "SELECT failures || ' ' || last_failure FROM pam_otp.unenrolled WHERE name = '{user}'"
                    )),
                    format!("{} {}", state.failures, state.last_failure),
                    "after {typed:?} at {now}"
                );
            }
            said.push(sql);
        }
        if account {
            // Not a vacuous agreement: locked at D-1, not at D (a fourth
            // failure, locked four times as long), a day of quiet forgets.
            assert_eq!(
                said,
                [
                    "wrong|",
                    "malformed|",
                    "wrong|",
                    "locked|1",
                    "wrong|",
                    "locked|119",
                    "malformed|",
                    "wrong|",
                ]
            );
            assert_eq!(state.failures, 1);
        } else {
            // Nothing kept, so never locked.
            assert!(said.iter().all(|s| !s.starts_with("locked")), "{said:?}");
            assert_eq!(
                pg.psql_ok(&format!(
                    "SELECT count(*) FROM pam_otp.unenrolled WHERE name = '{user}'"
                )),
                "0"
            );
        }
    }
}
