//! End-to-end fixtures: a private `sshd` on loopback driven by the real
//! OpenSSH client, and programs (`su`) run under a pseudo-terminal.
//!
//! The sshd gets its own config, host key, pid file and PAM service: it is
//! run through a symlink `sshd-pot-<id>` -> `/usr/sbin/sshd`, and sshd names
//! its PAM service after the program it was started as, so its stack is
//! `/etc/pam.d/sshd-pot-<id>`, written here and removed on drop. The
//! machine's own `sshd` service, `/etc/pam.d/sshd` and `/etc/ssh/` are never
//! touched. Everything lives under `/tmp/pam-otp-tests/sshd-pot-<id>/`.
//!
//! The client answers keyboard-interactive prompts through `SSH_ASKPASS`
//! (forced with `SSH_ASKPASS_REQUIRE=force`): a small script that logs every
//! prompt it is shown and answers by the prompt's text, so a test can assert
//! both what was asked and that nothing was asked.
//!
//! The reliability and security fixtures (races, faults, privilege) are in
//! [`crate::harness`].
//!
//! Needs root (CI runs as root). Leftovers of a test process that was killed
//! (no drop) are swept by the next fixture that starts.

use std::fs::{self, File};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::syslog::LogSink;
use crate::{alive, module_path, pam_stack, private_state_dir, require_root, run_ok, set_mode};
use crate::{tee, test_root, ticks, try_signal, wait_or_kill, write_mode};
use crate::{TestUser, TEST_ROOT, TICK};

/// Prefix of the private PAM services (and of the fixtures' directories).
pub const SERVICE_PREFIX: &str = "sshd-pot-";
pub const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege-separation directory (the package's tmpfiles.d entry
/// creates it at boot; in a container it may be missing).
pub const PRIVSEP_DIR: &str = "/run/sshd";

/// How long one ssh login or pty program may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the test's PAM stack and sshd should look like.
pub struct SshdSetup<'a> {
    /// The `auth` lines of the private PAM service. `{module}` stands for
    /// the module's path and `{config}` for the private pam_otp config file.
    pub pam_auth: &'a str,
    /// Text of the private pam_otp config (root-owned 0644).
    pub otp_config: &'a str,
    /// sshd's `AuthenticationMethods`.
    pub authentication_methods: &'a str,
    /// More sshd_config lines. They come first: for each keyword sshd
    /// takes the first value it reads.
    pub sshd_extra: &'a str,
}

/// The text of the recipe file `doc/recipes/<path>`: a file the admin
/// guide shows whole (tests/recipes.rs checks that), which the test that
/// proves it loads, so that the recipe and its test cannot drift.
pub fn recipe(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../doc/recipes")
        .join(path);
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `text` with every `from` replaced by `to`. A `from` that `text` does
/// not hold fails the test: the recipe changed, and its test must say
/// what it changes in the new one.
#[track_caller]
pub fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the recipe no longer holds {from:?} (the test replaces it by {to:?}):\n{text}"
    );
    text.replace(from, to)
}

/// A recipe's PAM lines as a test's stack: each `pam_otp.so` becomes the
/// built module with the test's private config (`{module}
/// config={config}`, filled in by the fixture). Nothing else changes.
#[track_caller]
pub fn recipe_stack(text: &str) -> String {
    replaced(text, "pam_otp.so", "{module} config={config}")
}

/// Where [`Sshd::start_in`] runs an sshd: in a network namespace (see
/// [`crate::netns`]), listening on `addr` port 22, with the clients of
/// [`Sshd::ssh`] run in `client_netns`.
pub struct Placement<'a> {
    pub netns: &'a str,
    pub addr: &'a str,
    pub client_netns: &'a str,
}

/// A private sshd on 127.0.0.1 (or as placed by [`Sshd::start_in`]);
/// stopped and cleaned up on drop.
pub struct Sshd {
    pub dir: PathBuf,
    /// PAM service name (= the symlink sshd is run as).
    pub service: String,
    pub pam_file: PathBuf,
    pub config_file: PathBuf,
    pub port: u16,
    /// The address it listens on.
    pub addr: String,
    /// The namespace the clients run in (None: this one).
    client_netns: Option<String>,
    /// Under [`Sshd::start_in`]: the `/dev/log` of sshd and the module,
    /// and what was read from it so far.
    syslog: Option<(LogSink, Mutex<Vec<String>>)>,
    child: Option<Child>,
    logins: AtomicU32,
}

/// Removes what a killed test process left: fixtures whose process is gone.
/// Shared by the sshd and FreeRADIUS fixtures, which lay theirs out alike:
/// PAM services `/etc/pam.d/<prefix><pid>x<n>` (and `...-<suffix>` for
/// more services), a directory `TEST_ROOT/<prefix><pid>x<n>` holding the
/// server's pid in `pid_file`.
pub(crate) fn sweep_stale(prefix: &str, pid_file: &str) {
    let Ok(entries) = fs::read_dir("/etc/pam.d") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(pid) = id.split('x').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        // The fixture's name without the service's suffix.
        let base = match id.find('-') {
            Some(at) => &name[..prefix.len() + at],
            None => &name[..],
        };
        let dir = Path::new(TEST_ROOT).join(base);
        if let Ok(p) = fs::read_to_string(dir.join(pid_file)) {
            if let Ok(p) = p.trim().parse::<u32>() {
                // The pid may have been reused: only a server whose command
                // line names the fixture (sshd's symlink, radiusd's config
                // dir) is its own.
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(base) {
                    try_signal(p, libc::SIGKILL);
                }
            }
        }
        let _ = fs::remove_file(e.path());
        let _ = fs::remove_dir_all(&dir);
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Run in front of sshd (`sh -c SCRIPT <socket> <sshd> <args>`) in the
/// private mount namespace `ip netns exec` gives it: `/dev` becomes a fresh
/// tmpfs with the devices sshd and a non-interactive session use and, at
/// `/dev/log`, the test's socket, so what the module logs (syslog(3)) is
/// read by the test. The machine's `/dev` is untouched (ip makes the
/// namespace's mounts slaves: nothing propagates back). It is
/// [`crate::syslog::NAMESPACE_SCRIPT`] with `/dev/tty` as well.
const PRIVATE_DEV_LOG: &str = crate::syslog::namespace_script!("mknod -m 666 /dev/tty c 5 0\n");

impl Sshd {
    /// A private sshd on 127.0.0.1 of this network namespace.
    pub fn start(setup: &SshdSetup<'_>) -> Sshd {
        Sshd::start_placed(setup, None, None, &[])
    }

    /// A private sshd on 127.0.0.1 whose authentication settings are
    /// `sshd_config`'s lines as they are (a recipe's snippet:
    /// `UsePAM`, `KbdInteractiveAuthentication`, `AuthenticationMethods`,
    /// `PasswordAuthentication`): the fixture then sets none of these
    /// itself, only its private port, address, host key and pid file and
    /// settings no recipe is about (logging, no motd, no forwarding, no
    /// root login); `setup.authentication_methods` is not used.
    /// `setup.sshd_extra` still comes first.
    pub fn start_recipe(sshd_config: &str, setup: &SshdSetup<'_>) -> Sshd {
        Sshd::start_placed(setup, Some(sshd_config), None, &[])
    }

    /// [`Sshd::start`] in a private mount namespace where each `(file,
    /// target)` of `binds` is bind-mounted over `target`
    /// ([`crate::harness::in_private_mounts`]): the sessions it starts see
    /// the test's files (a stack over `/etc/pam.d/su`, say), the machine
    /// never does.
    pub fn start_with_mounts(setup: &SshdSetup<'_>, binds: &[(&Path, &str)]) -> Sshd {
        Sshd::start_placed(setup, None, None, binds)
    }

    /// A private sshd in the network namespace `place.netns`, on
    /// `place.addr` port 22 (the namespace's own: always free), whose
    /// syslog (sshd's and the module's) goes to a socket the test reads
    /// ([`Sshd::syslog`]); its clients run in `place.client_netns`.
    pub fn start_in(setup: &SshdSetup<'_>, place: &Placement<'_>) -> Sshd {
        Sshd::start_placed(setup, None, Some(place), &[])
    }

    fn start_placed(
        setup: &SshdSetup<'_>,
        recipe: Option<&str>,
        place: Option<&Placement<'_>>,
        binds: &[(&Path, &str)],
    ) -> Sshd {
        require_root();
        let module = module_path();
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} missing: make test installs it (scripts/packages/test)"
        );
        sweep_stale(SERVICE_PREFIX, "sshd.pid");
        if !Path::new(PRIVSEP_DIR).is_dir() {
            fs::create_dir_all(PRIVSEP_DIR).unwrap();
            set_mode(Path::new(PRIVSEP_DIR), 0o755);
        }
        let root = test_root();

        let service = format!("{SERVICE_PREFIX}{}", crate::unique_id());
        let dir = root.join(&service);
        fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        let pam_file = Path::new("/etc/pam.d").join(&service);
        // From here on, drop cleans up even if the start fails.
        let mut sshd = Sshd {
            dir: dir.clone(),
            service: service.clone(),
            pam_file: pam_file.clone(),
            config_file: dir.join("pam_otp.toml"),
            port: 0,
            addr: place.map_or("127.0.0.1", |p| p.addr).to_string(),
            client_netns: place.map(|p| p.client_netns.to_string()),
            syslog: place.map(|_| (LogSink::new(), Mutex::new(Vec::new()))),
            child: None,
            logins: AtomicU32::new(0),
        };

        write_mode(
            &sshd.config_file,
            private_state_dir(&dir, setup.otp_config),
            0o644,
        );
        let auth = pam_stack(setup.pam_auth, &module, &sshd.config_file);
        write_mode(
            &pam_file,
            format!(
                "# pam_otp end-to-end test fixture ({}); removed when the test ends\n\
                 {auth}\n\
                 account required pam_unix.so\n\
                 session required pam_permit.so\n",
                dir.display()
            ),
            0o644,
        );
        let host_key = dir.join("ssh_host_ed25519_key");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "pam_otp-e2e", "-f"])
                .arg(&host_key),
        );
        let program = dir.join(&service);
        symlink(SSHD, &program).unwrap();
        write_mode(&dir.join("askpass"), ASKPASS, 0o755);

        let pid_file = dir.join("sshd.pid");
        let sshd_config = dir.join("sshd_config");
        let auth_config = match recipe {
            Some(lines) => lines.to_string(),
            None => format!(
                "UsePAM yes\n\
                 KbdInteractiveAuthentication yes\n\
                 PasswordAuthentication no\n\
                 AuthenticationMethods {}\n",
                setup.authentication_methods
            ),
        };
        for _attempt in 0..5 {
            let port = if place.is_some() { 22 } else { free_port() };
            write_mode(
                &sshd_config,
                format!(
                    "# private sshd of a pam_otp end-to-end test\n\
                     {extra}\n\
                     {auth_config}\
                     Port {port}\n\
                     ListenAddress {addr}\n\
                     AddressFamily inet\n\
                     HostKey {host_key}\n\
                     PidFile {pid_file}\n\
                     PubkeyAuthentication yes\n\
                     AuthorizedKeysFile .ssh/authorized_keys\n\
                     UseDNS no\n\
                     PermitRootLogin no\n\
                     PrintMotd no\n\
                     PrintLastLog no\n\
                     X11Forwarding no\n\
                     AllowTcpForwarding no\n\
                     LoginGraceTime 30\n\
                     LogLevel VERBOSE\n",
                    host_key = host_key.display(),
                    pid_file = pid_file.display(),
                    extra = setup.sshd_extra,
                    addr = sshd.addr,
                ),
                0o644,
            );
            let _ = fs::remove_file(&pid_file);
            let log = File::create(dir.join("sshd.log")).unwrap();
            // Run by its absolute symlink path: sshd re-executes itself from
            // argv[0], and takes its PAM service name from it.
            let mut command = match (place, &sshd.syslog) {
                (Some(p), Some((sink, _))) => {
                    let mut c = crate::netns::netns_command(p.netns, "sh");
                    c.arg("-c")
                        .arg(PRIVATE_DEV_LOG)
                        .arg(&sink.path)
                        .arg(&program);
                    c
                }
                // exec: the pid is sshd's, for the pid file and the kill.
                _ if !binds.is_empty() => {
                    let mut c = crate::harness::in_private_mounts(binds, "exec \"$0\" \"$@\"");
                    c.arg(&program);
                    c
                }
                _ => Command::new(&program),
            };
            let mut child = command
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&sshd_config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
            // sshd writes its pid file once it listens.
            let mut exited = None;
            for _ in 0..ticks(Duration::from_secs(10)) {
                if let Some(st) = child.try_wait().unwrap() {
                    exited = Some(st);
                    break;
                }
                if fs::read_to_string(&pid_file).is_ok_and(|p| p.trim().parse::<u32>().is_ok()) {
                    break;
                }
                std::thread::sleep(TICK);
            }
            sshd.child = Some(child);
            sshd.port = port;
            match exited {
                None if pid_file.exists() => return sshd,
                None => panic!("sshd did not start within 10 s:\n{}", sshd.log()),
                Some(_) if sshd.log().contains("Address already in use") => continue,
                Some(st) => panic!("sshd exited at start ({st}):\n{}", sshd.log()),
            }
        }
        panic!("sshd: no free port after 5 tries:\n{}", sshd.log());
    }

    /// What sshd logged so far (-e: its log goes to stderr, kept in a file).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Every syslog line of this sshd's processes so far, the module's
    /// among them (only under [`Sshd::start_in`]; empty otherwise).
    pub fn syslog(&self) -> Vec<String> {
        let Some((sink, seen)) = &self.syslog else {
            return Vec::new();
        };
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(sink.lines());
        seen.clone()
    }

    /// `program`, to be run where this sshd's clients run (in the client
    /// namespace under [`Sshd::start_in`]).
    pub fn client_command(&self, program: &str) -> Command {
        match &self.client_netns {
            Some(ns) => crate::netns::netns_command(ns, program),
            None => Command::new(program),
        }
    }

    /// The shell words that run a program where this sshd's clients run
    /// (`ip netns exec <ns> `, or nothing), for a command line.
    pub fn client_prefix(&self) -> String {
        match &self.client_netns {
            Some(ns) => format!("ip netns exec {ns} "),
            None => String::new(),
        }
    }

    /// A login as `user`, to be configured and run.
    pub fn ssh(&self, user: &str) -> Ssh<'_> {
        Ssh {
            sshd: self,
            user: user.to_string(),
            answers: Vec::new(),
            bind: None,
            identity: None,
            methods: "keyboard-interactive".into(),
            command: Some("echo OK-$USER".into()),
            tty_input: None,
        }
    }

    /// A new client key pair (root's, in the fixture dir): the private key's
    /// path and the public key line.
    pub fn client_key(&self) -> (PathBuf, String) {
        let n = self.logins.fetch_add(1, Ordering::SeqCst);
        let key = self.dir.join(format!("client_key{n}"));
        run_ok(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "pam_otp-e2e-client",
                    "-f",
                ])
                .arg(&key),
        );
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        (key, public)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            if child.try_wait().ok().flatten().is_none() {
                // Let finished connections wind down (PAM cleanup) so the
                // listener reaps them, rather than leaving them to init.
                for _ in 0..ticks(Duration::from_secs(3)) {
                    if children_of(pid).is_empty() {
                        break;
                    }
                    std::thread::sleep(TICK);
                }
                try_signal(pid, libc::SIGTERM);
                let (_, killed) = wait_or_kill(&mut child, Duration::from_secs(5));
                if killed {
                    eprintln!("sshd {pid} ignored SIGTERM; killed");
                }
            }
        }
        let _ = fs::remove_file(&self.pam_file);
        if std::thread::panicking() {
            eprintln!("--- sshd log ({}) ---\n{}", self.service, self.log());
            if self.syslog.is_some() {
                eprintln!("--- syslog ---\n{}", self.syslog().join("\n"));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The processes whose parent is `pid` (from /proc/*/stat).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": comm may hold spaces and ')'.
            stat.rfind(')').and_then(|at| {
                stat[at + 1..]
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u32>()
                    .ok()
            }) == Some(pid)
        })
        .collect()
}

/// Answers ssh's prompts: logs each one (followed by a line holding only
/// the ASCII record separator), then prints the answer of the first
/// `text<TAB>answer` line of $ASKPASS_ANSWERS whose text the prompt
/// contains; no match = exit 1 (ssh then sends no answer).
const ASKPASS: &str = "#!/bin/sh\n\
printf '%s\\n\\036\\n' \"$1\" >> \"$ASKPASS_LOG\"\n\
while IFS='\t' read -r want answer; do\n\
    case \"$1\" in\n\
        *\"$want\"*) printf '%s\\n' \"$answer\"; exit 0 ;;\n\
    esac\n\
done < \"$ASKPASS_ANSWERS\"\n\
exit 1\n";

/// One ssh login, as configured by the builder methods.
pub struct Ssh<'a> {
    sshd: &'a Sshd,
    user: String,
    answers: Vec<(String, String)>,
    bind: Option<String>,
    identity: Option<PathBuf>,
    methods: String,
    command: Option<String>,
    tty_input: Option<String>,
}

/// What a login gave.
#[derive(Debug)]
pub struct SshRun {
    pub success: bool,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Every prompt the askpass was shown, in order.
    pub prompts: Vec<String>,
}

impl SshRun {
    /// The prompts that asked for something containing `text`.
    pub fn asked(&self, text: &str) -> usize {
        self.prompts.iter().filter(|p| p.contains(text)).count()
    }
}

impl Ssh<'_> {
    /// Answer a prompt containing `prompt_text` with `answer`.
    pub fn answer(mut self, prompt_text: &str, answer: &str) -> Self {
        assert!(!prompt_text.contains(['\t', '\n']) && !answer.contains(['\t', '\n']));
        self.answers.push((prompt_text.into(), answer.into()));
        self
    }

    /// Connect from this local address (`ssh -b`).
    pub fn from(mut self, addr: &str) -> Self {
        self.bind = Some(addr.into());
        self
    }

    /// Offer this key (publickey first, then keyboard-interactive).
    pub fn identity(mut self, key: &Path) -> Self {
        self.identity = Some(key.to_path_buf());
        self.methods = "publickey,keyboard-interactive".into();
        self
    }

    /// The client's `PreferredAuthentications`.
    pub fn methods(mut self, methods: &str) -> Self {
        self.methods = methods.into();
        self
    }

    /// An interactive login: a remote pseudo-terminal (`-tt`), no command,
    /// `input` typed into the shell.
    pub fn interactive(mut self, input: &str) -> Self {
        self.command = None;
        self.tty_input = Some(input.into());
        self
    }

    pub fn run(self) -> SshRun {
        let n = self.sshd.logins.fetch_add(1, Ordering::SeqCst);
        let base = self.sshd.dir.join(format!("login{n}"));
        let path = |ext: &str| base.with_extension(ext);
        let answers: String = self
            .answers
            .iter()
            .map(|(w, a)| format!("{w}\t{a}\n"))
            .collect();
        write_mode(&path("answers"), &answers, 0o600);
        write_mode(&path("prompts"), "", 0o600);
        write_mode(
            &path("stdin"),
            self.tty_input.as_deref().unwrap_or(""),
            0o600,
        );

        // setsid: no controlling terminal; askpass is forced anyway. The
        // client's LogLevel stays at its default (INFO), as a user has it:
        // that is the level at which ssh prints the text (instruction) that
        // sshd sends with a PAM failure.
        let mut cmd = self.sshd.client_command("setsid");
        cmd.arg("-w")
            .arg("ssh")
            .args(["-F", "/dev/null", "-p"])
            .arg(self.sshd.port.to_string())
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
            ])
            .arg(format!("PreferredAuthentications={}", self.methods));
        match &self.identity {
            Some(k) => cmd.arg("-i").arg(k),
            None => cmd.args(["-o", "PubkeyAuthentication=no"]),
        };
        if let Some(b) = &self.bind {
            cmd.arg("-b").arg(b);
        }
        if self.tty_input.is_some() {
            cmd.arg("-tt");
        } else {
            cmd.arg("-T");
        }
        cmd.arg(format!("{}@{}", self.user, self.sshd.addr));
        if let Some(c) = &self.command {
            cmd.arg(c);
        }
        cmd.env_remove("SSH_AUTH_SOCK")
            .env("SSH_ASKPASS", self.sshd.dir.join("askpass"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":pam-otp-e2e")
            .env("ASKPASS_LOG", path("prompts"))
            .env("ASKPASS_ANSWERS", path("answers"))
            .stdin(File::open(path("stdin")).unwrap())
            .stdout(File::create(path("out")).unwrap())
            .stderr(File::create(path("err")).unwrap());
        let mut child = cmd
            .spawn()
            .expect("setsid and ssh (openssh-client) installed");
        let (status, killed) = wait_or_kill(&mut child, RUN_TIMEOUT);
        assert!(
            !killed,
            "ssh hung for {RUN_TIMEOUT:?}:\n{}",
            self.sshd.log()
        );
        let read = |ext: &str| fs::read_to_string(path(ext)).unwrap_or_default();
        let prompts = read("prompts")
            .split("\n\u{1e}\n")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        SshRun {
            success: status.success(),
            status,
            stdout: read("out"),
            stderr: read("err"),
            prompts,
        }
    }
}

/// Installs `public_key` as the only entry of the user's
/// `~/.ssh/authorized_keys`, theirs, as sshd's StrictModes wants it.
pub fn authorize_key(user: &TestUser, public_key: &str) {
    let ssh_dir = user.home.join(".ssh");
    fs::create_dir_all(&ssh_dir).unwrap();
    user.chown(&ssh_dir);
    set_mode(&ssh_dir, 0o700);
    user.write_owned(&ssh_dir.join("authorized_keys"), public_key, 0o600);
}

/// What a program run under a pseudo-terminal gave.
#[derive(Debug)]
pub struct PtyRun {
    pub success: bool,
    pub status: ExitStatus,
    /// Everything the terminal showed.
    pub output: String,
}

/// Runs the shell command line `command` under a pseudo-terminal
/// (`script(1)`, util-linux), with `env` added to its environment. Each
/// `(prompt, answer)` pair is answered in order once `prompt` has appeared
/// on the terminal since the previous answer: PAM's terminal conversation
/// flushes input typed ahead of its prompt, so answers must not come early.
pub fn run_in_pty(command: &str, env: &[(&str, &str)], answers: &[(&str, &str)]) -> PtyRun {
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", command, "/dev/null"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    answer_in_pty(cmd, answers)
}

/// [`run_in_pty`] for a command that makes its own pseudo-terminal (runs
/// `script(1)` itself, e.g. after `unshare` and `setpriv`, so that the
/// terminal is the unprivileged caller's).
pub fn answer_in_pty(cmd: Command, answers: &[(&str, &str)]) -> PtyRun {
    let mut next = 0;
    let mut seen = 0;
    // The length of the screen when the last answer was typed, and how
    // many times it was: the prompt may be printed just before the
    // terminal's echo is turned off (flushing pending input) and the line
    // read, so an answer that left no trace is typed again (a flushed
    // answer was never read, so that is safe).
    let mut typed: Option<(usize, u32)> = None;
    drive_pty(cmd, |screen| {
        if let Some((len, tries)) = typed.take() {
            if screen.len() <= len && tries < 5 {
                typed = Some((len, tries + 1));
                return Some(answers[next - 1].1.to_string());
            }
        }
        let (prompt, answer) = answers.get(next)?;
        let at = screen.get(seen..)?.find(prompt)?;
        seen += at + prompt.len();
        next += 1;
        typed = Some((screen.len(), 1));
        Some(answer.to_string())
    })
}

/// Runs `cmd`, a program under a pseudo-terminal (`script -qec ...
/// /dev/null`), and types into it: each time the screen changes, and after
/// each second it stays the same, `answer` sees all of it so far and may
/// return a line to type. Typing only after a prompt shows is what a person
/// does (text typed ahead is echoed by the terminal, or flushed, before any
/// program can turn echo off). A session still running after 30 s is
/// killed and fails the test.
pub fn drive_pty(mut cmd: Command, mut answer: impl FnMut(&str) -> Option<String>) -> PtyRun {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("script (util-linux) installed");
    let output = Arc::new(Mutex::new(Vec::<u8>::new()));
    let readers = [
        tee(child.stdout.take().unwrap(), Arc::clone(&output)),
        tee(child.stderr.take().unwrap(), Arc::clone(&output)),
    ];
    let mut stdin = child.stdin.take().unwrap();
    let shown = || String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
    let idle = ticks(Duration::from_secs(1));
    let mut last_len = 0;
    let mut still = 0;
    let mut killed = false;
    for tick in 0.. {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if tick >= ticks(RUN_TIMEOUT) {
            let _ = child.kill();
            killed = true;
            break;
        }
        let screen = shown();
        still = if screen.len() == last_len {
            still + 1
        } else {
            0
        };
        if still == 0 || still % idle == 0 {
            last_len = screen.len();
            if let Some(line) = answer(&screen) {
                // Give the program a moment to turn echo off after its prompt.
                std::thread::sleep(Duration::from_millis(100));
                let _ = stdin.write_all(format!("{line}\n").as_bytes());
                let _ = stdin.flush();
            }
        }
        std::thread::sleep(TICK);
    }
    let status = child.wait().expect("wait");
    drop(stdin);
    for r in readers {
        let _ = r.join();
    }
    let output = shown();
    assert!(
        !killed,
        "{cmd:?} hung for {RUN_TIMEOUT:?}; terminal showed:\n{output}"
    );
    PtyRun {
        success: status.success(),
        status,
        output,
    }
}
