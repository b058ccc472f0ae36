//! Can a guesser tell an enrolled user from an unenrolled one by the time a
//! wrong code takes? Interleaved wrong-code logins of both, over the real
//! sshd and ssh (keyboard-interactive, `missing = "deny"`), and through
//! pamtester, which sees the module's time with less noise around it.
//! Prints medians, quartiles and the difference of the medians with a
//! bootstrap 95 % interval; asserts nothing (a benchmark, not a test).
//!
//! `cargo build --release --workspace && cargo bench -p testkit --bench oracle_timing [-- N]`
//! (N logins per user and case, default 200; needs root).

use std::time::Duration;

use testkit::harness::{stopwatch, Rng};
use testkit::{totp_secret, PamService, TestUser, PROMPT};
use testkit::{Sshd, SshdSetup, OTP_ONLY};

const WRONG: &str = "000000";

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    println!("wrong-code logins, {n} per user and case, interleaved; milliseconds");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}  {:>22}",
        "case", "enrolled", "IQR", "unenr.", "IQR", "diff of medians (95 %)"
    );
    for (name, config) in [
        ("rate limit on (defaults)", "missing = \"deny\"\n"),
        (
            "rate limit off (every try writes)",
            "missing = \"deny\"\n[rate_limit]\nmax_failures = 0\n",
        ),
    ] {
        let (a, b) = over_sshd(config, n);
        report(&format!("sshd: {name}"), &a, &b);
        let (a, b) = over_pamtester(config, n);
        report(&format!("pamtester: {name}"), &a, &b);
    }
}

fn users() -> (TestUser, TestUser) {
    let enrolled = TestUser::new();
    enrolled.write_secret(&totp_secret());
    (enrolled, TestUser::new())
}

fn over_sshd(config: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (enrolled, unenrolled) = users();
    let sshd = Sshd::start(&SshdSetup {
        pam_auth: OTP_ONLY,
        otp_config: config,
        authentication_methods: "keyboard-interactive",
        sshd_extra: "",
    });
    interleaved(
        n,
        |user| {
            let start = stopwatch();
            let run = sshd.ssh(user).answer(PROMPT, WRONG).run();
            assert!(!run.success, "a wrong code got in: {run:?}");
            start.elapsed()
        },
        &enrolled.name,
        &unenrolled.name,
    )
}

fn over_pamtester(config: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (enrolled, unenrolled) = users();
    let svc = PamService::with_config(OTP_ONLY, config);
    interleaved(
        n,
        |user| {
            let start = stopwatch();
            let run = svc.authenticate(user, Some("203.0.113.7"), &format!("{WRONG}\n"));
            assert!(!run.success, "a wrong code got in: {run:?}");
            start.elapsed()
        },
        &enrolled.name,
        &unenrolled.name,
    )
}

/// Alternates the two users (starting with each in turn), after a warm-up.
fn interleaved(
    n: usize,
    mut login: impl FnMut(&str) -> Duration,
    a: &str,
    b: &str,
) -> (Vec<Duration>, Vec<Duration>) {
    for _ in 0..5 {
        login(a);
        login(b);
    }
    let (mut ta, mut tb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        if i % 2 == 0 {
            ta.push(login(a));
            tb.push(login(b));
        } else {
            tb.push(login(b));
            ta.push(login(a));
        }
    }
    (ta, tb)
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

fn report(name: &str, a: &[Duration], b: &[Duration]) {
    let (sa, sb) = (sorted(a), sorted(b));
    let med = |s: &[f64]| quantile(s, 0.5);
    let iqr = |s: &[f64]| quantile(s, 0.75) - quantile(s, 0.25);
    // Bootstrap the difference of medians (a fixed seed: the same samples
    // give the same interval).
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut next = |len: usize| rng.below(len as u64) as usize;
    let mut diffs: Vec<f64> = (0..2000)
        .map(|_| {
            let mut ra: Vec<f64> = (0..sa.len()).map(|_| sa[next(sa.len())]).collect();
            let mut rb: Vec<f64> = (0..sb.len()).map(|_| sb[next(sb.len())]).collect();
            ra.sort_by(f64::total_cmp);
            rb.sort_by(f64::total_cmp);
            med(&ra) - med(&rb)
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {:>+7.2} [{:+.2}, {:+.2}]",
        name,
        med(&sa),
        iqr(&sa),
        med(&sb),
        iqr(&sb),
        med(&sa) - med(&sb),
        quantile(&diffs, 0.025),
        quantile(&diffs, 0.975),
    );
}
