//! Per-user rollout in the fleet database (issue 31, items 5 and 7;
//! schema version 3), against a private PostgreSQL the test starts
//! (`testkit::pg`):
//! - the SQL (`admin_set_exemption_at`, `login_info_at`, as the owner with
//!   the time given): an exemption is stamped with the time given, holds
//!   at its end − 1 s and not at its end nor 1 s after, is refused past
//!   settings.max_exemption (and past the admin's own maximum), one
//!   written by other means that is longer is never given to a host,
//!   lowering the setting ends those it no longer covers; only the owner
//!   changes the setting (at most 366 days), the host role cannot grant
//!   one, nobody but the owner calls the *_at function; every name gets
//!   the same answer's shape;
//! - through the real otp-enroll and the real module (pamtester) on two
//!   hosts, each with its own role and a far `TZ` in the caller's
//!   environment: an exemption granted on one host with `--until` a few
//!   seconds ahead lets the user in without a code on the other, and not
//!   once it ended; a forged longer one is refused; a deny rule still
//!   denies; a host's own shorter `max_exemption` refuses it; `status`, `list` and `report` show it; `require` and
//!   `unexempt` withdraw it, `require` keeps the account's uid and is
//!   refused for a user whose only token is disabled; `unlock` clears the
//!   database's tally of a user without a token;
//! - a recycled name: the old account's record, exemption and `require`
//!   mark are refused to the new account, `report` shows them, and
//!   `remove --orphans` removes them (audited), leaving the other users
//!   alone; `reset`'s mark keeps the account's uid.

use std::process::{Command, Output};

use testkit::fixtures::{output, AUTHINFO_UNAVAIL};
use testkit::fleet::{db_now, host};
use testkit::harness::hotp_codes;
use testkit::pg::Postgres;
use testkit::syslog::{last_decision, logged_run_in_zone, LogSink};
use testkit::{
    otp_enroll, otp_enroll_ok, require_root, PamService, TestUser, FAR_ZONES, KEY_HEX, PROMPT,
};

const DAY: u64 = 86_400;
/// An exemption's end in the SQL tests.
const D: u64 = 1_800_000_000;
/// pam_otp with forward_pass before a password module: the password it
/// asks and hands on is the first factor an exemption needs (pam_permit
/// stands for pam_unix here).
const FORWARD_PASS: &str =
    "auth required {module} config={config} forward_pass\nauth required pam_permit.so\n";
/// What `login_info_at` says of an exemption: until|granted|reason|uid.
const EXEMPTION: &str = "coalesce(exempt_until::text, '-') || '|' || coalesce(exempt_granted::text, '-') || '|' || coalesce(exempt_reason, '-') || '|' || coalesce(exempt_uid::text, '-')";

fn login_info_at(pg: &Postgres, user: &str, at: u64) -> String {
    pg.psql_ok(&format!(
        "SELECT {EXEMPTION} FROM pam_otp.login_info_at('{user}', 'sshd', NULL, 0, {at})"
    ))
}

fn grant_at(pg: &Postgres, user: &str, until: &str, max: &str, at: u64) -> Output {
    pg.psql(&format!(
        "SELECT until || '|' || granted FROM pam_otp.admin_set_exemption_at('{user}', 1001, {until}, {max}, 'uid=0', 'phone lost', {at})"
    ))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "needs root: make test"]
fn the_database_grants_bounds_and_gives_an_exemption_around_its_end() {
    require_root();
    let pg = Postgres::with_schema();
    assert_eq!(
        pg.psql_ok("SELECT max_exemption FROM pam_otp.settings"),
        "30"
    );
    let granted = D - 3 * DAY;
    let out = grant_at(&pg, "alice", &D.to_string(), "NULL", granted);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("{D}|{granted}"));
    // Who: the role that connected, then what otp-enroll said.
    assert_eq!(
        pg.psql_ok("SELECT by FROM pam_otp.exemptions WHERE name = 'alice'"),
        "db_role=\"postgres\" uid=0"
    );
    let holds = format!("{D}|{granted}|phone lost|1001");
    assert_eq!(login_info_at(&pg, "alice", D - 1), holds, "until − 1 s");
    assert_eq!(login_info_at(&pg, "alice", D), "-|-|-|-", "until");
    assert_eq!(login_info_at(&pg, "alice", D + 1), "-|-|-|-", "until + 1 s");
    assert_eq!(login_info_at(&pg, "alice", granted), holds, "granted");
    assert_eq!(
        login_info_at(&pg, "alice", granted - 1),
        "-|-|-|-",
        "before it was granted"
    );
    // Every name gets the same shape: one row, ten columns.
    for name in ["alice", "nobody-here"] {
        assert_eq!(
            pg.psql_ok(&format!(
                "SELECT (SELECT count(*) FROM jsonb_object_keys(to_jsonb(l))) FROM pam_otp.login_info_at('{name}', 'sshd', NULL, 0, {D}) l"
            )),
            "10",
            "{name}"
        );
    }

    // At most max_exemption days after it is granted, to the second.
    let g = D - 100 * DAY;
    let longest = g + 30 * DAY;
    assert!(grant_at(&pg, "bob", &longest.to_string(), "NULL", g)
        .status
        .success());
    let over = grant_at(&pg, "bob", &(longest + 1).to_string(), "NULL", g);
    assert!(!over.status.success(), "{over:?}");
    assert!(
        stderr(&over).contains("more than max_exemption"),
        "{over:?}"
    );
    // Said with times an admin reads, in UTC whatever the session's zone.
    let utc = otp_core::date::format_unix;
    assert!(
        stderr(&over).contains(&format!(
            "({}) is more than max_exemption (30 days in the database) after it is granted ({}): the longest is {}",
            utc(longest + 1),
            utc(g),
            utc(longest)
        )),
        "{over:?}"
    );
    assert_eq!(
        pg.psql_ok("SELECT until FROM pam_otp.exemptions WHERE name = 'bob'"),
        longest.to_string(),
        "the refused one changed nothing"
    );
    // The admin's own maximum may only shorten it; no end: the longest.
    assert!(!grant_at(&pg, "bob", &(g + 3601).to_string(), "3600", g)
        .status
        .success());
    assert_eq!(
        stdout(&grant_at(&pg, "bob", "NULL", "3600", g)),
        format!("{}|{g}", g + 3600)
    );
    assert_eq!(
        stdout(&grant_at(&pg, "bob", "NULL", "NULL", g)),
        format!("{longest}|{g}")
    );
    // Not in the past, nor at the very time of granting.
    assert!(!grant_at(&pg, "bob", &g.to_string(), "NULL", g)
        .status
        .success());

    // A row written by other means, longer than the setting: never given
    // to a host, at any time it covers.
    pg.psql_ok(&format!(
        "INSERT INTO pam_otp.exemptions (name, uid, until, granted, by, reason) VALUES ('carol', 1003, {D}, {}, 'forged', 'forged')",
        D - 30 * DAY - 1
    ));
    for at in [D - 30 * DAY, D - DAY, D - 1] {
        assert_eq!(login_info_at(&pg, "carol", at), "-|-|-|-", "at {at}");
    }
    // Lowering the setting ends what it no longer covers; raising it back
    // gives it back (nothing was rewritten).
    pg.psql_ok("UPDATE pam_otp.settings SET max_exemption = 2");
    assert_eq!(login_info_at(&pg, "alice", D - 1), "-|-|-|-");
    let refused = grant_at(&pg, "dave", &(D + 2 * DAY + 1).to_string(), "NULL", D);
    assert!(!refused.status.success(), "{refused:?}");
    pg.psql_ok("UPDATE pam_otp.settings SET max_exemption = 0");
    let off = grant_at(&pg, "dave", &(D + 1).to_string(), "NULL", D);
    assert!(stderr(&off).contains("exemptions are off"), "{off:?}");
    pg.psql_ok("UPDATE pam_otp.settings SET max_exemption = 30");
    assert_eq!(login_info_at(&pg, "alice", D - 1), holds);
    // At most a year.
    assert!(!pg
        .psql("UPDATE pam_otp.settings SET max_exemption = 367")
        .status
        .success());
    pg.psql_ok("UPDATE pam_otp.settings SET max_exemption = 366");
    pg.psql_ok("UPDATE pam_otp.settings SET max_exemption = 30");

    // Only the owner changes the setting or calls the *_at function; the
    // host role cannot grant, read or withdraw one.
    pg.psql_ok(
        "CREATE ROLE ops0 LOGIN IN ROLE pam_otp_admin; CREATE ROLE web0 LOGIN IN ROLE pam_otp_host",
    );
    for (role, sql) in [
        ("ops0", "UPDATE pam_otp.settings SET max_exemption = 366"),
        (
            "ops0",
            "INSERT INTO pam_otp.exemptions VALUES ('eve', 1, 2, 1, '', '')",
        ),
        (
            "ops0",
            "SELECT * FROM pam_otp.admin_set_exemption_at('eve', 1, NULL, NULL, '', '', 0)",
        ),
        (
            "web0",
            "SELECT * FROM pam_otp.admin_set_exemption('eve', 1, NULL, NULL, '', '')",
        ),
        ("web0", "SELECT pam_otp.admin_unexempt('alice')"),
        ("web0", "SELECT * FROM pam_otp.admin_exemptions(NULL)"),
        ("web0", "SELECT * FROM pam_otp.admin_owners()"),
        ("web0", "SELECT pam_otp.admin_clear_unenrolled('alice')"),
    ] {
        let out = pg.psql_as(role, sql);
        assert!(!out.status.success(), "{role}: {sql}: {out:?}");
        assert!(stderr(&out).contains("permission denied"), "{out:?}");
    }
    // The admin role grants through the function, stamped by the clock.
    let out = pg.psql_as(
        "ops0",
        "SELECT until - granted FROM pam_otp.admin_set_exemption('eve', 1005, NULL, 600, 'uid=0', '')",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "600");
    assert_eq!(
        pg.psql_ok("SELECT abs(granted - extract(epoch FROM now())::bigint) < 5 FROM pam_otp.exemptions WHERE name = 'eve'"),
        "t"
    );
    let out = pg.psql_as("ops0", "SELECT pam_otp.admin_unexempt('eve')");
    assert_eq!(stdout(&out), "t", "{out:?}");
    let out = pg.psql_as("ops0", "SELECT pam_otp.admin_unexempt('eve')");
    assert_eq!(stdout(&out), "f", "{out:?}");
}

/// One login on `pam` answering `input`, `TZ` in pamtester's environment:
/// whether it succeeded, what the user saw, the module's decision line.
fn login(
    pam: &PamService,
    sink: &LogSink,
    user: &str,
    tz: &str,
    input: &str,
) -> (bool, String, String) {
    let (ok, seen, lines) = login_lines(pam, sink, user, tz, input);
    (ok, seen, last_decision(&lines))
}

/// [`login`] with every line the module logged.
fn login_lines(
    pam: &PamService,
    sink: &LogSink,
    user: &str,
    tz: &str,
    input: &str,
) -> (bool, String, Vec<String>) {
    let (run, lines) = logged_run_in_zone(pam, sink, user, tz, input);
    (run.success, output(&run), lines)
}

/// `t` as RFC 3339 in UTC+14, as a far-east admin would write it.
fn far_east(t: u64) -> String {
    let out = Command::new("date")
        .env("TZ", "UTC")
        .arg("-d")
        .arg(format!("@{}", t + 14 * 3600))
        .arg("+%Y-%m-%dT%H:%M:%S+14:00")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
#[ignore = "needs root: make test"]
fn an_exemption_granted_on_one_host_holds_on_another_until_it_ends() {
    require_root();
    let pg = Postgres::with_schema();
    let user = TestUser::new();
    let u = user.name.as_str();
    let [east, west] = FAR_ZONES;
    // web1's admin may grant 60 days; the database allows 30.
    let web1 = host(&pg, "web1", FORWARD_PASS, "max_exemption = 60\n");
    let web2 = host(&pg, "web2", FORWARD_PASS, "");
    // A host whose own maximum is shorter than the database's (none).
    let strict = host(&pg, "web4", FORWARD_PASS, "max_exemption = 0\n");
    // A host whose rule denies this user whatever else holds.
    let denier = host(
        &pg,
        "web3",
        FORWARD_PASS,
        &format!("[[rule]]\nusers = [\"{u}\"]\notp = \"deny\"\n"),
    );
    let sink = LogSink::new();
    let codes = hotp_codes(KEY_HEX, 0, 6);
    otp_enroll_ok(
        &web1,
        u,
        east,
        &[
            "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
        ],
    );

    // Past the database's maximum, though within web1's: refused by the
    // database, nothing kept.
    let now = db_now(&pg);
    let out = otp_enroll(
        &web1,
        Some(u),
        west,
        &["exempt", "--until", &far_east(now + 40 * DAY)],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("max_exemption"), "{out:?}");
    assert_eq!(pg.psql_ok("SELECT count(*) FROM pam_otp.exemptions"), "0");

    // A forged longer one (written by the owner, past the database's
    // maximum): a code is asked, on every host.
    pg.psql_ok(&format!(
        "INSERT INTO pam_otp.exemptions (name, uid, until, granted, by, reason) VALUES ('{u}', {}, {}, {}, 'forged', 'forged')",
        user.uid,
        now + 30 * DAY,
        now - 2
    ));
    let (ok, seen, line) = login(&web2, &sink, u, east, "hunter2\n");
    assert!(!ok, "forged: {seen} {line}");
    assert!(!line.contains("exempt"), "{line}");
    let (ok, seen, line) = login(&web2, &sink, u, east, &format!("hunter2{}\n", codes[1]));
    assert!(ok, "a code logs in: {seen} {line}");

    // Ten seconds from the database's now, written in UTC+14, on web1.
    let end = db_now(&pg) + 10;
    let out = otp_enroll_ok(
        &web1,
        u,
        west,
        &[
            "exempt",
            "--until",
            &far_east(end),
            "--reason",
            "phone lost",
        ],
    );
    assert!(out.contains("no code asked until"), "{out}");
    let kept = pg.psql_ok(&format!(
        "SELECT until || '|' || uid || '|' || reason || '|' || (by LIKE 'db_role=\"ops\" uid=0 %') FROM pam_otp.exemptions WHERE name = '{u}'"
    ));
    assert_eq!(kept, format!("{end}|{}|phone lost|true", user.uid));
    // Shown by status, list and report, in text and JSON, on web2.
    let json = otp_enroll_ok(&web2, u, east, &["status", "--json"]);
    assert!(json.contains(&format!("\"until\":{end}")), "{json}");
    assert!(json.contains("\"reason\":\"phone lost\""), "{json}");
    assert!(json.contains("\"active\":true"), "{json}");
    let list = otp_enroll_ok(&web2, u, east, &["list"]);
    assert!(list.contains("exempt until"), "{list}");
    let out = otp_enroll(&web2, None, east, &["report", "--json"]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let row = doc["users"]
        .as_array()
        .and_then(|users| users.iter().find(|r| r["user"] == u))
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(row["exemption"]["until"], end, "{row}");
    assert_eq!(row["exemption"]["active"], true, "{row}");

    // web2 lets the user in without a code; the deny rule still denies.
    let (ok, seen, line) = login(&web2, &sink, u, east, "hunter2\n");
    assert!(ok, "exempt: {seen} {line}");
    assert!(!seen.contains(PROMPT), "{seen}");
    assert!(
        line.contains("exempt until") && line.contains("phone lost"),
        "{line}"
    );
    let (ok, seen, line) = login(&denier, &sink, u, west, "hunter2\n");
    assert!(!ok, "deny rule: {seen} {line}");
    // A host's own max_exemption only shortens it.
    let (ok, seen, lines) = login_lines(&strict, &sink, u, east, "hunter2\n");
    let lines = lines.join("\n");
    assert!(!ok, "max_exemption = 0 on this host: {seen} {lines}");
    assert!(lines.contains("longer than max_exemption (0 s)"), "{lines}");
    // Once it ended (by the database's clock), a code is asked again.
    while db_now(&pg) < end {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let (ok, seen, line) = login(&web2, &sink, u, west, "hunter2\n");
    assert!(!ok, "the exemption ended: {seen} {line}");
    assert!(!line.contains("exempt until"), "{line}");
    let (ok, seen, line) = login(&web1, &sink, u, east, &format!("hunter2{}\n", codes[2]));
    assert!(ok, "{seen} {line}");

    // unexempt withdraws it (audited); require keeps an enrolled user as
    // is and refuses one whose only token is disabled.
    otp_enroll_ok(&web1, u, east, &["exempt", "--reason", "again"]);
    let out = otp_enroll_ok(&web2, u, west, &["unexempt"]);
    assert!(out.contains("exemption withdrawn"), "{out}");
    assert_eq!(pg.psql_ok("SELECT count(*) FROM pam_otp.exemptions"), "0");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT string_agg(command, ',' ORDER BY id) FROM pam_otp.audit WHERE kind = 'change' AND username = '{u}' AND command LIKE '%exempt'"
        )),
        "exempt,exempt,unexempt"
    );
    otp_enroll_ok(&web1, u, east, &["disable", "--token", "OATH1"]);
    let out = otp_enroll(&web1, Some(u), east, &["require"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("none of them accepts codes now"),
        "{out:?}"
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT pending FROM pam_otp.users WHERE name = '{u}'"
        )),
        "f"
    );
    // reset's mark (set first, the tokens removed then) is this account's.
    otp_enroll_ok(&web2, u, west, &["reset", "--yes"]);
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT pending || ':' || coalesce(uid::text, 'none') || ':' || (SELECT count(*) FROM pam_otp.tokens) FROM pam_otp.users WHERE name = '{u}'"
        )),
        format!("true:{}:0", user.uid)
    );

    // A user without a token: require withdraws their exemption and
    // marks them with their uid; unlock clears the database's tally.
    let other = TestUser::new();
    let o = other.name.as_str();
    otp_enroll_ok(
        &web2,
        o,
        west,
        &["exempt", "--until", &far_east(db_now(&pg) + 3600)],
    );
    let out = otp_enroll_ok(&web1, o, east, &["require"]);
    assert!(out.contains("exemption withdrawn"), "{out}");
    assert!(
        out.contains("will set up a token at the next login"),
        "{out}"
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT pending || ':' || uid || ':' || (SELECT count(*) FROM pam_otp.exemptions) FROM pam_otp.users WHERE name = '{o}'"
        )),
        format!("true:{}:0", other.uid)
    );
    // (status exits 1 for a user without a token.)
    let status = stdout(&otp_enroll(&web2, Some(o), west, &["status", "--json"]));
    assert!(
        status.contains("\"pending\":true") && status.contains("\"exemption\":null"),
        "{status}"
    );
    pg.psql_ok(&format!(
        "INSERT INTO pam_otp.unenrolled (name, failures, last_failure) VALUES ('{o}', 7, {})",
        db_now(&pg)
    ));
    otp_enroll_ok(&web2, o, east, &["unlock"]);
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT count(*) FROM pam_otp.unenrolled WHERE name = '{o}'"
        )),
        "0"
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT count(*) FROM pam_otp.audit WHERE kind = 'change' AND username = '{o}' AND command = 'unlock'"
        )),
        "1"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn a_recycled_name_is_refused_and_remove_orphans_clears_the_database() {
    require_root();
    let pg = Postgres::with_schema();
    let [east, west] = FAR_ZONES;
    let web1 = host(&pg, "web1", FORWARD_PASS, "");
    let web2 = host(&pg, "web2", FORWARD_PASS, "");
    let sink = LogSink::new();
    let mut user = TestUser::new();
    let kept = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 4);
    for who in [user.name.as_str(), kept.name.as_str()] {
        otp_enroll_ok(
            &web1,
            who,
            east,
            &[
                "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
            ],
        );
        otp_enroll_ok(&web1, who, east, &["exempt", "--reason", "travel"]);
    }
    // A user without a token marked by require (with the uid).
    let mut marked = TestUser::new();
    otp_enroll_ok(&web1, &marked.name, east, &["require"]);
    // A record that holds a temporary code alone (the lost phone's token
    // removed): a record all the same.
    let mut coded = TestUser::new();
    otp_enroll_ok(
        &web1,
        &coded.name,
        east,
        &[
            "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
        ],
    );
    otp_enroll_ok(&web1, &coded.name, east, &["temp-code"]);
    otp_enroll_ok(&web1, &coded.name, east, &["remove", "--token", "OATH1"]);
    let old_c = coded.uid;
    coded.recycle();
    let c = coded.name.as_str();
    let old = user.uid;
    user.recycle();
    assert_ne!(user.uid, old);
    let u = user.name.as_str();
    let old_m = marked.uid;
    marked.recycle();
    let m = marked.name.as_str();

    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT pending || ':' || uid FROM pam_otp.users WHERE name = '{m}'"
        )),
        format!("true:{old_m}")
    );
    assert_ne!(marked.uid, old_m);
    // The new account of the marked name is not enrolled by the old mark:
    // missing = "deny" (the default) refuses it as a user without a token.
    let (ok, seen, lines) = login_lines(&web2, &sink, m, east, "hunter2\n");
    let lines = lines.join("\n");
    assert!(!ok && seen.contains("verification code"), "{seen} {lines}");
    assert!(
        lines.contains(&format!(
            "mark of {m} was made for uid {old_m}, not this account (uid {})",
            marked.uid
        )),
        "{lines}"
    );

    // The new account inherits neither the exemption nor the token.
    let (ok, seen, lines) = login_lines(&web2, &sink, u, west, "hunter2\n");
    let lines = lines.join("\n");
    assert!(!ok && seen.contains(AUTHINFO_UNAVAIL), "{seen} {lines}");
    assert!(
        lines.contains(&format!(
            "was granted to uid {old}, not this account (uid {})",
            user.uid
        )),
        "{lines}"
    );
    let (ok, seen, line) = login(&web2, &sink, u, west, &format!("hunter2{}\n", codes[1]));
    assert!(!ok, "{seen} {line}");
    assert!(line.contains(&format!("made for uid {old}")), "{line}");
    // The other user's exemption still holds.
    let (ok, seen, line) = login(&web2, &sink, &kept.name, east, "hunter2\n");
    assert!(ok, "{seen} {line}");

    // The report names the record and the exemption of the old account.
    let out = otp_enroll(&web2, None, west, &["report", "--json"]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let row = doc["users"]
        .as_array()
        .and_then(|users| users.iter().find(|r| r["user"] == u))
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(row["state"], "unreadable", "{row}");
    assert_eq!(row["exemption"]["active"], false, "{row}");

    // remove --orphans removes both, audited, and nothing else.
    let out = otp_enroll(&web1, None, east, &["remove", "--orphans", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(doc["store"], "postgresql", "{doc}");
    let removed: Vec<String> = doc["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["removed"] == true)
        .map(|o| {
            format!(
                "{}:{}:{}",
                o["user"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["recorded_uid"]
            )
        })
        .collect();
    let mut want = vec![
        format!("{u}:exemption:{old}"),
        format!("{u}:record:{old}"),
        format!("{m}:pending_mark:{old_m}"),
        format!("{c}:record:{old_c}"),
    ];
    want.sort();
    assert_eq!(removed, want, "{doc}");
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT count(*) FROM pam_otp.users WHERE name = '{m}'"
        )),
        "0"
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT (SELECT count(*) FROM pam_otp.users WHERE name = '{u}') || ':' || (SELECT count(*) FROM pam_otp.exemptions WHERE name = '{u}') || ':' || (SELECT count(*) FROM pam_otp.exemptions)"
        )),
        "0:0:1"
    );
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT string_agg(detail, ',' ORDER BY id) FROM pam_otp.audit WHERE command = 'remove --orphans' AND username = '{u}'"
        )),
        format!(
            "exemption: made for uid {old}, the account is uid {0},record: made for uid {old}, the account is uid {0}",
            user.uid
        )
    );
    let again = otp_enroll(&web1, None, west, &["remove", "--orphans"]);
    assert!(
        stdout(&again).contains("Nothing left by deleted accounts"),
        "{again:?}"
    );
    // The other user is still exempt: no code.
    let (ok, seen, line) = login(&web1, &sink, &kept.name, west, "hunter2\n");
    assert!(ok, "{seen} {line}");
}
