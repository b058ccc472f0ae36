//! A private FreeRADIUS 3 ([`Radius`]) authenticating through `rlm_pam`,
//! and `radclient` to drive it ([`Radius::send`]), for the VPN recipe
//! (doc/admin-guide.md, "A VPN through FreeRADIUS") and the long-running-process checks of
//! `tests/radius.rs`.
//!
//! The server runs the recipe as shipped, from the files the guide shows
//! (`doc/recipes/freeradius/`, checked against the guide by
//! tests/recipes.rs): the PAM service `pam-otp-vpn`, the four `rlm_pam`
//! instances of `mods-available/pam`, the `authorize` and `authenticate`
//! parts of the virtual server, the NAS's `clients.conf` entry and the
//! `thread pool` values (eight threads). [`RadiusSetup`]'s defaults are
//! the recipe; a test that needs otherwise says so in its setup.
//!
//! What the fixture changes in the recipe, and why: the PAM service is
//! `/etc/pam.d/radiusd-pot-<id>` instead of `pam-otp-vpn` (in its file
//! name and in each instance's `pam_auth`), so that tests at once and the
//! machine's own service never meet; in the service, `pam_otp.so` becomes
//! the built module with `config=` a private config
//! ([`crate::recipe_stack`]) whose `state_dir` is private too; the NAS is
//! every address of 127/8 with a secret of the test's own (radclient
//! sends from 127.0.0.1, or 127.0.0.2 for a second NAS); the virtual
//! server, which the recipe edits into Debian's `default`, is one of the
//! test's own holding the recipe's `authorize` and `authenticate` parts,
//! a `listen` on a free loopback port, and a `post-auth` that echoes each
//! request's tag in `Reply-Message`, so that [`Radius::send`] matches
//! replies to requests. Its `radiusd.conf` is a minimal one laid out as
//! Debian's `/etc/freeradius/3.0` (config, log and run directories of its
//! own under `/tmp/pam-otp-tests/radiusd-pot-<id>/raddb/`), with no
//! `user`/`group` (root: step 5 of the recipe), `reject_delay = 0` (the
//! PAM stack decides how long a refusal takes) and `cleanup_delay = 0`
//! (see [`radiusd_conf`]). It is run in the foreground
//! (`freeradius -f -d DIR`), so its pid is the child's. The machine's
//! `/etc/freeradius`, its `freeradius` service and port 1812 are never
//! used or touched. libpam reads `/etc/pam.d` itself: pam_wrapper is not
//! preloaded, so the process measured is the plain server.
//!
//! FreeRADIUS runs as root here (no `user`/`group` in `radiusd.conf`):
//! pam_otp switches its file-system identity to the user to read a
//! `home`-store secret file and reads `system`-store files as root, which
//! Debian's default `user = freerad` cannot do. The recipe says so.
//!
//! Leftovers of a test process that was killed (no drop) are swept by the
//! next fixture that starts.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{module_path, pam_stack, private_state_dir, require_root, run_ok, set_mode};
use crate::{recipe, recipe_stack, replaced};
use crate::{test_root, ticks, try_signal, unique_id, wait_or_kill, write_mode, TICK};

/// The recipe's PAM service's name, which the fixture replaces by its own.
pub const RECIPE_SERVICE: &str = "pam-otp-vpn";

/// The recipe's PAM service (`pam-otp-vpn`) as a test's stack
/// ([`crate::recipe_stack`]: the built module, a private config).
pub fn recipe_pam_stack() -> String {
    recipe_stack(&recipe("freeradius/pam-otp-vpn"))
}

/// Prefix of the private PAM services and of the fixtures' directories.
pub const SERVICE_PREFIX: &str = "radiusd-pot-";
pub const FREERADIUS: &str = "/usr/sbin/freeradius";
pub const RADCLIENT: &str = "/usr/bin/radclient";
pub const OPENVPN: &str = "/usr/sbin/openvpn";
/// Debian 12's OpenVPN PAM plugin, as the recipe names it.
pub const OPENVPN_AUTH_PAM: &str =
    "/usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-auth-pam.so";

/// What the server and its PAM service should look like: by default, the
/// recipe as shipped.
#[derive(Default)]
pub struct RadiusSetup<'a> {
    /// The PAM service file `rlm_pam` uses, in place of the recipe's
    /// (`auth` and `account` lines: rlm_pam calls `pam_acct_mgmt` after
    /// `pam_authenticate`). `{module}` stands for the built module,
    /// `{config}` for the private pam_otp config. None: the recipe's
    /// `pam-otp-vpn` ([`recipe_pam_stack`]).
    pub pam_stack: Option<&'a str>,
    /// Text of the private pam_otp config (root-owned 0644); `{service}`
    /// stands for the PAM service's name.
    pub otp_config: &'a str,
    /// More PAM services beside the main one: `(suffix, stack)` makes
    /// `<service>-<suffix>`, with the same config.
    pub more_services: &'a [(&'a str, &'a str)],
    /// unlang run first in `authorize`, before the recipe's `authorize`
    /// part (`{service}` stands for the main PAM service's name): e.g.
    /// `update control { &Pam-Auth := ... }` for another service.
    pub authorize: &'a str,
    /// None: the recipe's four `rlm_pam` instances (`mods-available/pam`)
    /// and its `load-balance` over them (`authenticate`). Some(1): one
    /// instance, `pam`, as the recipe had it before (Debian's own).
    /// FreeRADIUS 3 serialises the calls into one instance (rlm_pam is
    /// `RLM_TYPE_THREAD_UNSAFE`: a mutex per instance), so one instance
    /// means one PAM login at a time.
    pub pam_instances: Option<usize>,
    /// None: the recipe's `thread pool` (a fixed eight). Some(n): a fixed
    /// pool of n worker threads.
    pub threads: Option<usize>,
    /// `user`/`group` the server switches to after reading its config
    /// (Debian's default is `freerad`); None: it stays root, as step 5 of
    /// the recipe says.
    pub run_as: Option<&'a str>,
    /// A [`crate::syslog::LogSink`]'s socket: the server then runs in a
    /// private mount namespace whose `/dev/log` is that socket, so what
    /// the module logs can be read. Only for a few requests at a time:
    /// the sink holds few lines, and the module drops a line when it is full.
    pub log_sink: Option<&'a Path>,
}

/// One Access-Request: `User-Name`, `User-Password`.
#[derive(Clone, Debug)]
pub struct Request {
    pub user: String,
    pub password: String,
}

/// What the server answered to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Accept,
    Reject,
    /// No answer (radclient gave up), or one that did not parse.
    Lost,
}

/// A private FreeRADIUS on 127.0.0.1; stopped and cleaned up on drop.
pub struct Radius {
    pub dir: PathBuf,
    /// The config directory (`-d`).
    pub raddb: PathBuf,
    /// The PAM service `rlm_pam` uses (its `pam_auth`).
    pub service: String,
    pub config_file: PathBuf,
    pub port: u16,
    pub secret: String,
    pam_files: Vec<PathBuf>,
    child: Option<Child>,
    sends: u32,
}

/// A UDP port on loopback that was free a moment ago.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free loopback UDP port")
}

impl Radius {
    pub fn start(setup: &RadiusSetup<'_>) -> Radius {
        require_root();
        let module = module_path();
        for program in [FREERADIUS, RADCLIENT] {
            assert!(
                Path::new(program).exists(),
                "{program} missing: make test installs freeradius and freeradius-utils \
                 (scripts/packages/test)"
            );
        }
        assert!(setup.pam_instances != Some(0) && setup.threads != Some(0));
        crate::e2e::sweep_stale(SERVICE_PREFIX, "radiusd.pid");
        let id = unique_id();
        let service = format!("{SERVICE_PREFIX}{id}");
        let dir = test_root().join(&service);
        fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        let raddb = dir.join("raddb");
        // From here on, drop cleans up even if the start fails.
        let mut radius = Radius {
            raddb: raddb.clone(),
            config_file: dir.join("pam_otp.toml"),
            dir: dir.clone(),
            service: service.clone(),
            port: 0,
            secret: format!("pot-{id}-secret"),
            pam_files: Vec::new(),
            child: None,
            sends: 0,
        };
        for sub in ["", "mods-enabled", "sites-enabled", "log", "run"] {
            fs::create_dir_all(raddb.join(sub)).unwrap();
            set_mode(&raddb.join(sub), 0o750);
        }
        if let Some(user) = setup.run_as {
            // The server writes its log and run files after switching.
            for sub in ["log", "run"] {
                run_ok(
                    Command::new("chown")
                        .arg(format!("{user}:{user}"))
                        .arg(raddb.join(sub)),
                );
            }
        }

        write_mode(
            &radius.config_file,
            private_state_dir(&dir, &setup.otp_config.replace("{service}", &service)),
            0o644,
        );
        let main_stack = setup
            .pam_stack
            .map_or_else(recipe_pam_stack, str::to_string);
        let mut services = vec![(service.clone(), main_stack.as_str())];
        for (suffix, stack) in setup.more_services {
            services.push((format!("{service}-{suffix}"), stack));
        }
        for (name, stack) in services {
            let pam_file = Path::new("/etc/pam.d").join(&name);
            radius.pam_files.push(pam_file.clone());
            write_mode(
                &pam_file,
                format!(
                    "# pam_otp RADIUS test fixture ({}); removed when the test ends\n{}\n",
                    dir.display(),
                    pam_stack(stack, &module, &radius.config_file)
                ),
                0o644,
            );
        }

        let clients = replaced(
            &recipe("freeradius/clients.conf"),
            "ipaddr = 192.0.2.10",
            "ipaddr = 127.0.0.0/8",
        );
        let clients = replaced(
            &clients,
            "secret = a-long-random-secret",
            &format!("secret = {}", radius.secret),
        );
        write_mode(&raddb.join("clients.conf"), clients, 0o640);
        write_mode(&raddb.join("secret"), format!("{}\n", radius.secret), 0o600);
        write_mode(
            &raddb.join("mods-enabled/pam"),
            pam_modules(&service, setup.pam_instances),
            0o640,
        );

        for _attempt in 0..5 {
            let port = free_udp_port();
            write_mode(
                &raddb.join("radiusd.conf"),
                radiusd_conf(&raddb, &thread_pool(setup.threads), setup.run_as),
                0o640,
            );
            write_mode(
                &raddb.join("sites-enabled/vpn"),
                site(
                    port,
                    setup.authorize.replace("{service}", &service).as_str(),
                    setup.pam_instances,
                ),
                0o640,
            );
            let log = raddb.join("log/radius.log");
            let _ = fs::remove_file(&log);
            let out = File::create(dir.join("freeradius.out")).unwrap();
            // Under unshare (which execs sh, which execs the server): one
            // pid, so the server's /proc figures are still its own.
            let mut cmd = match setup.log_sink {
                Some(sink) => {
                    let mut cmd = Command::new("unshare");
                    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                        .arg(crate::syslog::NAMESPACE_SCRIPT)
                        .arg(sink)
                        .arg(FREERADIUS);
                    cmd
                }
                None => Command::new(FREERADIUS),
            };
            let child = cmd
                .arg("-f")
                .arg("-d")
                .arg(&raddb)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("start {FREERADIUS}: {e}"));
            write_mode(&dir.join("radiusd.pid"), child.id().to_string(), 0o644);
            radius.child = Some(child);
            radius.port = port;
            let mut exited = None;
            for _ in 0..ticks(Duration::from_secs(20)) {
                if let Some(st) = radius.child.as_mut().unwrap().try_wait().unwrap() {
                    exited = Some(st);
                    break;
                }
                if radius.log().contains("Ready to process requests") {
                    break;
                }
                std::thread::sleep(TICK);
            }
            match exited {
                None if radius.log().contains("Ready to process requests") => return radius,
                None => panic!("freeradius did not start within 20 s:\n{}", radius.log()),
                Some(_) if radius.log().contains("Address already in use") => {
                    radius.child = None;
                    continue;
                }
                Some(st) => panic!("freeradius exited at start ({st}):\n{}", radius.log()),
            }
        }
        panic!("freeradius: no free port after 5 tries:\n{}", radius.log());
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the server logged so far (its log file, and what it printed).
    pub fn log(&self) -> String {
        let file = fs::read_to_string(self.raddb.join("log/radius.log")).unwrap_or_default();
        let out = fs::read_to_string(self.dir.join("freeradius.out")).unwrap_or_default();
        format!("{file}{out}")
    }

    /// The server's resident set (`VmRSS` of /proc/PID/status), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// A `kB` line of /proc/PID/status (`VmRSS`, `RssAnon`, `RssFile`).
    pub fn status_kib(&self, key: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{status}"))
    }

    /// The server's open file descriptors (/proc/PID/fd), by target.
    pub fn fds(&self) -> Vec<String> {
        let mut fds: Vec<String> = fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .flatten()
            .map(|e| {
                let target = fs::read_link(e.path())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "?".into());
                format!("{} -> {target}", e.file_name().to_string_lossy())
            })
            .collect();
        fds.sort();
        fds
    }

    /// The server's threads (/proc/PID/task).
    pub fn threads(&self) -> usize {
        fs::read_dir(format!("/proc/{}/task", self.pid()))
            .unwrap()
            .count()
    }

    /// Sends `requests` with one radclient, `parallel` of them in flight
    /// at once, from `from` (an address of 127/8; None: 127.0.0.1), and
    /// gives each one's reply, in order. Each request carries its index as
    /// `Calling-Station-Id`, which the server echoes as `Reply-Message`
    /// in Access-Accept and Access-Reject alike, so every reply is matched
    /// to its request.
    pub fn send(
        &mut self,
        requests: &[Request],
        parallel: usize,
        from: Option<&str>,
    ) -> Vec<Reply> {
        self.send_within(requests, parallel, from, Duration::from_secs(20), 3)
    }

    /// [`Radius::send`] with radclient waiting `timeout` for each reply
    /// and sending each request at most `tries` times.
    pub fn send_within(
        &mut self,
        requests: &[Request],
        parallel: usize,
        from: Option<&str>,
        timeout: Duration,
        tries: u32,
    ) -> Vec<Reply> {
        let n = self.sends;
        self.sends += 1;
        let file = self.dir.join(format!("requests{n}"));
        let mut text = String::new();
        for (i, r) in requests.iter().enumerate() {
            for value in [&r.user, &r.password] {
                assert!(
                    !value.contains(['"', '\\', '\n']) && value.len() <= 128,
                    "{value:?} cannot go into a radclient file as it is"
                );
            }
            let _ = write!(
                text,
                "User-Name = \"{}\", User-Password = \"{}\", Calling-Station-Id = \"r{i}\"",
                r.user, r.password
            );
            if let Some(addr) = from {
                let _ = write!(text, ", Packet-Src-IP-Address = {addr}");
            }
            text.push_str("\n\n");
        }
        write_mode(&file, text, 0o600);
        let out = Command::new(RADCLIENT)
            .args([
                "-x",
                "-r",
                &tries.to_string(),
                "-t",
                &format!("{:.3}", timeout.as_secs_f64()),
                "-p",
                &parallel.to_string(),
                "-f",
            ])
            .arg(&file)
            .arg("-S")
            .arg(self.raddb.join("secret"))
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("auth")
            .stdin(Stdio::null())
            .output()
            .expect("run radclient");
        let _ = fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut replies = vec![Reply::Lost; requests.len()];
        let mut seen = vec![0u32; requests.len()];
        let mut pending = None;
        for line in stdout.lines() {
            if line.starts_with("Received Access-Accept ") {
                pending = Some(Reply::Accept);
            } else if line.starts_with("Received Access-Reject ") {
                pending = Some(Reply::Reject);
            } else if line.starts_with("Received ") || line.starts_with("Sent ") {
                pending = None;
            } else if let Some(tag) = line.trim().strip_prefix("Reply-Message = \"r") {
                let i: usize = tag.trim_end_matches('"').parse().expect("a request index");
                if let Some(reply) = pending.take() {
                    replies[i] = reply;
                    seen[i] += 1;
                }
            }
        }
        let twice: Vec<usize> = (0..requests.len()).filter(|&i| seen[i] > 1).collect();
        assert!(
            twice.is_empty(),
            "requests {twice:?} answered more than once:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        replies
    }

    /// [`Radius::send`] of one request.
    pub fn auth(&mut self, user: &str, password: &str, from: Option<&str>) -> Reply {
        let request = Request {
            user: user.into(),
            password: password.into(),
        };
        self.send(&[request], 1, from)[0]
    }

    /// One login through OpenVPN's PAM plugin, with this fixture's PAM
    /// service: the recipe's line (`doc/recipes/openvpn/auth-pam.conf`,
    /// `plugin .../openvpn-plugin-auth-pam.so pam-otp-vpn`, with this
    /// fixture's service name for `pam-otp-vpn`) in a config file the
    /// server reads (`--config`): a private OpenVPN server on 127.0.0.1 and the real
    /// client sending `user`/`password` (`--auth-user-pass`). Both run in
    /// point-to-point TLS mode with `--dev null` (no tun device, no
    /// address on the machine); such a server exits after one refused
    /// login, so each login gets a server of its own. The verdict is the
    /// server's log line; what the plugin logged (the `REMOTE:` it gave
    /// as `PAM_RHOST`) comes with it.
    pub fn openvpn_login(&self, user: &str, password: &str) -> (Reply, String) {
        for program in [OPENVPN, OPENVPN_AUTH_PAM] {
            assert!(
                Path::new(program).exists(),
                "{program} missing: make test installs openvpn (scripts/packages/test)"
            );
        }
        let dir = self.dir.join("openvpn");
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        if !cert.exists() {
            fs::create_dir_all(&dir).unwrap();
            set_mode(&dir, 0o700);
            // One self-signed certificate serves as CA and as both ends'
            // certificate: what is tested is the password step.
            run_ok(
                Command::new("openssl")
                    .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                    .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
                    .args(["-subj", "/CN=pam-otp-test-openvpn", "-keyout"])
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert),
            );
        }
        let creds = dir.join("auth-user-pass");
        write_mode(&creds, format!("{user}\n{password}\n"), 0o600);
        let tls = |c: &mut Command| {
            c.args(["--proto", "udp4", "--dev", "null", "--verb", "4", "--ca"])
                .arg(&cert)
                .arg("--cert")
                .arg(&cert)
                .arg("--key")
                .arg(&key);
        };
        let plugin = dir.join("auth-pam.conf");
        let line = replaced(
            &recipe("openvpn/auth-pam.conf"),
            &format!("{OPENVPN_AUTH_PAM} {RECIPE_SERVICE}\n"),
            &format!("{OPENVPN_AUTH_PAM} {}\n", self.service),
        );
        write_mode(&plugin, line, 0o600);
        let server_log = dir.join("server.log");
        let port = free_udp_port();
        let mut server = Command::new(OPENVPN);
        server
            .args(["--tls-server", "--dh", "none", "--local", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--config"])
            .arg(&plugin);
        tls(&mut server);
        let log = File::create(&server_log).unwrap();
        let mut server = server
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {OPENVPN}: {e}"));
        let read = || fs::read_to_string(&server_log).unwrap_or_default();
        for _ in 0..ticks(Duration::from_secs(10)) {
            if read().contains("link local (bound)") {
                break;
            }
            std::thread::sleep(TICK);
        }
        let mut client = Command::new(OPENVPN);
        client
            .args(["--tls-client", "--pull", "--nobind", "--auth-retry", "none"])
            .args(["--auth-nocache", "--remote", "127.0.0.1", &port.to_string()])
            .arg("--auth-user-pass")
            .arg(&creds);
        tls(&mut client);
        let client_log = File::create(dir.join("client.log")).unwrap();
        let spawned = client
            .stdin(Stdio::null())
            .stdout(client_log.try_clone().unwrap())
            .stderr(client_log)
            .spawn();
        let mut client = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = server.kill();
                let _ = server.wait();
                panic!("start the {OPENVPN} client: {e}");
            }
        };
        let mut reply = Reply::Lost;
        for _ in 0..ticks(Duration::from_secs(20)) {
            let text = read();
            if text.contains("Username/Password authentication succeeded for username") {
                reply = Reply::Accept;
                break;
            }
            if text.contains("Auth Username/Password verification failed") {
                reply = Reply::Reject;
                break;
            }
            std::thread::sleep(TICK);
        }
        for child in [&mut client, &mut server] {
            try_signal(child.id(), libc::SIGTERM);
            wait_or_kill(child, Duration::from_secs(10));
        }
        let _ = fs::remove_file(&creds);
        (reply, read())
    }

    /// (Re)writes the private pam_otp config (root-owned 0644) to hold
    /// `config`; the module reads it at every login, no restart needed.
    pub fn write_config(&self, config: &str) {
        write_mode(
            &self.config_file,
            private_state_dir(&self.dir, &config.replace("{service}", &self.service)),
            0o644,
        );
    }

    /// Checks the config (`freeradius -C`): what it printed.
    pub fn check_config(&self) -> String {
        let out = run_ok(
            Command::new(FREERADIUS)
                .arg("-C")
                .arg("-d")
                .arg(&self.raddb),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the server is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Stops the server (SIGTERM, then SIGKILL past 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                try_signal(child.id(), libc::SIGTERM);
                let (_, killed) = wait_or_kill(&mut child, Duration::from_secs(10));
                if killed {
                    eprintln!("freeradius {} ignored SIGTERM; killed", child.id());
                }
            }
        }
    }
}

impl Drop for Radius {
    fn drop(&mut self) {
        self.stop();
        for f in &self.pam_files {
            let _ = fs::remove_file(f);
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            eprintln!(
                "--- freeradius log ({}), last lines ---\n{}",
                self.service,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `radiusd.conf`: paths inside `raddb`, `user`/`group` only if asked
/// (root), `thread_pool` the insides of its `thread pool { }`, no reject
/// delay (the PAM stack has its own), and `cleanup_delay = 0`: with
/// Debian's 5 s the server keeps every answered request for 5 s (to answer
/// a retransmission from its cache), so its memory follows the request
/// rate (33 MB more at 1 100 requests/s through pam_permit.so alone),
/// which would hide what the module does.
fn radiusd_conf(raddb: &Path, thread_pool: &str, run_as: Option<&str>) -> String {
    let user = run_as.map_or(String::new(), |u| format!("\tuser = {u}\n\tgroup = {u}\n"));
    format!(
        "# private FreeRADIUS of a pam_otp test\n\
         prefix = /usr\n\
         exec_prefix = /usr\n\
         sysconfdir = /etc\n\
         localstatedir = /var\n\
         sbindir = /usr/sbin\n\
         raddbdir = {raddb}\n\
         confdir = ${{raddbdir}}\n\
         modconfdir = ${{confdir}}/mods-config\n\
         logdir = ${{raddbdir}}/log\n\
         radacctdir = ${{logdir}}/radacct\n\
         run_dir = ${{raddbdir}}/run\n\
         db_dir = ${{raddbdir}}\n\
         libdir = /usr/lib/freeradius\n\
         pidfile = ${{run_dir}}/radiusd.pid\n\
         name = radiusd\n\
         max_request_time = 30\n\
         cleanup_delay = 0\n\
         max_requests = 16384\n\
         hostname_lookups = no\n\
         log {{\n\
         \tdestination = files\n\
         \tfile = ${{logdir}}/radius.log\n\
         \tauth = no\n\
         }}\n\
         security {{\n\
         \tallow_core_dumps = no\n\
         \tmax_attributes = 200\n\
         \treject_delay = 0\n\
         \tstatus_server = no\n\
         {user}\
         }}\n\
         thread pool {{\n\
         {thread_pool}\
         \tmax_requests_per_server = 0\n\
         }}\n\
         $INCLUDE clients.conf\n\
         modules {{\n\
         \t$INCLUDE mods-enabled/\n\
         }}\n\
         $INCLUDE sites-enabled/\n",
        raddb = raddb.display()
    )
}

/// The insides of `thread pool { }`: the recipe's (`thread-pool`), or a
/// fixed pool of `threads` (so that the process's memory does not move
/// with threads coming and going).
fn thread_pool(threads: Option<usize>) -> String {
    match threads {
        None => recipe("freeradius/thread-pool"),
        Some(n) => format!(
            "\tstart_servers = {n}\n\
             \tmax_servers = {n}\n\
             \tmin_spare_servers = 0\n\
             \tmax_spare_servers = {n}\n"
        ),
    }
}

/// `mods-enabled/pam`: the recipe's instances (`mods-available/pam`) with
/// the test's service, or `n` instances (`pam` alone for one, as Debian
/// ships it).
fn pam_modules(service: &str, instances: Option<usize>) -> String {
    match instances {
        None => replaced(
            &recipe("freeradius/mods-available/pam"),
            &format!("pam_auth = {RECIPE_SERVICE}\n"),
            &format!("pam_auth = {service}\n"),
        ),
        Some(1) => format!("pam {{\n\tpam_auth = {service}\n}}\n"),
        Some(n) => (1..=n)
            .map(|i| format!("pam pam{i} {{\n\tpam_auth = {service}\n}}\n"))
            .collect(),
    }
}

/// `sites-enabled/vpn`: listen on `port`; `authorize` (the test's unlang),
/// then the recipe's `authorize` part (every request to PAM); the recipe's
/// `authenticate` part, or the old one over `instances`; and the request's
/// `Calling-Station-Id` echoed in the reply (for [`Radius::send`]).
fn site(port: u16, authorize: &str, instances: Option<usize>) -> String {
    let mut authorize = authorize.to_string();
    if !authorize.is_empty() && !authorize.ends_with('\n') {
        authorize.push('\n');
    }
    let authenticate = match instances {
        None => recipe("freeradius/authenticate"),
        Some(1) => "\tAuth-Type PAM {\n\t\tpam\n\t}\n".to_string(),
        Some(n) => {
            let names: String = (1..=n).map(|i| format!("\t\t\tpam{i}\n")).collect();
            format!("\tAuth-Type PAM {{\n\t\tload-balance {{\n{names}\t\t}}\n\t}}\n")
        }
    };
    format!(
        "server vpn {{\n\
         listen {{\n\
         \ttype = auth\n\
         \tipaddr = 127.0.0.1\n\
         \tport = {port}\n\
         }}\n\
         authorize {{\n\
         {authorize}\
         {recipe_authorize}\
         }}\n\
         authenticate {{\n\
         {authenticate}\
         }}\n\
         post-auth {{\n\
         \tupdate reply {{\n\
         \t\t&Reply-Message := \"%{{Calling-Station-Id}}\"\n\
         \t}}\n\
         \tPost-Auth-Type REJECT {{\n\
         \t\tupdate reply {{\n\
         \t\t\t&Reply-Message := \"%{{Calling-Station-Id}}\"\n\
         \t\t}}\n\
         \t}}\n\
         }}\n\
         }}\n",
        recipe_authorize = recipe("freeradius/authorize"),
    )
}
