//! pam_otp's integration and end-to-end tests (`tests/*.rs`) and their
//! fixtures. Everything here drives real parts: real users
//! (useradd/userdel), the real libpam through pam_wrapper with a private
//! service directory, pamtester, oathtool, a private sshd with the real ssh
//! client, su under a pseudo-terminal. The tests need root (CI runs as
//! root) and clean up after themselves, also when they fail. There is one
//! of each helper; a test that needs one looks for it here first.
//! otp-enroll's tests use this crate too (`TestUser`, `PamService`, the
//! oathtool helpers), as `tests/demo.rs` does.
//!
//! `lib.rs` (this file) is what every test uses, by section: the test root
//! ([`TEST_ROOT`], [`test_root`]), unique names ([`unique`], [`unique_id`])
//! and small file and process helpers ([`set_mode`], [`write_mode`],
//! [`run_ok`], [`wait_or_kill`], [`signal`]); real accounts ([`TestUser`],
//! [`TestGroup`]); what cargo built ([`module_path()`], [`binary_path`]);
//! PAM: [`PamService`], the one private pam_wrapper service directory (a
//! stack where `{module}` and `{config}` are filled in, and a private
//! config with a private `state_dir`), [`PamRun`] and the ways to run a
//! login ([`PamService::authenticate`], [`spawn_with_input`] + [`finish`],
//! [`run_pam_retrying`]); otp-enroll as root on a service's config
//! ([`otp_enroll`], [`otp_enroll_ok`], [`printed_temp_code`]) with a far
//! `TZ` ([`FAR_ZONES`]); and the test key ([`KEY_B32`], [`KEY_HEX`]), its
//! secret files ([`totp_secret`], [`hotp_secret`], [`secret_file`]) and its
//! codes ([`oathtool`], [`totp_code`], [`fresh_code`], [`wrong_code`]). It
//! re-exports `e2e`, so `testkit::Sshd` works.
//!
//! `fixtures.rs` is the prelude of the `it_*` tests (`use
//! testkit::fixtures::*`): all of this file, the snapshot helpers of
//! `harness`, and what only those tests use: pamtester's verdicts
//! ([`fixtures::SUCCESS`], ...), [`fixtures::output`],
//! [`fixtures::simple_service`], [`fixtures::leftovers`].
//!
//! `harness.rs` serves the reliability and security tests (`races`,
//! `faults`, `privilege`) and whoever watches files: many logins at once
//! ([`harness::login_race`]), killed logins and what pam_wrapper leaves of
//! them, tmpfs mounts to fill or make read-only, the one [`harness::Snapshot`]
//! of a path (taken without moving its access time; compare
//! `.ignoring_atime()` where a read is allowed), [`harness::RootDir`], the
//! lock table, this thread's file-system identity, and the one
//! pseudo-random generator, [`harness::Rng`]; and one user on one file
//! store, `home` or `system` ([`harness::StoreWorld`]).
//!
//! `pg.rs` is a private PostgreSQL ([`pg::Postgres`]) with TLS and a
//! certificate per role, for the `postgresql` store's tests; `fleet.rs`
//! makes the hosts of a fleet on it ([`fleet::host`]).
//!
//! `syslog.rs` is a private `/dev/log` ([`syslog::LogSink`]) and pamtester
//! run against it ([`syslog::logged_run`]), for the tests that read what
//! the module logs.
//!
//! `e2e.rs` drives whole programs: a private sshd on loopback with the real
//! OpenSSH client ([`Sshd`], [`Ssh`]), and a program under a
//! pseudo-terminal ([`run_in_pty`], for `su`).

pub mod e2e;
pub mod fixtures;
pub mod fleet;
pub mod harness;
pub mod netns;
pub mod pg;
pub mod phone;
pub mod qr_scan;
pub mod radius;
pub mod syslog;

pub use e2e::*;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

// ---- the test root, unique names, files and processes ---------------

/// Where test users' homes and private PAM service dirs live.
pub const TEST_ROOT: &str = "/tmp/pam-otp-tests";

static SEQ: AtomicU32 = AtomicU32::new(0);
/// useradd/userdel lock /etc/passwd; serialise them within a test binary
/// (across binaries, `retry` copes with the lock being busy).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Panics with a clear message unless running as root. The tests that
/// call it are also marked `#[ignore = "needs root: make test"]`, so that
/// `cargo test --workspace` as an ordinary user lists them as ignored;
/// this is for one run with `--include-ignored` by a user who is not root.
pub fn require_root() {
    let uid = unsafe_free_euid();
    assert_eq!(uid, 0, "this test needs root (it creates users and runs PAM as root): run it as root, as `make test` does");
}

fn unsafe_free_euid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// `<pid>x<n>`, unique across the test processes running at once. The
/// whole pid, so that a sweep of leftovers can tell whether their process
/// still runs (`e2e::sweep_stale`).
pub fn unique_id() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A name unique across the test processes running at once, after
/// `prefix`; short enough for a user or group name (32 characters).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// [`TEST_ROOT`], created (mode 0755, so that test users can reach their
/// homes in it) if it is missing.
pub fn test_root() -> PathBuf {
    let root = PathBuf::from(TEST_ROOT);
    let _ = fs::create_dir_all(&root);
    let _ = fs::set_permissions(&root, fs::Permissions::from_mode(0o755));
    root
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Writes `text` to `path` (root's file, unless chowned later), mode `mode`.
pub fn write_mode(path: &Path, text: impl AsRef<[u8]>, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

/// Runs `cmd` to its end; panics with its stderr unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polling step of every wait in this crate.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// How many [`TICK`]s make `d` (at least one).
pub(crate) fn ticks(d: Duration) -> u32 {
    (d.as_millis() / TICK.as_millis()).max(1) as u32
}

/// Waits up to `limit` for `child` to exit; kills it (SIGKILL) past that.
/// The status, and whether it had to be killed.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> (ExitStatus, bool) {
    for _ in 0..ticks(limit) {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return (st, false);
        }
        std::thread::sleep(TICK);
    }
    let _ = child.kill();
    (child.wait().expect("wait"), true)
}

/// Reads all of `pipe` on a thread of its own (a program blocked on one
/// full pipe while the test reads another would never end); join for it.
pub(crate) fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = pipe.read_to_end(&mut b);
        b
    })
}

/// Appends what `pipe` gives to `sink` as it comes, on a thread of its
/// own, for a test that watches a program's output while it runs.
pub(crate) fn tee(
    mut pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

/// Sends `signal` to `pid`; false if it could not (no such process).
pub(crate) fn try_signal(pid: u32, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) takes no memory; the caller names a process it started.
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// Sends `signal` to `pid`, a process this test started and has not reaped.
pub fn signal(pid: u32, signal: libc::c_int) {
    assert!(try_signal(pid, signal), "kill({pid}, {signal})");
}

/// Whether a process `pid` exists.
pub(crate) fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

// ---- users and groups -----------------------------------------------

/// Runs a command, with `input` on its stdin, until it succeeds or a few
/// seconds pass (another test holding the passwd or shadow lock).
fn retry(cmd: &mut Command, input: &str) -> Output {
    let mut last = None;
    for i in 0..50 {
        let out = spawn_with_input(cmd, input)
            .wait_with_output()
            .expect("wait");
        if out.status.success() {
            return out;
        }
        last = Some(out);
        std::thread::sleep(Duration::from_millis(20 + 10 * i));
    }
    let out = last.unwrap();
    panic!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
}

/// A real user account with a home directory; removed on drop.
pub struct TestUser {
    pub name: String,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    pub fn new() -> TestUser {
        TestUser::with_groups(&[])
    }

    /// A user who is also a member of `groups` (which must exist).
    pub fn with_groups(groups: &[&str]) -> TestUser {
        require_root();
        let name = unique("pot");
        let home = test_root().join(&name);
        {
            let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let mut cmd = Command::new("useradd");
            cmd.args(["-m", "-d"])
                .arg(&home)
                .args(["-s", "/bin/sh", "-K", "MAIL_DIR=/dev/null"]);
            if !groups.is_empty() {
                cmd.args(["-G", &groups.join(",")]);
            }
            retry(cmd.arg(&name), "");
        }
        // From here on, drop removes the account even if a check panics.
        let mut user = TestUser {
            name,
            home,
            uid: u32::MAX,
            gid: u32::MAX,
        };
        let meta = fs::metadata(&user.home).expect("home created");
        user.uid = meta.uid();
        user.gid = meta.gid();
        user
    }

    /// Deletes the account (`userdel -r`) and makes one of the same name
    /// again with another uid (`useradd -u`): a recycled name.
    pub fn recycle(&mut self) {
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        retry(Command::new("userdel").args(["-r", "-f", &self.name]), "");
        let taken = |uid: u32| {
            Command::new("getent")
                .args(["passwd", &uid.to_string()])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(true)
        };
        let uid = (self.uid + 1000..u32::MAX - 1)
            .find(|&u| !taken(u))
            .expect("a free uid");
        let mut cmd = Command::new("useradd");
        cmd.args(["-m", "-d"])
            .arg(&self.home)
            .args(["-u", &uid.to_string()])
            .args(["-s", "/bin/sh", "-K", "MAIL_DIR=/dev/null"]);
        retry(cmd.arg(&self.name), "");
        let meta = fs::metadata(&self.home).expect("home created");
        self.uid = meta.uid();
        self.gid = meta.gid();
        assert_eq!(self.uid, uid);
    }

    /// The default secret file path.
    pub fn secret_path(&self) -> PathBuf {
        self.home.join(".pam_otp.toml")
    }

    /// Writes the secret file as the user would have it: owned by them, 0600.
    pub fn write_secret(&self, toml: &str) -> PathBuf {
        let p = self.secret_path();
        self.write_owned(&p, toml, 0o600);
        p
    }

    /// Writes `text` to `path` as a file of this user's, mode `mode`.
    pub fn write_owned(&self, path: &Path, text: impl AsRef<[u8]>, mode: u32) {
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.chown(path);
        set_mode(path, mode);
    }

    pub fn chown(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// Gives the user the password `password` (chpasswd).
    pub fn set_password(&self, password: &str) {
        retry(
            &mut Command::new("chpasswd"),
            &format!("{}:{password}\n", self.name),
        );
    }

    /// Whether `program args`, run as this user, succeeds (its output is
    /// not kept).
    pub fn succeeds(&self, program: &str, args: &[&Path]) -> bool {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
            .status
            .success()
    }

    /// Runs a command as this user (setpriv, no PAM involved).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(program)
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .current_dir(&self.home);
        cmd
    }
}

impl Default for TestUser {
    fn default() -> Self {
        TestUser::new()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..50 {
            let ok = Command::new("userdel")
                .args(["-r", "-f", &self.name])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok
                || Command::new("id")
                    .arg(&self.name)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| !s.success())
                    .unwrap_or(true)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20 + 10 * i));
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// A real group; removed on drop.
pub struct TestGroup {
    pub name: String,
    pub gid: u32,
}

impl TestGroup {
    pub fn new() -> TestGroup {
        require_root();
        let name = unique("potg");
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        retry(Command::new("groupadd").arg(&name), "");
        let out = run_ok(Command::new("getent").args(["group", &name]));
        let gid = String::from_utf8_lossy(&out.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.trim().parse().ok())
            .unwrap_or_else(|| panic!("no gid for group {name}"));
        TestGroup { name, gid }
    }
}

impl Default for TestGroup {
    fn default() -> Self {
        TestGroup::new()
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("groupdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
    }
}

// ---- what cargo built -----------------------------------------------

/// The cargo target profile dir (`target/debug`) of the running test.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/test-binary
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The built module (`target/<profile>/libpam_otp.so`).
///
/// `cargo test` does not build it: the module crate is only a `cdylib`
/// (so that it gets LTO), and cargo builds a cdylib for `cargo build`, not
/// for tests. `make test` runs `cargo build --workspace` first. A module
/// missing, or older than the module's or the core's sources, stops the
/// test with that advice rather than testing a stale module.
pub fn module_path() -> PathBuf {
    let p = target_dir().join("libpam_otp.so");
    fresh(&p, &["pam_otp/src"]);
    p
}

/// Stops the test unless `built` exists and is newer than every source it
/// is built from: the core's (`otp-core/src`, and `otp-core/sql`, whose
/// schema it holds) and `own` (directories from the repository's root).
/// A stale binary would test yesterday's code and pass or fail for
/// nothing.
fn fresh(built: &Path, own: &[&str]) {
    let advice = "run `cargo build --workspace` before `cargo test` (`make test` does both)";
    let at = fs::metadata(built)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} not built: {advice}", built.display()));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    for dir in ["otp-core/src", "otp-core/sql"].iter().chain(own) {
        if let Some(newer) = newest_file(&repo.join(dir)).filter(|(t, _)| *t > at) {
            panic!(
                "{} is older than {}: {advice}",
                built.display(),
                newer.1.display()
            );
        }
    }
}

/// The test-only module that sets `PAM_USER` to its `user=NAME` argument
/// (`target/<profile>/libpam_set_user.so`, crate tests/pam-set-user),
/// built by `cargo build --workspace` like the module.
pub fn set_user_module_path() -> PathBuf {
    let p = target_dir().join("libpam_set_user.so");
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` before `cargo test`",
        p.display()
    );
    p
}

/// The most recently modified file under `dir`, and when.
fn newest_file(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let found = if path.is_dir() {
            newest_file(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        };
        newest = newest.max(found);
    }
    newest
}

/// A built binary of the workspace (e.g. "otp-enroll"): the product's
/// are checked to be as fresh as their sources, like the module.
pub fn binary_path(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    match name {
        "otp-enroll" => fresh(&p, &["otp-enroll/src"]),
        "pq-helper" => fresh(&p, &[]),
        _ => assert!(
            p.exists(),
            "{} not built (run the tests with `cargo test --workspace`)",
            p.display()
        ),
    }
    p
}

// ---- PAM: pamtester runs and private services -----------------------

/// The stack of pam_otp alone, with the private config.
pub const OTP_ONLY: &str = "auth required {module} config={config}\n";
/// A config with the rate limit off (every failure is counted, none locks).
pub const NO_RATE_LIMIT: &str = "[rate_limit]\nmax_failures = 0\n";

/// What one pamtester run (a login) gave.
#[derive(Debug)]
pub struct PamRun {
    pub success: bool,
    pub status: ExitStatus,
    pub stdout: String,
    /// pamtester prints the prompts and the module's messages here.
    pub stderr: String,
}

/// How long one pamtester run may take before it counts as hung.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

impl PamRun {
    /// Whether the run died before any PAM module ran, in pam_wrapper or
    /// `pam_start`, rather than giving a verdict on the login.
    ///
    /// pam_wrapper copies the service dir to `/tmp/pam.<c>`, with one of
    /// 62 letters picked by `lstat` then `mkdir`: logins started at the
    /// same moment can pick the same letter, and then one of them exits in
    /// `pam_start` ("Failed to copy config files") or finds its service
    /// gone ("Initialization failure"). No module has run then, so running
    /// the login again is safe and is what the fixtures do.
    pub fn died_before_pam(&self) -> bool {
        let all = format!("{}{}", self.stdout, self.stderr);
        all.contains("pamtester: Initialization failure")
            || (all.contains("pwrap_init: ") && !all.contains("pamtester: "))
    }
}

/// Starts `cmd` with `input` (a few lines: the pipe takes them before the
/// program reads) already waiting on its stdin, and its stdin closed after
/// it; stdout and stderr piped, for [`finish`].
pub fn spawn_with_input(cmd: &mut Command, input: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    // A program that exits without reading (pam_wrapper failing early) is
    // not the test's failure: ignore a broken pipe.
    match stdin.write_all(input.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("stdin: {e}"),
        _ => {}
    }
    child
}

/// Waits for a run started by [`spawn_with_input`] and collects what it
/// printed; one still running after 30 s is killed and fails the test.
/// [`finish_with_cpu`], its CPU time dropped: one way to wait and collect.
pub fn finish(child: Child) -> PamRun {
    finish_with_cpu(child).0
}

/// [`finish`], with the CPU time (user + system) the process used, with
/// that of the children it waited for (a `make` and what it ran), for a
/// test that bounds the work a login or a command does: unlike its wall
/// time, a loaded machine does not stretch that. Read from /proc/PID/stat
/// once the process has exited and before it is reaped (a zombie keeps
/// its times); one still running after 30 s is killed and fails the test.
pub fn finish_with_cpu(mut child: Child) -> (PamRun, Duration) {
    let pid = child.id();
    let stdout = collect(child.stdout.take().expect("stdout piped"));
    let stderr = collect(child.stderr.take().expect("stderr piped"));
    let mut cpu = None;
    for _ in 0..ticks(LOGIN_TIMEOUT) {
        cpu = exited_cpu_time(pid);
        if cpu.is_some() {
            break;
        }
        std::thread::sleep(TICK);
    }
    let killed = cpu.is_none();
    if killed {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    let text = |r: JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&r.join().unwrap_or_default()).into_owned()
    };
    let run = PamRun {
        success: status.success(),
        status,
        stdout: text(stdout),
        stderr: text(stderr),
    };
    assert!(!killed, "hung for {LOGIN_TIMEOUT:?}: {run:#?}");
    (run, cpu.unwrap_or_default())
}

/// The CPU time of process `pid` and of the children it waited for, if it
/// has exited and is not reaped yet (state `Z`): utime + stime + cutime +
/// cstime of /proc/PID/stat, in USER_HZ ticks (1/100 s on Linux, whatever
/// the kernel's own tick).
fn exited_cpu_time(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (comm) S ...": the comm may hold spaces and parentheses; the
    // state follows the last ')', utime, stime, cutime and cstime are the
    // 12th to 15th fields after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first() != Some(&"Z") {
        return None;
    }
    let mut ticks = 0u64;
    for i in 11..15 {
        ticks += f.get(i)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_millis(ticks * 10))
}

/// [`run_pam_retrying`], with the CPU time of the run that counted
/// ([`finish_with_cpu`]).
pub fn run_pam_retrying_cpu(make: impl Fn() -> Command, input: &str) -> (PamRun, Duration) {
    let mut run = finish_with_cpu(spawn_with_input(&mut make(), input));
    for i in 0..10u64 {
        if !run.0.died_before_pam() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10 + 20 * i));
        run = finish_with_cpu(spawn_with_input(&mut make(), input));
    }
    run
}

/// Runs `cmd` with `input` on its stdin and collects what it printed.
pub fn run_with_input(cmd: &mut Command, input: &str) -> PamRun {
    finish(spawn_with_input(cmd, input))
}

/// Runs the login `make()` builds, again (a few times at most) while it
/// dies in pam_wrapper before any module ran; see [`PamRun::died_before_pam`].
pub fn run_pam_retrying(make: impl Fn() -> Command, input: &str) -> PamRun {
    run_pam_retrying_cpu(make, input).0
}

/// A private PAM service directory for pam_wrapper (the machine's
/// /etc/pam.d is never touched): one service file, `name`, holding the
/// stack, and beside it a private pam_otp config, `config_file`. Removed on
/// drop, with the copies pam_wrapper made of it that outlived their process.
pub struct PamService {
    pub dir: PathBuf,
    /// The service name, and the name of its file in `dir`.
    pub name: String,
    pub config_file: PathBuf,
}

impl PamService {
    /// A service with a unique name and an empty private config; see
    /// [`PamService::named`] for `stack`.
    pub fn new(stack: &str) -> PamService {
        PamService::with_config(stack, "")
    }

    /// A service with a unique name whose private config holds `config`.
    pub fn with_config(stack: &str, config: &str) -> PamService {
        PamService::named(&unique("svc"), stack, config)
    }

    /// A service named `name` (e.g. `su`, the service su asks for). In
    /// `stack`, the service file's text, `{module}` stands for the built
    /// module and `{config}` for the private config, which holds `config`.
    pub fn named(name: &str, stack: &str, config: &str) -> PamService {
        require_root();
        // Everything that can panic comes before the directory exists:
        // a panic here must not leave an empty service dir behind.
        let module = module_path();
        let dir = test_root().join(format!("pamd-{name}-{}", unique_id()));
        fs::create_dir_all(&dir).unwrap();
        let svc = PamService {
            config_file: dir.join("pam_otp.toml"),
            dir,
            name: name.into(),
        };
        set_mode(&svc.dir, 0o755);
        svc.write_config(config);
        write_mode(
            &svc.dir.join(name),
            pam_stack(stack, &module, &svc.config_file),
            0o644,
        );
        svc
    }

    /// Writes `file` in the service dir (root-owned 0644: an address list,
    /// say); its path.
    pub fn write_file(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.join(file);
        write_mode(&path, text, 0o644);
        path
    }

    /// (Re)writes the private config (root-owned 0644) to hold `config`;
    /// its path.
    pub fn write_config(&self, config: &str) -> PathBuf {
        write_mode(
            &self.config_file,
            private_state_dir(&self.dir, config),
            0o644,
        );
        self.config_file.clone()
    }

    /// The environment that makes a PAM program use this directory.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", "libpam_wrapper.so".into()),
            ("PAM_WRAPPER", "1".into()),
            (
                "PAM_WRAPPER_SERVICE_DIR",
                self.dir.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Runs `pamtester <service> <user> authenticate` with `PAM_RHOST` set
    /// when `rhost` is given, answering prompts with the lines of `input`.
    pub fn authenticate(&self, user: &str, rhost: Option<&str>, input: &str) -> PamRun {
        self.pamtester(user, rhost, input, &["authenticate"])
    }

    /// [`PamService::authenticate`] with pamtester operations `ops`.
    pub fn pamtester(&self, user: &str, rhost: Option<&str>, input: &str, ops: &[&str]) -> PamRun {
        run_pam_retrying(|| self.pamtester_command(user, rhost, ops), input)
    }

    /// Starts `pamtester <service> <user> authenticate`, its answers
    /// (`input`) already waiting on its stdin; [`finish`] collects it.
    pub fn spawn_login(&self, user: &str, input: &str) -> Child {
        spawn_with_input(
            &mut self.pamtester_command(user, None, &["authenticate"]),
            input,
        )
    }

    /// The command, for callers that spawn many at once.
    pub fn pamtester_command(&self, user: &str, rhost: Option<&str>, ops: &[&str]) -> Command {
        let mut cmd = Command::new("pamtester");
        cmd.envs(self.env());
        if let Some(r) = rhost {
            cmd.arg("-I").arg(format!("rhost={r}"));
        }
        cmd.arg(&self.name).arg(user).args(ops);
        cmd
    }

    /// The same login as one command line, `env LD_PRELOAD=... pamtester
    /// ...`, for a wrapper (a shell, `unshare`) to exec. The wrapper itself
    /// must not load pam_wrapper: its constructor creates `/tmp/pam.<c>`
    /// and only its destructor removes it, which an exec skips.
    pub fn pamtester_argv(&self, user: &str, rhost: Option<&str>, ops: &[&str]) -> Vec<OsString> {
        let cmd = self.pamtester_command(user, rhost, ops);
        let mut argv: Vec<OsString> = vec!["env".into()];
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                let mut kv = k.to_os_string();
                kv.push("=");
                kv.push(v);
                argv.push(kv);
            }
        }
        argv.push(cmd.get_program().to_os_string());
        argv.extend(cmd.get_args().map(|a| a.to_os_string()));
        argv
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        // pam_wrapper copies the service dir to /tmp/pam.<c> in every
        // process it is loaded into, and removes the copy at exit; `su` and
        // the shell it starts never run that exit code, so their copies
        // stay. Remove the copies of this dir whose process is gone.
        let ours = self.config_file.to_string_lossy().into_owned();
        for copy in harness::pam_wrapper_copies() {
            let Some(pid) = harness::pam_wrapper_copy_pid(&copy) else {
                continue;
            };
            let is_ours =
                fs::read_to_string(copy.join(&self.name)).is_ok_and(|text| text.contains(&ours));
            if is_ours && !alive(pid) {
                let _ = fs::remove_dir_all(&copy);
            }
        }
    }
}

/// A PAM stack's text with `{module}` and `{config}` filled in.
pub(crate) fn pam_stack(stack: &str, module: &Path, config_file: &Path) -> String {
    stack
        .replace("{module}", &module.to_string_lossy())
        .replace("{config}", &config_file.to_string_lossy())
}

/// `config` with a `state_dir` inside `dir` first, so that no test writes
/// the machine's `/var/lib/pam_otp`.
pub(crate) fn private_state_dir(dir: &Path, config: &str) -> String {
    let state = dir.join("state");
    format!("state_dir = {:?}\n{config}", state.to_string_lossy())
}

// ---- otp-enroll as root against a service's config -------------------

/// `otp-enroll --config <pam's config> [--user USER] ARGS` as root, with
/// `TZ=tz` in its environment and an empty stdin (a question it asks is
/// answered by end of file, never by the terminal the tests run on). The
/// one way the tests of the file stores and of the fleet database run the
/// admin's tool on a host, so that each shows the same thing: the caller's
/// zone changes nothing, and no command panics, whatever it answers.
pub fn otp_enroll(pam: &PamService, user: Option<&str>, tz: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(binary_path("otp-enroll"));
    cmd.arg("--config").arg(&pam.config_file);
    if let Some(user) = user {
        cmd.args(["--user", user]);
    }
    let out = cmd
        .args(args)
        .env("TZ", tz)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
    out
}

/// [`otp_enroll`] for `user` that must succeed: what it printed on stdout.
pub fn otp_enroll_ok(pam: &PamService, user: &str, tz: &str, args: &[&str]) -> String {
    let out = otp_enroll(pam, Some(user), tz, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The temporary code in what `otp-enroll temp-code` printed, as printed
/// ("dddd dddd"): the tests read it from there, never know it beforehand.
/// Exactly one such line, or the test fails.
pub fn printed_temp_code(printed: &str) -> String {
    let codes: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.len() == 9
                && l.as_bytes()[4] == b' '
                && l.bytes().filter(u8::is_ascii_digit).count() == 8
        })
        .collect();
    assert_eq!(codes.len(), 1, "one code printed: {printed}");
    codes[0].to_string()
}

// ---- the test key, its secret files and its codes -------------------

/// The RFC 4226 / RFC 6238 SHA1 test key ("12345678901234567890"), in
/// base32 and hex.
pub const KEY_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
pub const KEY_HEX: &str = "3132333435363738393031323334353637383930";

/// The module's default prompt.
pub const PROMPT: &str = "Verification code: ";

/// UTC+14 and UTC-12: a day apart. The tests that set one of them as `TZ`
/// in otp-enroll's and pamtester's environment show that nothing reads
/// the caller's zone (dates are UTC or the config's).
pub const FAR_ZONES: [&str; 2] = ["Pacific/Kiritimati", "Etc/GMT+12"];

/// A minimal TOTP secret file with the test key.
pub fn totp_secret() -> String {
    format!("version = 1\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n")
}

/// An HOTP secret file with the test key, next expected counter `counter`.
pub fn hotp_secret(counter: u64) -> String {
    format!("version = 1\ntype = \"hotp\"\nsecret = \"{KEY_B32}\"\ncounter = {counter}\n")
}

/// The secret file at `path`, parsed by the core; a file that does not
/// parse (torn, corrupt) fails the test, showing what it holds.
pub fn secret_file(path: &Path) -> otp_core::secret_file::SecretFile {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    otp_core::secret_file::SecretFile::parse_bytes(&bytes).unwrap_or_else(|e| {
        panic!(
            "{} does not parse (torn or corrupt): {e}\n{:?}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Runs oathtool with `args` and returns what it printed, trimmed (one
/// code, or one a line with `-w`).
pub fn oathtool(args: &[&str]) -> String {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool installed");
    assert!(
        out.status.success(),
        "oathtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `oathtool --totp` for a base32 key at Unix time `at` (None: now).
pub fn oathtool_totp(base32: &str, at: Option<u64>, extra: &[&str]) -> String {
    let now = at.map(|t| format!("--now=@{t}"));
    let mut args = vec!["--totp", "-b"];
    args.extend(extra);
    args.extend(now.as_deref());
    args.push(base32);
    oathtool(&args)
}

/// `oathtool` HOTP code for a hex key at `counter`.
pub fn oathtool_hotp_hex(hex: &str, counter: u64) -> String {
    oathtool(&["-c", &counter.to_string(), hex])
}

/// The TOTP code of the test key `steps` steps (of 30 s) away from now.
/// The module accepts ±1 step by default (`totp_skew`), so a code computed
/// now stays good through a step change during the login.
pub fn totp_code(steps: i64) -> String {
    oathtool_totp(KEY_B32, Some(now().saturating_add_signed(30 * steps)), &[])
}

/// The current TOTP code of the test key, with at least 5 s left in its
/// step (waiting for the next step if need be).
pub fn fresh_code() -> String {
    wait_for_fresh_step(5);
    totp_code(0)
}

/// Six digits that are none of the test key's TOTP codes within 3 steps of
/// now (the module accepts ±1 by default).
pub fn wrong_code() -> String {
    let near: Vec<String> = (-3..=3).map(totp_code).collect();
    code_not_in(&near)
}

/// Six digits that are none of `codes`.
pub fn code_not_in(codes: &[String]) -> String {
    (0..1_000_000u32)
        .map(|n| format!("{:06}", (123_000 + n) % 1_000_000))
        .find(|c| !codes.contains(c))
        .expect("a million codes taken")
}

/// Seconds since the epoch (tests may read the clock; the code under test may not).
#[allow(clippy::disallowed_methods)]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until at least `margin` seconds remain in the current 30-second
/// TOTP step, so a code computed now is still current when checked.
pub fn wait_for_fresh_step(margin: u64) {
    wait_for_fresh_period(30, margin);
}

/// Waits until at least `margin` seconds remain in the current step of
/// `period` seconds (a token with steps of its own, 60 s say).
pub fn wait_for_fresh_period(period: u64, margin: u64) {
    assert!(
        margin < period,
        "a margin of {margin} s never fits a {period} s step"
    );
    while period - now() % period < margin {
        std::thread::sleep(Duration::from_millis(250));
    }
}
