//! The audit log (issue 30): every change made through the real
//! otp-enroll leaves one syslog line, with who made it and never a
//! secret; a command that changes nothing or is refused leaves none.
//! otp-enroll runs in a private mount namespace whose `/dev/log` is the
//! test's socket (testkit::syslog), so the machine's syslog is never
//! read and the lines are exactly the program's.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;
use otp_core::secret_file::SecretFile;
use testkit::harness::RootDir;
use testkit::syslog::{LogSink, NAMESPACE_SCRIPT};
use testkit::{require_root, write_mode, TestUser};

/// The google-authenticator key of the import (and its codes).
const GOOGLE_KEY: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const GOOGLE_CODES: [&str; 2] = ["59204058", "67424791"];
/// RFC 4226 appendix D: the codes of counters 0, 1 and 2.
const HOTP: [&str; 3] = ["755224", "287082", "359152"];

/// A private config (`store` as given) and state_dir.
struct Setup {
    base: RootDir,
    config: PathBuf,
    sink: LogSink,
}

impl Setup {
    fn new(store: &str) -> Setup {
        require_root();
        let base = RootDir::new("audit", 0o755);
        let state = base.path.join("state");
        fs::create_dir(&state).unwrap();
        testkit::set_mode(&state, 0o755);
        let config = base.path.join("pam_otp.toml");
        write_mode(
            &config,
            // The built libpq helper, for db init.
            format!(
                "store = {store:?}\nstate_dir = {:?}\n[postgresql]\n{}",
                state.to_str().unwrap(),
                testkit::pg::helper_line()
            ),
            0o644,
        );
        let sink = LogSink::new();
        // As /dev/log is: anyone may log (a user's own commands too).
        testkit::set_mode(&sink.path, 0o666);
        Setup { base, config, sink }
    }

    /// otp-enroll as root with `args`, SUDO_USER set as sudo would.
    fn root(&self, args: &[&str]) -> Command {
        let mut cmd = enroll();
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env("SUDO_USER", "tester");
        cmd
    }

    /// otp-enroll as `user`, with no SUDO_USER.
    fn as_user(&self, user: &TestUser, args: &[&str]) -> Command {
        let mut cmd = enroll_as(user);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("SUDO_USER");
        cmd
    }

    /// Runs `cmd` with `/dev/log` being the sink: its output and the lines
    /// it logged.
    fn logged(&self, cmd: Command, stdin: &str) -> (Output, Vec<String>) {
        let mut outer = Command::new("unshare");
        outer
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(NAMESPACE_SCRIPT)
            .arg(&self.sink.path)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => outer.env(k, v),
                None => outer.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            outer.current_dir(dir);
        }
        let out = run(outer, stdin);
        (out, self.sink.lines())
    }

    /// Runs `cmd`, which must succeed, and returns its one line.
    fn one_line(&self, cmd: Command, stdin: &str) -> (String, String) {
        let (out, lines) = self.logged(cmd, stdin);
        let printed = ok(&out);
        assert_eq!(lines.len(), 1, "one line: {lines:#?}\n{printed}");
        (lines[0].clone(), printed)
    }

    fn state(&self) -> PathBuf {
        self.base.path.join("state")
    }
}

/// What every line ends with: the acting uid, the login uid as the kernel
/// keeps it for this test (inherited by otp-enroll), the host.
fn who(uid: u32, sudo: Option<&str>) -> String {
    let login = fs::read_to_string("/proc/self/loginuid").map_or("unavailable".into(), |t| match t
        .trim()
    {
        "4294967295" => "unset".to_string(),
        other => other.to_string(),
    });
    let host = nix::unistd::gethostname().unwrap();
    let sudo = sudo.map_or(String::new(), |s| format!(" sudo_user=\"{s}\""));
    format!(
        "uid={uid} loginuid={login}{sudo} host=\"{}\"",
        host.to_string_lossy()
    )
}

/// The line is otp-enroll's (authpriv.notice) and says `fields`, then who.
fn check(line: &str, fields: &str, who: &str) {
    assert!(line.starts_with("<85>otp-enroll["), "{line}");
    let body = line.split_once("]: ").map(|(_, b)| b).unwrap_or("");
    assert!(body.starts_with(fields), "want {fields:?}: {line}");
    assert!(body.ends_with(who), "want ...{who:?}: {line}");
}

fn no_secret(lines: &[String], secrets: &[String]) {
    for line in lines {
        for s in secrets {
            assert!(!line.contains(s.as_str()), "{s:?} logged: {line}");
        }
    }
}

#[test]
#[ignore = "needs root: make test"]
fn every_change_leaves_one_line_with_who_and_never_a_secret() {
    let s = Setup::new("home");
    let u1 = TestUser::new();
    let u2 = TestUser::new();
    let root = who(0, Some("tester"));
    let mut secrets: Vec<String> = vec![
        RFC4226_HEX.into(),
        GOOGLE_KEY.into(),
        HOTP[0].into(),
        HOTP[1].into(),
        HOTP[2].into(),
    ];
    secrets.extend(GOOGLE_CODES.iter().map(|c| c.to_string()));
    let mut all = Vec::new();
    let n1 = u1.name.as_str();

    // new: a record created, its token named.
    let (line, out) = s.one_line(
        s.root(&["--user", n1, "new", "--no-confirm", "--qr", "none"]),
        "",
    );
    check(
        &line,
        &format!("command=new user=\"{n1}\" store=home record=created tokens=\"app\" exit=0 "),
        &root,
    );
    secrets.push(printed_key(&out));
    secrets.extend(printed_codes(&out));
    all.push(line);

    // new --add: the one token added.
    let (line, out) = s.one_line(
        s.root(&[
            "--user",
            n1,
            "new",
            "--add",
            "--id",
            "phone",
            "--no-confirm",
            "--qr",
            "none",
        ]),
        "",
    );
    check(
        &line,
        &format!("command=new user=\"{n1}\" store=home record=updated tokens=\"phone\" exit=0 "),
        &root,
    );
    secrets.push(printed_key(&out));
    all.push(line);

    // token: a hardware token, by its serial; the seed and the code stay out.
    let (line, _) = s.one_line(
        s.root(&[
            "--user", n1, "token", "--serial", "OATH1", "--secret", "-", "--code", HOTP[0],
        ]),
        RFC4226_HEX,
    );
    check(
        &line,
        &format!(
            "command=token user=\"{n1}\" store=home record=updated tokens=\"OATH1\" serials=\"OATH1\" exit=0 "
        ),
        &root,
    );
    all.push(line);

    // resync: the token whose counter moved; the two codes stay out.
    let (line, _) = s.one_line(
        s.root(&["--user", n1, "resync", "--token", "OATH1", HOTP[1], HOTP[2]]),
        "",
    );
    check(
        &line,
        &format!(
            "command=resync user=\"{n1}\" store=home record=updated tokens=\"OATH1\" serials=\"OATH1\" exit=0 "
        ),
        &root,
    );
    all.push(line);

    // scratch: how many codes, never which.
    let (line, out) = s.one_line(s.root(&["--user", n1, "scratch", "-n", "3"]), "");
    check(
        &line,
        &format!(
            "command=scratch user=\"{n1}\" store=home record=updated emergency_codes=3 exit=0 "
        ),
        &root,
    );
    let codes = printed_codes(&out);
    assert_eq!(codes.len(), 3, "{out}");
    secrets.extend(codes);
    all.push(line);

    // unlock with nothing to clear changes nothing: no line.
    let (out, lines) = s.logged(s.root(&["--user", n1, "unlock"]), "");
    ok(&out);
    assert_eq!(lines, Vec::<String>::new());
    // With failures recorded, it clears them.
    let mut f = SecretFile::parse(&fs::read_to_string(u1.secret_path()).unwrap()).unwrap();
    f.state.failures = 3;
    f.state.last_failure = 1_000;
    u1.write_secret(&f.to_text().unwrap());
    let (line, _) = s.one_line(s.root(&["--user", n1, "unlock"]), "");
    check(
        &line,
        &format!("command=unlock user=\"{n1}\" store=home record=updated lockout=cleared exit=0 "),
        &root,
    );
    all.push(line);

    // disable, enable, expire (issue 31): the token they changed.
    for (args, command) in [
        (&["disable", "--token", "phone"][..], "disable"),
        (&["enable", "--token", "phone"][..], "enable"),
        (&["expire", "--token", "phone", "2999-01-01"][..], "expire"),
        (&["expire", "--token", "phone", "never"][..], "expire"),
    ] {
        let mut full = vec!["--user", n1];
        full.extend_from_slice(args);
        let (line, _) = s.one_line(s.root(&full), "");
        check(
            &line,
            &format!(
                "command={command} user=\"{n1}\" store=home record=updated tokens=\"phone\" exit=0 "
            ),
            &root,
        );
        all.push(line);
    }
    // Enabling a token that is not disabled changes nothing: no line.
    let (out, lines) = s.logged(s.root(&["--user", n1, "enable", "--token", "phone"]), "");
    ok(&out);
    assert_eq!(lines, Vec::<String>::new());

    // temp-code (issue 31): made, with its uses and expiry; revoked. Never
    // the code it printed.
    let (line, printed) = s.one_line(
        s.root(&["--user", n1, "temp-code", "--uses", "2", "--valid", "1h"]),
        "",
    );
    check(
        &line,
        &format!(
            "command=temp-code user=\"{n1}\" store=home record=updated temp_code=made \
             temp_code_uses=2 temp_code_expires="
        ),
        &root,
    );
    let code: String = printed
        .lines()
        .find(|l| l.trim().len() == 9 && l.trim().as_bytes()[4] == b' ')
        .map(|l| l.chars().filter(char::is_ascii_digit).collect())
        .unwrap_or_else(|| panic!("no code printed: {printed}"));
    no_secret(std::slice::from_ref(&line), &[code]);
    all.push(line);
    let (line, _) = s.one_line(s.root(&["--user", n1, "temp-code", "--revoke"]), "");
    check(
        &line,
        &format!(
            "command=temp-code user=\"{n1}\" store=home record=updated temp_code=removed exit=0 "
        ),
        &root,
    );
    all.push(line);
    // Revoking what is not there changes nothing: no line.
    let (out, lines) = s.logged(s.root(&["--user", n1, "temp-code", "--revoke"]), "");
    ok(&out);
    assert_eq!(lines, Vec::<String>::new());
    // exempt, unexempt, require (issue 31): the exemption and the mark,
    // never a line for a command that changed nothing.
    let until = otp_core::date::format_unix(testkit::now() / 86_400 * 86_400 + 2 * 86_400);
    let (line, _) = s.one_line(
        s.root(&[
            "--user",
            n1,
            "exempt",
            "--until",
            &until[..10],
            "--reason",
            "phone lost",
        ]),
        "",
    );
    check(
        &line,
        &format!(
            "command=exempt user=\"{n1}\" exemption=granted exempt_until=\"{until}\" \
             reason=\"phone lost\" exit=0 "
        ),
        &root,
    );
    all.push(line);
    let (line, _) = s.one_line(s.root(&["--user", n1, "unexempt"]), "");
    check(
        &line,
        &format!("command=unexempt user=\"{n1}\" exemption=withdrawn exit=0 "),
        &root,
    );
    all.push(line);
    for args in [&["unexempt"][..], &["require"]] {
        let mut full = vec!["--user", n1];
        full.extend_from_slice(args);
        let (out, lines) = s.logged(s.root(&full), "");
        ok(&out);
        assert_eq!(lines, Vec::<String>::new(), "{args:?}");
    }
    let u3 = TestUser::new();
    let n3 = u3.name.as_str();
    let (line, _) = s.one_line(s.root(&["--user", n3, "require"]), "");
    check(
        &line,
        &format!("command=require user=\"{n3}\" pending=set exit=0 "),
        &root,
    );
    all.push(line);

    // remove --token: that token.
    let (line, _) = s.one_line(
        s.root(&["--user", n1, "remove", "--token", "phone", "-y"]),
        "",
    );
    check(
        &line,
        &format!("command=remove user=\"{n1}\" store=home record=updated tokens=\"phone\" exit=0 "),
        &root,
    );
    all.push(line);

    // import-google: a record created for another user.
    let ga = u2.home.join(".google_authenticator");
    u2.write_owned(
        &ga,
        format!(
            "{GOOGLE_KEY}\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n{}\n{}\n",
            GOOGLE_CODES[0], GOOGLE_CODES[1]
        ),
        0o600,
    );
    let n2 = u2.name.as_str();
    let (line, _) = s.one_line(s.root(&["--user", n2, "import-google"]), "");
    check(
        &line,
        &format!(
            "command=import-google user=\"{n2}\" store=home record=created tokens=\"app\" exit=0 "
        ),
        &root,
    );
    all.push(line);

    // reset: the record removed (every token named) and the mark set, in
    // one line.
    let (line, _) = s.one_line(s.root(&["--user", n1, "reset", "-y"]), "");
    check(
        &line,
        &format!(
            "command=reset user=\"{n1}\" store=home record=removed tokens=\"app,OATH1\" serials=\"OATH1\" pending=set exit=0 "
        ),
        &root,
    );
    all.push(line);

    // migrate: the copy made in the system store (the home file stays).
    let (line, _) = s.one_line(s.root(&["--user", n2, "migrate", "--to", "system"]), "");
    check(
        &line,
        &format!(
            "command=migrate user=\"{n2}\" store=system record=created tokens=\"app\" exit=0 "
        ),
        &root,
    );
    all.push(line);

    // Refused before anything changed: no line. A plain user naming
    // someone else; a wrong code; a usage error.
    for (cmd, code) in [
        (s.as_user(&u2, &["--user", n1, "remove", "-y"]), 1),
        (
            s.root(&[
                "--user",
                n2,
                "token",
                "--serial",
                "X1",
                "--secret",
                RFC4226_HEX,
                "--code",
                "000000",
            ]),
            1,
        ),
        (s.root(&["--user", n2, "scratch", "-n", "99"]), 2),
        (s.as_user(&u2, &["report"]), 1),
    ] {
        let (out, lines) = s.logged(cmd, "");
        fails(&out, code);
        assert_eq!(lines, Vec::<String>::new(), "{}", text(&out));
    }

    // A user on their own file: their uid, no SUDO_USER.
    let (line, _) = s.one_line(s.as_user(&u2, &["remove", "-y"]), "");
    check(
        &line,
        &format!("command=remove user=\"{n2}\" store=home record=removed tokens=\"app\" exit=0 "),
        &who(u2.uid, None),
    );
    all.push(line);

    // Reading changes nothing: no line.
    for args in [
        &["--user", n1, "status"][..],
        &["--user", n2, "list", "--json"],
    ] {
        let (_, lines) = s.logged(s.root(args), "");
        assert_eq!(lines, Vec::<String>::new(), "{args:?}");
    }
    assert!(s.state().join("pending").join(n1).exists());
    no_secret(&all, &secrets);
}

#[test]
#[ignore = "needs root: make test"]
fn inventory_changes_are_recorded_with_the_user_they_concern() {
    let s = Setup::new("system");
    let user = TestUser::new();
    let n = user.name.as_str();
    let root = who(0, Some("tester"));
    let csv = s.base.path.join("vendor.csv");
    write_mode(
        &csv,
        format!("INV-1,{RFC4226_HEX}\nINV-2,{RFC4226_HEX}\n"),
        0o600,
    );
    let mut all = Vec::new();
    let (line, _) = s.one_line(s.root(&["inventory", "import", csv.to_str().unwrap()]), "");
    check(
        &line,
        "command=inventory-import inventory=imported count=2 serials=\"INV-1,INV-2\" exit=0 ",
        &root,
    );
    all.push(line);

    // Assigned from the inventory: the user's line says so.
    let (line, _) = s.one_line(
        s.root(&["--user", n, "token", "--serial", "INV-1", "--code", HOTP[0]]),
        "",
    );
    check(
        &line,
        &format!(
            "command=token user=\"{n}\" store=system record=created tokens=\"INV-1\" serials=\"INV-1\" inventory=assigned inventory_serials=\"INV-1\" exit=0 "
        ),
        &root,
    );
    all.push(line);

    // Returned by remove.
    let (line, _) = s.one_line(s.root(&["--user", n, "remove", "-y"]), "");
    check(
        &line,
        &format!(
            "command=remove user=\"{n}\" store=system record=removed tokens=\"INV-1\" serials=\"INV-1\" inventory=returned inventory_serials=\"INV-1\" exit=0 "
        ),
        &root,
    );
    all.push(line);

    let (line, _) = s.one_line(s.root(&["inventory", "remove", "INV-2"]), "");
    check(
        &line,
        "command=inventory-remove inventory=removed count=1 serials=\"INV-2\" exit=0 ",
        &root,
    );
    all.push(line);

    // Listing, and a refused removal, change nothing.
    for (args, code) in [
        (&["inventory", "list"][..], 0),
        (&["inventory", "list", "--json"], 0),
        (&["inventory", "remove", "NOPE"], 1),
    ] {
        let (out, lines) = s.logged(s.root(args), "");
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
        assert_eq!(lines, Vec::<String>::new(), "{args:?}");
    }
    let (out, lines) = s.logged(s.as_user(&user, &["inventory", "list"]), "");
    fails(&out, 1);
    assert_eq!(lines, Vec::<String>::new());
    no_secret(&all, &[RFC4226_HEX.into(), HOTP[0].into()]);
}

#[test]
#[ignore = "needs root: make test"]
fn db_init_records_what_it_did_to_the_schema_and_never_the_connection() {
    let s = Setup::new("home");
    let pg = testkit::pg::Postgres::start();
    let conninfo = pg.super_conninfo();
    let init = || s.root(&["db", "init", "--conninfo", &conninfo]);
    let (line, _) = s.one_line(init(), "");
    check(
        &line,
        &format!(
            "command=db-init schema=\"created version {}\" exit=0 ",
            otp_core::store::postgresql::SCHEMA_VERSION
        ),
        &who(0, Some("tester")),
    );
    assert!(
        !line.contains(&conninfo) && !line.contains("dbname"),
        "{line}"
    );
    // Run again it changes nothing: no line.
    let (out, lines) = s.logged(init(), "");
    ok(&out);
    assert_eq!(lines, Vec::<String>::new());
}
