//! What the `postgresql` store costs a user: one login's wall time against
//! the `home` store (median, interleaved, TLS on), the statements each
//! login sends to the database (the server's own transaction count), and
//! logins per second with four hosts logging in at once, every login
//! checked to have been accepted (right code) or refused (wrong code).
//! Asserts nothing but that the logins gave the answers they must.
//!
//! `cargo build --release --workspace && cargo bench -p testkit --bench fleet [-- N]`
//! (N logins per store, default 200; needs root). `make bench` runs it.

use std::time::Duration;

use testkit::harness::{hotp_codes, stopwatch};
use testkit::pg::{fleet_config, Postgres};
use testkit::{binary_path, hotp_secret, PamService, TestUser, KEY_HEX, OTP_ONLY};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A host of the database with its own role and certificate.
fn host(pg: &Postgres, name: &str) -> PamService {
    let pam = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo(name, &pam.dir, 5);
    let admin = pg.admin_conninfo("ops", &pam.dir, 5);
    pam.write_config(&fleet_config(&conninfo, &admin, ""));
    pam
}

/// `user` gets the test key as an HOTP token in the database.
fn enroll(pam: &PamService, user: &TestUser) {
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
/// trip), as the server counts them (track_functions).
fn host_calls(pg: &Postgres) -> u64 {
    pg.psql_ok(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
          WHERE schemaname = 'pam_otp' AND funcname IN ('login_info', 'verify', 'enroll')",
    )
    .parse()
    .unwrap()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let pg = Postgres::with_schema();
    let db = host(&pg, "bench1");
    let home = PamService::with_config(OTP_ONLY, "[rate_limit]\nmax_failures = 0\n");
    let (u_db, u_home) = (TestUser::new(), TestUser::new());
    enroll(&db, &u_db);
    u_home.write_secret(&hotp_secret(1));
    // Counter 1 on for both; HOTP, so every login has a fresh right code.
    let codes = hotp_codes(KEY_HEX, 1, n as u64);
    let (mut t_db, mut t_home) = (Vec::new(), Vec::new());
    pg.psql_ok("ALTER SYSTEM SET track_functions = 'all'");
    pg.psql_ok("SELECT pg_reload_conf()");
    let calls_before = host_calls(&pg);
    for (i, code) in codes.iter().enumerate() {
        let input = format!("{code}\n");
        let db_login = || {
            let t = stopwatch();
            let run = db.authenticate(&u_db.name, None, &input);
            let took = t.elapsed();
            assert!(run.success, "postgresql login {i}: {run:?}");
            took
        };
        let home_login = || {
            let t = stopwatch();
            let run = home.authenticate(&u_home.name, None, &input);
            assert!(run.success, "home login {i}: {run:?}");
            t.elapsed()
        };
        if i % 2 == 0 {
            t_db.push(db_login());
            t_home.push(home_login());
        } else {
            t_home.push(home_login());
            t_db.push(db_login());
        }
    }
    // A backend's counts reach the statistics when it exits, just after
    // its login.
    std::thread::sleep(Duration::from_secs(2));
    let per_login = (host_calls(&pg) - calls_before) as f64 / n as f64;
    println!("one login, pamtester + pam_wrapper, median of {n} interleaved:");
    println!("| store | wall time per login (ms) | statements per login |");
    println!("|---|---:|---:|");
    println!("| home | {:.2} | 0 |", median(t_home).as_secs_f64() * 1e3);
    println!(
        "| postgresql (TLS, verify-full, client certificate) | {:.2} | {per_login:.2} |",
        median(t_db).as_secs_f64() * 1e3
    );

    // Four hosts at once, each its own user: every other login a wrong
    // code (refused), else the next right one (accepted).
    let hosts: Vec<PamService> = (2..=5).map(|i| host(&pg, &format!("bench{i}"))).collect();
    let users: Vec<TestUser> = hosts
        .iter()
        .map(|h| {
            let u = TestUser::new();
            enroll(h, &u);
            u
        })
        .collect();
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
    let per_host = n / 2;
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
    let took = t.elapsed();
    let logins = hosts.len() * per_host * 2;
    println!();
    println!(
        "4 hosts at once: {logins} logins (half right, half wrong, every answer checked) in {:.1} s: {:.0} logins/s",
        took.as_secs_f64(),
        logins as f64 / took.as_secs_f64()
    );
}
