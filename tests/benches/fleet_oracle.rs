//! Under `store = "postgresql"` (and, for comparison, `home`), can a
//! guesser tell an enrolled user, an account without a token and a name
//! that is no account apart by the time a wrong code takes? Interleaved
//! wrong-code logins of the three through pamtester (`missing = "deny"`;
//! the fleet over TLS to a private PostgreSQL on the same machine, its
//! limit raised, and the home store with the rate limit off, so that no
//! try is locked: every one is a failure written). Prints the three medians,
//! their quartile ranges, and each difference from the enrolled user's
//! median with a bootstrap 95 % interval; asserts nothing but the answers
//! (a benchmark, not a test). Each login sends the same two statements
//! (`tests/tests/pg_oracle.rs` checks that).
//!
//! `cargo build --release --workspace && cargo bench -p testkit --bench fleet_oracle [-- N]`
//! (N logins per name, default 200; needs root). `make bench` runs it.

use std::time::Duration;

use testkit::harness::{stopwatch, Rng};
use testkit::pg::{fleet_config, Postgres};
use testkit::{totp_secret, unique, PamService, TestUser, KEY_HEX, OTP_ONLY};

const WRONG: &str = "000000";

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    // The fleet: TLS to a private PostgreSQL, its limit raised.
    let pg = Postgres::with_schema();
    pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
    let fleet = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo("bench1", &fleet.dir, 5);
    let admin = pg.admin_conninfo("ops", &fleet.dir, 5);
    fleet.write_config(&fleet_config(&conninfo, &admin, "missing = \"deny\"\n"));
    let fleet_user = TestUser::new();
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('{}', '{{\"tokens\": [{{\"id\": \"B1\", \"type\": \"totp\", \"secret\": \"{KEY_HEX}\"}}]}}'::jsonb)",
        fleet_user.name
    ));
    // The home store, next to it: the rate limit off, so that every try
    // is a failure written there too.
    let home = PamService::with_config(
        OTP_ONLY,
        "missing = \"deny\"\n[rate_limit]\nmax_failures = 0\n",
    );
    let home_user = TestUser::new();
    home_user.write_secret(&totp_secret());
    let bare = TestUser::new();
    let nobody = unique("nosuch");
    println!("wrong-code logins through pamtester, {n} per name, interleaved; milliseconds");
    println!(
        "{:<42} {:>9} {:>9}  {:>26}",
        "store, name", "median", "IQR", "minus enrolled (95 %)"
    );
    for (store, pam, enrolled) in [
        ("postgresql", &fleet, &fleet_user),
        ("home", &home, &home_user),
    ] {
        let names = [enrolled.name.as_str(), bare.name.as_str(), nobody.as_str()];
        let times = measure(pam, &names, n);
        let sorted: Vec<Vec<f64>> = times.iter().map(|t| sorted(t)).collect();
        for (label, s) in [
            "enrolled",
            "account without a token",
            "name that is no account",
        ]
        .iter()
        .zip(&sorted)
        {
            let (lo, mid, hi) = diff_interval(s, &sorted[0]);
            println!(
                "{:<42} {:>9.2} {:>9.2}  {:>+8.2} [{:+.2}, {:+.2}]",
                format!("{store}: {label}"),
                quantile(s, 0.5),
                quantile(s, 0.75) - quantile(s, 0.25),
                mid,
                lo,
                hi
            );
        }
    }
}

/// `n` wrong-code logins of each of `names`, the three in turn (each
/// order as often), after a warm-up.
fn measure(pam: &PamService, names: &[&str; 3], n: usize) -> [Vec<Duration>; 3] {
    let login = |user: &str| {
        let start = stopwatch();
        let run = pam.authenticate(user, Some("203.0.113.7"), &format!("{WRONG}\n"));
        let took = start.elapsed();
        assert!(!run.success, "a wrong code got in: {run:?}");
        took
    };
    for _ in 0..5 {
        for name in names {
            login(name);
        }
    }
    let mut times: [Vec<Duration>; 3] = Default::default();
    for i in 0..n {
        for k in 0..3 {
            let which = (i + k) % 3;
            times[which].push(login(names[which]));
        }
    }
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn sorted(v: &[Duration]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().map(ms).collect();
    s.sort_by(f64::total_cmp);
    s
}

/// The difference of the medians of `a` and `b`, with the bootstrap 95 %
/// interval (a fixed seed: the same samples give the same interval).
fn diff_interval(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let med = |s: &[f64]| quantile(s, 0.5);
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut next = |len: usize| rng.below(len as u64) as usize;
    let mut diffs: Vec<f64> = (0..2000)
        .map(|_| {
            let mut ra: Vec<f64> = (0..a.len()).map(|_| a[next(a.len())]).collect();
            let mut rb: Vec<f64> = (0..b.len()).map(|_| b[next(b.len())]).collect();
            ra.sort_by(f64::total_cmp);
            rb.sort_by(f64::total_cmp);
            med(&ra) - med(&rb)
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    (
        quantile(&diffs, 0.025),
        med(a) - med(b),
        quantile(&diffs, 0.975),
    )
}
