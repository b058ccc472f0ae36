//! Faults under a real login (pamtester through the real libpam): a full
//! disk, a read-only home, a login killed with SIGKILL at random points of
//! the rewrite, and a login killed while it holds the lock.
//!
//! The spec's promises: a code that cannot be marked used is not accepted
//! and the old file stays as it was; a crash at any moment leaves the old
//! file or the new one, never a torn or missing one; a lock dies with its
//! process.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use otp_core::secret_file::OtpKind;
use testkit::harness::{
    fill_until_enospc, flock_is_held, free_bytes, has_open, holds_flock, hotp_codes,
    is_writer_temp, names, pam_wrapper_copies, remove_copies_of_killed, same_file, snapshot,
    stopwatch, test_mounts, wait_stopped, wall_clock, Reaper, Rng, TmpfsMount,
};
use testkit::{code_not_in, hotp_secret, secret_file, totp_secret, PamService};
use testkit::{finish, now, oathtool_totp, signal, wait_for_fresh_step, PamRun, TestUser};
use testkit::{KEY_B32, KEY_HEX, OTP_ONLY};

const SECRET_NAME: &str = ".pam_otp.toml";
/// What the module tells the user when a right code could not be saved.
const NOT_SAVED: &str = "could not be recorded";

/// One test at a time: the kill tests clean up after the processes they
/// kill by telling apart the pam_wrapper directories that appear while
/// they run, and the timing tests want the machine to themselves.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn pam(config: &str) -> PamService {
    PamService::named("otp-faults", OTP_ONLY, config)
}

/// The user's home replaced by a small tmpfs of their own (mode 0700),
/// holding only the secret file; unmounted before the user is removed.
fn home_on_tmpfs(user: &TestUser, size: &str, secret: &str) -> TmpfsMount {
    let mount = TmpfsMount::new(
        &user.home,
        &format!("size={size},mode=0700,uid={},gid={}", user.uid, user.gid),
    );
    user.write_secret(secret);
    mount
}

#[test]
#[ignore = "needs root: make test"]
fn full_disk_refuses_a_right_code_and_keeps_the_old_file() {
    let _one = serial();
    let user = TestUser::new();
    let mount = home_on_tmpfs(&user, "64k", &totp_secret());
    let path = user.secret_path();
    let pam = pam("");
    let filler = user.home.join("filler");
    let filled = fill_until_enospc(&filler);
    assert!(filled > 0);
    assert_eq!(free_bytes(&user.home), 0, "the home is full to the brim");
    let before = snapshot(&path).ignoring_atime();

    wait_for_fresh_step(5);
    let t = now();
    let code = oathtool_totp(KEY_B32, Some(t), &[]);
    let run = pam.authenticate(&user.name, None, &format!("{code}\n"));
    assert!(
        !run.success,
        "a code that could not be saved was accepted: {run:#?}"
    );
    assert!(
        run.stderr.contains(NOT_SAVED),
        "the user is told why: {run:#?}"
    );
    assert_eq!(
        snapshot(&path).ignoring_atime(),
        before,
        "the old file is byte-for-byte intact"
    );
    assert_eq!(
        names(&user.home),
        [SECRET_NAME, "filler"],
        "no temp file left behind"
    );
    // A wrong code is refused too, and changes nothing.
    assert!(!pam.authenticate(&user.name, None, "000000\n").success);
    assert_eq!(snapshot(&path).ignoring_atime(), before);

    // Space again: the same code (it was never marked used) now works, once.
    fs::remove_file(&filler).unwrap();
    let run = pam.authenticate(&user.name, None, &format!("{code}\n"));
    assert!(run.success, "after freeing space: {run:#?}");
    assert_eq!(secret_file(&path).tokens[0].state.last_step, Some(t / 30));
    assert!(
        !pam.authenticate(&user.name, None, &format!("{code}\n"))
            .success,
        "replay"
    );
    assert_eq!(names(&user.home), [SECRET_NAME]);
    drop(mount);
}

#[test]
#[ignore = "needs root: make test"]
fn read_only_home_refuses_a_right_code_and_keeps_the_old_file() {
    let _one = serial();
    let user = TestUser::new();
    let mount = home_on_tmpfs(&user, "1m", &hotp_secret(0));
    let path = user.secret_path();
    let pam = pam("");
    let codes = hotp_codes(KEY_HEX, 0, 2);
    mount.remount("ro");
    let before = snapshot(&path).ignoring_atime();

    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(
        !run.success,
        "a code that could not be saved was accepted: {run:#?}"
    );
    assert!(
        run.stderr.contains(NOT_SAVED),
        "the user is told why: {run:#?}"
    );
    assert_eq!(
        snapshot(&path).ignoring_atime(),
        before,
        "the old file is byte-for-byte intact"
    );
    assert!(!pam.authenticate(&user.name, None, "000000\n").success);
    assert_eq!(snapshot(&path).ignoring_atime(), before);

    mount.remount("rw");
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(run.success, "after remounting rw: {run:#?}");
    assert_eq!(secret_file(&path).tokens[0].counter, 1);
    assert!(
        pam.authenticate(&user.name, None, &format!("{}\n", codes[1]))
            .success,
        "and the next one"
    );
    assert_eq!(secret_file(&path).tokens[0].counter, 2);
    assert_eq!(names(&user.home), [SECRET_NAME]);
    drop(mount);
    assert!(
        !test_mounts().iter().any(|m| m.contains(&user.name)),
        "unmounted"
    );
}

/// What a client sees of a login: its output, without pam_wrapper's
/// debug lines (which carry a pid).
fn seen(run: &PamRun) -> String {
    format!("{}{}", run.stdout, run.stderr)
        .lines()
        .filter(|l| !l.starts_with("PWRAP_"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// When the state cannot be saved, nothing is counted (no rate limit) and
/// a right code must not look different from a wrong one: otherwise a
/// guesser with the password who can fill the disk the home lives on (a
/// shared /home without quotas) tries codes at full speed and learns the
/// right one from the answer. An HOTP code or an emergency code stays
/// good until used, so it can be used once space returns.
#[test]
#[ignore = "needs root: make test"]
fn unsaved_state_does_not_tell_a_right_code_from_a_wrong_one() {
    let _one = serial();
    let user = TestUser::new();
    let mount = home_on_tmpfs(
        &user,
        "64k",
        &format!("{}scratch_codes = [\"31415926\"]\n", hotp_secret(0)),
    );
    let pam = pam("");
    let codes = hotp_codes(KEY_HEX, 0, 11);
    let wrong = code_not_in(&codes);
    fill_until_enospc(&user.home.join("filler"));
    // More wrong codes than the rate limit allows: none is counted.
    for _ in 0..4 {
        assert!(
            !pam.authenticate(&user.name, None, &format!("{wrong}\n"))
                .success
        );
    }
    let wrong_run = pam.authenticate(&user.name, None, &format!("{wrong}\n"));
    for right in [codes[5].as_str(), "31415926"] {
        let right_run = pam.authenticate(&user.name, None, &format!("{right}\n"));
        assert!(!right_run.success);
        assert_eq!(
            (right_run.status.code(), seen(&right_run)),
            (wrong_run.status.code(), seen(&wrong_run)),
            "a right code ({right}) is told apart from a wrong one"
        );
    }
    drop(mount);
}

/// 200 logins, each killed with SIGKILL after a random delay that spans
/// the whole login (start-up, prompt, lock, check, write, fsync, rename).
/// After every kill the secret file exists, is a regular file owned by the
/// user with mode 0600, parses, and holds either the old counter or the
/// next one. Temp files a kill leaves are only the writer's own
/// (`.pam_otp.toml.<16 hex>.tmp`, owned by the user, 0600).
#[test]
#[ignore = "needs root: make test"]
fn sigkill_at_random_points_never_tears_the_secret_file() {
    let _one = serial();
    const LOOPS: usize = 200;
    let user = TestUser::new();
    let path = user.write_secret(&format!(
        "{}scratch_codes = [\"31415926\", \"27182818\", \"16180339\"]\n",
        hotp_secret(0)
    ));
    // A large look-ahead: each login computes 1001 codes under the lock,
    // and the rate limit is off so that no kill can lock the account.
    let pam = pam("hotp_window = 1000\n[rate_limit]\nmax_failures = 0\n");
    let codes = hotp_codes(KEY_HEX, 0, (LOOPS + 10) as u64);
    let skel: Vec<String> = names(&user.home)
        .into_iter()
        .filter(|n| n != SECRET_NAME)
        .collect();

    // How long a whole login takes here (the median of five).
    let mut counter = 0usize;
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = stopwatch();
        let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[counter]));
        took.push(t.elapsed().as_micros() as u64);
        assert!(run.success, "{run:#?}");
        counter += 1;
    }
    took.sort_unstable();
    let login_us = took[2].max(1000);
    let (mut rng, seed) = Rng::seeded();
    eprintln!("a login takes ~{login_us} µs; seed {seed}");

    // The first half of the kills lands anywhere in a login (start-up,
    // prompt, lock, check, write, rename). The second half homes in on
    // the moment of the rename: the delay steps down after a kill that
    // came too late (the file was replaced) and up after one that came too
    // early, with jitter, so the kills cluster around write/fsync/rename.
    let step_us = (login_us / 100).max(50);
    let mut aim_us = login_us;
    let (mut replaced, mut not_replaced, mut exited_first) = (0, 0, 0);
    let mut temps = std::collections::BTreeSet::new();
    let started = stopwatch();
    for i in 0..LOOPS {
        let delay_us = if i < LOOPS / 2 {
            rng.below(login_us * 5 / 4)
        } else {
            (aim_us + rng.below(6 * step_us)).saturating_sub(3 * step_us)
        };
        let copies = pam_wrapper_copies();
        let child = pam.spawn_login(&user.name, &format!("{}\n", codes[counter]));
        let pid = child.id();
        let mut reaper = Reaper(vec![child]);
        std::thread::sleep(Duration::from_micros(delay_us));
        let _ = reaper.0[0].kill();
        let status = reaper.0[0].wait().unwrap();
        reaper.0.clear();
        remove_copies_of_killed(&copies, pid);
        if status.code() == Some(0) {
            exited_first += 1;
        }

        let meta = fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("kill {i}: the secret file is gone: {e}"));
        assert!(meta.is_file(), "kill {i}: not a regular file");
        assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid), "kill {i}");
        assert_eq!(meta.mode() & 0o7777, 0o600, "kill {i}");
        let f = secret_file(&path);
        assert_eq!(f.tokens[0].kind, OtpKind::Hotp, "kill {i}");
        assert_eq!(f.scratch_codes.len(), 3, "kill {i}: data lost");
        match f.tokens[0].counter {
            c if c == counter as u64 => {
                not_replaced += 1;
                aim_us += step_us;
            }
            c if c == counter as u64 + 1 => {
                replaced += 1;
                counter += 1;
                aim_us = aim_us.saturating_sub(step_us);
            }
            c => panic!(
                "kill {i}: counter {c}, expected {counter} or {}",
                counter + 1
            ),
        }
        for n in names(&user.home) {
            if n == SECRET_NAME || skel.contains(&n) {
                continue;
            }
            assert!(
                is_writer_temp(&n, SECRET_NAME),
                "kill {i}: unexpected file {n:?} in the home"
            );
            let m = fs::symlink_metadata(user.home.join(&n)).unwrap();
            assert!(m.is_file(), "kill {i}: {n}");
            assert_eq!(m.uid(), user.uid, "kill {i}: temp file {n} not the user's");
            assert_eq!(m.mode() & 0o777, 0o600, "kill {i}: temp file {n}");
            temps.insert(n);
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{LOOPS} kills in {took:?}: file replaced {replaced} times (of which {exited_first} \
         logins had finished before the kill), not replaced {not_replaced} times; \
         {} temp files left behind",
        temps.len()
    );
    // The loop must have hit both sides of the rename, or it proved little.
    assert!(
        replaced > exited_first && not_replaced > 0,
        "{replaced} / {exited_first} / {not_replaced}"
    );

    // Nothing stale: no process holds a lock on the file (a lock that
    // outlived its login, in a child that inherited it, would make the
    // next login wait out the lock and fail), and the next login works.
    // How long it takes is printed, not bounded: it saves the counter with
    // two fsyncs, which a busy disk makes as slow as it likes.
    assert!(
        !flock_is_held(&fs::File::open(&path).unwrap()),
        "a lock outlived the kills"
    );
    let t = stopwatch();
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[counter]));
    assert!(run.success, "after the kills: {run:#?}");
    eprintln!("the login after the kills took {:?}", t.elapsed());
    assert_eq!(secret_file(&path).tokens[0].counter, counter as u64 + 1);
}

/// A login stopped (SIGSTOP) while it holds the lock on the secret file
/// (seen in /proc/locks), then killed with SIGKILL: a waiting login takes
/// the lock within 2 s of the kill, and succeeds.
#[test]
#[ignore = "needs root: make test"]
fn a_login_killed_while_holding_the_lock_does_not_block_the_next() {
    let _one = serial();
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    // 1001 codes computed per login: a window of a few ms under the lock.
    let pam = pam("hotp_window = 1000\n[rate_limit]\nmax_failures = 0\n");
    let window = hotp_codes(KEY_HEX, 0, 1001);
    let wrong = code_not_in(&window);

    let copies = pam_wrapper_copies();
    let mut holder = None;
    for _attempt in 0..200 {
        let held = fs::metadata(&path).unwrap();
        let child = pam.spawn_login(&user.name, &format!("{wrong}\n"));
        let pid = child.id();
        let mut reaper = Reaper(vec![child]);
        let mut caught = false;
        while reaper.0[0].try_wait().unwrap().is_none() {
            if holds_flock(pid, &held) {
                signal(pid, libc::SIGSTOP);
                // kill(2) returns before the stop takes effect: a login in
                // the middle of rename(2) finishes it first. Only once it
                // is stopped for good do the two checks below hold until
                // the kill.
                if !wait_stopped(pid) {
                    break; // it exited (or was reaped) before it stopped
                }
                // It still holds the lock, and its rename has not happened
                // yet: the path still names the locked inode. A wrong code
                // saves its failure tally under the lock (temp file,
                // rename, directory fsync); a login stopped after the
                // rename holds the lock on an inode nobody opens any more,
                // and the next login rightly goes ahead on the new file.
                caught = holds_flock(pid, &held)
                    && fs::metadata(&path).is_ok_and(|now| same_file(&now, &held));
                if !caught {
                    signal(pid, libc::SIGCONT);
                }
                break;
            }
        }
        if caught {
            holder = Some((reaper, held));
            break;
        }
        let _ = reaper.0[0].wait();
        reaper.0.clear();
    }
    let (mut holder, held) = holder.expect("never caught a login holding the lock in 200 tries");
    let holder_pid = holder.0[0].id();

    // A login with the right code waits for the lock ...
    let waiter = pam.spawn_login(&user.name, &format!("{}\n", window[0]));
    let waiter_pid = waiter.id();
    let mut waiting = Reaper(vec![waiter]);
    // Once it has the locked file open it is at the lock: from then on it
    // may not finish while the holder lives, however long we look. (Before
    // that, a slow start proves nothing either way.)
    let opened = stopwatch();
    while !has_open(waiter_pid, &held) {
        assert!(
            waiting.0[0].try_wait().unwrap().is_none(),
            "the second login ended without opening the locked file"
        );
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "the second login never opened the secret file"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        waiting.0[0].try_wait().unwrap().is_none(),
        "the second login did not wait for the lock"
    );
    // ... until the holder dies: then it takes the lock within 2 s. The
    // handover is the holder's exit and the waiter's next try (it sleeps
    // at most 50 ms between tries); what follows, saving the counter
    // (temp file, fsync, rename, directory fsync), a busy disk makes as
    // slow as it likes, so the waiter's end is no measure of it. The
    // saved file's mtime is: the waiter writes its temp file (renamed
    // into place later, mtime and all) right after it took the lock and
    // checked the code, before any fsync. Both times are the wall clock's.
    let killed_at = wall_clock();
    signal(holder_pid, libc::SIGKILL);
    let _ = holder.0[0].wait();
    holder.0.clear();
    // A reaped process has closed its files: its lock is gone.
    assert!(
        !holds_flock(holder_pid, &held),
        "the killed holder's lock outlived it"
    );
    let run = finish(waiting.0.pop().unwrap());
    let ended = wall_clock().duration_since(killed_at).unwrap_or_default();
    remove_copies_of_killed(&copies, holder_pid);
    assert!(run.success, "the login after the kill: {run:#?}");
    let saved = fs::metadata(&path).unwrap();
    assert!(
        !same_file(&saved, &held),
        "the waiter did not replace the file"
    );
    let handover = saved
        .modified()
        .unwrap()
        .duration_since(killed_at)
        // The file system's clock is coarse (a tick), and may read a
        // little behind the kill: that is no time at all.
        .unwrap_or_default();
    eprintln!("the waiter wrote its file {handover:?} after the kill and ended after {ended:?}");
    assert!(
        handover < Duration::from_secs(2),
        "the waiter got past the lock only {handover:?} after the holder was killed"
    );
    assert_eq!(secret_file(&path).tokens[0].counter, 1);
}
