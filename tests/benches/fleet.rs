//! What the `postgresql` store costs a user: one login's wall time against
//! the `home` store (median, interleaved, TLS on), the statements each
//! login sends to the database (the server's own count), the server's
//! time inside `verify()` per call (track_functions), and logins per
//! second with four hosts logging in at once, every login checked to have
//! been accepted (right code) or refused (wrong code). Asserts nothing but
//! that the logins gave the answers they must.
//!
//! Before and after, in one run: with `PAM_OTP_V1_MODULE=PATH` (a
//! `libpam_otp.so` built from a version 1 tree, e.g. `git archive
//! 70d033c`), the same logins also go through that module against a
//! second server holding the version 1 schema (tests/fixtures/schema-v1.sql,
//! no audit table), interleaved with the others: the difference is what
//! schema version 2's audit row costs a login.
//!
//! `cargo build --release --workspace && cargo bench -p testkit --bench fleet`
//! (`[-- N]`: N logins per store, default 200; needs root). `make bench`
//! runs it.

use std::path::Path;
use std::time::Duration;

use testkit::harness::{hotp_codes, stopwatch};
use testkit::pg::{fleet_config, Postgres};
use testkit::{binary_path, hotp_secret, PamService, TestUser, KEY_HEX, OTP_ONLY};

/// The schema as version 1 shipped it.
const SCHEMA_V1: &str = include_str!("../fixtures/schema-v1.sql");

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A host of the database with its own role and certificate, running
/// `module` (None: this build's).
fn host(pg: &Postgres, name: &str, module: Option<&Path>) -> PamService {
    let stack = match module {
        Some(m) => format!("auth required {} config={{config}}\n", m.display()),
        None => OTP_ONLY.to_string(),
    };
    let pam = PamService::with_config(&stack, "");
    let conninfo = pg.host_conninfo(name, &pam.dir, 5);
    let admin = pg.admin_conninfo("ops", &pam.dir, 5);
    pam.write_config(&fleet_config(&conninfo, &admin, ""));
    pam
}

/// `user` gets the test key as an HOTP token in the database: through
/// otp-enroll, or on a version 1 schema (whose audit otp-enroll would
/// look for) through its enroll() as the owner.
fn enroll(pg: &Postgres, pam: &PamService, user: &TestUser, v1: bool) {
    if v1 {
        pg.psql_ok(&format!(
            "SELECT pam_otp.enroll('{}', '{{\"tokens\": [{{\"id\": \"B1\", \"type\": \"hotp\", \"secret\": \"{KEY_HEX}\", \"serial\": \"B1\", \"counter\": 1}}]}}'::jsonb)",
            user.name
        ));
        return;
    }
    let code = &hotp_codes(KEY_HEX, 0, 1)[0];
    let out = std::process::Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args([
            "--user", &user.name, "token", "--serial", "B1", "--secret", KEY_HEX, "--code", code,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Calls of the functions a host sends (each one statement, one round
/// trip), as the server counts them (track_functions), and the time spent
/// in verify() in all (ms).
fn host_calls(pg: &Postgres) -> (u64, f64) {
    let calls = pg
        .psql_ok(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
              WHERE schemaname = 'pam_otp'
                AND funcname IN ('login_info', 'verify', 'verify_code', 'verify_no_token', 'enroll')",
        )
        .parse()
        .unwrap();
    let verify_ms = pg
        .psql_ok(
            "SELECT coalesce(sum(total_time), 0) FROM pg_stat_user_functions
              WHERE schemaname = 'pam_otp' AND funcname IN ('verify', 'verify_code')",
        )
        .parse()
        .unwrap();
    (calls, verify_ms)
}

/// One store measured: its host, its user, its server (none: `home`).
struct Arm {
    label: &'static str,
    pg: Option<Postgres>,
    host: PamService,
    user: TestUser,
    times: Vec<Duration>,
}

fn fleet_arm(label: &'static str, v1_module: Option<&Path>, role: &str) -> Arm {
    let pg = match v1_module {
        Some(_) => {
            let pg = Postgres::start();
            pg.psql_script(SCHEMA_V1);
            pg
        }
        None => Postgres::with_schema(),
    };
    let host = host(&pg, role, v1_module);
    let user = TestUser::new();
    enroll(&pg, &host, &user, v1_module.is_some());
    pg.psql_ok("ALTER SYSTEM SET track_functions = 'all'");
    pg.psql_ok("SELECT pg_reload_conf()");
    Arm {
        label,
        pg: Some(pg),
        host,
        user,
        times: Vec::new(),
    }
}

/// Four hosts at once on `pg`, each its own user: every other login a
/// wrong code (refused), else the next right one (accepted); logins/s.
fn four_at_once(pg: &Postgres, v1_module: Option<&Path>, tag: &str, per_host: usize) -> f64 {
    let hosts: Vec<PamService> = (2..=5)
        .map(|i| host(pg, &format!("{tag}{i}"), v1_module))
        .collect();
    let users: Vec<TestUser> = hosts
        .iter()
        .map(|h| {
            let u = TestUser::new();
            enroll(pg, h, &u, v1_module.is_some());
            u
        })
        .collect();
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
    let t = stopwatch();
    std::thread::scope(|s| {
        for (h, u) in hosts.iter().zip(&users) {
            s.spawn(move || {
                let codes = hotp_codes(KEY_HEX, 1, per_host as u64);
                for (i, code) in codes.iter().enumerate() {
                    let right = h.authenticate(&u.name, None, &format!("{code}\n"));
                    assert!(right.success, "right code {i} refused: {right:?}");
                    let wrong = h.authenticate(&u.name, None, "000000\n");
                    assert!(!wrong.success, "wrong code {i} accepted");
                }
            });
        }
    });
    (hosts.len() * per_host * 2) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let v1_module = std::env::var_os("PAM_OTP_V1_MODULE").map(std::path::PathBuf::from);
    if let Some(m) = &v1_module {
        assert!(
            m.exists(),
            "PAM_OTP_V1_MODULE={}: no such file",
            m.display()
        );
    }
    let home = PamService::with_config(OTP_ONLY, "[rate_limit]\nmax_failures = 0\n");
    let u_home = TestUser::new();
    u_home.write_secret(&hotp_secret(1));
    let mut arms = vec![Arm {
        label: "home",
        pg: None,
        host: home,
        user: u_home,
        times: Vec::new(),
    }];
    if let Some(m) = &v1_module {
        arms.push(fleet_arm(
            "postgresql, schema 1 and module 1 (before)",
            Some(m),
            "old1",
        ));
    }
    arms.push(fleet_arm(
        "postgresql, schema 3 and this module (audit row)",
        None,
        "bench1",
    ));
    // Counter 1 on for every user; HOTP, so every login has a fresh right
    // code.
    let codes = hotp_codes(KEY_HEX, 1, n as u64);
    let before: Vec<(u64, f64)> = arms
        .iter()
        .map(|a| a.pg.as_ref().map_or((0, 0.0), host_calls))
        .collect();
    for (i, code) in codes.iter().enumerate() {
        let input = format!("{code}\n");
        // Each round in another order, so no store always goes first.
        let k = arms.len();
        for j in 0..k {
            let arm = &mut arms[(i + j) % k];
            let t = stopwatch();
            let run = arm.host.authenticate(&arm.user.name, None, &input);
            let took = t.elapsed();
            assert!(run.success, "{} login {i}: {run:?}", arm.label);
            arm.times.push(took);
        }
    }
    // A backend's counts reach the statistics when it exits, just after
    // its login.
    std::thread::sleep(Duration::from_secs(2));
    println!("one login, pamtester + pam_wrapper, median of {n} interleaved:");
    println!("| store | wall time per login (ms) | statements per login | server time in verify() per login (ms) |");
    println!("|---|---:|---:|---:|");
    for (arm, (calls0, ms0)) in arms.iter_mut().zip(before) {
        let (per_login, verify_ms) = match &arm.pg {
            Some(pg) => {
                let (calls, ms) = host_calls(pg);
                (
                    format!("{:.2}", (calls - calls0) as f64 / n as f64),
                    format!("{:.3}", (ms - ms0) / n as f64),
                )
            }
            None => ("0".into(), "".into()),
        };
        println!(
            "| {} | {:.2} | {per_login} | {verify_ms} |",
            arm.label,
            median(std::mem::take(&mut arm.times)).as_secs_f64() * 1e3
        );
    }

    // Four hosts at once, on each database in turn.
    println!();
    let per_host = n / 2;
    for arm in &arms {
        let Some(pg) = &arm.pg else { continue };
        let v1 = if arm.label.contains("before") {
            v1_module.as_deref()
        } else {
            None
        };
        let rate = four_at_once(
            pg,
            v1,
            if v1.is_some() { "oldc" } else { "bench" },
            per_host,
        );
        println!(
            "4 hosts at once, {}: {} logins (half right, half wrong, every answer checked): {rate:.0} logins/s",
            arm.label,
            4 * per_host * 2
        );
    }
}
