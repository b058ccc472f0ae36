//! The postgresql store's client: libpq, in a helper process of its own.
//!
//! The module runs inside programs it does not control (sshd, su, sudo,
//! FreeRADIUS), some setuid with the caller's environment. libpq reads
//! that environment (`PGHOST`, `PGHOSTADDR`, `PGSERVICEFILE`,
//! `PGSYSCONFDIR`, `PGLOCALEDIR`, `PGTZ`, ...) and that `$HOME`
//! (`.pgpass`, `.pg_service.conf`, `.postgresql/`), and so do the
//! libraries it loads (OpenSSL, Kerberos, LDAP). So libpq never runs in
//! the module's process: [`Connection::connect`] starts the helper
//! (`pq-helper`, [`serve_helper`]) with posix_spawn (what `std::process`
//! uses here: safe in a threaded server, no fork of it), an **empty
//! environment** but `HOME=/nonexistent` and a fixed `PATH`, the working
//! directory `/`, and a socket as its standard input; stdout and stderr
//! go to /dev/null. On top of that every keyword is pinned from the config
//! ([`pin`]) before libpq connects. The helper also keeps libpq, OpenSSL
//! and Kerberos out of sshd's and su's address space.
//!
//! The protocol: frames of a 4-byte big-endian length and a JSON
//! [`Request`] or [`Reply`], at most [`MAX_FRAME`] bytes. Connect (the
//! helper answers `Pinned`, with how long connecting may take, then
//! `Connected` or an error), then statements, each answered by its rows
//! or an error. The helper exits when the socket closes; the module waits
//! for it (bounded) and kills it when it overstays a deadline.

mod libpq;
pub mod pin;

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Postgresql;

pub use pin::DEFAULT_CONNECT_TIMEOUT;

/// Where the Debian package installs the helper (`[postgresql] helper`
/// names another, for tests).
pub const DEFAULT_HELPER: &str = "/usr/libexec/pam_otp/pq-helper";

/// The largest frame either side sends or accepts (a schema script, an
/// admin's listing of every user).
pub const MAX_FRAME: usize = 16 << 20;

/// The environment the helper runs with: nothing of the caller's.
const HELPER_HOME: &str = "/nonexistent";
const HELPER_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Seconds the helper may take to load libpq and pin the settings.
const START_SECONDS: u64 = 10;
/// Seconds on top of the helper's own deadline before it is killed.
const SLACK_SECONDS: u64 = 2;

/// What went wrong talking to the database. Its text names what was tried,
/// never a parameter's value (a code is a parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PqError {
    /// libpq (Debian: libpq5) cannot be loaded, or lacks a function.
    NoLibrary(String),
    /// The connection string cannot be used (a NUL byte in it).
    BadConninfo,
    /// The `[postgresql]` settings are refused before any connection: a
    /// setting the rules do not allow, or one nobody gave a rule for.
    Refused(String),
    /// The helper process cannot be started or stopped answering.
    Helper(String),
    /// No server could be reached or it refused us: libpq's message.
    Connect(String),
    /// No answer within the deadline; the query was cancelled.
    Timeout { seconds: u64 },
    /// The server answered with an error: SQLSTATE and message.
    Server { sqlstate: String, message: String },
    /// The connection broke or the answer was not what libpq expects.
    Broken(String),
}

impl fmt::Display for PqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PqError::NoLibrary(msg) => {
                write!(
                    f,
                    "the PostgreSQL client library cannot be loaded (libpq5): {msg}"
                )
            }
            PqError::BadConninfo => f.write_str("the connection string contains a NUL byte"),
            PqError::Refused(why) => write!(f, "the [postgresql] settings are refused: {why}"),
            PqError::Helper(why) => write!(f, "the database client helper failed: {why}"),
            PqError::Connect(msg) => write!(f, "cannot connect to the database: {msg}"),
            PqError::Timeout { seconds } => {
                write!(f, "the database did not answer within {seconds} s")
            }
            PqError::Server { sqlstate, message } => {
                write!(f, "the database refused: {message} (SQLSTATE {sqlstate})")
            }
            PqError::Broken(msg) => write!(f, "the database connection failed: {msg}"),
        }
    }
}

impl std::error::Error for PqError {}

/// The rows of one answer, as text (NULL is `None`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rows {
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// Row `r`, column `c`, or `None` when absent or NULL.
    pub fn get(&self, r: usize, c: usize) -> Option<&str> {
        self.rows.get(r)?.get(c)?.as_deref()
    }
}

/// What the module asks the helper.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Connect {
        conninfo: String,
        service_file: String,
    },
    Query {
        sql: String,
        params: Vec<Option<String>>,
    },
    Script {
        sql: String,
    },
}

/// What the helper answers.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// The settings are pinned; connecting may take this many seconds.
    Pinned {
        seconds: u64,
    },
    /// Connected; each answer may take this many seconds.
    Connected {
        timeout: u64,
    },
    Rows(Rows),
    Error(PqError),
}

/// One connection, through a helper process of its own; the helper ends
/// when this is dropped.
pub struct Connection {
    child: Child,
    sock: UnixStream,
    /// Seconds allowed for each answer.
    timeout: u64,
    /// A deadline passed: the helper may be stuck in libpq.
    stuck: bool,
}

impl Connection {
    /// Connects with `conninfo` (a libpq connection string or URI) and the
    /// rest of `cfg` (the helper, the service file).
    pub fn connect(cfg: &Postgresql, conninfo: &str) -> Result<Connection, PqError> {
        if conninfo.contains('\0') {
            return Err(PqError::BadConninfo);
        }
        let helper = &cfg.helper;
        check_helper(helper).map_err(|why| PqError::Helper(format!("{helper}: {why}")))?;
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| PqError::Helper(format!("socketpair: {e}")))?;
        let child = Command::new(helper)
            .env_clear()
            .env("HOME", HELPER_HOME)
            .env("PATH", HELPER_PATH)
            .current_dir("/")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| PqError::Helper(format!("{helper}: cannot start it: {e}")))?;
        let mut conn = Connection {
            child,
            sock: ours,
            timeout: DEFAULT_CONNECT_TIMEOUT,
            stuck: false,
        };
        conn.send(&Request::Connect {
            conninfo: conninfo.to_string(),
            service_file: cfg.service_file.clone(),
        })?;
        let seconds = match conn.receive(START_SECONDS)? {
            Reply::Pinned { seconds } => seconds,
            Reply::Error(e) => return Err(e),
            other => return Err(unexpected(&other)),
        };
        match conn.receive(seconds.saturating_add(SLACK_SECONDS))? {
            Reply::Connected { timeout } => conn.timeout = timeout,
            Reply::Error(e) => return Err(e),
            other => return Err(unexpected(&other)),
        }
        Ok(conn)
    }

    /// The seconds each answer may take (the connection's `connect_timeout`).
    pub fn timeout(&self) -> u64 {
        self.timeout
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...), which
    /// never become part of the SQL.
    pub fn query(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Rows, PqError> {
        self.ask(&Request::Query {
            sql: sql.to_string(),
            params: params.iter().map(|p| p.map(str::to_string)).collect(),
        })
    }

    /// Runs a script of several statements (simple query protocol), as
    /// `psql -f` would: `otp-enroll db init` sends the schema this way.
    pub fn execute_script(&mut self, sql: &str) -> Result<(), PqError> {
        self.ask(&Request::Script {
            sql: sql.to_string(),
        })
        .map(|_| ())
    }

    fn ask(&mut self, request: &Request) -> Result<Rows, PqError> {
        self.send(request)?;
        match self.receive(self.timeout.saturating_add(SLACK_SECONDS))? {
            Reply::Rows(rows) => Ok(rows),
            Reply::Error(e) => Err(e),
            other => Err(unexpected(&other)),
        }
    }

    fn send(&mut self, request: &Request) -> Result<(), PqError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| PqError::Helper(format!("cannot encode a request: {e}")))?;
        if body.len() > MAX_FRAME {
            return Err(PqError::Broken(format!(
                "a request of {} bytes, more than {MAX_FRAME}",
                body.len()
            )));
        }
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
        let deadline = monotonic_now() + Duration::from_secs(START_SECONDS);
        for part in [&len[..], &body[..]] {
            self.send_all(part, deadline)?;
        }
        Ok(())
    }

    /// Writes `bytes` without SIGPIPE (a dead helper must not kill sshd).
    fn send_all(&mut self, mut bytes: &[u8], deadline: Instant) -> Result<(), PqError> {
        use nix::sys::socket::{send, MsgFlags};
        while !bytes.is_empty() {
            let left = deadline.saturating_duration_since(monotonic_now());
            if left.is_zero() {
                self.stuck = true;
                return Err(PqError::Helper(
                    "the helper does not read its requests".into(),
                ));
            }
            self.sock
                .set_write_timeout(Some(left))
                .map_err(|e| PqError::Helper(format!("socket: {e}")))?;
            match send(self.sock.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(PqError::Helper(format!("the helper is gone: {e}"))),
            }
        }
        Ok(())
    }

    /// Reads one reply within `seconds`; past it the helper is killed.
    fn receive(&mut self, seconds: u64) -> Result<Reply, PqError> {
        let deadline = monotonic_now() + Duration::from_secs(seconds);
        let mut len = [0u8; 4];
        self.read_all(&mut len, deadline, seconds)?;
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > MAX_FRAME {
            self.stuck = true;
            return Err(PqError::Helper(format!(
                "an answer of {len} bytes, more than {MAX_FRAME}"
            )));
        }
        let mut body = vec![0u8; len];
        self.read_all(&mut body, deadline, seconds)?;
        serde_json::from_slice(&body).map_err(|e| {
            self.stuck = true;
            PqError::Helper(format!("an answer that does not parse: {e}"))
        })
    }

    fn read_all(
        &mut self,
        mut buf: &mut [u8],
        deadline: Instant,
        seconds: u64,
    ) -> Result<(), PqError> {
        while !buf.is_empty() {
            let left = deadline.saturating_duration_since(monotonic_now());
            if left.is_zero() {
                self.stuck = true;
                return Err(PqError::Timeout { seconds });
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|e| PqError::Helper(format!("socket: {e}")))?;
            match self.sock.read(buf) {
                Ok(0) => {
                    self.stuck = true;
                    return Err(PqError::Helper("the helper ended without an answer".into()));
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(PqError::Helper(format!("reading its answer: {e}"))),
            }
        }
        Ok(())
    }
}

impl Drop for Connection {
    /// Closes the socket (the helper finishes the connection and exits)
    /// and reaps the helper: at most a second, then it is killed.
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        let mut waited = Duration::ZERO;
        loop {
            match self.child.try_wait() {
                // Gone, or reaped by the host program (SIGCHLD ignored).
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if self.stuck || waited >= Duration::from_secs(1) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => {
                    let step = if waited < Duration::from_millis(5) {
                        Duration::from_micros(100)
                    } else {
                        Duration::from_millis(5)
                    };
                    std::thread::sleep(step);
                    waited += step;
                }
            }
        }
    }
}

fn unexpected(reply: &Reply) -> PqError {
    let what = match reply {
        Reply::Pinned { .. } => "Pinned",
        Reply::Connected { .. } => "Connected",
        Reply::Rows(_) => "Rows",
        Reply::Error(_) => "Error",
    };
    PqError::Helper(format!("an answer out of turn ({what})"))
}

/// The helper is run as root inside sshd: only a file whoever could write
/// the config could have put there (owned by root or by whoever runs
/// this, not writable by group or others, a regular file).
fn check_helper(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("not an absolute path".into());
    }
    crate::safe_fs::check_trusted(std::path::Path::new(path)).map_err(|e| e.to_string())
}

/// The monotonic clock, for deadlines: how long to wait for the helper,
/// never a decision about a code (the database's clock makes those), so
/// the rule that only the glue reads the clock does not apply.
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> Instant {
    Instant::now()
}

// ---- the helper's side ------------------------------------------------

/// The helper's main: serves one connection on its standard input (a
/// socket) until it closes. Refuses to run with an environment other than
/// the one [`Connection::connect`] gives it: it is not a tool for people.
pub fn serve_helper() -> std::process::ExitCode {
    use std::process::ExitCode;
    let env: Vec<_> = std::env::vars_os().collect();
    let expected = env.len() == 2
        && std::env::var_os("HOME").is_some_and(|h| h == HELPER_HOME)
        && std::env::var_os("PATH").is_some_and(|p| p == HELPER_PATH);
    if !expected {
        eprintln!("pq-helper: run by pam_otp only (with an empty environment)");
        return ExitCode::from(2);
    }
    // Nothing of the program the module runs in but the socket on stdin
    // (and /dev/null on stdout, stderr): a descriptor it left open (su
    // keeps the caller's, a server its sockets) is not libpq's to hold, as
    // root, for as long as the connection lasts.
    if crate::sys::close_descriptors_from(3).is_err() {
        return ExitCode::from(2);
    }
    if std::env::set_current_dir("/").is_err() {
        return ExitCode::from(2);
    }
    // Under a setuid program (su, sudo) the real ids are still the
    // caller's: drop them, so that the caller can neither signal nor
    // trace the process that holds the database connection.
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if nix::unistd::setresgid(gid, gid, gid).is_err()
        || nix::unistd::setresuid(uid, uid, uid).is_err()
    {
        return ExitCode::from(2);
    }
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return ExitCode::from(2);
    };
    let mut sock = UnixStream::from(fd);
    let mut conn: Option<libpq::Direct> = None;
    loop {
        let request = match read_request(&mut sock) {
            Ok(Some(r)) => r,
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::from(1),
        };
        let replies = match (request, conn.as_mut()) {
            (
                Request::Connect {
                    conninfo,
                    service_file,
                },
                None,
            ) => match pin_settings(&conninfo, &service_file) {
                Err(e) => vec![Reply::Error(e)],
                Ok(pinned) => {
                    let seconds = pinned
                        .timeout
                        .saturating_mul(pinned.hosts)
                        .saturating_add(1);
                    if write_reply(&mut sock, &Reply::Pinned { seconds }).is_err() {
                        return ExitCode::from(1);
                    }
                    match libpq::Direct::connect(&pinned.params, pinned.timeout) {
                        Ok(c) => {
                            conn = Some(c);
                            vec![Reply::Connected {
                                timeout: pinned.timeout,
                            }]
                        }
                        Err(e) => vec![Reply::Error(e)],
                    }
                }
            },
            (Request::Query { sql, params }, Some(c)) => {
                let params: Vec<Option<&str>> = params.iter().map(|p| p.as_deref()).collect();
                vec![match c.query(&sql, &params) {
                    Ok(rows) => Reply::Rows(rows),
                    Err(e) => Reply::Error(e),
                }]
            }
            (Request::Script { sql }, Some(c)) => vec![match c.execute_script(&sql) {
                Ok(()) => Reply::Rows(Rows::default()),
                Err(e) => Reply::Error(e),
            }],
            _ => vec![Reply::Error(PqError::Helper(
                "a request out of turn".into(),
            ))],
        };
        for reply in &replies {
            if write_reply(&mut sock, reply).is_err() {
                return ExitCode::from(1);
            }
        }
    }
}

/// Each keyword the loaded libpq reads from an environment variable when
/// it is unset, with that variable (`PQconninfoParse`'s list; for the
/// tests that try each one). Loads libpq into this process.
pub fn libpq_variables() -> Result<Vec<(String, String)>, PqError> {
    Ok(libpq::parse_conninfo("")?
        .into_iter()
        .filter_map(|p| Some((p.keyword, p.envvar?)))
        .collect())
}

/// The settings libpq gets: the config's string, parsed by libpq itself,
/// pinned ([`pin::pin`]) with the trusted service file.
fn pin_settings(conninfo: &str, service_file: &str) -> Result<pin::Pinned, PqError> {
    let parsed = libpq::parse_conninfo(conninfo)?;
    let os_user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or_else(|| PqError::Refused("the helper's account has no name".into()))?;
    let mut read = |path: &str| {
        crate::config::read_trusted(path, crate::config::MAX_SERVICE_FILE_SIZE)
            .map_err(|e| e.to_string())
    };
    pin::pin(&parsed, service_file, &mut read, &os_user).map_err(|r| PqError::Refused(r.0))
}

fn read_request(sock: &mut UnixStream) -> std::io::Result<Option<Request>> {
    let mut len = [0u8; 4];
    match sock.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME {
        return Err(std::io::Error::other("request too large"));
    }
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(std::io::Error::other)
}

fn write_reply(sock: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut body = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        body = serde_json::to_vec(&Reply::Error(PqError::Broken(format!(
            "an answer of {} bytes, more than {MAX_FRAME}",
            body.len()
        ))))
        .map_err(std::io::Error::other)?;
    }
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    sock.write_all(&len)?;
    sock.write_all(&body)?;
    sock.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(helper: &str) -> Postgresql {
        Postgresql {
            helper: helper.into(),
            ..Postgresql::default()
        }
    }

    #[test]
    fn a_nul_in_the_connection_string_is_refused_before_the_helper() {
        assert_eq!(
            Connection::connect(&cfg("/nonexistent"), "host=a\0b").err(),
            Some(PqError::BadConninfo)
        );
    }

    #[test]
    fn a_missing_or_untrusted_helper_is_an_error_not_a_crash() {
        let err = Connection::connect(&cfg("/nonexistent/pq-helper"), "host=a").err();
        assert!(
            matches!(&err, Some(PqError::Helper(m)) if m.contains("/nonexistent/pq-helper")),
            "{err:?}"
        );
        let err = Connection::connect(&cfg("relative"), "host=a").err();
        assert!(matches!(err, Some(PqError::Helper(_))), "{err:?}");
        let dir = std::env::temp_dir().join(format!("pq-helper-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let path = dir.join("pq-helper");
        let _ = std::fs::write(&path, "#!/bin/sh\n");
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
        let err = check_helper(&path.to_string_lossy())
            .err()
            .unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("writable by group or others"), "{err}");
    }

    #[test]
    fn the_loaded_libpq_has_a_rule_for_every_variable() {
        let parsed = libpq::parse_conninfo("host=db1 sslmode=verify-full sslrootcert=/ca").unwrap();
        let mut unused = |_: &str| Err("not read".to_string());
        let pinned = pin::pin(&parsed, "/x", &mut unused, "root").unwrap();
        assert_eq!(pinned.get("gssencmode"), Some("disable"));
        assert_eq!(pinned.get("passfile"), Some(pin::NO_FILE));
        assert!(libpq_variables()
            .unwrap()
            .iter()
            .any(|(_, v)| v == "PGHOSTADDR"));
    }

    #[test]
    fn errors_cross_the_pipe_unchanged() {
        let e = PqError::Server {
            sqlstate: "42501".into(),
            message: "no".into(),
        };
        let text = serde_json::to_vec(&Reply::Error(e.clone())).unwrap();
        match serde_json::from_slice(&text).unwrap() {
            Reply::Error(back) => assert_eq!(back, e),
            other => panic!("{other:?}"),
        }
    }
}
