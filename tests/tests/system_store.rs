//! `store = "system"`: a user's tokens and state in
//! `<state_dir>/users/<user>.toml`, root's (0600, directories 0700), out of
//! the user's reach. Through the real libpam (pamtester with pam_wrapper
//! and a private service directory, and the real setuid `sudo` in a
//! private mount namespace), with the config's `state_dir` always the
//! service's private one (never the machine's /var/lib/pam_otp).
//!
//! What is proven: the user can neither read, link, move nor replace their
//! file, nor make `otp-enroll` work on another file instead; a key the user
//! knows, planted in their home, opens nothing; `sudo` asks for the code of
//! the system file after the password; a code is accepted once by 24
//! logins at once; a full disk or a SIGKILL never costs the old file.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use otp_core::secret_file::OtpKind;
use testkit::harness::{
    assert_exactly_one_winner, fill_until_enospc, flock_is_held, free_bytes, hotp_codes,
    in_private_mounts, in_private_mounts_line, is_writer_temp, login_race, names,
    pam_wrapper_copies, remove_copies_of_killed, snapshot, state_dir, stopwatch, sudo_binds,
    write_sudoers, write_system_secret, Reaper, Rng, TmpfsMount,
};
use testkit::phone::{secret_of, with_phone, User as PhoneUser};
use testkit::{binary_path, hotp_secret, oathtool, run_with_input, secret_file, PamRun};
use testkit::{
    recipe, recipe_stack, PamService, TestUser, KEY_HEX, NO_RATE_LIMIT, OTP_ONLY, PROMPT,
};

/// The store under test, first in every config here.
const SYSTEM: &str = "store = \"system\"\n";
/// What the module tells the user when a right code could not be saved.
const NOT_SAVED: &str = "could not be recorded";
/// A key the user knows (it is not the system token's).
const USERS_KEY_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// One test at a time: the kill test tells the pam_wrapper directories of
/// the logins it kills from others by when they appear, the race wants
/// the machine to itself, and the sudo test mounts over /etc (privately).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pamtester service of pam_otp alone under `store = "system"`, with
/// `config` after that.
fn pam(config: &str) -> PamService {
    PamService::named("otp-system", OTP_ONLY, &format!("{SYSTEM}{config}"))
}

/// `user`'s system file under `pam`'s private state_dir, holding `text`.
fn system_file(pam: &PamService, user: &TestUser, text: &str) -> PathBuf {
    write_system_secret(&state_dir(pam), &user.name, text)
}

/// The test key's HOTP secret with three emergency codes.
fn hotp_with_scratch(counter: u64) -> String {
    format!(
        "{}scratch_codes = [\"31415926\", \"27182818\", \"16180339\"]\n",
        hotp_secret(counter)
    )
}

fn code_line(code: &str) -> String {
    format!("{code}\n")
}

/// `program args` run as `user` (setpriv: their uid, gid and groups), in
/// the C locale, stdin empty.
fn as_user(user: &TestUser, program: &str, args: &[&str]) -> Output {
    user.command(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A refusal that is about the code, not about the file (unreadable,
/// unsafe, a lock timed out).
fn assert_refused_code(run: &PamRun, what: &str) {
    assert!(!run.success, "{what}: accepted: {run:#?}");
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("Authentication failure"),
        "{what}: refused for another reason than the code: {run:#?}"
    );
}

// ---- 1. out of the user's reach -------------------------------------------

/// As the user: `cat` of the file is "Permission denied"; a symlink to it
/// in the home reads nothing, a hard link is refused; it cannot be moved,
/// removed, overwritten, and no file can be added beside it. Afterwards the
/// file is exactly as it was (atime included: not even read) and still
/// lets the right code in.
#[test]
#[ignore = "needs root: make test"]
fn the_user_can_neither_read_nor_change_their_file() {
    let _one = serial();
    let user = TestUser::new();
    let pam = pam("");
    let sys = system_file(&pam, &user, &hotp_with_scratch(0));
    let users = sys.parent().unwrap().to_path_buf();
    let before = snapshot(&sys);
    let home_before = names(&user.home);

    // Reading it.
    let out = as_user(&user, "cat", &[p(&sys)]);
    assert!(!out.status.success(), "cat as the user: {}", text(&out));
    assert!(
        text(&out).contains("Permission denied"),
        "cat failed for another reason than permissions (is the path right?): {}",
        text(&out)
    );
    let out = as_user(&user, "ls", &["-l", p(&users)]);
    assert!(!out.status.success(), "ls of users/: {}", text(&out));

    // Linking it into the home, then reading the link.
    let soft = user.home.join("soft-link");
    let hard = user.home.join("hard-link");
    let _ = as_user(&user, "ln", &["-s", p(&sys), p(&soft)]);
    let out = as_user(&user, "cat", &[p(&soft)]);
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "the secret read through a symlink: {}",
        text(&out)
    );
    let out = as_user(&user, "ln", &[p(&sys), p(&hard)]);
    assert!(!out.status.success(), "hard link made: {}", text(&out));
    assert!(
        fs::symlink_metadata(&hard).is_err(),
        "a hard link to the system file is in the home"
    );

    // Moving, removing, overwriting it; a file of their own beside it.
    for args in [
        vec!["mv", p(&sys), p(&user.home)],
        vec!["mv", p(&sys), &format!("{}.old", p(&sys))],
        vec!["rm", "-f", p(&sys)],
        vec!["sh", "-c", &format!("echo 'version = 1' > '{}'", p(&sys))],
        vec![
            "sh",
            "-c",
            &format!("echo 'version = 1' > '{}/fake.toml'", p(&users)),
        ],
        vec!["cp", "/etc/hostname", &format!("{}/", p(&users))],
        vec!["mkdir", &format!("{}/sub", p(&users))],
    ] {
        let out = as_user(&user, args[0], &args[1..]);
        assert!(
            !out.status.success(),
            "as the user, {args:?} worked: {}",
            text(&out)
        );
    }

    assert_eq!(
        snapshot(&sys),
        before,
        "the system file changed (or was read)"
    );
    assert_eq!(names(&users), [format!("{}.toml", user.name)]);
    // Nothing readable of it came into the home.
    let secret_bytes = fs::read(&sys).unwrap();
    for n in names(&user.home) {
        if home_before.contains(&n) {
            continue;
        }
        let out = as_user(&user, "cat", &[p(&user.home.join(&n))]);
        assert!(
            !out.status.success() || out.stdout != secret_bytes,
            "{n} in the home reads as the system file"
        );
    }
    // And it still works.
    let run = pam.authenticate(&user.name, None, &code_line(&hotp_codes(KEY_HEX, 0, 1)[0]));
    assert!(run.success, "the right code after the attempts: {run:#?}");
    assert_eq!(secret_file(&sys).tokens[0].counter, 1);
}

/// `otp-enroll --secret-file` run by the user under `store = "system"`:
/// pointed at a file of their own, or at the system file, `status` is
/// refused (non-zero), and the system file is left as it was.
#[test]
#[ignore = "needs root: make test"]
fn otp_enroll_as_the_user_works_on_no_other_file() {
    let _one = serial();
    let user = TestUser::new();
    let pam = pam("");
    let sys = system_file(&pam, &user, &hotp_with_scratch(0));
    let before = snapshot(&sys);
    // A valid file of the user's, with a key they know.
    let planted = user.home.join("x.toml");
    user.write_owned(
        &planted,
        format!("version = 1\ntype = \"totp\"\nsecret = \"{USERS_KEY_B32}\"\n"),
        0o600,
    );
    let enroll = binary_path("otp-enroll");
    let cfg = pam.config_file.clone();
    for target in [&planted, &sys] {
        let out = as_user(
            &user,
            p(&enroll),
            &["--config", p(&cfg), "--secret-file", p(target), "status"],
        );
        assert!(
            !out.status.success(),
            "store = \"system\": `otp-enroll --secret-file {} status` as the user \
             succeeded:\n{}",
            target.display(),
            text(&out)
        );
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
    }
    assert_eq!(
        snapshot(&sys),
        before,
        "the system file changed (or was read)"
    );
}

/// A `~/.pam_otp.toml` the user planted with a key they know opens
/// nothing under `store = "system"`: its code is refused, the system
/// token's code works, the home file is not changed. (The same home file
/// under `store = "home"` does let its code in: it is a working file.)
#[test]
#[ignore = "needs root: make test"]
fn a_file_planted_in_the_home_does_not_count() {
    let _one = serial();
    let user = TestUser::new();
    let pam = pam(NO_RATE_LIMIT);
    let sys = system_file(&pam, &user, &hotp_secret(0));
    let home_file = user.write_secret(&format!(
        "version = 1\ntype = \"hotp\"\nsecret = \"{USERS_KEY_B32}\"\ncounter = 0\n"
    ));
    let users_code = oathtool(&["-b", "-c", "0", USERS_KEY_B32]);
    let system_codes = hotp_codes(KEY_HEX, 0, 11);
    assert!(
        !system_codes.contains(&users_code),
        "the user's code is also one of the system token's"
    );
    let home_before = snapshot(&home_file).ignoring_atime();

    let run = pam.authenticate(&user.name, None, &code_line(&users_code));
    assert_refused_code(&run, "the planted key's code");
    assert!(run.stderr.contains(PROMPT), "{run:#?}");
    let f = secret_file(&sys);
    assert_eq!(f.tokens[0].counter, 0);
    assert_eq!(f.state.failures, 1, "counted in the system file");
    assert_eq!(snapshot(&home_file).ignoring_atime(), home_before);

    let run = pam.authenticate(&user.name, None, &code_line(&system_codes[0]));
    assert!(run.success, "the system token's code: {run:#?}");
    assert_eq!(secret_file(&sys).tokens[0].counter, 1);
    assert_eq!(snapshot(&home_file).ignoring_atime(), home_before);

    // The control: the planted file is one the home store would take.
    let home_pam = PamService::named("otp-home", OTP_ONLY, NO_RATE_LIMIT);
    let run = home_pam.authenticate(&user.name, None, &code_line(&users_code));
    assert!(
        run.success,
        "the planted file does not work even under store = \"home\": {run:#?}"
    );
}

// ---- 2. sudo ----------------------------------------------------------------

/// sudo's stack: the guide's recipe (doc/recipes/pam/password-then-code:
/// `@include common-auth`, the machine's, then pam_otp), with `pam_otp.so`
/// the built module and `config=` the private config
/// (`testkit::recipe_stack`), and `pam_permit` for the `account` and
/// `session` lines the recipe leaves as they are.
fn sudo_stack() -> String {
    format!(
        "{}account required pam_permit.so\nsession required pam_permit.so\n",
        recipe_stack(&recipe("pam/password-then-code"))
    )
}

/// The guide's config for sudo (doc/recipes/sudo/pam_otp.toml:
/// `store = "system"`, `missing = "enroll"`), and `more` after it.
fn sudo_config(more: &str) -> String {
    format!("{}{more}", recipe("sudo/pam_otp.toml"))
}
const PASSWORD: &str = "Sud0-test-pw";
/// sudo's own prompt for pam_unix's "Password: ".
const SUDO_PASSWORD_PROMPT: &str = "password for ";

/// The real `sudo`, as `user`, in a private mount namespace where the
/// service dir's `sudo` stack and `sudoers` are bind-mounted over the
/// machine's (which are never touched): `sudo -S id -u` with `input`.
fn sudo(pam: &PamService, user: &TestUser, sudoers: &Path, input: &str) -> PamRun {
    let binds = sudo_binds(pam, sudoers);
    let binds: Vec<(&Path, &str)> = binds.iter().map(|(f, t)| (f.as_path(), *t)).collect();
    let mut cmd = in_private_mounts(
        &binds,
        &format!("exec runuser -u '{}' -- sudo -S -- id -u", user.name),
    );
    cmd.env("LC_ALL", "C");
    run_with_input(&mut cmd, input)
}

/// Lines of this process's mountinfo that are mounts on `path`.
fn mounts_on(path: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(path))
        .map(str::to_string)
        .collect()
}

/// sudo with pam_otp after pam_unix, under `store = "system"`: the
/// password is asked, then the code; the right pair runs the command as
/// root, a wrong code (or the same code again) is refused. The machine's
/// /etc/pam.d/sudo and /etc/sudoers are the same bytes and inodes after,
/// and nothing stays mounted on them.
#[test]
#[ignore = "needs root: make test"]
fn sudo_asks_for_the_code_of_the_system_file() {
    let _one = serial();
    let user = TestUser::new();
    user.set_password(PASSWORD);
    let pam = PamService::named("sudo", &sudo_stack(), &sudo_config(NO_RATE_LIMIT));
    let sys = system_file(&pam, &user, &hotp_secret(0));
    let sudoers = write_sudoers(&pam, &user.name);
    let machine = [Path::new("/etc/pam.d/sudo"), Path::new("/etc/sudoers")];
    let before: Vec<_> = machine
        .iter()
        .map(|m| snapshot(m).ignoring_atime())
        .collect();
    let codes = hotp_codes(KEY_HEX, 0, 12);

    let run = sudo(
        &pam,
        &user,
        &sudoers,
        &format!("{PASSWORD}\n{}\n", codes[0]),
    );
    assert!(run.success, "right password and code: {run:#?}");
    assert_eq!(run.stdout.trim(), "0", "the command ran as root: {run:#?}");
    let asked_password = run.stderr.find(SUDO_PASSWORD_PROMPT);
    let asked_code = run.stderr.find(PROMPT);
    assert!(
        matches!((asked_password, asked_code), (Some(a), Some(b)) if a < b),
        "the password, then the code, were asked: {run:#?}"
    );
    assert_eq!(secret_file(&sys).tokens[0].counter, 1, "the code was used");

    let wrong = testkit::code_not_in(&codes);
    let run = sudo(&pam, &user, &sudoers, &format!("{PASSWORD}\n{wrong}\n"));
    assert!(!run.success, "right password, wrong code: {run:#?}");
    assert!(run.stdout.trim().is_empty(), "the command ran: {run:#?}");
    assert!(run.stderr.contains(PROMPT), "the code was asked: {run:#?}");
    let f = secret_file(&sys);
    assert_eq!((f.tokens[0].counter, f.state.failures), (1, 1));

    let run = sudo(
        &pam,
        &user,
        &sudoers,
        &format!("{PASSWORD}\n{}\n", codes[0]),
    );
    assert!(!run.success, "the used code again: {run:#?}");
    assert!(run.stdout.trim().is_empty(), "the command ran: {run:#?}");

    assert!(!mounts_on("/").is_empty(), "mountinfo not understood");
    for (m, b) in machine.iter().zip(&before) {
        assert_eq!(&snapshot(m).ignoring_atime(), b, "{} changed", m.display());
        assert_eq!(
            mounts_on(p(m)),
            Vec::<String>::new(),
            "a mount on {} leaked out of the namespace",
            m.display()
        );
    }
}

/// Enrollment at login under the real `sudo` (issue 27, hole 2): alice
/// has no token, `missing = "enroll"`, pam_unix before pam_otp, so the
/// token she confirms waits for `pam_setcred` — by which time sudo has set
/// `PAM_USER` to the run-as user. `sudo -u bob` and plain `sudo` (root)
/// both save the token for alice, whose password was checked and whose
/// phone confirmed it, and for nobody else: no file for bob or root.
#[test]
#[ignore = "needs root: make test"]
fn enrolling_under_sudo_saves_the_token_for_the_invoking_user_only() {
    let _one = serial();
    let alice = TestUser::new();
    alice.set_password(PASSWORD);
    let bob = TestUser::new();
    let pam = PamService::named("sudo", &sudo_stack(), &sudo_config(""));
    let sudoers = write_sudoers(&pam, &alice.name);
    let binds = sudo_binds(&pam, &sudoers);
    let binds: Vec<(&Path, &str)> = binds.iter().map(|(f, t)| (f.as_path(), *t)).collect();
    let users = state_dir(&pam).join("users");
    let bob_uid = bob.uid.to_string();
    for (run_as, uid) in [(Some(bob.name.as_str()), bob_uid.as_str()), (None, "0")] {
        let target = run_as.map_or(String::new(), |b| format!("-u '{b}'"));
        let then = format!(
            "exec runuser -u '{}' -- sudo {target} -- sh -c 'echo RAN-AS-$(id -u)'",
            alice.name
        );
        let (run, phone) = with_phone(
            &in_private_mounts_line(&binds, &then),
            PhoneUser {
                password: Some(PASSWORD),
                password_prompt: Some(SUDO_PASSWORD_PROMPT),
                ..PhoneUser::default()
            },
        );
        let what = format!("sudo {target}");
        assert!(run.success, "{what}: {run:#?}");
        assert!(
            run.output.contains(&format!("RAN-AS-{uid}")),
            "{what}: the command did not run as {uid}: {run:#?}"
        );
        assert_eq!(
            names(&users),
            [format!("{}.toml", alice.name)],
            "{what}: the token was not saved for alice alone"
        );
        let uri = phone.scanned.last().expect("a QR code was scanned");
        let saved = secret_file(&users.join(format!("{}.toml", alice.name)));
        assert_eq!(
            otp_core::key::encode_base32(&saved.tokens[0].key),
            secret_of(uri),
            "{what}: alice's file holds the key her phone scanned"
        );
        // Enroll again in the next round.
        fs::remove_file(users.join(format!("{}.toml", alice.name))).unwrap();
    }
}

// ---- 3. a race ----------------------------------------------------------------

/// Logins per race.
const N: usize = 24;

/// 24 logins answering the same right code at the same moment, three
/// rounds (HOTP counters 0, 1, 2): one gets in each time, every loser's
/// failure is recorded in the system file (no update lost).
#[test]
#[ignore = "needs root: make test"]
fn one_code_used_by_24_logins_at_once_is_accepted_once() {
    let _one = serial();
    let user = TestUser::new();
    let pam = pam(NO_RATE_LIMIT);
    let sys = system_file(&pam, &user, &hotp_secret(0));
    let codes = hotp_codes(KEY_HEX, 0, 4);
    for (counter, code) in codes.iter().take(3).enumerate() {
        let runs = login_race(&pam, &user.name, code, N);
        assert_exactly_one_winner(&runs, &format!("HOTP counter {counter}"));
        let f = secret_file(&sys);
        assert_eq!(f.tokens[0].counter, counter as u64 + 1, "moved past it");
        assert_eq!(f.state.failures, (N - 1) as u32, "no update lost");
    }
    let run = pam.authenticate(&user.name, None, &code_line(&codes[3]));
    assert!(run.success, "the next code after the races: {run:#?}");
    let meta = fs::symlink_metadata(&sys).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
    assert_eq!(
        names(sys.parent().unwrap()),
        [format!("{}.toml", user.name)]
    );
}

// ---- 4. a full disk -----------------------------------------------------------

/// `state_dir` on a 64 KiB tmpfs, filled to ENOSPC: the right code is
/// refused with "could not be recorded", the file stays byte for byte,
/// no temp file is left; with space again the same code works, once.
#[test]
#[ignore = "needs root: make test"]
fn full_disk_refuses_a_right_code_and_keeps_the_old_file() {
    let _one = serial();
    let user = TestUser::new();
    let pam = pam("");
    let state = state_dir(&pam);
    let mount = TmpfsMount::new(&state, "size=64k,mode=0755,uid=0,gid=0");
    let sys = write_system_secret(&state, &user.name, &hotp_with_scratch(0));
    let users = sys.parent().unwrap().to_path_buf();
    let filler = state.join("filler");
    assert!(fill_until_enospc(&filler) > 0);
    assert_eq!(free_bytes(&state), 0, "the state_dir is full to the brim");
    let before = snapshot(&sys).ignoring_atime();
    let codes = hotp_codes(KEY_HEX, 0, 11);

    let run = pam.authenticate(&user.name, None, &code_line(&codes[0]));
    assert!(
        !run.success,
        "a code that could not be saved was accepted: {run:#?}"
    );
    assert!(
        run.stderr.contains(NOT_SAVED),
        "the user is told why: {run:#?}"
    );
    assert_eq!(
        snapshot(&sys).ignoring_atime(),
        before,
        "the old file is byte-for-byte intact"
    );
    assert_eq!(
        names(&users),
        [format!("{}.toml", user.name)],
        "no temp file left behind"
    );
    assert_eq!(names(&state), ["filler", "users"]);
    // A wrong code is refused too, and changes nothing.
    let wrong = testkit::code_not_in(&codes);
    assert!(
        !pam.authenticate(&user.name, None, &code_line(&wrong))
            .success
    );
    assert_eq!(snapshot(&sys).ignoring_atime(), before);

    fs::remove_file(&filler).unwrap();
    let run = pam.authenticate(&user.name, None, &code_line(&codes[0]));
    assert!(run.success, "after freeing space: {run:#?}");
    let f = secret_file(&sys);
    assert_eq!(f.tokens[0].counter, 1);
    assert_eq!(f.scratch_codes.len(), 3, "data kept");
    assert!(
        !pam.authenticate(&user.name, None, &code_line(&codes[0]))
            .success,
        "replay"
    );
    let meta = fs::symlink_metadata(&sys).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
    assert_eq!(names(&users), [format!("{}.toml", user.name)]);
    drop(mount);
}

// ---- 5. SIGKILL ---------------------------------------------------------------

/// 200 logins, each killed with SIGKILL after a random delay spanning the
/// whole login (the second half homing in on the rename, as `faults.rs`
/// does for the home store). After every kill the system file exists, is
/// root's, 0600, a regular file, parses, and holds the old counter or the
/// next one with no data lost; anything else in `users/` is a temp file of
/// the writer's (root's, 0600), and the directory stays root's 0700.
#[test]
#[ignore = "needs root: make test"]
fn sigkill_at_random_points_never_tears_the_system_file() {
    let _one = serial();
    const LOOPS: usize = 200;
    let user = TestUser::new();
    // 1001 codes computed under the lock; no rate limit, so no kill locks.
    let pam = pam("hotp_window = 1000\n[rate_limit]\nmax_failures = 0\n");
    let sys = system_file(&pam, &user, &hotp_with_scratch(0));
    let users = sys.parent().unwrap().to_path_buf();
    let name = format!("{}.toml", user.name);
    let codes = hotp_codes(KEY_HEX, 0, (LOOPS + 10) as u64);

    let mut counter = 0usize;
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = stopwatch();
        let run = pam.authenticate(&user.name, None, &code_line(&codes[counter]));
        took.push(t.elapsed().as_micros() as u64);
        assert!(run.success, "{run:#?}");
        counter += 1;
    }
    took.sort_unstable();
    let login_us = took[2].max(1000);
    let (mut rng, seed) = Rng::seeded();
    eprintln!("a login takes ~{login_us} µs; seed {seed}");

    let step_us = (login_us / 100).max(50);
    let mut aim_us = login_us;
    let (mut replaced, mut not_replaced, mut exited_first) = (0, 0, 0);
    let mut temps = std::collections::BTreeSet::new();
    for i in 0..LOOPS {
        let delay_us = if i < LOOPS / 2 {
            rng.below(login_us * 5 / 4)
        } else {
            (aim_us + rng.below(6 * step_us)).saturating_sub(3 * step_us)
        };
        let copies = pam_wrapper_copies();
        let child = pam.spawn_login(&user.name, &code_line(&codes[counter]));
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

        let meta = fs::symlink_metadata(&sys)
            .unwrap_or_else(|e| panic!("kill {i}: the system file is gone: {e}"));
        assert!(meta.is_file(), "kill {i}: not a regular file");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "kill {i}");
        assert_eq!(meta.mode() & 0o7777, 0o600, "kill {i}");
        let dir = fs::symlink_metadata(&users).unwrap();
        assert_eq!((dir.uid(), dir.mode() & 0o7777), (0, 0o700), "kill {i}");
        let f = secret_file(&sys);
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
        for n in names(&users) {
            if n == name {
                continue;
            }
            assert!(
                is_writer_temp(&n, &name),
                "kill {i}: unexpected file {n:?} in users/"
            );
            let m = fs::symlink_metadata(users.join(&n)).unwrap();
            assert!(m.is_file(), "kill {i}: {n}");
            assert_eq!(m.uid(), 0, "kill {i}: temp file {n} not root's");
            assert_eq!(m.mode() & 0o777, 0o600, "kill {i}: temp file {n}");
            temps.insert(n);
        }
    }
    eprintln!(
        "{LOOPS} kills: file replaced {replaced} times (of which {exited_first} logins had \
         finished before the kill), not replaced {not_replaced} times; {} temp files left",
        temps.len()
    );
    assert!(
        replaced > exited_first && not_replaced > 0,
        "the kills did not land on both sides of the rename: \
         {replaced} / {exited_first} / {not_replaced}"
    );

    // Nothing stale: no process holds a lock on the file (a lock that
    // outlived its login, in a child that inherited it, would make the
    // next login wait out the lock and fail), and the next login works.
    // How long it takes is printed, not bounded: it saves the counter with
    // two fsyncs, which a busy disk makes as slow as it likes.
    assert!(
        !flock_is_held(&fs::File::open(&sys).unwrap()),
        "a lock outlived the kills"
    );
    let t = stopwatch();
    let run = pam.authenticate(&user.name, None, &code_line(&codes[counter]));
    assert!(run.success, "after the kills: {run:#?}");
    eprintln!("the login after the kills took {:?}", t.elapsed());
    assert_eq!(secret_file(&sys).tokens[0].counter, counter as u64 + 1);
}
