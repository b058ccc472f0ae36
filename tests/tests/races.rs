//! Concurrent logins of one user through the real libpam (pamtester, one
//! process each, pam_wrapper with a private service directory): a code is
//! accepted at most once, no update of the secret file is lost, and the
//! rate limit counts exactly what it should.
//!
//! Each race starts 24 pamtester processes, waits until all of them sit at
//! the prompt, then answers all of them at once, so they reach the secret
//! file together. The races run one at a time (pam_wrapper has a limited
//! number of per-process directories, and a race should have the machine
//! to itself).

use std::process::{Command, Stdio};
use std::sync::Mutex;

use testkit::harness::{assert_exactly_one_winner, hotp_codes, login_race, Reaper, Rng};
use testkit::{finish, now, oathtool_totp, wait_for_fresh_step, TestUser};
use testkit::{hotp_secret, secret_file, totp_secret, PamService};
use testkit::{target_dir, KEY_B32, KEY_HEX, NO_RATE_LIMIT, OTP_ONLY};

/// Logins per race.
const N: usize = 24;
/// RFC 4226 appendix D: the codes for counters 0..=3.
const RFC4226: [&str; 4] = ["755224", "287082", "359152", "969429"];
// The races run with the rate limit off (NO_RATE_LIMIT): every losing
// login then reads, checks and rewrites the file (a replay is a failure and
// is recorded), the most contention the lock can get, and the failure count
// tells whether an update was lost.

static ONE_RACE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_RACE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn pam(config: &str) -> PamService {
    PamService::named("otp-race", OTP_ONLY, config)
}

#[test]
#[ignore = "needs root: make test"]
fn totp_code_used_by_24_logins_at_once_is_accepted_once() {
    let _one = serial();
    let user = TestUser::new();
    let path = user.write_secret(&totp_secret());
    let pam = pam(NO_RATE_LIMIT);
    wait_for_fresh_step(5);
    let t = now();
    let step = t / 30;
    let code = oathtool_totp(KEY_B32, Some(t), &[]);

    let runs = login_race(&pam, &user.name, &code, N);
    assert_exactly_one_winner(&runs, "TOTP");

    let f = secret_file(&path);
    assert_eq!(
        f.tokens[0].state.last_step,
        Some(step),
        "the accepted step is recorded"
    );
    assert_eq!(
        f.state.failures,
        (N - 1) as u32,
        "every losing login's failure was recorded: no update lost"
    );

    // The next code (the next step, within the ±1 skew) works, once.
    let next = oathtool_totp(KEY_B32, Some((step + 1) * 30), &[]);
    let run = pam.authenticate(&user.name, None, &format!("{next}\n"));
    assert!(run.success, "the next code after the race: {run:#?}");
    let f = secret_file(&path);
    assert_eq!(f.tokens[0].state.last_step, Some(step + 1));
    assert_eq!(f.state.failures, 0, "a success clears the failures");
    assert!(
        !pam.authenticate(&user.name, None, &format!("{next}\n"))
            .success
    );
}

#[test]
#[ignore = "needs root: make test"]
fn hotp_code_used_by_24_logins_at_once_is_accepted_once() {
    let _one = serial();
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam(NO_RATE_LIMIT);
    // Three rounds: counters 0, 1 and 2, each raced by 24 logins.
    for (counter, code) in RFC4226.iter().take(3).enumerate() {
        let runs = login_race(&pam, &user.name, code, N);
        assert_exactly_one_winner(&runs, &format!("HOTP counter {counter}"));
        let f = secret_file(&path);
        assert_eq!(
            f.tokens[0].counter,
            counter as u64 + 1,
            "the counter moved past it"
        );
        assert_eq!(f.state.failures, (N - 1) as u32, "no update lost");
    }
    // The next code works.
    let run = pam.authenticate(&user.name, None, &format!("{}\n", RFC4226[3]));
    assert!(run.success, "the next code after the races: {run:#?}");
    let f = secret_file(&path);
    assert_eq!(f.tokens[0].counter, 4);
    assert_eq!(f.state.failures, 0);
}

#[test]
#[ignore = "needs root: make test"]
fn scratch_code_used_by_24_logins_at_once_is_accepted_once() {
    let _one = serial();
    let user = TestUser::new();
    let codes = ["31415926", "27182818", "16180339", "14142135"];
    let path = user.write_secret(&format!("{}scratch_codes = {codes:?}\n", totp_secret()));
    let pam = pam(NO_RATE_LIMIT);
    for (i, code) in codes.iter().take(3).enumerate() {
        let runs = login_race(&pam, &user.name, code, N);
        assert_exactly_one_winner(&runs, &format!("scratch code {i}"));
        let f = secret_file(&path);
        assert_eq!(
            f.scratch_codes,
            codes[i + 1..].to_vec(),
            "exactly the used code was removed"
        );
        assert_eq!(f.state.failures, (N - 1) as u32, "no update lost");
    }
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[3]));
    assert!(run.success, "the last emergency code: {run:#?}");
    assert!(secret_file(&path).scratch_codes.is_empty());
    assert!(
        !pam.authenticate(&user.name, None, &format!("{}\n", codes[3]))
            .success
    );
}

/// The rate limit's state lives in the file, under the lock: 24 wrong
/// codes at once are counted one by one, so exactly `max_failures` of them
/// are checked and the rest are refused as locked without being checked.
#[test]
#[ignore = "needs root: make test"]
fn concurrent_wrong_codes_cannot_outrun_the_rate_limit() {
    let _one = serial();
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    // The default rate limit (3 failures, then 30 s).
    let pam = pam("");
    // Not a code of counters 0..=10 (the default look-ahead).
    let wrong = "000000";
    assert!(!hotp_codes(KEY_HEX, 0, 11).contains(&wrong.to_string()));

    let runs = login_race(&pam, &user.name, wrong, N);
    assert!(runs.iter().all(|r| !r.success), "{runs:#?}");
    let locked = runs
        .iter()
        .filter(|r| r.stderr.contains("Too many failed attempts"))
        .count();
    assert_eq!(
        locked,
        N - 3,
        "exactly 3 wrong codes were checked, the other {} were refused as locked:\n{runs:#?}",
        N - 3
    );
    let f = secret_file(&path);
    assert_eq!(f.state.failures, 3, "failures counted one by one");
    assert_eq!(f.tokens[0].counter, 0);
    // Locked now: even the right code is refused without being checked.
    let run = pam.authenticate(&user.name, None, &format!("{}\n", RFC4226[0]));
    assert!(!run.success, "{run:#?}");
    assert!(run.stderr.contains("Too many failed attempts"), "{run:#?}");
    assert_eq!(
        secret_file(&path).tokens[0].counter,
        0,
        "the code was not checked or used"
    );
}

// ---- otp-enroll against logins ------------------------------------------

/// The otp-enroll binary, if this build has one that knows `scratch` and
/// `unlock` (`cargo test --workspace` builds it next to the tests).
fn otp_enroll() -> Option<std::path::PathBuf> {
    let bin = target_dir().join("otp-enroll");
    let help = Command::new(&bin)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&help.stdout),
        String::from_utf8_lossy(&help.stderr)
    );
    (help.status.success() && text.contains("scratch") && text.contains("unlock")).then_some(bin)
}

/// `otp-enroll --user U scratch -n 5` and `otp-enroll --user U unlock`
/// racing real logins (HOTP, so every login changes the file): neither
/// side's update is lost. A missing otp-enroll fails the test.
#[test]
#[ignore = "needs root: make test"]
fn otp_enroll_scratch_and_unlock_racing_logins_lose_no_update() {
    let enroll = otp_enroll().unwrap_or_else(|| {
        panic!(
            "target/<profile>/otp-enroll is missing or its --help does not mention \
             `scratch` and `unlock`; build it with `cargo build --workspace`"
        )
    });
    let _one = serial();
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam(NO_RATE_LIMIT);
    let codes = hotp_codes(KEY_HEX, 0, 40);
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed}");
    let mut counter = 0usize;
    for round in 0..16 {
        let scratch = round % 2 == 0;
        let mut enroll_cmd = Command::new(&enroll);
        enroll_cmd.arg("--user").arg(&user.name);
        if scratch {
            enroll_cmd.args(["scratch", "-n", "5"]);
        } else {
            enroll_cmd.arg("unlock");
        }
        enroll_cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A wrong code first, so `unlock` has a failure to clear.
        assert!(!pam.authenticate(&user.name, None, "000000\n").success);
        let login = pam.spawn_login(&user.name, &format!("{}\n", codes[counter]));
        std::thread::sleep(std::time::Duration::from_micros(rng.below(15_000)));
        let mut reaper = Reaper(Vec::new());
        let enroll_child = enroll_cmd.spawn().expect("otp-enroll");
        reaper.0.push(enroll_child);
        let run = finish(login);
        let out = reaper.0.pop().unwrap().wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "otp-enroll: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(run.success, "round {round}: the login: {run:#?}");
        counter += 1;
        let f = secret_file(&path);
        assert_eq!(
            f.tokens[0].counter, counter as u64,
            "round {round}: the login's counter update was lost to otp-enroll"
        );
        if scratch {
            let printed: String = stdout.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(f.scratch_codes.len(), 5, "round {round}");
            for c in &f.scratch_codes {
                assert!(
                    printed.contains(c.as_str()),
                    "round {round}: the file holds scratch code {c} that otp-enroll \
                     did not print: its update was lost or overwritten\n{stdout}"
                );
            }
        }
        // (After an `unlock` round the failures are 0 whichever ran first,
        // since the right code clears them too: there the counter above is
        // what shows that no update was lost.)
        assert_eq!(f.state.failures, 0, "round {round}");
    }
}

// ---- the rate limit against a patient guesser ---------------------------

/// The rate limit's design (otp-core/src/rate_limit.rs, SECURITY.md "Brute
/// force") counts the tries of a guesser who tries again the moment a
/// lock ends: 14 on the first day, then about one a day, so under 10⁻⁴
/// per day at 3 valid TOTP codes in 10⁶ per try (unit test
/// `rate_limit::tests::guesser_tries_per_day_under_defaults`). A guesser
/// who instead waits `interval` after every second failure never reaches
/// `max_failures`: failures below the threshold that are `interval` apart
/// are forgiven. This is the module's own RateLimit, run over one day.
#[test]
fn a_patient_guesser_gets_no_more_tries_than_the_design_counts() {
    use otp_core::rate_limit::RateLimit;
    use otp_core::secret_file::State;
    let rl = RateLimit::default();
    let mut s = State::default();
    let start = 10_000_000u64;
    let mut t = start;
    let mut tries = 0u64;
    while t < start + 86_400 {
        if let Some(wait) = rl.locked_for(&s, t) {
            t += wait;
            continue;
        }
        // One failure short of a lock: let `interval` pass first.
        if s.failures + 1 >= rl.max_failures && t < s.last_failure + rl.interval {
            t = s.last_failure + rl.interval;
            continue;
        }
        tries += 1;
        rl.record_failure(&mut s, t);
    }
    let totp = tries as f64 * 3e-6;
    let hotp = tries as f64 * 11e-6; // default hotp_window = 10: 11 codes
    assert!(
        totp < 1e-4,
        "{tries} tries in a day: {totp:.1e} for a TOTP user, {hotp:.1e} for an HOTP user"
    );
}

/// The same through the real module, with `interval = 1` to keep it short:
/// ten wrong codes, two at a time a second apart, and not one is refused
/// as rate limited (a guesser trying as fast as possible is locked after
/// the third).
#[test]
#[ignore = "needs root: make test"]
fn paced_wrong_codes_are_rate_limited_through_pam() {
    let _one = serial();
    let user = TestUser::new();
    user.write_secret(&hotp_secret(0));
    let pam = pam("[rate_limit]\nmax_failures = 3\ninterval = 1\n");
    let mut locked = 0;
    for _ in 0..5 {
        for _ in 0..2 {
            let run = pam.authenticate(&user.name, None, "000000\n");
            assert!(!run.success);
            locked += usize::from(run.stderr.contains("Too many failed attempts"));
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(
        locked > 0,
        "10 wrong codes in 5 s, none refused as rate limited (max_failures = 3)"
    );
}
