//! `grace_period`: after a code was accepted for a user from an address,
//! that user's logins from the same address need no code for N seconds;
//! another address, no address, a host name, or later, and a code is asked.
//! Through the real libpam (pamtester with `PAM_RHOST`, pam_wrapper and a
//! private service directory), HOTP tokens so that every login has a code
//! of its own.
//!
//! "No code needed" is shown by answering nothing: pamtester's stdin is
//! empty, so a login that asked would have no answer and fail; and the
//! prompt is not printed. "A code is asked" is the prompt printed (and, with
//! nothing to answer, the login refused).

use std::collections::BTreeSet;
use std::path::Path;

use otp_core::secret_file::MAX_GRACE;
use testkit::harness::{hotp_codes, names, state_dir, write_system_secret};
use testkit::{hotp_secret, now, secret_file, PamRun, PamService, TestUser};
use testkit::{KEY_HEX, NO_RATE_LIMIT, OTP_ONLY, PROMPT};

const A: &str = "203.0.113.7";
const B: &str = "203.0.113.8";

/// A service of pam_otp alone with `config` (top-level keys), the rate
/// limit off: the logins answered with nothing count as failures.
fn pam(config: &str) -> PamService {
    PamService::with_config(OTP_ONLY, &format!("{config}{NO_RATE_LIMIT}"))
}

fn code_line(code: &str) -> String {
    format!("{code}\n")
}

/// A login from `rhost` answered with `code`: it was asked and got in.
fn login_with_code(pam: &PamService, user: &TestUser, rhost: Option<&str>, code: &str) {
    let run = pam.authenticate(&user.name, rhost, &code_line(code));
    assert!(run.success, "the code from {rhost:?}: {run:#?}");
    assert!(run.stderr.contains(PROMPT), "{run:#?}");
}

/// A login from `rhost` with nothing to answer.
fn login_without_code(pam: &PamService, user: &TestUser, rhost: Option<&str>) -> PamRun {
    pam.authenticate(&user.name, rhost, "")
}

/// Let in without being asked.
fn assert_no_code_needed(run: &PamRun, what: &str) {
    assert!(run.success, "{what}: refused: {run:#?}");
    assert!(
        !run.stderr.contains(PROMPT),
        "{what}: a code was asked: {run:#?}"
    );
}

/// Asked for a code (and, with none given, refused).
fn assert_code_asked(run: &PamRun, what: &str) {
    assert!(!run.success, "{what}: let in without a code: {run:#?}");
    assert!(
        run.stderr.contains(PROMPT),
        "{what}: no code was asked: {run:#?}"
    );
}

/// The grace entries of the file at `path`: (address, time), newest first
/// as the file keeps them.
fn grace(path: &Path) -> Vec<(String, u64)> {
    secret_file(path)
        .state
        .grace
        .iter()
        .map(|g| (g.from.clone(), g.at))
        .collect()
}

fn addresses(path: &Path) -> BTreeSet<String> {
    grace(path).into_iter().map(|(a, _)| a).collect()
}

/// With `grace_period = 300`: a code from A; then A again needs none (also
/// as an IPv4-mapped IPv6 address), B, no address and a host name are
/// asked; the module argument `grace_period=0` turns it off. The login let
/// in by the grace period used no code (the counter did not move).
#[test]
#[ignore = "needs root: make test"]
fn a_code_spares_the_same_address_only() {
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam("grace_period = 300\n");
    let codes = hotp_codes(KEY_HEX, 0, 3);

    let t0 = now();
    login_with_code(&pam, &user, Some(A), &codes[0]);
    let entries = grace(&path);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, A);
    assert!((t0..=now()).contains(&entries[0].1), "{entries:?}");
    assert_eq!(
        secret_file(&path).version,
        2,
        "grace entries need version 2"
    );

    let run = login_without_code(&pam, &user, Some(A));
    assert_no_code_needed(&run, "A again");
    let run = login_without_code(&pam, &user, Some(&format!("::ffff:{A}")));
    assert_no_code_needed(&run, "A as ::ffff:A");
    assert_eq!(
        secret_file(&path).tokens[0].counter,
        1,
        "no code was used by the logins in the grace period"
    );

    assert_code_asked(&login_without_code(&pam, &user, Some(B)), "B");
    assert_code_asked(&login_without_code(&pam, &user, None), "no rhost");
    assert_code_asked(&login_without_code(&pam, &user, Some("")), "empty rhost");
    assert_code_asked(
        &login_without_code(&pam, &user, Some("host.example")),
        "a host name",
    );
    assert_eq!(grace(&path), entries, "refused logins record nothing");

    // The module argument overrides the config.
    let off = PamService::with_config(
        "auth required {module} config={config} grace_period=0\n",
        &format!("grace_period = 300\n{NO_RATE_LIMIT}"),
    );
    assert_code_asked(
        &login_without_code(&off, &user, Some(A)),
        "grace_period=0, A",
    );

    // A code from B spares B too, and A still.
    login_with_code(&pam, &user, Some(B), &codes[1]);
    assert_eq!(addresses(&path), BTreeSet::from([A.into(), B.into()]));
    assert_no_code_needed(
        &login_without_code(&pam, &user, Some(B)),
        "B after its code",
    );
    assert_no_code_needed(
        &login_without_code(&pam, &user, Some(A)),
        "A after B's code",
    );
}

/// Grace holds for the same PAM service only: two service files on one
/// host, both with `grace_period = 300`; a code accepted through the
/// first spares the first, not the second, from the same address (a code
/// typed into OpenVPN does not skip the code for sshd). The entry names
/// its service.
#[test]
#[ignore = "needs root: make test"]
fn a_code_through_one_service_does_not_spare_the_code_for_another() {
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let vpn = pam("grace_period = 300
");
    let ssh = pam("grace_period = 300
");
    let codes = hotp_codes(KEY_HEX, 0, 2);

    login_with_code(&vpn, &user, Some(A), &codes[0]);
    let file = secret_file(&path);
    assert_eq!(file.state.grace.len(), 1);
    assert_eq!(
        file.state.grace[0].service.as_deref(),
        Some(vpn.name.as_str())
    );
    assert_no_code_needed(
        &login_without_code(&vpn, &user, Some(A)),
        "the same service",
    );
    assert_code_asked(&login_without_code(&ssh, &user, Some(A)), "another service");
    // A code through the second spares it too, and the first still.
    login_with_code(&ssh, &user, Some(A), &codes[1]);
    assert_no_code_needed(&login_without_code(&ssh, &user, Some(A)), "its own code");
    assert_no_code_needed(&login_without_code(&vpn, &user, Some(A)), "the first still");
    assert_eq!(secret_file(&path).state.grace.len(), 2);
}

/// Under `store = "system"` too; the entry is kept in the system file,
/// and nothing is written in the home.
#[test]
#[ignore = "needs root: make test"]
fn grace_under_the_system_store_is_kept_in_the_system_file() {
    let user = TestUser::new();
    let pam = pam("store = \"system\"\ngrace_period = 300\n");
    let sys = write_system_secret(&state_dir(&pam), &user.name, &hotp_secret(0));
    let home = names(&user.home);
    let codes = hotp_codes(KEY_HEX, 0, 1);

    login_with_code(&pam, &user, Some(A), &codes[0]);
    assert_eq!(addresses(&sys), BTreeSet::from([A.into()]));
    assert_no_code_needed(&login_without_code(&pam, &user, Some(A)), "A again");
    assert_code_asked(&login_without_code(&pam, &user, Some(B)), "B");
    assert_code_asked(&login_without_code(&pam, &user, None), "no rhost");
    assert_eq!(names(&user.home), home, "something was written in the home");
}

/// Moves every grace entry of the file at `path` (the user's) `secs`
/// seconds into the past: to the module, exactly as if `secs` seconds had
/// passed since those codes, without the test sleeping. The module reads
/// the real clock and compares it with the stored time, so what is tested
/// is the same comparison; but a period of a few seconds measured with
/// real sleeps is eaten by a slow login (two fsyncs on a busy disk, a
/// starved pamtester): a login meant to come "at once" could come after
/// the period, and fail.
fn age_grace(user: &TestUser, path: &Path, secs: u64) {
    let mut file = secret_file(path);
    assert!(!file.state.grace.is_empty(), "no grace entry to age");
    for g in &mut file.state.grace {
        g.at = g.at.checked_sub(secs).expect("an entry older than 1970");
    }
    user.write_owned(path, file.to_text().expect("the aged file"), 0o600);
}

/// With `grace_period = 300`, once the period has passed since the code
/// (its entry aged by 300 s) a code is asked again; a code from another
/// address then drops the expired entry.
#[test]
#[ignore = "needs root: make test"]
fn after_the_period_a_code_is_asked_again() {
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam("grace_period = 300\n");
    let codes = hotp_codes(KEY_HEX, 0, 3);

    login_with_code(&pam, &user, Some(A), &codes[0]);
    assert_no_code_needed(&login_without_code(&pam, &user, Some(A)), "at once");
    age_grace(&user, &path, 300);
    assert_code_asked(&login_without_code(&pam, &user, Some(A)), "300 s later");

    login_with_code(&pam, &user, Some(B), &codes[1]);
    assert_eq!(
        addresses(&path),
        BTreeSet::from([B.into()]),
        "the expired entry of A was not dropped"
    );
    // A code from A starts A's period again.
    login_with_code(&pam, &user, Some(A), &codes[2]);
    assert_no_code_needed(&login_without_code(&pam, &user, Some(A)), "A's new code");
}

/// A login let in by the grace period does not extend it: only a code
/// does. With `grace_period = 300`: the code at t; at t+200 a login
/// without one is let in and leaves the entry as it was; at t+350 a code
/// is asked, although that is within 300 s of the second login. (The
/// times are the entry's, aged; the real time between the logins, a few
/// seconds at most, cannot bring either check across the period.)
#[test]
#[ignore = "needs root: make test"]
fn a_login_without_a_code_does_not_extend_the_period() {
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam("grace_period = 300\n");
    let codes = hotp_codes(KEY_HEX, 0, 1);

    login_with_code(&pam, &user, Some(A), &codes[0]);
    age_grace(&user, &path, 200);
    let entries = grace(&path);
    assert_no_code_needed(&login_without_code(&pam, &user, Some(A)), "at t+200");
    assert_eq!(
        grace(&path),
        entries,
        "the login without a code changed the grace entry"
    );
    age_grace(&user, &path, 150);
    assert_code_asked(&login_without_code(&pam, &user, Some(A)), "at t+350");
}

/// 40 logins, each with a fresh code from an address of its own.
const LOGINS: usize = 40;

fn address(i: usize) -> String {
    format!("198.51.100.{}", i + 1)
}

/// Logs `user` in `LOGINS` times from `address(0..LOGINS)`, a fresh code
/// each; after each login the file passes `check(i, path)`.
fn logins_from_many_addresses(check: impl Fn(usize, &Path)) -> (TestUser, PamService) {
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam("grace_period = 3600\n");
    let codes = hotp_codes(KEY_HEX, 0, LOGINS as u64);
    for (i, code) in codes.iter().enumerate() {
        login_with_code(&pam, &user, Some(&address(i)), code);
        check(i, &path);
    }
    (user, pam)
}

/// The state cannot grow without bound: after each of 40 logins from 40
/// addresses the file holds at most 16 grace entries (`MAX_GRACE`), each
/// address once, and 16 at the end.
#[test]
#[ignore = "needs root: make test"]
fn forty_addresses_leave_at_most_sixteen_entries() {
    assert_eq!(MAX_GRACE, 16);
    let (user, _pam) = logins_from_many_addresses(|i, path| {
        let entries = grace(path);
        assert_eq!(
            entries.len(),
            (i + 1).min(MAX_GRACE),
            "after login {i}: {entries:?}"
        );
        assert_eq!(
            addresses(path).len(),
            entries.len(),
            "an address twice: {entries:?}"
        );
    });
    assert_eq!(grace(&user.secret_path()).len(), MAX_GRACE);
}

/// The 16 kept are the newest: after each login its own address is among
/// them (a code was just accepted from it), and at the end they are the
/// last 16 addresses; a login from the last needs no code, one from the
/// first is asked.
#[test]
#[ignore = "needs root: make test"]
fn the_sixteen_kept_are_the_newest_addresses() {
    let (user, pam) = logins_from_many_addresses(|i, path| {
        assert!(
            addresses(path).contains(&address(i)),
            "login {i}: a code was just accepted from {}, which is not remembered; \
             the file keeps {:?}",
            address(i),
            grace(path)
        );
    });
    let path = user.secret_path();
    let newest: BTreeSet<String> = (LOGINS - MAX_GRACE..LOGINS).map(address).collect();
    assert_eq!(addresses(&path), newest, "{:?}", grace(&path));
    assert_no_code_needed(
        &login_without_code(&pam, &user, Some(&address(LOGINS - 1))),
        "the last address",
    );
    assert_code_asked(
        &login_without_code(&pam, &user, Some(&address(0))),
        "the first address",
    );
}
