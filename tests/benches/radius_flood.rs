//! What a flood of wrong passwords costs everyone else on the VPN: the
//! admin guide's FreeRADIUS recipe (doc/recipes/freeradius/: four rlm_pam
//! instances, eight threads, pam_unix `nodelay`), run privately as the
//! radius tests run it (`testkit::radius`), while N Access-Requests with a
//! wrong password are kept in flight (N = 0, 4, 12, 32; N streams of
//! `radclient`s, each sending the next request as soon as its last is
//! answered: [`Flood`]). Meanwhile
//! one user logs in with the right password and code, one login after the
//! other, each with a `radclient` of its own: the wall time of each (from
//! starting radclient to its answer), median and max, and how many wrong
//! ones the server answered per second. Then the same for the old
//! configuration (one instance, no `nodelay`, four threads: the radius
//! tests' server before the recipe changed), and, at N = 12, each of the
//! two changes alone. Every right login must be accepted and every wrong
//! one refused; nothing else is asserted: a measurement, not a test.
//!
//! The server is started afresh for each row, so that requests still
//! queued from the row before (under the old configuration, two seconds
//! each) do not wait in front of the next. The wrong passwords are a
//! user's of their own (an account with a password, so that pam_unix
//! hashes each guess as it would for a real name); the right logins are
//! another's, with an HOTP token (a fresh code for every login).
//!
//! `cargo build --release --workspace && cargo bench -p testkit --bench radius_flood [-- --logins N --old-logins M --recipe-only]`
//! (needs root; `bench/radius-flood` does both). `make bench` runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::harness::{hotp_codes, stopwatch};
use testkit::radius::{recipe_pam_stack, Radius, RadiusSetup, Reply, Request, RADCLIENT};
use testkit::{hotp_secret, write_mode, TestUser, KEY_HEX};

const PASSWORD: &str = "hunter2pw";
const FLOOD_PASSWORD: &str = "Fl00d-right-pw";

/// One server configuration.
struct Config {
    name: &'static str,
    /// Some(1): one `pam` instance; None: the recipe's four.
    instances: Option<usize>,
    /// Some(n): a fixed pool of n threads; None: the recipe's eight.
    threads: Option<usize>,
    nodelay: bool,
}

/// One row: a configuration, N wrong in flight, how many right logins.
struct Row {
    config: &'static Config,
    flood: usize,
    logins: usize,
}

const RECIPE: Config = Config {
    name: "the recipe: 4 instances, 8 threads, `nodelay`",
    instances: None,
    threads: None,
    nodelay: true,
};
const OLD: Config = Config {
    name: "before: 1 instance, 4 threads, no `nodelay`",
    instances: Some(1),
    threads: Some(4),
    nodelay: false,
};
const FOUR_NO_NODELAY: Config = Config {
    name: "4 instances, 8 threads, no `nodelay`",
    instances: None,
    threads: None,
    nodelay: false,
};
const ONE_NODELAY: Config = Config {
    name: "1 instance, 4 threads, `nodelay`",
    instances: Some(1),
    threads: Some(4),
    nodelay: true,
};

/// `--NAME N` from the command line, or `default`.
fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` wrong-password requests kept in flight against `radius`: `n`
/// streams, each a radclient sending [`STREAM_REQUESTS`] requests one after
/// the other (`-p 1`: the next once the last is answered), then the next
/// radclient. Not one radclient with `-p n`: radclient looks at every
/// request left in its file, with a system call each, at every answer, and
/// with `-c` (send again) it busy-waits; either way it would take much of
/// a core from the server it measures. The moments the answers (all
/// Access-Reject) came, as the radclients printed them.
struct Flood {
    stop: Arc<Mutex<(bool, Vec<u32>)>>,
    rejects: Arc<Mutex<Vec<Instant>>>,
    accepts: Arc<Mutex<u64>>,
    /// CPU time (clock ticks) of the radclients that ended.
    cpu_ticks: Arc<Mutex<u64>>,
    streams: Vec<std::thread::JoinHandle<()>>,
    started: Instant,
}

/// Requests per radclient of a flood's stream: few, so that its walk of
/// its requests is short, and enough that its start (the dictionaries)
/// is paid rarely.
const STREAM_REQUESTS: usize = 50;

/// utime + stime of /proc/PID/stat, in clock ticks (a process that has
/// exited and was not waited for yet still has them).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map_or("", |at| &stat[at + 1..]);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the line: 12 and 13 after "pid (comm)".
    [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum()
}

impl Flood {
    fn start(radius: &Radius, user: &str, n: usize) -> Flood {
        let file = radius.dir.join("flood-requests");
        let text: String = (0..STREAM_REQUESTS)
            .map(|i| {
                format!(
                    "User-Name = \"{user}\", User-Password = \"guess{i}pw123456\", \
                     Calling-Station-Id = \"f{i}\"\n\n"
                )
            })
            .collect();
        write_mode(&file, text, 0o600);
        let mut command = Command::new("stdbuf");
        // stdbuf: one line at a time through the pipe, so that each answer
        // is counted when it comes, and none is lost in a buffer at the kill.
        command
            .args([
                "-oL", RADCLIENT, "-x", "-r", "1", "-t", "300", "-p", "1", "-f",
            ])
            .arg(&file)
            .arg("-S")
            .arg(radius.raddb.join("secret"))
            .arg(format!("127.0.0.1:{}", radius.port))
            .arg("auth")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let flood = Flood {
            stop: Arc::new(Mutex::new((false, Vec::new()))),
            rejects: Arc::new(Mutex::new(Vec::new())),
            accepts: Arc::new(Mutex::new(0)),
            cpu_ticks: Arc::new(Mutex::new(0)),
            streams: Vec::new(),
            started: stopwatch(),
        };
        let streams = (0..n)
            .map(|_| {
                let (stop, rejects) = (Arc::clone(&flood.stop), Arc::clone(&flood.rejects));
                let (accepts, cpu) = (Arc::clone(&flood.accepts), Arc::clone(&flood.cpu_ticks));
                let mut command = clone_command(&command);
                std::thread::spawn(move || loop {
                    let mut child = {
                        let mut stop = stop.lock().unwrap();
                        if stop.0 {
                            return;
                        }
                        let child = command.spawn().expect("stdbuf (coreutils) and radclient");
                        stop.1.push(child.id());
                        child
                    };
                    let out = child.stdout.take().unwrap();
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { break };
                        if line.starts_with("Received Access-Reject ") {
                            rejects.lock().unwrap().push(stopwatch());
                        } else if line.starts_with("Received Access-Accept ") {
                            *accepts.lock().unwrap() += 1;
                        }
                    }
                    // Its output is closed: it has ended (or is ending);
                    // not waited for yet, its CPU time is still there.
                    std::thread::sleep(Duration::from_millis(5));
                    *cpu.lock().unwrap() += cpu_ticks(child.id());
                    stop.lock().unwrap().1.retain(|p| *p != child.id());
                    let _ = child.wait();
                })
            })
            .collect();
        Flood { streams, ..flood }
    }

    /// Answers that came between `from` and `to`.
    fn answered(&self, from: Instant, to: Instant) -> usize {
        let r = self.rejects.lock().unwrap();
        r.iter().filter(|t| **t >= from && **t <= to).count()
    }

    /// Stops the streams (SIGKILL to the radclients they run, which the
    /// fixture's server then answers no more); what it gave: the wrong
    /// passwords accepted (none, or the stack is broken), and the share of
    /// a core the radclients used over the flood's life.
    fn stop(self) -> (u64, f64) {
        {
            let mut stop = self.stop.lock().unwrap();
            stop.0 = true;
            for pid in &stop.1 {
                // Our own children, not yet waited for: the pid is theirs.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
        let life = self.started.elapsed().as_secs_f64();
        for s in self.streams {
            let _ = s.join();
        }
        let accepted = *self.accepts.lock().unwrap();
        // Clock ticks are 1/100 s on Linux (USER_HZ).
        let cpu = *self.cpu_ticks.lock().unwrap() as f64 / 100.0;
        (accepted, cpu / life)
    }
}

/// A copy of `c` (program, arguments, stdio as set above).
fn clone_command(c: &Command) -> Command {
    let mut copy = Command::new(c.get_program());
    copy.args(c.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    copy
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn main() {
    let logins = arg("--logins", 10);
    let old_logins = arg("--old-logins", 3);
    println!(
        "radius-flood: load average at start {} ({} CPUs)",
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let victim = TestUser::new();
    victim.set_password(PASSWORD);
    victim.write_secret(&hotp_secret(0));
    let guessed = TestUser::new();
    guessed.set_password(FLOOD_PASSWORD);

    let mut rows: Vec<Row> = [0, 4, 12, 32]
        .iter()
        .map(|&flood| Row {
            config: &RECIPE,
            flood,
            logins,
        })
        .collect();
    if !std::env::args().any(|a| a == "--recipe-only") {
        for flood in [0, 4, 12] {
            rows.push(Row {
                config: &OLD,
                flood,
                logins: old_logins,
            });
        }
        for config in [&FOUR_NO_NODELAY, &ONE_NODELAY] {
            rows.push(Row {
                config,
                flood: 12,
                logins: old_logins,
            });
        }
    }
    let total: usize = rows.iter().map(|r| r.logins).sum();
    let codes = hotp_codes(KEY_HEX, 0, total as u64);
    let mut next_code = 0;

    let recipe_stack = recipe_pam_stack();
    let old_stack = recipe_stack.replace(" nodelay", "");
    assert_ne!(old_stack, recipe_stack, "the recipe has no nodelay");

    println!();
    println!(
        "| configuration | wrong passwords in flight | right logins | median (s) | max (s) | wrong answered per second | flood client's CPU |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let c = row.config;
        let stack = if c.nodelay { &recipe_stack } else { &old_stack };
        let mut radius = Radius::start(&RadiusSetup {
            pam_stack: Some(stack),
            pam_instances: c.instances,
            threads: c.threads,
            ..RadiusSetup::default()
        });
        let flood = (row.flood > 0).then(|| Flood::start(&radius, &guessed.name, row.flood));
        // Until the flood is in its stride: the server answered a first
        // request, or 3 s.
        if let Some(f) = &flood {
            let t = stopwatch();
            while t.elapsed() < Duration::from_secs(3) && f.rejects.lock().unwrap().is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut took = Vec::new();
        let started = stopwatch();
        for i in 0..row.logins {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            let request = Request {
                user: victim.name.clone(),
                password: format!("{PASSWORD}{}", codes[next_code]),
            };
            next_code += 1;
            let t = stopwatch();
            let got = radius.send_within(&[request], 1, None, Duration::from_secs(300), 1);
            took.push(t.elapsed());
            assert_eq!(
                got[0],
                Reply::Accept,
                "{}, {} in flight: right login {i}",
                c.name,
                row.flood
            );
        }
        let ended = stopwatch();
        let window = (ended - started).as_secs_f64();
        let (rate, client_cpu) = match flood {
            Some(f) => {
                let n = f.answered(started, ended);
                let (accepted, cpu) = f.stop();
                assert_eq!(accepted, 0, "a wrong password was accepted");
                (
                    format!("{:.1}", n as f64 / window),
                    format!("{:.0} %", 100.0 * cpu),
                )
            }
            None => (String::new(), String::new()),
        };
        let mut sorted = took.clone();
        sorted.sort();
        println!(
            "| {} | {} | {} | {} | {} | {rate} | {client_cpu} |",
            c.name,
            row.flood,
            row.logins,
            secs(sorted[sorted.len() / 2]),
            secs(*sorted.last().unwrap()),
        );
        drop(radius);
    }
    println!();
    println!("radius-flood: load average at the end {}", loadavg());
}
