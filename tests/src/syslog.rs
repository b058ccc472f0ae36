//! A syslog stand-in for the tests that read what the real module logs.
//! The module sends datagrams to `/dev/log`; [`LogSink`] binds its own
//! datagram socket and [`logged_ops`] runs pamtester in a private mount
//! namespace (`unshare -m`) where `/dev` is a fresh tmpfs holding the usual
//! character devices and, bind-mounted at `/dev/log`, that socket. The
//! host's `/dev` is never touched and the namespace dies with pamtester.
//! [`logged_run_in_zone`] does the same with the caller's `TZ`, and
//! [`only_decision`] / [`last_decision`] pick the module's decision line.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;

use crate::fixtures::output;
use crate::{test_root, unique, PamRun, PamService};

/// A syslog stand-in: a datagram socket under the test root.
pub struct LogSink {
    pub path: PathBuf,
    sock: UnixDatagram,
}

impl LogSink {
    pub fn new() -> LogSink {
        let path = test_root().join(format!("{}.sock", unique("log")));
        let _ = fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        LogSink { path, sock }
    }

    /// Every line received so far.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

impl Default for LogSink {
    fn default() -> LogSink {
        LogSink::new()
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// [`NAMESPACE_SCRIPT`] with more lines (each ending in a newline) run
/// after the usual devices are made: for a program that needs more of
/// `/dev` (sshd, in [`crate::e2e`]). A macro so that the script stays one
/// `&str` constant either way.
macro_rules! namespace_script {
    ($($more:literal)*) => {
        concat!(
            "set -e
mount -t tmpfs -o mode=755 pam-otp-test-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
",
            $($more,)*
            ": > /dev/log
mount --bind \"$0\" /dev/log
exec \"$@\""
        )
    };
}
pub(crate) use namespace_script;

/// Run as `sh -c SCRIPT <sink> <program> <args>` in a private mount
/// namespace (`unshare -m`): a fresh `/dev` with `<sink>` bind-mounted at
/// `/dev/log`, then the program. Also for tests that run their own
/// program there (tests/threads.rs).
pub const NAMESPACE_SCRIPT: &str = namespace_script!();

/// Runs pamtester like `PamService::authenticate`, with `/dev/log` being
/// `sink`; returns the run and the lines logged.
pub fn logged_run(
    svc: &PamService,
    sink: &LogSink,
    user: &str,
    rhost: Option<&str>,
    input: &str,
) -> (PamRun, Vec<String>) {
    logged_ops(svc, sink, user, rhost, input, &["authenticate"])
}

/// [`logged_run`] with pamtester operations of the caller's choosing.
pub fn logged_ops(
    svc: &PamService,
    sink: &LogSink,
    user: &str,
    rhost: Option<&str>,
    input: &str,
    ops: &[&str],
) -> (PamRun, Vec<String>) {
    logged(sink, || in_namespace(svc, sink, user, rhost, ops), input)
}

/// [`logged_run`] (no rhost) with `TZ=tz` in pamtester's environment: for
/// the tests that show the caller's zone changes nothing in the module
/// (the file stores' and the fleet database's lifecycle, temporary codes,
/// rollout and exemptions).
pub fn logged_run_in_zone(
    svc: &PamService,
    sink: &LogSink,
    user: &str,
    tz: &str,
    input: &str,
) -> (PamRun, Vec<String>) {
    let make = || {
        let mut cmd = in_namespace(svc, sink, user, None, &["authenticate"]);
        // unshare, the shell and env hand it on to pamtester.
        cmd.env("TZ", tz);
        cmd
    };
    logged(sink, make, input)
}

/// The one decision line (` result=`) among `lines`, which must hold
/// exactly one (one login, one decision), and which never holds the digits
/// `typed` (the code is never logged).
pub fn only_decision(lines: &[String], typed: &str) -> String {
    let decisions: Vec<&String> = lines.iter().filter(|l| l.contains(" result=")).collect();
    assert_eq!(decisions.len(), 1, "{lines:#?}");
    let line = decisions[0].clone();
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    assert!(
        digits.is_empty() || !line.contains(&digits),
        "the code is never logged: {line}"
    );
    line
}

/// The last decision line (` result=`) among `lines`, or "" when there is
/// none: for the tests whose logins may log more than one line or none
/// (an exemption, an offered enrollment) and that check the line's words
/// themselves.
pub fn last_decision(lines: &[String]) -> String {
    lines
        .iter()
        .rev()
        .find(|l| l.contains(" result="))
        .cloned()
        .unwrap_or_default()
}

/// pamtester (`ops`) in a private mount namespace whose `/dev/log` is `sink`.
fn in_namespace(
    svc: &PamService,
    sink: &LogSink,
    user: &str,
    rhost: Option<&str>,
    ops: &[&str],
) -> Command {
    // pam_wrapper is preloaded into pamtester only (see
    // crate::PamService::pamtester_argv), not unshare or the shell.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(NAMESPACE_SCRIPT)
        .arg(&sink.path)
        .args(svc.pamtester_argv(user, rhost, ops));
    cmd
}

/// Runs what `make` makes, answering `input`; the run and the lines logged.
fn logged(sink: &LogSink, make: impl Fn() -> Command, input: &str) -> (PamRun, Vec<String>) {
    let run = crate::run_pam_retrying(make, input);
    // Whatever happened in the namespace, pamtester itself must have run
    // and given its verdict (on stdout for a success, stderr otherwise);
    // anything else is a broken fixture, not a refused login.
    assert!(
        output(&run).contains("pamtester: ") && !run.died_before_pam(),
        "namespace setup or pam_wrapper failed: {run:?}"
    );
    (run, sink.lines())
}
