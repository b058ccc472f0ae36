//! What a flood of wrong passwords costs everyone else on the VPN: the
//! admin guide's FreeRADIUS recipe (doc/recipes/freeradius/: four rlm_pam
//! instances, eight threads, pam_unix `nodelay`), run privately as the
//! radius tests run it (`testkit::radius`), while N Access-Requests with a
//! wrong password are kept in flight (N = 0, 4, 12, 32; one `radclient`,
//! `-p N`, each request sent again as soon as it is answered). Meanwhile
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
use std::process::{Child, Command, Stdio};
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

/// `n` wrong-password requests kept in flight against `radius` by one
/// radclient (`-p n`, each request sent again once answered); the moments
/// its answers (all Access-Reject) came, as radclient printed them.
struct Flood {
    child: Child,
    rejects: Arc<Mutex<Vec<Instant>>>,
    accepts: Arc<Mutex<u64>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(radius: &Radius, user: &str, n: usize) -> Flood {
        let file = radius.dir.join("flood-requests");
        let text: String = (0..n)
            .map(|i| {
                format!(
                    "User-Name = \"{user}\", User-Password = \"guess{i}pw123456\", \
                     Calling-Station-Id = \"f{i}\"\n\n"
                )
            })
            .collect();
        write_mode(&file, text, 0o600);
        // stdbuf: one line at a time through the pipe, so that each answer
        // is counted when it comes, and none is lost in a buffer at the kill.
        let mut child = Command::new("stdbuf")
            .args(["-oL", RADCLIENT, "-x", "-c", "1000000000", "-r", "1"])
            .args(["-t", "120", "-p", &n.to_string(), "-f"])
            .arg(&file)
            .arg("-S")
            .arg(radius.raddb.join("secret"))
            .arg(format!("127.0.0.1:{}", radius.port))
            .arg("auth")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("stdbuf (coreutils) and radclient");
        let out = child.stdout.take().unwrap();
        let rejects = Arc::new(Mutex::new(Vec::new()));
        let accepts = Arc::new(Mutex::new(0));
        let (r, a) = (Arc::clone(&rejects), Arc::clone(&accepts));
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("Received Access-Reject ") {
                    r.lock().unwrap().push(stopwatch());
                } else if line.starts_with("Received Access-Accept ") {
                    *a.lock().unwrap() += 1;
                }
            }
        });
        Flood {
            child,
            rejects,
            accepts,
            reader: Some(reader),
        }
    }

    /// Answers that came between `from` and `to`.
    fn answered(&self, from: Instant, to: Instant) -> usize {
        let r = self.rejects.lock().unwrap();
        r.iter().filter(|t| **t >= from && **t <= to).count()
    }

    fn stop(mut self) -> u64 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let accepted = *self.accepts.lock().unwrap();
        accepted
    }
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
        "| configuration | wrong passwords in flight | right logins | median (s) | max (s) | wrong answered per second |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
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
        if flood.is_some() {
            // Until the flood is in its stride: every request in flight
            // has been answered at least once, or 3 s.
            let t = stopwatch();
            while t.elapsed() < Duration::from_secs(3)
                && flood.as_ref().unwrap().rejects.lock().unwrap().len() < row.flood
            {
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
        let rate = match flood {
            Some(f) => {
                let n = f.answered(started, ended);
                let accepted = f.stop();
                assert_eq!(accepted, 0, "a wrong password was accepted");
                format!("{:.1}", n as f64 / (ended - started).as_secs_f64())
            }
            None => "".into(),
        };
        let mut sorted = took.clone();
        sorted.sort();
        println!(
            "| {} | {} | {} | {} | {} | {rate} |",
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
