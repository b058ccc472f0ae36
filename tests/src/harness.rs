//! Fixtures for the reliability and security tests (`races`, `faults`,
//! `privilege`): many pamtester logins at once, logins killed mid-way,
//! tmpfs mounts that can be filled or made read-only, the lock table and
//! this thread's file-system identity; and, for every test that watches
//! files, the crate's one snapshot of a path (read without touching its
//! access time), root's directories and the one pseudo-random generator;
//! and one user on one file store, `home` or `system` ([`StoreWorld`]),
//! for the tests that run otp-enroll and pamtester on either.
//!
//! Needs root, like the rest of this crate. Every fixture here undoes
//! itself on drop, also when the test panics.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::syslog::{logged_run_in_zone, LogSink};
use crate::{collect, oathtool, run_ok, set_mode, tee, wait_or_kill, PamRun, PamService};
use crate::{TestUser, LOGIN_TIMEOUT, NO_RATE_LIMIT, PROMPT, TEST_ROOT};

/// A clock for measuring how long something took (the code under test may
/// not read the clock; tests may).
#[allow(clippy::disallowed_methods)]
pub fn stopwatch() -> Instant {
    Instant::now()
}

/// The wall clock, for comparing a moment of the test's with a time the
/// kernel stamped on a file (an mtime); for durations, [`stopwatch`].
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// Children killed (SIGKILL) and reaped on drop unless taken out first:
/// a failing test leaves no process behind.
#[derive(Default)]
pub struct Reaper(pub Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

struct Racer {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: JoinHandle<()>,
}

impl Racer {
    fn spawn(pam: &PamService, user: &str) -> Racer {
        let mut child = pam
            .pamtester_command(user, None, &["authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pamtester installed (make test installs it: scripts/packages/test)");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = tee(child.stderr.take().expect("stderr"), Arc::clone(&stderr));
        Racer {
            child,
            stdout,
            stderr,
            stderr_reader,
        }
    }

    fn at_prompt(&self) -> bool {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).contains(PROMPT)
    }

    /// Waits for the (exited or answered) login and collects its output.
    fn finish(mut self) -> PamRun {
        let (status, killed) = wait_or_kill(&mut self.child, LOGIN_TIMEOUT);
        assert!(!killed, "a racing login hung for {LOGIN_TIMEOUT:?}");
        let stdout = self.stdout.join().unwrap_or_default();
        let _ = self.stderr_reader.join();
        let stderr = self.stderr.lock().unwrap().clone();
        PamRun {
            success: status.success(),
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// Kills and reaps whatever racers are left when a race fails half-way.
struct Racers(Vec<Racer>);

impl Drop for Racers {
    fn drop(&mut self) {
        for r in &mut self.0 {
            if r.child.try_wait().ok().flatten().is_none() {
                let _ = r.child.kill();
            }
            let _ = r.child.wait();
        }
    }
}

/// Starts `n` logins of `user` at once, waits until every one of them is
/// blocked at the prompt, then answers all of them with `code` in a tight
/// loop, so that they all reach the secret file at the same moment.
///
/// A login that died in pam_wrapper before any module ran (two of them
/// picked the same `/tmp/pam.<c>`, see [`PamRun::died_before_pam`]) is
/// started again; any other exit before the prompt fails the race.
pub fn login_race(pam: &PamService, user: &str, code: &str, n: usize) -> Vec<PamRun> {
    let mut racers = Racers((0..n).map(|_| Racer::spawn(pam, user)).collect());
    // The barrier: every login has printed its prompt and waits on stdin.
    let started = stopwatch();
    let mut restarted = 0;
    loop {
        let waiting = racers.0.iter().filter(|r| r.at_prompt()).count();
        if waiting == n {
            break;
        }
        for i in 0..n {
            if racers.0[i].child.try_wait().ok().flatten().is_none() {
                continue;
            }
            let gone = std::mem::replace(&mut racers.0[i], Racer::spawn(pam, user)).finish();
            assert!(
                gone.died_before_pam(),
                "a login exited before the prompt: {gone:#?}"
            );
            restarted += 1;
            assert!(restarted <= n, "pam_wrapper keeps failing: {gone:#?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {waiting} of {n} logins reached the prompt in 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = format!("{code}\n");
    let mut stdins: Vec<_> = racers
        .0
        .iter_mut()
        .map(|r| r.child.stdin.take().expect("stdin"))
        .collect();
    for s in &mut stdins {
        s.write_all(answer.as_bytes()).expect("answer");
    }
    drop(stdins);
    std::mem::take(&mut racers.0)
        .into_iter()
        .map(Racer::finish)
        .collect()
}

/// pam_wrapper's per-process copies of the service directory
/// (`/tmp/pam.<c>`). A process killed with SIGKILL never removes its copy,
/// and one killed while pam_wrapper sets it up leaves it without a pid
/// file, which pam_wrapper's own sweep then never removes (and there are
/// only 62 such names).
pub fn pam_wrapper_copies() -> BTreeSet<PathBuf> {
    fs::read_dir("/tmp")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.len() == 5 && n.starts_with("pam.")
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The process a pam_wrapper copy belongs to (its pid file), if written.
pub fn pam_wrapper_copy_pid(copy: &Path) -> Option<u32> {
    fs::read_to_string(copy.join("pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
}

/// Removes the copies that appeared since `before` and belong to the
/// killed (and reaped) process `pid`: their pid file names it, or the
/// process died before writing one. The caller makes sure no other
/// pam_wrapper process of its own is starting meanwhile.
pub fn remove_copies_of_killed(before: &BTreeSet<PathBuf>, pid: u32) -> usize {
    let mut removed = 0;
    for dir in pam_wrapper_copies().difference(before) {
        let ours = match pam_wrapper_copy_pid(dir) {
            Some(p) => p == pid,
            None => {
                // Not written yet by a live process, or never by a dead one.
                std::thread::sleep(Duration::from_millis(5));
                pam_wrapper_copy_pid(dir).is_none()
            }
        };
        if ours && fs::remove_dir_all(dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `n` HOTP codes of the hex key `hex`, for counters `first..first+n`
/// (oathtool, independent of the module's own implementation).
pub fn hotp_codes(hex: &str, first: u64, n: u64) -> Vec<String> {
    assert!(n > 0);
    let out = oathtool(&["-c", &first.to_string(), "-w", &(n - 1).to_string(), hex]);
    let codes: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(codes.len() as u64, n);
    codes
}

/// A tmpfs mounted for a test (source name `pam-otp-test`); unmounted on
/// drop (lazily if something still holds it).
pub struct TmpfsMount {
    pub path: PathBuf,
}

impl TmpfsMount {
    /// `mount -t tmpfs -o <options> pam-otp-test <path>`.
    pub fn new(path: &Path, options: &str) -> TmpfsMount {
        fs::create_dir_all(path).unwrap();
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "pam-otp-test"])
                .arg(path),
        );
        TmpfsMount {
            path: path.to_path_buf(),
        }
    }

    /// `mount -o remount,<options>`.
    pub fn remount(&self, options: &str) {
        run_ok(
            Command::new("mount")
                .arg("-o")
                .arg(format!("remount,{options}"))
                .arg(&self.path),
        );
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Mount points of test tmpfs under the test root still in /proc/mounts.
pub fn test_mounts() -> Vec<String> {
    fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|m| m.starts_with(TEST_ROOT))
        })
        .map(str::to_string)
        .collect()
}

/// Writes bytes into `path` (a new root-owned file) until the file system
/// says ENOSPC; returns the bytes written.
pub fn fill_until_enospc(path: &Path) -> u64 {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    for size in [chunk.len(), 4096, 512, 1] {
        loop {
            match f.write(&chunk[..size]) {
                Ok(0) => break,
                Ok(k) => written += k as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    f.sync_all().unwrap_or(());
    written
}

/// Free bytes on the file system holding `path`, as an unprivileged user
/// sees it (`f_bavail`).
pub fn free_bytes(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path)
        .unwrap_or_else(|e| panic!("statvfs {}: {e}", path.display()));
    st.blocks_available() * st.fragment_size()
}

/// Everything observable about a path that must not change: lstat's inode,
/// mode, owner, size and all three times, and what it holds: a regular
/// file's bytes, a symlink's target (the link is not followed), a
/// directory's names. Taking one does not move an access time: files and
/// directories are read with O_NOATIME, and the times are taken after
/// reading in case the file system ignores it. So a snapshot shows a read
/// by the module (on a `strictatime` mount); where the module may read the
/// file but must not change it, compare [`Snapshot::ignoring_atime`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub atime: (i64, i64),
    pub bytes: Option<Vec<u8>>,
    pub link: Option<PathBuf>,
    pub entries: Option<Vec<String>>,
}

impl Snapshot {
    /// The same, with the access time left out: for a file the module is
    /// allowed to read but must not change.
    pub fn ignoring_atime(mut self) -> Snapshot {
        self.atime = (0, 0);
        self
    }
}

pub fn snapshot(path: &Path) -> Snapshot {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ft = meta.file_type();
    let bytes = ft.is_file().then(|| {
        let mut b = Vec::new();
        open_noatime(path, libc::O_NOFOLLOW)
            .read_to_end(&mut b)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        b
    });
    let link = ft.is_symlink().then(|| fs::read_link(path).unwrap());
    let entries = ft.is_dir().then(|| names(path));
    // The times after reading, in case the file system ignores O_NOATIME.
    let meta = fs::symlink_metadata(path).unwrap();
    Snapshot {
        ino: meta.ino(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        atime: (meta.atime(), meta.atime_nsec()),
        bytes,
        link,
        entries,
    }
}

/// Snapshots of every entry of `dir` (not recursive), by name.
pub fn snapshot_dir(dir: &Path) -> BTreeMap<String, Snapshot> {
    names(dir)
        .into_iter()
        .map(|n| {
            let s = snapshot(&dir.join(&n));
            (n, s)
        })
        .collect()
}

/// `path` opened for reading with O_NOATIME and `flags` (root may use
/// O_NOATIME on any file).
fn open_noatime(path: &Path, flags: libc::c_int) -> fs::File {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME | flags)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names in `dir`, sorted; listed without moving its access time.
pub fn names(dir: &Path) -> Vec<String> {
    use nix::dir::Dir;
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOATIME;
    let mut d =
        Dir::open(dir, flags, Mode::empty()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut v: Vec<String> = d
        .iter()
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    v.sort();
    v
}

/// Whether `name` is a temp file the module's writer makes beside the
/// secret file `secret_name`: `<secret_name>.<16 hex>.tmp`, with a dot in
/// front unless the name is hidden already (`.pam_otp.toml.<16 hex>.tmp`).
pub fn is_writer_temp(name: &str, secret_name: &str) -> bool {
    let hidden = if secret_name.starts_with('.') {
        Some(name)
    } else {
        name.strip_prefix('.')
    };
    let Some(rest) = hidden
        .and_then(|r| r.strip_prefix(secret_name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".tmp"))
    else {
        return false;
    };
    rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether process `pid` holds a `flock` on the file `meta` describes: a
/// `lock:` line naming its device and inode in one of /proc/PID/fdinfo/*
/// (a process that shares the locked open file description, a forked
/// child, holds it too). Each fdinfo file is small and read whole. Not
/// /proc/locks: the kernel lists that table one page per read(2) and
/// starts the next read at an index into a table other processes change
/// meanwhile, so once the machine holds more locks than fit a page (other
/// tests, a database) a lock held all along can be skipped.
pub fn holds_flock(pid: u32, meta: &fs::Metadata) -> bool {
    let dev = meta.dev();
    let want = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return false; // gone: a process that ended holds nothing
    };
    fds.flatten().any(|fd| {
        fs::read_to_string(fd.path()).is_ok_and(|info| {
            info.lines().any(|l| {
                // "lock:\t1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&"lock:")
                    && f.get(2) == Some(&"FLOCK")
                    && f.get(6) == Some(&&*want)
            })
        })
    })
}

/// Whether anyone holds a `flock` on the inode `file` is open on: an
/// exclusive non-blocking flock from `file`'s own open file description
/// fails with EWOULDBLOCK. When it is free, the lock is taken and let go at
/// once (nothing else may be waiting for it at the caller's moment).
pub fn flock_is_held(file: &fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: flock(2) on a descriptor `file` owns for the whole call.
    let rc = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above; lets go of the lock just taken.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        return false;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EWOULDBLOCK),
        "flock(LOCK_NB): {err}"
    );
    true
}

/// Whether two metadata describe the same file (device and inode).
pub fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether process `pid` has the file `meta` describes open (one of its
/// /proc/PID/fd entries is that device and inode, whatever its path says
/// now: the file may have been renamed over).
pub fn has_open(pid: u32, meta: &fs::Metadata) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::metadata(fd.path()).is_ok_and(|m| same_file(&m, meta)))
}

/// Waits until process `pid` is in the stopped state (`T` in
/// /proc/PID/stat) after a SIGSTOP: kill(2) returns before the stop takes
/// effect, and a process inside a system call finishes it first. False if
/// the process is gone (or a zombie) instead; a process that neither stops
/// nor ends within 30 s fails the test.
pub fn wait_stopped(pid: u32) -> bool {
    let t = stopwatch();
    loop {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // "PID (comm) S ...": the comm may hold spaces and parentheses, the
        // state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        match state {
            Some("T") | Some("t") => return true,
            Some("Z") | Some("X") | None => return false,
            Some(_) => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "process {pid} neither stopped nor ended 30 s after SIGSTOP"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// This thread's file-system uid and gid: the fourth value of the `Uid:`
/// and `Gid:` lines of its status (real, effective, saved, file system).
pub fn fs_ids() -> (u32, u32) {
    let fs_id = |key: &str| {
        thread_status(key)
            .get(3)
            .copied()
            .unwrap_or_else(|| panic!("{key} has no file-system id"))
    };
    (fs_id("Uid:"), fs_id("Gid:"))
}

/// This thread's supplementary groups (the `Groups:` line of its status).
pub fn thread_groups() -> Vec<u32> {
    thread_status("Groups:")
}

/// The numbers on the `key` line of `/proc/thread-self/status`. setfsuid
/// and setgroups(2) act per thread, and test functions run on their own
/// threads, so `/proc/self` (the main thread) would not show them.
fn thread_status(key: &str) -> Vec<u32> {
    let status = fs::read_to_string("/proc/thread-self/status").expect("/proc/thread-self");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line in /proc/thread-self/status"))
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// The crate's one pseudo-random generator (xorshift64*), for random delays
/// and for data that only has to look random. [`Rng::new`] gives the same
/// stream for the same seed; [`Rng::seeded`] seeds it from the clock.
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed: the same numbers every run.
    pub fn new(seed: u64) -> Rng {
        // xorshift never leaves a zero state: keep the state odd.
        Rng(seed | 1)
    }

    /// A generator seeded from the clock, or from `PAM_OTP_TEST_SEED` to
    /// repeat a run whose seed (returned here, for the test to print) failed.
    pub fn seeded() -> (Rng, u64) {
        let seed = std::env::var("PAM_OTP_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                #[allow(clippy::disallowed_methods)]
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1);
                nanos ^ (u64::from(std::process::id()) << 32)
            });
        (Rng::new(seed), seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `n` bytes (the high byte of each number, xorshift64*'s best).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// A directory of root's (root:root, `mode`: 0700 for one only root can
/// enter) under the test root, named after `tag`; removed on drop.
pub struct RootDir {
    pub path: PathBuf,
}

impl RootDir {
    pub fn new(tag: &str, mode: u32) -> RootDir {
        let path = crate::test_root().join(format!("{tag}-{}", crate::unique_id()));
        fs::create_dir(&path).unwrap();
        std::os::unix::fs::lchown(&path, Some(0), Some(0)).unwrap();
        set_mode(&path, mode);
        RootDir { path }
    }
}

impl Drop for RootDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The private `state_dir` of `pam`: the directory its config names
/// (`state` in the service dir, root's, not made until a test or the
/// module makes it). Tests of `store = "system"` put the store there, or
/// mount a tmpfs on it.
pub fn state_dir(pam: &PamService) -> PathBuf {
    let dir = pam.dir.join("state");
    let config = fs::read_to_string(&pam.config_file).unwrap_or_default();
    assert!(
        config.contains(&format!("state_dir = {:?}", dir.to_string_lossy())),
        "{} does not set state_dir to {}",
        pam.config_file.display(),
        dir.display()
    );
    dir
}

/// Writes `text` as `user`'s file of the `system` store under
/// `state_dir`, as the module and `otp-enroll --user` keep it:
/// `<state_dir>/users/<user>.toml`, root's, mode 0600, in root's
/// directories (`state_dir` made 0755 if missing, `users` 0700). Its path.
pub fn write_system_secret(state_dir: &Path, user: &str, text: &str) -> PathBuf {
    let users = state_dir.join("users");
    for (dir, mode) in [(state_dir, 0o755), (users.as_path(), 0o700)] {
        if !dir.exists() {
            fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            std::os::unix::fs::lchown(dir, Some(0), Some(0)).unwrap();
            set_mode(dir, mode);
        }
    }
    let path = users.join(format!("{user}.toml"));
    crate::write_mode(&path, text, 0o600);
    std::os::unix::fs::lchown(&path, Some(0), Some(0)).unwrap();
    path
}

/// Which file store a test runs on: the user's home file or root's
/// `system` store under the service's private `state_dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Home,
    System,
}

impl Store {
    /// The config line that picks the store.
    pub fn line(self) -> &'static str {
        match self {
            Store::Home => "",
            Store::System => "store = \"system\"\n",
        }
    }
}

/// One user on one file store behind a private service, with a private
/// `/dev/log`: what the tests of a token's lifecycle, temporary codes and
/// rollout through the real otp-enroll and pamtester (tests/it_lifecycle.rs,
/// it_tempcode.rs, it_rollout.rs) each set up, once here so that they run
/// both programs the same way, with the caller's `TZ` in their
/// environment. The rate limit is off ([`crate::NO_RATE_LIMIT`]), so that
/// each refusal is the token's, never a lockout.
pub struct StoreWorld {
    pub store: Store,
    pub svc: PamService,
    pub user: TestUser,
    pub sink: LogSink,
}

impl StoreWorld {
    /// A service with `stack` (see [`PamService::named`]) on `store` with
    /// `config` lines, and a new user without a file.
    pub fn new(store: Store, stack: &str, config: &str) -> StoreWorld {
        let svc =
            PamService::with_config(stack, &format!("{}{config}{NO_RATE_LIMIT}", store.line()));
        StoreWorld {
            store,
            svc,
            user: TestUser::new(),
            sink: LogSink::new(),
        }
    }

    /// Where the store keeps the user's file (which may not exist).
    pub fn secret_path(&self) -> PathBuf {
        match self.store {
            Store::Home => self.user.secret_path(),
            Store::System => state_dir(&self.svc)
                .join("users")
                .join(format!("{}.toml", self.user.name)),
        }
    }

    /// Writes `text` as the user's file, as the store keeps it; its path.
    pub fn write_secret(&self, text: &str) -> PathBuf {
        match self.store {
            Store::Home => self.user.write_secret(text),
            Store::System => write_system_secret(&state_dir(&self.svc), &self.user.name, text),
        }
    }

    /// The user's file as the store has it now, parsed.
    pub fn secret(&self) -> otp_core::secret_file::SecretFile {
        crate::secret_file(&self.secret_path())
    }

    /// otp-enroll as root for the user ([`crate::otp_enroll`]), `TZ` as given.
    pub fn enroll(&self, tz: &str, args: &[&str]) -> Output {
        crate::otp_enroll(&self.svc, Some(&self.user.name), tz, args)
    }

    /// [`StoreWorld::enroll`] that must succeed: what it printed on stdout.
    pub fn enroll_ok(&self, tz: &str, args: &[&str]) -> String {
        let out = self.enroll(tz, args);
        assert!(out.status.success(), "{:?} {args:?}: {out:?}", self.store);
        String::from_utf8(out.stdout).unwrap()
    }

    /// One login of the user answering `input` (lines), `TZ` in
    /// pamtester's environment: the run and every line the module logged
    /// ([`crate::syslog::logged_run_in_zone`]).
    pub fn run_login(&self, tz: &str, input: &str) -> (PamRun, Vec<String>) {
        logged_run_in_zone(&self.svc, &self.sink, &self.user.name, tz, input)
    }
}

/// Exactly one of `runs` succeeded; the others failed as a replay should
/// (an authentication failure, not a system error or an unavailable file).
pub fn assert_exactly_one_winner(runs: &[PamRun], what: &str) {
    let winners = runs.iter().filter(|r| r.success).count();
    assert_eq!(
        winners,
        1,
        "{what}: {winners} of {} concurrent logins with the same code succeeded:\n{runs:#?}",
        runs.len()
    );
    for r in runs.iter().filter(|r| !r.success) {
        assert!(
            r.stdout.contains("Authentication failure")
                || r.stderr.contains("Authentication failure"),
            "{what}: a loser failed for another reason than a refused code: {r:#?}"
        );
        assert!(
            !r.stderr.contains("unavailable"),
            "{what}: a loser could not use the file (lock timeout?): {r:#?}"
        );
    }
}

// ---- a private /etc for setuid programs ----------------------------------

/// The `sh -c` script that bind-mounts each `(file, target)` of `binds`
/// over `target` (`/etc/pam.d/sudo`, `/etc/sudoers`, `/etc/pam.d/su`...)
/// and then runs `then` (a shell command; `exec "$0" "$@"` runs the words
/// after the script). Setuid programs (sudo, su) ignore pam_wrapper, and
/// their PAM service name is fixed, so a test gives them its own stack
/// this way; run only through [`in_private_mounts`] or
/// [`in_private_mounts_line`], whose private mount namespace keeps the
/// machine's files untouched and leaves nothing mounted when it ends.
pub fn bind_script(binds: &[(&Path, &str)], then: &str) -> String {
    let mut script = String::new();
    for (file, target) in binds {
        let file = file.to_str().expect("test paths are UTF-8");
        assert!(
            !file.contains('\'') && !target.contains('\''),
            "{file} {target}"
        );
        script.push_str(&format!("mount --bind '{file}' '{target}' && "));
    }
    script.push_str(then);
    script
}

/// `unshare --mount --propagation private sh -c <bind_script>`: `then` runs
/// with the test's files over the machine's, in a namespace of its own.
/// Words added to the command are `"$0" "$@"` of the script.
pub fn in_private_mounts(binds: &[(&Path, &str)], then: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(bind_script(binds, then));
    cmd
}

/// [`in_private_mounts`] as one shell command line (for a pseudo-terminal:
/// [`crate::run_in_pty`], [`crate::phone::with_phone`]).
pub fn in_private_mounts_line(binds: &[(&Path, &str)], then: &str) -> String {
    let script = bind_script(binds, then).replace('\'', r"'\''");
    format!("unshare --mount --propagation private sh -c '{script}'")
}

/// A sudoers file in `pam`'s service dir (root's, 0440) that lets `user`
/// run anything as anyone, with their password (no lecture, no cached
/// credentials, one try); its path. For [`in_private_mounts`] over
/// `/etc/sudoers`.
pub fn write_sudoers(pam: &PamService, user: &str) -> PathBuf {
    let sudoers = pam.write_file(
        "sudoers",
        &format!("Defaults !lecture, timestamp_timeout=0, passwd_tries=1\n{user} ALL=(ALL) ALL\n"),
    );
    set_mode(&sudoers, 0o440);
    sudoers
}

/// The binds that make the real `sudo` use `pam`'s stack (a service named
/// `sudo`) and `sudoers`.
pub fn sudo_binds<'a>(pam: &'a PamService, sudoers: &'a Path) -> [(PathBuf, &'static str); 2] {
    [
        (pam.dir.join("sudo"), "/etc/pam.d/sudo"),
        (sudoers.to_path_buf(), "/etc/sudoers"),
    ]
}

/// The private `/dev` of [`su_as_caller`]: the usual devices, a terminal
/// of its own (`devpts`, new instance), `/dev/log` the test's sink.
const SU_DEV: &str = crate::syslog::namespace_script!(
    "mknod -m 666 /dev/tty c 5 0
mkdir /dev/pts
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
"
);

/// The real setuid util-linux `su TARGET -c 'echo OK-$(id -un)'`, typed
/// by the unprivileged `caller` on a terminal of their own, answering
/// `answers` as they show. su's PAM service name is fixed and pam_wrapper
/// does not reach a setuid program, so: a private mount namespace (made
/// by root) where `stack` is bound over /etc/pam.d/su and su-l (and,
/// with `log`, a private /dev whose /dev/log is that sink), then
/// `setpriv` to the caller, who runs `script(1)` and su in it. `env` is
/// the caller's whole environment (for script, the shell and su); `su_env`
/// is added for su alone (`env K=V su ...`: a variable that would change
/// script or the shell, `LD_PRELOAD` say). The machine's files are never
/// touched.
pub fn su_as_caller(
    stack: &Path,
    caller: &crate::TestUser,
    target: &str,
    env: &[(String, String)],
    su_env: &[(String, String)],
    log: Option<&crate::syslog::LogSink>,
    answers: &[(&str, &str)],
) -> crate::PtyRun {
    let mut inner = String::from("env");
    for (k, v) in su_env {
        assert!(!k.contains('\'') && !v.contains('\''), "{k}={v}");
        inner.push_str(&format!(" '{k}={v}'"));
    }
    // Single quotes: expanded by the target's shell, not by the caller's.
    inner.push_str(&format!(" su {target} -c 'echo OK-$(id -un)'"));
    let then = format!(
        "exec setpriv --reuid={} --regid={} --init-groups -- script -q -e -c \"$1\" /dev/null",
        caller.uid, caller.gid
    );
    let binds: [(&Path, &str); 2] = [(stack, "/etc/pam.d/su"), (stack, "/etc/pam.d/su-l")];
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"]);
    match log {
        // NAMESPACE_SCRIPT's `exec "$@"` runs `sh -c BINDS sh INNER`.
        Some(sink) => {
            cmd.arg(SU_DEV).arg(&sink.path).args([
                "sh",
                "-c",
                &bind_script(&binds, &then),
                "sh",
                &inner,
            ]);
        }
        None => {
            cmd.arg(bind_script(&binds, &then)).args(["sh", &inner]);
        }
    }
    cmd.env_clear().current_dir("/").envs(env.iter().cloned());
    crate::answer_in_pty(cmd, answers)
}
