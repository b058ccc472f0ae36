//! What the real module logs. It sends datagrams to `/dev/log`; the test
//! binds its own datagram socket and runs pamtester in a private mount
//! namespace (`unshare -m`) where `/dev` is a fresh tmpfs holding the usual
//! character devices and, bind-mounted at `/dev/log`, that socket. The
//! host's `/dev` is never touched and the namespace dies with pamtester.

mod it_common;

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use it_common::*;

const RHOST: &str = "203.0.113.7";

/// A syslog stand-in: a datagram socket under the test root.
struct LogSink {
    path: PathBuf,
    sock: UnixDatagram,
}

impl LogSink {
    fn new() -> LogSink {
        fs::create_dir_all(TEST_ROOT).unwrap();
        let path = Path::new(TEST_ROOT).join(format!("{}.sock", unique("log")));
        let _ = fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        LogSink { path, sock }
    }

    /// Every line received so far.
    fn lines(&self) -> Vec<String> {
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

impl Drop for LogSink {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

const NAMESPACE_SCRIPT: &str = "set -e
mount -t tmpfs -o mode=755 pam-otp-test-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
: > /dev/log
mount --bind \"$0\" /dev/log
exec \"$@\"";

/// Runs pamtester like `PamService::authenticate`, with `/dev/log` being
/// `sink`; returns the run and the lines logged.
fn logged_run(
    svc: &PamService,
    sink: &LogSink,
    user: &str,
    rhost: Option<&str>,
    input: &str,
) -> (PamRun, Vec<String>) {
    let inner = svc.pamtester_command(user, rhost, &["authenticate"]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(NAMESPACE_SCRIPT)
        .arg(&sink.path)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let run = PamRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("unshare:") && !run.stderr.contains("mount:"),
        "namespace setup failed: {run:?}"
    );
    (run, sink.lines())
}

/// Nothing secret in any line: not the typed input, not the key in any form.
fn assert_no_secrets(lines: &[String], typed: &[&str]) {
    for line in lines {
        for t in typed {
            assert!(!line.contains(t), "{t:?} logged: {line}");
        }
        for s in [KEY_B32, KEY_HEX, "12345678901234567890", "GEZDGNBV"] {
            assert!(!line.contains(s), "secret logged: {line}");
        }
    }
}

/// The one decision line, checked for its fixed fields.
fn decision_line<'l>(
    lines: &'l [String],
    svc: &PamService,
    user: &TestUser,
    rhost: &str,
    pri: u8,
    result: &str,
) -> &'l str {
    let decisions: Vec<&String> = lines.iter().filter(|l| l.contains(" result=")).collect();
    assert_eq!(
        decisions.len(),
        1,
        "one decision line per login: {lines:#?}"
    );
    let line = decisions[0].as_str();
    let head = format!("<{pri}>pam_otp({}:auth)[", svc.name);
    assert!(line.starts_with(&head), "want {head}...: {line}");
    for field in [
        format!("user=\"{}\"", user.name),
        format!("rhost=\"{rhost}\""),
        format!("service=\"{}\"", svc.name),
        format!("result={result} "),
        "reason=\"".to_string(),
    ] {
        assert!(line.contains(&field), "no {field}: {line}");
    }
    line
}

fn enrolled() -> TestUser {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user
}

#[test]
fn success_is_one_info_line_with_the_default() {
    let user = enrolled();
    let svc = simple_service("");
    let sink = LogSink::new();
    let code = fresh_code();
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(RHOST), &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    // authpriv (10 << 3) | info (6) = 86
    let line = decision_line(&lines, &svc, &user, RHOST, 86, "success");
    assert!(line.contains("default (require)"), "{line}");
    assert_no_secrets(&lines, &[&code]);
}

#[test]
fn wrong_code_is_one_notice_line() {
    let user = enrolled();
    let svc = simple_service("");
    let sink = LogSink::new();
    let wrong = wrong_code();
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(RHOST), &format!("{wrong}\n"));
    assert!(!run.success, "{run:?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    // authpriv | notice (5) = 85
    let line = decision_line(&lines, &svc, &user, RHOST, 85, "auth_err");
    assert!(line.contains("wrong code"), "{line}");
    assert!(line.contains("default"), "{line}");
    assert_no_secrets(&lines, &[&wrong]);
}

#[test]
fn skip_rule_is_named() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n");
    let sink = LogSink::new();
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some("10.1.2.3"), "");
    assert!(run.success, "{run:?}");
    let line = decision_line(&lines, &svc, &user, "10.1.2.3", 86, "success");
    assert!(line.contains("rule 1 (skip)"), "{line}");
}

#[test]
fn deny_rule_is_named() {
    let user = enrolled();
    let svc = simple_service(
        "[[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n\
         [[rule]]\nfrom = [\"0.0.0.0/0\"]\notp = \"deny\"\n",
    );
    let sink = LogSink::new();
    let code = fresh_code();
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(RHOST), &format!("{code}\n"));
    assert!(!run.success, "{run:?}");
    let line = decision_line(&lines, &svc, &user, RHOST, 85, "auth_err");
    assert!(line.contains("rule 2 (deny)"), "{line}");
    assert_no_secrets(&lines, &[&code]);
}

#[test]
fn local_login_has_an_empty_rhost() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"local\"]\notp = \"skip\"\n");
    let sink = LogSink::new();
    let (run, lines) = logged_run(&svc, &sink, &user.name, None, "");
    assert!(run.success, "{run:?}");
    let line = decision_line(&lines, &svc, &user, "", 86, "success");
    assert!(line.contains("rule 1 (skip)"), "{line}");
}

#[test]
fn broken_secret_file_is_an_err_line() {
    let user = TestUser::new();
    user.write_secret(&format!("{}digits = 9\n", totp_secret()));
    let svc = simple_service("");
    let sink = LogSink::new();
    let code = fresh_code();
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(RHOST), &format!("{code}\n"));
    assert!(!run.success, "{run:?}");
    // authpriv | err (3) = 83
    let line = decision_line(&lines, &svc, &user, RHOST, 83, "authinfo_unavail");
    assert!(line.contains("digits"), "the bad field is named: {line}");
    assert_no_secrets(&lines, &[&code]);
}

#[test]
fn debug_adds_lines_but_never_a_code_or_secret() {
    let user = TestUser::new();
    user.write_secret(&format!(
        "{}scratch_codes = [\"31415926\", \"27182818\"]\n",
        totp_secret()
    ));
    let svc = service(
        "auth required {module} config={config} debug frobnicate\n",
        "",
    );
    let sink = LogSink::new();
    let code = fresh_code();
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(RHOST), &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    assert!(lines.len() > 1, "debug adds detail: {lines:#?}");
    decision_line(&lines, &svc, &user, RHOST, 86, "success");
    let debug: Vec<&String> = lines.iter().filter(|l| l.starts_with("<87>")).collect();
    assert_eq!(debug.len(), lines.len() - 1, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("frobnicate")),
        "unknown argument logged: {lines:#?}"
    );
    // A scratch code through the debug path.
    let (run, lines2) = logged_run(&svc, &sink, &user.name, Some(RHOST), "31415926\n");
    assert!(run.success, "{run:?}");
    assert_no_secrets(&lines, &[&code, "31415926", "27182818"]);
    assert_no_secrets(&lines2, &[&code, "31415926", "27182818"]);
}

#[test]
fn forward_pass_logs_neither_password_nor_code() {
    let user = enrolled();
    let svc = service(
        "auth required {module} config={config} forward_pass debug\nauth required pam_permit.so\n",
        "",
    );
    let sink = LogSink::new();
    let code = fresh_code();
    let typed = format!("Hunter2pw{code}");
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(RHOST), &format!("{typed}\n"));
    assert!(run.success, "{run:?}");
    decision_line(&lines, &svc, &user, RHOST, 86, "success");
    assert_no_secrets(&lines, &[&code, "Hunter2pw", &typed]);
}

#[test]
fn hostile_rhost_cannot_forge_a_line() {
    let user = enrolled();
    let svc = simple_service("");
    let sink = LogSink::new();
    let rhost = "evil\"\nFAKE result=success";
    let (run, lines) = logged_run(&svc, &sink, &user.name, Some(rhost), "000000\n");
    assert!(!run.success, "{run:?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!lines[0].contains('\n'), "{:?}", lines[0]);
    // The quote and newline are escaped, so the value stays inside its quotes.
    assert!(
        lines[0].contains(r#"rhost="evil\x22\x0aFAKE result=success" service="#),
        "{:?}",
        lines[0]
    );
    assert!(lines[0].contains(" result=auth_err "), "{:?}", lines[0]);
}
