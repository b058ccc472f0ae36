//! pam_otp in a long-running, multi-threaded PAM server (FreeRADIUS's
//! rlm_pam, OpenVPN's auth-pam; issue 16): one process loads the module
//! and runs thousands of logins, several at once, each its own
//! `pam_start` ... `pam_end`. The process is `pam-threads`
//! (src/bin/pam-threads.rs), driving the real libpam with the built
//! module from a private service directory (`pam_start_confdir`, never
//! /etc/pam.d), run in a private mount namespace whose `/dev/log` is a
//! [`LogSink`], so that the module's syslog lines are really sent.
//!
//! What is proven, for real users with HOTP and TOTP tokens of their own
//! in the home and the system store, right, wrong and replayed codes:
//! - every right code is accepted, once; every wrong one and every replay
//!   refused, with one prompt each, from 8 threads at once;
//! - the process's resident memory after 4 000 logins is within 1 MiB of
//!   what it was after the warm-up, and it holds the descriptors it held
//!   before its first `pam_start`;
//! - with no handle open libpam unloads the module, and loading it again
//!   (round after round, one thread or eight) works and grows nothing;
//!   while the module waits for the code it holds no descriptor without
//!   close-on-exec;
//! - a panic caught on one pool thread costs that login only and leaves
//!   nothing that keeps the module loaded;
//! - under valgrind's memcheck, no memory error anywhere and no leak whose
//!   stack names the module.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use otp_core::key::{encode_base32, encode_hex};
use testkit::harness::{hotp_codes, state_dir, stopwatch, write_system_secret, Rng, RootDir};
use testkit::pg::{fleet_config, Postgres};
use testkit::syslog::LogSink;
use testkit::{binary_path, now, oathtool, wait_or_kill, PamService, TestUser};
use testkit::{NO_RATE_LIMIT, OTP_ONLY};

/// One test at a time: the figures (memory, logins per second) are the
/// process's own only when nothing else runs, and valgrind is slow.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const PAM_SUCCESS: i32 = 0;
const PAM_SYSTEM_ERR: i32 = 4;
const PAM_AUTH_ERR: i32 = 7;

/// The `other` service of Debian's /etc/pam.d, stricter: everything denied.
const OTHER: &str = "auth required pam_deny.so\naccount required pam_deny.so\n\
                     password required pam_deny.so\nsession required pam_deny.so\n";

/// The most a run may take (valgrind included) before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(120);

// ---- users, their tokens, the plan ------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Store {
    Home,
    System,
    /// The service whose pam_otp line has `test_panic` (debug builds).
    Panics,
    /// `store = "postgresql"`: a private PostgreSQL, TLS with a client
    /// certificate, one connection per login.
    Postgres,
}

enum Token {
    /// The codes of counters 0.., and how many were used.
    Hotp { codes: Vec<String>, next: usize },
    /// The codes of the steps now and now + 1 (both accepted, default
    /// skew 1, for at least the next 30 s), and how many were used.
    Totp { codes: [String; 2], next: usize },
}

struct Member {
    user: TestUser,
    store: Store,
    token: Token,
    /// Every code of this token that is or may become acceptable during
    /// the run, once per counter or step: a wrong code is none of them,
    /// and a code in it twice is never replayed.
    near: Vec<String>,
    last_accepted: Option<String>,
}

/// The two private services: pam_otp alone, no rate limit (the wrong
/// codes would lock the users out), home store and system store.
struct Services {
    home: PamService,
    system: PamService,
    /// pam_otp with `test_panic`: a debug build's module panics at once
    /// (after reading the user), which must become PAM_SYSTEM_ERR.
    panics: PamService,
    /// The host service of the postgresql store, and its database (only
    /// for the test that uses it: [`Services::with_postgres`]).
    postgres: Option<(PamService, Postgres)>,
}

impl Services {
    fn new() -> Services {
        let services = Services {
            home: PamService::named("otp-threads-home", OTP_ONLY, NO_RATE_LIMIT),
            system: PamService::named(
                "otp-threads-system",
                OTP_ONLY,
                &format!("store = \"system\"\n{NO_RATE_LIMIT}"),
            ),
            panics: PamService::named(
                "otp-threads-panics",
                "auth required {module} config={config} test_panic\n",
                NO_RATE_LIMIT,
            ),
            postgres: None,
        };
        // libpam reads `other` beside every service file, for the groups
        // the service has none of; without one it says so in syslog at
        // every pam_start, and glibc's syslog keeps its socket open for
        // the rest of the process. Here as in /etc/pam.d: deny.
        for svc in [&services.home, &services.system, &services.panics] {
            svc.write_file("other", OTHER);
        }
        services
    }

    /// The services and a private PostgreSQL with the schema, whose rate
    /// limit allows the wrong codes of the run (the host's own is off).
    fn with_postgres() -> Services {
        let mut services = Services::new();
        let pg = Postgres::with_schema();
        pg.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
        let svc = PamService::named("otp-threads-pg", OTP_ONLY, "");
        let conninfo = pg.host_conninfo("threads", &svc.dir, 5);
        let admin = pg.admin_conninfo("ops", &svc.dir, 5);
        svc.write_config(&fleet_config(&conninfo, &admin, NO_RATE_LIMIT));
        svc.write_file("other", OTHER);
        services.postgres = Some((svc, pg));
        services
    }

    fn of(&self, store: Store) -> &PamService {
        match store {
            Store::Home => &self.home,
            Store::System => &self.system,
            Store::Panics => &self.panics,
            Store::Postgres => &self.postgres.as_ref().expect("Services::with_postgres").0,
        }
    }
}

/// A new user with a random key of their own: HOTP (`hotp_codes` codes
/// made) or TOTP, in `store`.
fn member(services: &Services, rng: &mut Rng, hotp: bool, store: Store, hotp_len: u64) -> Member {
    let user = TestUser::new();
    let key = rng.bytes(20);
    let (b32, hex) = (encode_base32(&key), encode_hex(&key));
    let (text, mut token, near) = if hotp {
        let codes = hotp_codes(&hex, 0, hotp_len);
        let near = codes.clone();
        let text = format!("version = 1\ntype = \"hotp\"\nsecret = \"{b32}\"\ncounter = 0\n");
        (text, Token::Hotp { codes, next: 0 }, near)
    } else {
        let step = now() / 30;
        // Steps step-3 ..= step+4: all that could be in the window while
        // the run lasts, and more.
        let window = oathtool(&[
            "--totp",
            &format!("--now=@{}", (step - 3) * 30),
            "-w",
            "7",
            &hex,
        ]);
        let near: Vec<String> = window.lines().map(str::to_string).collect();
        assert_eq!(near.len(), 8, "{window}");
        let codes = [near[3].clone(), near[4].clone()];
        let text = format!("version = 1\ntype = \"totp\"\nsecret = \"{b32}\"\n");
        (text, Token::Totp { codes, next: 0 }, near)
    };
    match store {
        Store::Home => {
            user.write_secret(&text);
        }
        Store::System => {
            write_system_secret(&state_dir(&services.system), &user.name, &text);
        }
        Store::Panics => unreachable!("no tokens behind the panicking service"),
        Store::Postgres => enroll_in_database(services, &user, &hex, &mut token),
    }
    Member {
        user,
        store,
        token,
        near,
        last_accepted: None,
    }
}

/// An admin's `otp-enroll --user U token` on the postgresql store: the
/// key goes into the database (as for a hardware token), confirmed with
/// the code of counter 0, which the token then starts after.
fn enroll_in_database(services: &Services, user: &TestUser, hex: &str, token: &mut Token) {
    let Token::Hotp { codes, next } = token else {
        panic!("the database's tokens here are HOTP (otp-enroll token)");
    };
    let svc = services.of(Store::Postgres);
    let out = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&svc.config_file)
        .args(["--user", &user.name, "token", "--serial"])
        .arg(format!("T-{}", user.name))
        .args(["--secret", hex, "--code", &codes[0]])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .expect("otp-enroll");
    assert!(
        out.status.success(),
        "otp-enroll token: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    *next = 1;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Right,
    Wrong,
    Replay,
    /// A login of the `test_panic` service.
    Panic,
}

/// One planned login and what it must give.
struct Planned {
    round: u32,
    thread: u32,
    user: String,
    store: Store,
    kind: Kind,
    code: String,
}

impl Planned {
    fn expected(&self) -> i32 {
        match self.kind {
            Kind::Right => PAM_SUCCESS,
            Kind::Wrong | Kind::Replay => PAM_AUTH_ERR,
            Kind::Panic => PAM_SYSTEM_ERR,
        }
    }

    /// Prompts the login must show: none when the module panics first.
    fn prompts(&self) -> u32 {
        u32::from(self.kind != Kind::Panic)
    }
}

/// The next login of `m`: a right code half of the time while it has one,
/// else a replay of its last accepted code or a wrong code.
fn next_login(m: &mut Member, rng: &mut Rng) -> (Kind, String) {
    let roll = rng.below(4);
    let right = match &mut m.token {
        Token::Hotp { codes, next } if roll < 2 && *next < codes.len() => {
            *next += 1;
            Some(codes[*next - 1].clone())
        }
        // Both TOTP codes first: they are good for 30 s only.
        Token::Totp { codes, next } if *next < 2 => {
            *next += 1;
            Some(codes[*next - 1].clone())
        }
        _ => None,
    };
    if let Some(code) = right {
        m.last_accepted = Some(code.clone());
        return (Kind::Right, code);
    }
    // A replay must be refused only when the code is no other counter's
    // or step's too: six digits repeat, and a code that is also a later
    // counter's is rightly accepted as that counter (seed
    // 1796464878795645801 planned such a replay; the module took it as
    // the later counter and then rightly refused the two codes before it).
    if roll == 2 {
        if let Some(code) = &m.last_accepted {
            if m.near.iter().filter(|c| *c == code).count() == 1 {
                return (Kind::Replay, code.clone());
            }
        }
    }
    let wrong = loop {
        let c = format!("{:06}", rng.below(1_000_000));
        if !m.near.contains(&c) {
            break c;
        }
    };
    (Kind::Wrong, wrong)
}

/// `rounds[r][t]` logins for thread `t` of round `r`, each thread with
/// users of its own (`members[t]`), so that each user's codes are typed
/// in order.
fn plan(members: &mut [Vec<Member>], rounds: &[Vec<usize>], rng: &mut Rng) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (r, threads) in rounds.iter().enumerate() {
        for (t, &n) in threads.iter().enumerate() {
            let mine = &mut members[t];
            for _ in 0..n {
                let pick = rng.below(mine.len() as u64) as usize;
                let m = &mut mine[pick];
                let (kind, code) = next_login(m, rng);
                planned.push(Planned {
                    round: r as u32,
                    thread: t as u32,
                    user: m.user.name.clone(),
                    store: m.store,
                    kind,
                    code,
                });
            }
        }
    }
    planned
}

// ---- running pam-threads ------------------------------------------------

/// A thread reading the sink while the run lasts (its queue holds ten
/// lines), counting what the module logged.
struct Drain {
    stop: Arc<AtomicBool>,
    reader: JoinHandle<Vec<String>>,
}

impl Drain {
    fn start(sink: LogSink) -> Drain {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            loop {
                let batch = sink.lines();
                let idle = batch.is_empty();
                lines.extend(batch);
                if idle {
                    if flag.load(Ordering::SeqCst) {
                        return lines;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Drain { stop, reader }
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.reader.join().expect("log reader")
    }
}

/// rc, prompts, messages, descriptors without close-on-exec ("-": none).
type LoginResult = (i32, u32, u32, String);

/// What one run reported.
#[derive(Debug, Default)]
struct Report {
    /// (round, thread, index) -> (rc, prompts, messages, descriptors
    /// without close-on-exec while the module waited for the code).
    results: BTreeMap<(u32, u32, usize), LoginResult>,
    rounds: Vec<RoundFigures>,
    fds_start: Vec<String>,
    fds_end: Vec<String>,
    /// Whether the module was still mapped once the threads had exited.
    mapped_at_exit: bool,
    logged: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct RoundFigures {
    logins: usize,
    secs: f64,
    rss_kb: u64,
    anon_kb: u64,
    file_kb: u64,
    trimmed_kb: u64,
    heap: u64,
    heap_held: u64,
    fds: usize,
    module_mapped: bool,
}

fn parse_report(stdout: &str) -> Report {
    let mut report = Report::default();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            Some("R") => {
                let n = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("{line}"));
                report.results.insert(
                    (n(1) as u32, n(2) as u32, n(3) as usize),
                    (n(4) as i32, n(5) as u32, n(6) as u32, f[7].to_string()),
                );
            }
            Some("round") => {
                let v = |key: &str| {
                    let i = f.iter().position(|k| *k == key).expect(key);
                    f[i + 1].to_string()
                };
                report.rounds.push(RoundFigures {
                    logins: v("logins").parse().unwrap(),
                    secs: v("secs").parse().unwrap(),
                    rss_kb: v("rss_kb").parse().unwrap(),
                    anon_kb: v("anon_kb").parse().unwrap(),
                    file_kb: v("file_kb").parse().unwrap(),
                    trimmed_kb: v("trimmed_kb").parse().unwrap(),
                    heap: v("heap").parse().unwrap(),
                    heap_held: v("heap_held").parse().unwrap(),
                    fds: v("fds").parse().unwrap(),
                    module_mapped: v("module_mapped") == "1",
                });
            }
            Some("module_mapped_end") => report.mapped_at_exit = f[1] == "1",
            Some("fds_start") => report.fds_start = f[2..].iter().map(|s| s.to_string()).collect(),
            Some("fds_end") => report.fds_end = f[2..].iter().map(|s| s.to_string()).collect(),
            _ => panic!("pam-threads printed {line:?}"),
        }
    }
    report
}

/// Runs `cmd` to its end, killed (and failing the test) past `limit`.
fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = pipe.read_to_end(&mut b);
            b
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped")));
    let stderr = read(Box::new(child.stderr.take().expect("piped")));
    let (status, killed) = wait_or_kill(&mut child, limit);
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        !killed,
        "{cmd:?} hung for {limit:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `PAM_OTP_THREADS_WRAPPER`, split at spaces: a command to run
/// pam-threads under when looking into a failure (`strace -f -k -o F`).
fn debug_wrapper() -> Vec<String> {
    std::env::var("PAM_OTP_THREADS_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `pam-threads`, as cargo built it for this test.
fn pam_threads() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pam-threads"))
}

/// Writes the plan for `services` into `dir` and runs pam-threads on it
/// in the private namespace, under `wrapper` (valgrind) if given.
fn run(
    services: &Services,
    planned: &[Planned],
    fresh: bool,
    dir: &Path,
    wrapper: &[String],
) -> Report {
    let mut text = String::new();
    if fresh {
        text.push_str("mode fresh\n");
    }
    let mut index: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for p in planned {
        let svc = services.of(p.store);
        writeln!(
            text,
            "L {} {} {} {} {} 192.0.2.{} {}",
            p.round,
            p.thread,
            svc.dir.display(),
            svc.name,
            p.user,
            p.thread + 1,
            p.code
        )
        .unwrap();
        *index.entry((p.round, p.thread)).or_default() += 1;
    }
    let plan_file = dir.join("plan");
    std::fs::write(&plan_file, text).unwrap();

    let sink = LogSink::new();
    let sink_path = sink.path.clone();
    let drain = Drain::start(sink);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(testkit::syslog::NAMESPACE_SCRIPT)
        .arg(&sink_path)
        .args(wrapper)
        .arg(pam_threads())
        .arg(&plan_file);
    let run = output_within(&mut cmd, RUN_LIMIT);
    let logged = drain.finish();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "pam-threads failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr),
        stdout.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    let mut report = parse_report(&stdout);
    report.logged = logged;
    assert_eq!(
        report.results.len(),
        planned.len(),
        "pam-threads reported {} logins of {}",
        report.results.len(),
        planned.len()
    );
    report
}

/// Every login gave what it must: right codes accepted (each once: every
/// replay refused), wrong codes refused, one prompt each. Also no
/// descriptor without close-on-exec was seen at a prompt.
fn check_results(planned: &[Planned], report: &Report) {
    let mut seq: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut counts: BTreeMap<(Kind, Store), usize> = BTreeMap::new();
    for p in planned {
        let i = seq.entry((p.round, p.thread)).or_default();
        let key = (p.round, p.thread, *i);
        *i += 1;
        let (rc, prompts, _messages, bad) = report
            .results
            .get(&key)
            .unwrap_or_else(|| panic!("no result for {key:?}"));
        *counts.entry((p.kind, p.store)).or_default() += 1;
        if *rc != p.expected() || *prompts != p.prompts() || bad != "-" {
            failures.push(format!(
                "round {} thread {} login {}: {} {:?} code {} ({:?} store): rc {rc}, \
                 {prompts} prompts, not close-on-exec: {bad} (expected rc {})",
                p.round,
                p.thread,
                key.2,
                p.user,
                p.kind,
                p.code,
                p.store,
                p.expected()
            ));
        }
    }
    println!("logins by kind and store: {counts:?}");
    assert!(
        failures.is_empty(),
        "{} of {} logins went wrong:\n{}",
        failures.len(),
        planned.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `threads` threads, `users` users each, alternating HOTP and TOTP and the
/// home and the system store.
fn members(
    services: &Services,
    threads: usize,
    users: usize,
    hotp_len: u64,
    rng: &mut Rng,
) -> Vec<Vec<Member>> {
    (0..threads)
        .map(|t| {
            (0..users)
                .map(|u| {
                    let hotp = (t + u) % 3 != 2;
                    let store = if (t + u) % 2 == 0 {
                        Store::Home
                    } else {
                        Store::System
                    };
                    member(services, rng, hotp, store, hotp_len)
                })
                .collect()
        })
        .collect()
}

fn print_figures(report: &Report) {
    for (r, f) in report.rounds.iter().enumerate() {
        println!(
            "round {r}: {} logins in {:.2} s ({:.0}/s), RSS {} kB (anonymous {} kB, files {} kB; \
             {} kB after malloc_trim), heap in use {} B (held {} B), {} fds, module mapped: {}",
            f.logins,
            f.secs,
            f.logins as f64 / f.secs,
            f.rss_kb,
            f.anon_kb,
            f.file_kb,
            f.trimmed_kb,
            f.heap,
            f.heap_held,
            f.fds,
            f.module_mapped
        );
    }
    println!(
        "descriptors before the first pam_start: {:?}; at the end: {:?}",
        report.fds_start, report.fds_end
    );
    let results = report
        .logged
        .iter()
        .filter(|l| l.contains(" result="))
        .count();
    let others: Vec<&String> = report
        .logged
        .iter()
        .filter(|l| !l.contains("pam_otp("))
        .collect();
    println!(
        "lines logged by others (libpam): {} {:?}",
        others.len(),
        others.iter().take(3).collect::<Vec<_>>()
    );
    println!(
        "syslog lines received: {} ({} login results; the module drops a line when the queue is full)",
        report.logged.len(),
        results
    );
}

/// A run of a warm-up round and a measured one, on one pool of threads:
/// the resident memory after the second is within 1 MiB of after the
/// first, the descriptors at the end are those before the first
/// `pam_start`, and the module was unloaded whenever no handle was open.
fn check_warm_and_measured(report: &Report, threads: usize) {
    let [warm, end] = report.rounds[..] else {
        panic!("{} rounds reported", report.rounds.len());
    };
    let grown = end.rss_kb as i64 - warm.rss_kb as i64;
    println!(
        "RSS after warm-up {} kB, after {} more logins {} kB ({grown:+} kB); \
         {:.0} logins/s with {threads} threads",
        warm.rss_kb,
        end.logins,
        end.rss_kb,
        end.logins as f64 / end.secs
    );
    assert!(
        grown < 1024,
        "RSS grew by {grown} kB over {} logins",
        end.logins
    );
    assert_eq!(
        report.fds_end, report.fds_start,
        "descriptors at the end differ from those before the first pam_start"
    );
    // The threads that ran the module are alive while no handle is open:
    // libpam unloads it all the same (nothing of it is pinned by them),
    // and their exit afterwards (which would call into it if it had left
    // a thread-exit destructor behind) is survived: the run exited 0.
    assert!(
        report.rounds.iter().all(|r| !r.module_mapped) && !report.mapped_at_exit,
        "the module stayed mapped with no handle open: {:?}",
        report.rounds
    );
}

// ---- the tests ------------------------------------------------------------

/// 8 threads × (100 warm-up + 500) logins, 48 users, in one process whose
/// pool of threads lives from the first login to the last.
#[test]
#[ignore = "needs root: make test"]
fn eight_threads_thousands_of_logins_grow_nothing() {
    let _one = serial();
    let (mut rng, seed) = Rng::seeded();
    println!("seed {seed} (PAM_OTP_TEST_SEED repeats it)");
    let services = Services::new();
    let (threads, warmup, main) = (8, 100, 500);
    let started = stopwatch();
    let mut members = members(&services, threads, 6, (warmup + main + 20) as u64, &mut rng);
    println!("48 users made in {:.1} s", started.elapsed().as_secs_f64());
    let rounds = vec![vec![warmup; threads], vec![main; threads]];
    let planned = plan(&mut members, &rounds, &mut rng);
    let dir = RootDir::new("threads", 0o755);
    let report = run(&services, &planned, false, &dir.path, &debug_wrapper());
    print_figures(&report);
    check_results(&planned, &report);

    check_warm_and_measured(&report, threads);
    assert!(
        report.logged.iter().any(|l| l.contains("result=success")),
        "no login result reached the private /dev/log"
    );
}

/// Round after round the module is loaded again (libpam dlcloses it at
/// the last `pam_end`): one thread alone (every login loads and unloads
/// it) and eight at once, each round on new threads. Every round works,
/// and from the first to the last the heap in use, the memory the
/// process holds and its descriptors stay as they were.
#[test]
#[ignore = "needs root: make test"]
fn the_module_loads_again_after_pam_end_and_grows_nothing() {
    let _one = serial();
    let (mut rng, seed) = Rng::seeded();
    println!("seed {seed} (PAM_OTP_TEST_SEED repeats it)");
    let services = Services::new();
    let threads = 8;
    let mut members = members(&services, threads, 2, 400, &mut rng);
    // Round 0 warms up; then alternately thread 0 alone and all eight.
    let rounds: Vec<Vec<usize>> = (0..7)
        .map(|r| {
            if r % 2 == 1 {
                let mut alone = vec![0; threads];
                alone[0] = 40;
                alone
            } else {
                vec![30; threads]
            }
        })
        .collect();
    let planned = plan(&mut members, &rounds, &mut rng);
    let dir = RootDir::new("threads-reload", 0o755);
    let report = run(&services, &planned, true, &dir.path, &debug_wrapper());
    print_figures(&report);
    // Also: no descriptor without close-on-exec while the module of a
    // lone thread waited for the code.
    check_results(&planned, &report);
    for (r, f) in report.rounds.iter().enumerate() {
        assert!(
            !f.module_mapped,
            "round {r}: the module is still mapped with no handle open"
        );
    }
    // The same kind of round, first and last time: eight threads.
    let (first, last) = (report.rounds[2], report.rounds[6]);
    let heap = last.heap as i64 - first.heap as i64;
    let rss = last.trimmed_kb as i64 - first.trimmed_kb as i64;
    println!(
        "from round 2 to round 6 ({} logins): heap in use {heap:+} B, RSS after trim {rss:+} kB",
        report.rounds[3..].iter().map(|f| f.logins).sum::<usize>()
    );
    // Any block kept per login would show: 4 rounds are 400 logins, and
    // the smallest block malloc gives is 32 bytes.
    assert!(heap.abs() < 4096, "heap in use changed by {heap} B");
    assert!(rss < 1024, "RSS grew by {rss} kB");
    assert_eq!(report.fds_end, report.fds_start);
}

/// The postgresql store in the same process: 4 threads log in at once,
/// each login its own TLS connection with a client certificate (libpq,
/// loaded by the module at its first connection), HOTP tokens an admin put
/// in the database. Every right code accepted once, every wrong code and
/// replay refused; after the warm-up the process holds no more memory
/// (within 1 MiB) and the same descriptors: no connection, no TLS context
/// is left behind, and the module is unloaded when no handle is open
/// (libpq stays loaded: it is not the module's to unload).
#[test]
#[ignore = "needs root: make test"]
fn threads_on_the_postgresql_store_grow_nothing() {
    let _one = serial();
    let (mut rng, seed) = Rng::seeded();
    println!("seed {seed} (PAM_OTP_TEST_SEED repeats it)");
    let services = Services::with_postgres();
    let (threads, warmup, main) = (4, 40, 150);
    let mut members: Vec<Vec<Member>> = (0..threads)
        .map(|_| {
            (0..3)
                .map(|_| member(&services, &mut rng, true, Store::Postgres, 400))
                .collect()
        })
        .collect();
    let rounds = vec![vec![warmup; threads], vec![main; threads]];
    let planned = plan(&mut members, &rounds, &mut rng);
    let dir = RootDir::new("threads-pg", 0o755);
    let report = run(&services, &planned, false, &dir.path, &debug_wrapper());
    print_figures(&report);
    check_results(&planned, &report);
    check_warm_and_measured(&report, threads);
}

/// Whether a valgrind loss record's stack names the module or its core.
fn names_the_module(record: &str) -> bool {
    ["pam_otp", "libpam_otp", "otp_core"]
        .iter()
        .any(|m| record.contains(m))
}

/// The "definitely lost" and "indirectly lost" records of a valgrind log,
/// each with its stack, the `==pid==` prefixes removed.
fn loss_records(log: &str) -> Vec<String> {
    let mut records = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        let text = line.split_once("== ").map_or(line, |(_, t)| t);
        let text = if line.ends_with("==") && !line.contains("== ") {
            ""
        } else {
            text
        };
        if text.contains("are definitely lost in loss record")
            || text.contains("are indirectly lost in loss record")
        {
            if let Some(r) = current.take() {
                records.push(r);
            }
            current = Some(format!("{text}\n"));
        } else if let Some(r) = current.as_mut() {
            if text.trim().is_empty() {
                records.push(current.take().unwrap());
            } else {
                r.push_str(text);
                r.push('\n');
            }
        }
    }
    records.extend(current);
    records
}

/// The filter below has to see a leak to be worth anything: a valgrind log
/// as memcheck writes it, one lost block allocated under the module's
/// entry point and one under libpam's own, gives one record each, and only
/// the first counts as the module's.
#[test]
fn the_leak_filter_finds_a_record_of_the_module() {
    let log = "\
==4242== Memcheck, a memory error detector
==4242== 
==4242== 64 bytes in 1 blocks are definitely lost in loss record 3 of 9
==4242==    at 0x48407B4: malloc (vg_replace_malloc.c:381)
==4242==    by 0x6A1C2F1: alloc::alloc::alloc (alloc.rs:95)
==4242==    by 0x6A2D3E4: otp_core::auth::authenticate (auth.rs:210)
==4242==    by 0x6A0B5C6: pam_sm_authenticate (lib.rs:47)
==4242==    by 0x4871A2B: _pam_dispatch (pam_dispatch.c:110)
==4242== 
==4242== 16 bytes in 1 blocks are indirectly lost in loss record 1 of 9
==4242==    at 0x48407B4: malloc (vg_replace_malloc.c:381)
==4242==    by 0x4873C1D: _pam_add_handler (pam_handlers.c:790)
==4242==    by 0x4871A2B: pam_start_confdir (pam_start.c:130)
==4242== 
==4242== LEAK SUMMARY:
==4242==    definitely lost: 64 bytes in 1 blocks
";
    let records = loss_records(log);
    assert_eq!(records.len(), 2, "{records:#?}");
    let ours: Vec<&String> = records.iter().filter(|r| names_the_module(r)).collect();
    assert_eq!(ours.len(), 1, "{records:#?}");
    assert!(ours[0].starts_with("64 bytes in 1 blocks are definitely lost"));
    assert!(ours[0].contains("pam_sm_authenticate"), "{}", ours[0]);
    assert!(!records[1].contains("LEAK SUMMARY"), "{}", records[1]);
}

/// A short run (2 threads × 20 logins, and one thread alone, so that the
/// module is also loaded and unloaded per login) under valgrind's
/// memcheck: no memory error anywhere (valgrind's exit code), and no
/// definitely or indirectly lost block allocated by the module or its
/// core. Leaks of libpam's or glibc's own are not ours: they are printed,
/// not counted.
#[test]
#[ignore = "needs root: make test"]
fn valgrind_finds_no_leak_of_the_module() {
    let _one = serial();
    if Command::new("valgrind").arg("--version").output().is_err() {
        panic!("valgrind not installed (make test installs it: scripts/packages/test)");
    }
    let (mut rng, seed) = Rng::seeded();
    println!("seed {seed} (PAM_OTP_TEST_SEED repeats it)");
    let services = Services::new();
    let mut members = members(&services, 2, 2, 60, &mut rng);
    let rounds = vec![vec![20, 20], vec![10, 0]];
    let planned = plan(&mut members, &rounds, &mut rng);
    let dir = RootDir::new("threads-valgrind", 0o755);
    let log = dir.path.join("memcheck.log");
    let wrapper: Vec<String> = [
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect",
        // Leaks are judged below, by stack; memory errors fail the run.
        "--errors-for-leak-kinds=none",
        "--error-exitcode=97",
        // The module is unloaded at pam_end: keep its symbols for the
        // stacks printed at exit.
        "--keep-debuginfo=yes",
        "--num-callers=40",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--log-file={}", log.display())])
    .collect();
    let report = run(&services, &planned, false, &dir.path, &wrapper);
    let text = std::fs::read_to_string(&log).expect("valgrind log");
    check_results(&planned, &report);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("ERROR SUMMARY")
                || l.contains("definitely lost:")
                || l.contains("indirectly lost:")
                || l.contains("possibly lost:")
                || l.contains("still reachable:")
        })
        .collect();
    println!("valgrind: {}", summary.join("\n"));
    let (ours, theirs): (Vec<String>, Vec<String>) = loss_records(&text)
        .into_iter()
        .partition(|r| names_the_module(r));
    for r in &theirs {
        println!("not the module's (filtered out):\n{r}");
    }
    assert!(
        ours.is_empty(),
        "{} leak records name the module:\n{}",
        ours.len(),
        ours.join("\n")
    );
    assert!(
        text.contains("ERROR SUMMARY: 0 errors"),
        "memcheck found errors:\n{text}"
    );
}

/// A panic in the module on one thread of the pool (a debug build's
/// `test_panic`) is that login's PAM_SYSTEM_ERR and nothing else: the
/// other threads' logins at the same time and every later login are
/// right, the module is still unloaded once no handle is open (a panic
/// leaves nothing behind that pins it to the thread), and the threads
/// exit cleanly afterwards.
#[test]
#[ignore = "needs root: make test"]
fn a_panic_on_one_thread_is_that_login_only_and_pins_nothing() {
    let _one = serial();
    let (mut rng, seed) = Rng::seeded();
    println!("seed {seed} (PAM_OTP_TEST_SEED repeats it)");
    let services = Services::new();
    let threads = 4;
    let mut members = members(&services, threads, 2, 200, &mut rng);
    let rounds = vec![vec![20; threads], vec![20; threads], vec![20; threads]];
    let mut planned = Vec::new();
    for p in plan(&mut members, &rounds, &mut rng) {
        // Round 1: thread 0 panics after each of its logins.
        let panic_after = (p.round == 1 && p.thread == 0).then(|| Planned {
            store: Store::Panics,
            kind: Kind::Panic,
            code: "000000".into(),
            user: p.user.clone(),
            ..p
        });
        planned.push(p);
        planned.extend(panic_after);
    }
    let dir = RootDir::new("threads-panic", 0o755);
    let report = run(&services, &planned, false, &dir.path, &debug_wrapper());
    print_figures(&report);
    check_results(&planned, &report);
    let caught = report
        .logged
        .iter()
        .filter(|l| l.contains("internal error (panic at"))
        .count();
    println!("panics logged as caught: {caught}");
    assert!(caught > 0, "no caught panic was logged");
    for (r, f) in report.rounds.iter().enumerate() {
        assert!(
            !f.module_mapped,
            "round {r}: the module stays mapped with no handle open (pinned by the \
             thread that panicked?)"
        );
    }
    assert_eq!(report.fds_end, report.fds_start);
}
