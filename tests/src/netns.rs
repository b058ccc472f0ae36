//! A private network made by the test: network namespaces joined by a
//! bridge, for the fleet tests (several hosts, each with its own sshd,
//! against one database).
//!
//! [`Segment::new`] makes, all with names starting `potp-<pid>-`:
//! - a "db" namespace holding the bridge `br0` with the database side's
//!   addresses ([`Segment::db_addr`]: `.1`, and `.2` for a standby);
//! - `n` host namespaces `potp-<pid>-h<i>` ([`Segment::host`]), each with
//!   `eth0` (a veth whose peer is a port of the bridge) at `.<10+i>`;
//! - a "client" namespace at `.9`, where the users' `ssh` runs: a login
//!   crosses the bridge like one from a user's machine, so each host's
//!   sshd sees a remote address (not its own, not loopback) as PAM_RHOST,
//!   and the hosts and the database share one segment as in a fleet.
//!
//! Every link is created inside a namespace (`ip -n`): the root namespace,
//! where the machine's own interfaces and services live, gains nothing.
//! The subnet is `10.231.<x>.0/24`; since it exists only inside these
//! namespaces, it cannot clash with the machine's networks, and `<x>`
//! (from the pid) only makes two test processes' addresses easy to tell
//! apart in a log. Loopback is up everywhere.
//!
//! A program runs in a namespace through `ip netns exec` ([`Segment::exec`],
//! [`netns_command`]), or, for something a library starts itself (the
//! PostgreSQL server of `testkit::pg`), on a thread that entered the
//! namespace ([`in_netns`]): children inherit their parent thread's network
//! namespace.
//!
//! Drop deletes every namespace it made (the veths and the bridge go with
//! them), also after a panic; namespaces of a test process that was killed
//! are swept by the next [`Segment::new`].

use std::fs;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};

use crate::{alive, require_root};

/// Prefix of every namespace made here.
pub const NETNS_PREFIX: &str = "potp-";

/// The private segment; everything removed on drop.
pub struct Segment {
    /// `potp-<pid>-<seq>`: the namespaces are `<tag>-db`, `<tag>-c`, `<tag>-h<i>`.
    tag: String,
    /// The third octet of the subnet.
    net: u8,
    hosts: usize,
    /// Namespaces created so far (deleted on drop, in reverse).
    made: Vec<String>,
}

/// One host of the segment: its namespace and address.
#[derive(Clone, Debug)]
pub struct Host {
    pub index: usize,
    pub netns: String,
    pub addr: String,
}

/// Runs `ip` with `args`; panics with what it printed unless it succeeded.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("ip (iproute2, scripts/packages/test): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The names of the namespaces `ip netns` knows.
fn netns_names() -> Vec<String> {
    // /run/netns holds one bind mount per named namespace.
    fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes the namespaces of test processes that are gone.
fn sweep_stale() {
    for name in netns_names() {
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !alive(pid) {
            let _ = Command::new("ip")
                .args(["netns", "del", &name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Segment {
    /// A bridge in a db namespace, a client namespace and `hosts` host
    /// namespaces, all up and addressed.
    pub fn new(hosts: usize) -> Segment {
        require_root();
        assert!(hosts <= 200, "at most 200 hosts on a /24");
        sweep_stale();
        let id = crate::unique_id();
        let pid = std::process::id();
        let seq = id.rsplit('x').next().unwrap_or("0").to_string();
        let mut seg = Segment {
            tag: format!("{NETNS_PREFIX}{pid}-{seq}"),
            net: (pid % 250) as u8 + 1,
            hosts,
            made: Vec::new(),
        };
        let db = seg.db_netns();
        seg.add_netns(&db);
        ip(&["-n", &db, "link", "add", "br0", "type", "bridge"]);
        for addr in [seg.db_addr(0), seg.db_addr(1)] {
            ip(&[
                "-n",
                &db,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "br0",
            ]);
        }
        ip(&["-n", &db, "link", "set", "br0", "up"]);
        let client = seg.client_netns();
        let client_addr = seg.client_addr();
        seg.attach(&client, "vc", &client_addr);
        for i in 1..=hosts {
            let h = seg.host(i);
            seg.attach(&h.netns, &format!("vh{i}"), &h.addr);
        }
        seg
    }

    fn add_netns(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.made.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }

    /// A new namespace `name` whose `eth0` at `addr` is a port (`port`, in
    /// the db namespace) of the bridge.
    fn attach(&mut self, name: &str, port: &str, addr: &str) {
        self.add_netns(name);
        let db = self.db_netns();
        ip(&[
            "-n", &db, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name,
        ]);
        ip(&["-n", &db, "link", "set", port, "master", "br0", "up"]);
        ip(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", name, "link", "set", "eth0", "up"]);
    }

    /// The namespace holding the bridge and the database's addresses.
    pub fn db_netns(&self) -> String {
        format!("{}-db", self.tag)
    }

    /// The database side's `k`-th address (0: the primary, 1: a standby).
    pub fn db_addr(&self, k: usize) -> String {
        assert!(k < 2);
        format!("10.231.{}.{}", self.net, k + 1)
    }

    /// The namespace the users' ssh runs in.
    pub fn client_netns(&self) -> String {
        format!("{}-c", self.tag)
    }

    pub fn client_addr(&self) -> String {
        format!("10.231.{}.9", self.net)
    }

    /// Host `i` (1-based).
    pub fn host(&self, i: usize) -> Host {
        assert!((1..=self.hosts).contains(&i), "no host {i}");
        Host {
            index: i,
            netns: format!("{}-h{i}", self.tag),
            addr: format!("10.231.{}.{}", self.net, 10 + i),
        }
    }

    pub fn hosts(&self) -> Vec<Host> {
        (1..=self.hosts).map(|i| self.host(i)).collect()
    }

    /// Runs `program args` in `netns` to its end.
    pub fn exec(&self, netns: &str, program: &str, args: &[&str]) -> Output {
        netns_command(netns, program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {netns} {program}: {e}"))
    }

    /// The segment's namespaces, for a test that checks the cleanup.
    pub fn namespaces(&self) -> Vec<String> {
        self.made.clone()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            let ok = Command::new("ip")
                .args(["netns", "del", name])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("netns: could not delete {name}");
            }
        }
    }
}

/// `ip netns exec <netns> <program>`: add the arguments and run it. ip
/// execs the program (no fork), so the child's pid is the program's.
pub fn netns_command(netns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, program]);
    cmd
}

/// Whether a namespace of this name exists.
pub fn netns_exists(name: &str) -> bool {
    netns_names().iter().any(|n| n == name)
}

/// Runs `f` on a thread that entered the network namespace `netns`
/// (setns(2) on the thread only): what `f` spawns, and their children,
/// live in that namespace. For a library that starts its own processes
/// (`testkit::pg::Postgres::start_on`, `restart`, `start_standby`).
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{netns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns(2) on an fd this thread owns (kept open across
            // the call); it only changes this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
