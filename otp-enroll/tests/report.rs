//! `otp-enroll report` (issue 30) on real stores: the accounts are
//! nss_wrapper's (a private passwd file, never the machine's accounts),
//! the records real files in real homes or in a private state_dir, read
//! by the real program. Every field of `--json` is checked.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::*;
use otp_core::secret_file::{OtpKind, SecretFile, Token};
use serde_json::{json, Value};
use testkit::write_mode;

impl Setup {
    /// Root's "enroll at next login" mark for `name`, as reset leaves it.
    fn mark(&self, name: &str) {
        let dir = self.state().join("pending");
        let _ = fs::create_dir(&dir);
        testkit::set_mode(&dir, 0o700);
        write_mode(&dir.join(name), "# reset\n", 0o600);
    }

    fn report(&self, args: &[&str]) -> Output {
        let mut all = vec!["report"];
        all.extend_from_slice(args);
        run(self.command(&all), "")
    }

    /// `report --json`: the exit status and the object.
    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.report(&all);
        let stdout = stdout(&out);
        assert_eq!(stdout.lines().count(), 1, "one line: {}", text(&out));
        let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (out.status.code().unwrap(), v)
    }
}

/// A record: a TOTP token made at 1000 and last used at 5000, and a
/// hardware HOTP token OATH1 last used at 7000; three emergency codes.
fn two_tokens() -> SecretFile {
    let mut f = SecretFile::with_token(Token::new("app", OtpKind::Totp, vec![7; 20]));
    f.tokens[0].created = Some(1_000);
    f.tokens[0].state.last_used = Some(5_000);
    let mut hw = Token::new("OATH1", OtpKind::Hotp, vec![9; 20]);
    hw.serial = Some("OATH1".into());
    hw.created = Some(2_000);
    hw.state.last_used = Some(7_000);
    f.tokens.push(hw);
    f.scratch_codes = vec!["12345678".into(), "23456789".into(), "34567890".into()];
    f.upgrade();
    f
}

fn one_token() -> SecretFile {
    let mut f = SecretFile::with_token(Token::new("app", OtpKind::Totp, vec![5; 20]));
    f.upgrade();
    f
}

/// A process holding `path`'s lock (as a login holds it while it checks
/// a code) until killed.
fn hold_lock(path: &Path) -> Child {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(120)",
        ])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

fn user<'v>(report: &'v Value, name: &str) -> &'v Value {
    report["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

/// The members every user object has, with `state` and no record.
fn bare(name: &str, account: bool, login_shell: Value, state: &str, pending: bool) -> Value {
    json!({
        "user": name,
        "account": account,
        "login_shell": login_shell,
        "state": state,
        "reason": null,
        "pending": pending,
        "exemption": null,
        "temp_code": null,
        "tokens": [],
        "emergency_codes": null,
        "last_used": null,
        "failures": null,
        "locked_until": null,
    })
}

fn now() -> u64 {
    testkit::now()
}

/// alice as every store reports her: the record of [`two_tokens`], last
/// used at 7000, not locked.
fn alice_as_reported() -> Value {
    json!({
        "user": "alice",
        "account": true,
        "login_shell": true,
        "state": "enrolled",
        "reason": null,
        "pending": false,
        "exemption": null,
        "temp_code": null,
        "tokens": [
            {
                "id": "app", "type": "totp", "serial": null, "created": 1000, "last_used": 5000,
                "state": "active", "not_before": null, "expires": null,
            },
            {
                "id": "OATH1", "type": "hotp", "serial": "OATH1", "created": 2000,
                "last_used": 7000, "state": "active", "not_before": null, "expires": null,
            },
        ],
        "emergency_codes": 3,
        "last_used": 7000,
        "failures": 0,
        "locked_until": null,
    })
}

#[test]
#[ignore = "needs root: make test"]
fn home_report_has_every_state_and_skips_a_home_that_does_not_answer() {
    let s = Setup::new("home");
    let f = &s.fake;
    let alice = f.add("alice", 30001, "/bin/bash");
    f.write_secret(&alice.join(".pam_otp.toml"), 30001, &two_tokens());
    let bob = f.add("bob", 30002, "/bin/bash");
    let mut locked = one_token();
    locked.state.failures = 50;
    locked.state.last_failure = now();
    f.write_secret(&bob.join(".pam_otp.toml"), 30002, &locked);
    f.add("carol", 30003, "/bin/bash");
    f.add("dave", 30004, "/bin/bash");
    s.mark("dave");
    let erin = f.add("erin", 30005, "/bin/bash");
    f.write_secret(&erin.join(".pam_otp.toml"), 30005, &one_token());
    testkit::set_mode(&erin.join(".pam_otp.toml"), 0o644);
    let frank = f.add("frank", 30006, "/bin/bash");
    f.write_secret(&frank.join(".pam_otp.toml"), 30006, &one_token());
    // No login shell, no record: not a user of pam_otp, not listed.
    f.add("svc", 30007, "/usr/sbin/nologin");
    // No login shell, but a record (a VPN-only account): listed.
    let vpn = f.add("vpn", 30008, "/usr/sbin/nologin");
    f.write_secret(&vpn.join(".pam_otp.toml"), 30008, &one_token());
    // A mark for a name that is no account.
    s.mark("ghost");

    let mut holder = hold_lock(&frank.join(".pam_otp.toml"));
    let before = now();
    let (code, r) = s.json(&["--home-timeout", "1"]);
    let out = s.report(&["--home-timeout", "1"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 1, "skipped and unreadable homes: exit 1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    assert_eq!(r["schema"], "otp-enroll.report/1");
    let time = r["time"].as_u64().unwrap();
    assert!(time >= before && time <= now());
    assert_eq!(r["store"], "home");
    assert_eq!(r["home_timeout"], 1);
    assert!(r["passwd_sources"].is_array());
    assert!(r["accounts_complete"].is_boolean());
    let names: Vec<&str> = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["alice", "bob", "carol", "dave", "erin", "frank", "ghost", "root", "vpn"]
    );
    assert_eq!(*user(&r, "alice"), alice_as_reported());
    let b = user(&r, "bob");
    assert_eq!(b["state"], "enrolled");
    assert_eq!(b["failures"], 50);
    let until = b["locked_until"].as_u64().unwrap();
    assert!(until > now(), "{b}");
    assert_eq!(b["tokens"][0]["created"], Value::Null);
    assert_eq!(b["last_used"], Value::Null);
    assert_eq!(
        *user(&r, "carol"),
        bare("carol", true, json!(true), "not_enrolled", false)
    );
    assert_eq!(
        *user(&r, "dave"),
        bare("dave", true, json!(true), "pending", true)
    );
    assert_eq!(
        *user(&r, "ghost"),
        bare("ghost", false, Value::Null, "pending", true)
    );
    assert_eq!(
        *user(&r, "root"),
        bare("root", true, json!(true), "not_enrolled", false)
    );
    let e = user(&r, "erin");
    assert_eq!(e["state"], "unreadable");
    assert!(
        e["reason"].as_str().unwrap().contains("644"),
        "the reason names the mode: {e}"
    );
    assert_eq!(e["tokens"], json!([]));
    let fr = user(&r, "frank");
    assert_eq!(fr["state"], "skipped");
    assert_eq!(fr["reason"], "the home did not answer within 1 s");
    let v = user(&r, "vpn");
    assert_eq!(
        (&v["state"], &v["login_shell"]),
        (&json!("enrolled"), &json!(false))
    );
    assert_eq!(
        r["counts"],
        json!({
            "users": 9, "enrolled": 3, "locked": 1, "pending": 2,
            "not_enrolled": 2, "unreadable": 1, "skipped": 1,
        })
    );
    // No key, no emergency code, in any form.
    let all = r.to_string();
    for secret in ["12345678", "23456789", "[7,7", "BwcH"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }

    // The same in text.
    let t = stdout(&out);
    let row = |name: &str| {
        t.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{t}"))
    };
    assert!(row("alice").contains("enrolled") && row("alice").contains("1970-01-01 01:56 UTC"));
    assert!(row("bob").contains("locked until"), "{t}");
    assert!(row("carol").contains("not enrolled"), "{t}");
    assert!(row("dave").contains("pending"), "{t}");
    assert!(row("ghost").contains("no account"), "{t}");
    assert!(row("erin").contains("unreadable"), "{t}");
    assert!(row("frank").contains("skipped"), "{t}");
    assert!(row("vpn").contains("no login shell"), "{t}");
    // LAST USED as `list` says it: "never" for tokens not used yet, "-"
    // for a user without any.
    let words = |name: &str| {
        row(name)
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(words("vpn")[..4], ["vpn", "enrolled", "1", "never"], "{t}");
    assert_eq!(
        words("carol"),
        ["carol", "not", "enrolled", "-", "-"],
        "{t}"
    );
    assert!(!t.contains("svc"), "{t}");
    assert!(
        t.contains(
            "9 users: 3 enrolled (1 locked), 2 pending, 2 not enrolled, 1 unreadable, 1 skipped."
        ),
        "{t}"
    );
    assert!(
        t.contains("Skipped (the home did not answer within 1 s; see --home-timeout): frank."),
        "{t}"
    );

    // Once the lock is gone, frank's home answers; without erin's file,
    // every account was read: exit 0.
    fs::remove_file(erin.join(".pam_otp.toml")).unwrap();
    let (code, r) = s.json(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(user(&r, "frank")["state"], "enrolled");
    assert_eq!(r["home_timeout"], 2);
}

#[test]
#[ignore = "needs root: make test"]
fn system_report_reads_root_files_and_names_users_without_an_account() {
    let s = Setup::new("system");
    s.fake.add("alice", 30101, "/bin/bash");
    s.fake.add("carol", 30103, "/bin/bash");
    let users = s.state().join("users");
    fs::create_dir(&users).unwrap();
    testkit::set_mode(&users, 0o700);
    let write = |name: &str, f: &SecretFile| {
        write_mode(
            &users.join(format!("{name}.toml")),
            f.to_text().unwrap(),
            0o600,
        )
    };
    write("alice", &two_tokens());
    write("gone", &one_token());
    write_mode(&users.join("broken.toml"), "this is not toml [", 0o600);
    s.mark("alice");
    // A deleted account's mark (uid 30999) under carol's name, given to a
    // new account: a login counts it as no mark, and so does the report.
    s.mark("carol");
    write_mode(
        &s.state().join("pending").join("carol"),
        "# reset\nuid = 30999\n",
        0o600,
    );

    let (code, r) = s.json(&[]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["store"], "system");
    assert_eq!(r["home_timeout"], Value::Null);
    let a = user(&r, "alice");
    assert_eq!(a["state"], "enrolled");
    assert_eq!(a["pending"], true, "a mark beside tokens is shown");
    assert_eq!(a["tokens"].as_array().unwrap().len(), 2);
    assert_eq!(a["emergency_codes"], 3);
    let g = user(&r, "gone");
    assert_eq!(
        (&g["state"], &g["account"]),
        (&json!("enrolled"), &json!(false))
    );
    let b = user(&r, "broken");
    assert_eq!(b["state"], "unreadable");
    assert!(b["reason"].as_str().is_some_and(|s| !s.is_empty()), "{b}");
    assert_eq!(
        *user(&r, "carol"),
        bare("carol", true, json!(true), "not_enrolled", false)
    );
    assert_eq!(
        r["counts"],
        json!({
            "users": 5, "enrolled": 2, "locked": 0, "pending": 0,
            "not_enrolled": 2, "unreadable": 1, "skipped": 0,
        })
    );
    let t = ok(&{
        fs::remove_file(users.join("broken.toml")).unwrap();
        s.report(&[])
    });
    assert!(
        t.contains(
            "4 users: 2 enrolled (0 locked), 0 pending, 2 not enrolled, 0 unreadable, 0 skipped."
        ),
        "{t}"
    );
    assert!(t.contains("reset pending"), "{t}");
    assert!(!t.contains("may be incomplete"), "{t}");
}

#[test]
#[ignore = "needs root: make test"]
fn a_directory_service_makes_the_list_possibly_incomplete() {
    let s = Setup::new("system");
    s.fake.add("alice", 30201, "/bin/bash");
    let nss = s.fake.dir.path.join("nsswitch.conf");
    write_mode(
        &nss,
        "passwd: files [NOTFOUND=continue] sss\ngroup: files sss\n",
        0o644,
    );
    // In a private mount namespace, /etc/nsswitch.conf is that file.
    let in_ns = |args: &[&str]| {
        let inner = s.command(args);
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/nsswitch.conf && exec \"$@\"")
            .arg(&nss)
            .arg(inner.get_program())
            .args(inner.get_args());
        s.fake.apply(&mut cmd);
        run(cmd, "")
    };
    let out = in_ns(&["report", "--json"]);
    let r: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(r["passwd_sources"], json!(["files", "sss"]));
    assert_eq!(r["accounts_complete"], false);
    let t = ok(&in_ns(&["report"]));
    assert!(
        t.contains(
            "The account list may be incomplete: the passwd line of /etc/nsswitch.conf names sss"
        ),
        "{t}"
    );
    // This machine's own nsswitch.conf is whatever it is; the report says
    // what it found there.
    let (_, r) = s.json(&[]);
    assert!(!r["passwd_sources"].as_array().unwrap().is_empty());
}

#[test]
#[ignore = "needs root: make test"]
fn report_is_root_only() {
    let s = Setup::new("home");
    s.fake.add("alice", 30301, "/bin/bash");
    let out = run(as_uid(30301, &s.command(&["report", "--json"])), "");
    let msg = fails(&out, 1);
    assert!(msg.contains("root"), "{msg}");
    assert!(out.stdout.is_empty(), "no object when refused: {msg}");
}

/// A record as `pam_otp.admin_write` takes it (the JSON the store sends).
fn admin_write(pg: &testkit::pg::Postgres, name: &str, record: Value) {
    pg.psql_ok(&format!(
        "SELECT pam_otp.admin_write('{name}', '{record}'::jsonb)"
    ));
}

/// Under postgresql the report is one query (`pam_otp.admin_census`, the
/// admin role's), and the database judges the lock: its clock, and the
/// host's rate limit under its own ceilings (the host asks for 100
/// failures, the database allows 3).
#[test]
#[ignore = "needs root: make test"]
fn postgresql_report_has_every_state_and_the_database_judges_the_lock() {
    let pg = testkit::pg::Postgres::with_schema();
    let s = Setup::new("postgresql");
    let dir = s.fake.dir.path.clone();
    let host = pg.host_conninfo("web1", &dir, 5);
    let admin = pg.admin_conninfo("ops", &dir, 5);
    let fleet = |admin: &str| {
        let cfg = format!(
            "{}\n[rate_limit]\nmax_failures = 100\ninterval = 30\n",
            testkit::pg::fleet_config(&host, admin, &format!("state_dir = {:?}", s.state()))
        );
        write_mode(&s.config, cfg, 0o644);
    };
    fleet(&admin);
    let f = &s.fake;
    for (name, uid) in [("alice", 30401), ("bob", 30402), ("carol", 30403)] {
        f.add(name, uid, "/bin/bash");
    }
    for (name, uid) in [("dave", 30404), ("erin", 30405), ("frank", 30406)] {
        f.add(name, uid, "/bin/bash");
    }
    f.add("svc", 30407, "/usr/sbin/nologin");
    let hex = |b: u8| format!("{b:02x}").repeat(20);
    admin_write(
        &pg,
        "alice",
        json!({
            "tokens": [
                {"id": "app", "type": "totp", "secret": hex(7), "created": 1000, "last_used": 5000},
                {"id": "OATH1", "type": "hotp", "secret": hex(9), "serial": "OATH1",
                 "created": 2000, "last_used": 7000},
            ],
            "scratch_codes": ["12345678", "23456789", "34567890"],
        }),
    );
    // Locked by the database's clock: its failures at its own now.
    let db_now: u64 = pg
        .psql_ok("SELECT extract(epoch FROM clock_timestamp())::bigint")
        .parse()
        .unwrap();
    admin_write(
        &pg,
        "bob",
        json!({"tokens": [{"id": "app", "type": "totp", "secret": hex(5)}],
               "failures": 50, "last_failure": db_now}),
    );
    // dave: reset, to enroll at the next login.
    pg.psql_ok("SELECT pam_otp.admin_set_pending('dave', true)");
    // erin: tokens and a reset mark; a version 1 token (last step only).
    admin_write(
        &pg,
        "erin",
        json!({"pending": true,
               "tokens": [{"id": "old", "type": "totp", "secret": hex(5), "last_step": 100}]}),
    );
    // frank: many failures, long ago: no longer locked.
    admin_write(
        &pg,
        "frank",
        json!({"tokens": [{"id": "app", "type": "totp", "secret": hex(5)}],
               "failures": 50, "last_failure": 1000}),
    );
    // Users the database knows and the passwd does not.
    admin_write(
        &pg,
        "gone",
        json!({"tokens": [{"id": "app", "type": "hotp", "secret": hex(5)}]}),
    );
    pg.psql_ok("SELECT pam_otp.admin_set_pending('ghost', true)");

    let before = now();
    let (code, r) = s.json(&[]);
    let out = s.report(&[]);
    assert_eq!(code, 0, "{r:#}");
    ok(&out);
    assert_eq!(r["schema"], "otp-enroll.report/1");
    let time = r["time"].as_u64().unwrap();
    assert!(time >= before && time <= now());
    assert_eq!(r["store"], "postgresql");
    assert_eq!(r["home_timeout"], Value::Null);
    assert!(r["passwd_sources"].is_array());
    assert!(r["accounts_complete"].is_boolean());
    let names: Vec<&str> = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["alice", "bob", "carol", "dave", "erin", "frank", "ghost", "gone", "root"]
    );
    assert_eq!(*user(&r, "alice"), alice_as_reported());
    // lock_for(50, 3, 30): a day, from the database's last failure.
    assert_eq!(
        *user(&r, "bob"),
        json!({
            "user": "bob",
            "account": true,
            "login_shell": true,
            "state": "enrolled",
            "reason": null,
            "pending": false,
            "exemption": null,
            "temp_code": null,
            "tokens": [{"id": "app", "type": "totp", "serial": null, "created": null, "last_used": null,
                "state": "active", "not_before": null, "expires": null}],
            "emergency_codes": 0,
            "last_used": null,
            "failures": 50,
            "locked_until": db_now + 86_400,
        })
    );
    assert_eq!(
        *user(&r, "carol"),
        bare("carol", true, json!(true), "not_enrolled", false)
    );
    assert_eq!(
        *user(&r, "dave"),
        bare("dave", true, json!(true), "pending", true)
    );
    assert_eq!(
        *user(&r, "erin"),
        json!({
            "user": "erin",
            "account": true,
            "login_shell": true,
            "state": "enrolled",
            "reason": null,
            "pending": true,
            "exemption": null,
            "temp_code": null,
            "tokens": [{"id": "old", "type": "totp", "serial": null, "created": null, "last_used": 3000,
                "state": "active", "not_before": null, "expires": null}],
            "emergency_codes": 0,
            "last_used": 3000,
            "failures": 0,
            "locked_until": null,
        })
    );
    let fr = user(&r, "frank");
    assert_eq!(
        (&fr["state"], &fr["failures"], &fr["locked_until"]),
        (&json!("enrolled"), &json!(50), &Value::Null)
    );
    assert_eq!(
        *user(&r, "ghost"),
        bare("ghost", false, Value::Null, "pending", true)
    );
    let g = user(&r, "gone");
    assert_eq!(
        (
            &g["state"],
            &g["account"],
            &g["login_shell"],
            &g["tokens"][0]["type"]
        ),
        (
            &json!("enrolled"),
            &json!(false),
            &Value::Null,
            &json!("hotp")
        )
    );
    assert_eq!(
        *user(&r, "root"),
        bare("root", true, json!(true), "not_enrolled", false)
    );
    assert_eq!(
        r["counts"],
        json!({
            "users": 9, "enrolled": 5, "locked": 1, "pending": 2,
            "not_enrolled": 2, "unreadable": 0, "skipped": 0,
        })
    );
    let all = r.to_string();
    for secret in ["12345678", "23456789", &hex(7), &hex(9)] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }

    // The same in text, as the file stores print it.
    let t = stdout(&out);
    let row = |name: &str| {
        t.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{t}"))
    };
    assert!(row("alice").contains("enrolled") && row("alice").contains("1970-01-01 01:56 UTC"));
    assert!(
        row("bob").contains("locked until") && row("bob").contains("(50 failed attempts)"),
        "{t}"
    );
    assert!(row("carol").contains("not enrolled"), "{t}");
    assert!(
        row("dave").contains("reset: enrolls at the next login"),
        "{t}"
    );
    assert!(row("erin").contains("reset pending"), "{t}");
    assert!(!row("frank").contains("locked"), "{t}");
    assert!(row("ghost").contains("no account"), "{t}");
    assert!(row("gone").contains("no account"), "{t}");
    assert!(!t.contains("svc"), "{t}");
    assert!(
        t.contains(
            "9 users: 5 enrolled (1 locked), 2 pending, 2 not enrolled, 0 unreadable, 0 skipped."
        ),
        "{t}"
    );

    // A host's role cannot take the census: refused, and nothing printed.
    fleet(&host);
    let out = s.report(&["--json"]);
    let msg = fails(&out, 1);
    assert!(msg.contains("permission denied"), "{msg}");
    assert!(out.stdout.is_empty(), "{msg}");
}

/// Exemptions and require's mark (issue 31) in report, status and list,
/// text and JSON; a forged exemption longer than max_exemption is shown
/// as not honoured.
#[test]
#[ignore = "needs root: make test"]
fn exemptions_and_require_marks_are_shown() {
    let s = Setup::new("home");
    s.fake.add("alice", 30111, "/bin/bash");
    s.fake.add("bob", 30112, "/bin/bash");
    s.fake.add("nora", 30113, "/usr/sbin/nologin");
    let out = run(
        s.command(&["--user", "alice", "exempt", "--reason", "phone on order"]),
        "",
    );
    let said = ok(&out);
    assert!(said.contains("no code asked until"), "{said}");
    ok(&run(s.command(&["--user", "bob", "require"]), ""));
    // Forged by hand: a year long.
    let dir = s.state().join("exempt");
    write_mode(
        &dir.join("nora"),
        "until = 4000000000\ngranted = 1000000000\nby = \"hand\"\nreason = \"\"\n",
        0o600,
    );

    let (_, r) = s.json(&[]);
    let a = user(&r, "alice");
    assert_eq!(a["exemption"]["reason"], "phone on order", "{a}");
    assert_eq!(a["exemption"]["active"], true, "{a}");
    let until = a["exemption"]["until"].as_u64().unwrap();
    let granted = a["exemption"]["granted"].as_u64().unwrap();
    assert_eq!(until - granted, 30 * 86_400, "max_exemption by default");
    assert!(a["exemption"]["by"].as_str().unwrap().starts_with("uid=0 "));
    assert_eq!(user(&r, "bob")["pending"], true);
    assert_eq!(user(&r, "bob")["state"], "pending");
    // No login shell, but an exemption: listed, and not honoured.
    let n = user(&r, "nora");
    assert_eq!(n["exemption"]["active"], false, "{n}");

    let t = ok(&s.report(&[]));
    assert!(t.contains("exempt until"), "{t}");
    assert!(t.contains("phone on order"), "{t}");
    assert!(t.contains("not honoured now"), "{t}");
    // Not enrolled (no token): status exits 1, and still shows the exemption.
    let out = run(s.command(&["--user", "alice", "status"]), "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let st = text(&out);
    assert!(
        st.contains("exempt until") && st.contains("no code asked"),
        "{st}"
    );
    let (code, v) = {
        let out = run(s.command(&["--user", "alice", "status", "--json"]), "");
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        (out.status.code(), v)
    };
    assert_eq!(code, Some(1), "not enrolled");
    assert_eq!(v["exemption"]["until"], until);
    let out = run(s.command(&["--user", "bob", "list", "--json"]), "");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["pending"].clone(), v["exemption"].clone()),
        (json!(true), Value::Null)
    );
    let out = run(s.command(&["--user", "bob", "list"]), "");
    assert!(text(&out).contains("enrollment pending"), "{}", text(&out));

    ok(&run(s.command(&["--user", "alice", "unexempt"]), ""));
    let (_, r) = s.json(&[]);
    assert_eq!(user(&r, "alice")["exemption"], Value::Null);
}
