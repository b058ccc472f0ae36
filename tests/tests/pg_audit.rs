//! The fleet database's audit (issue 30: the table, `otp-enroll audit`,
//! the schema's upgrade), against a private PostgreSQL the test starts
//! (`testkit::pg`), with the real `otp-enroll` and the real module through
//! pamtester:
//! - direct SQL as each role: the admin role can neither update, delete,
//!   truncate nor insert audit rows, nor purge, nor change the retention;
//!   a host role cannot even read them; no role but the owner holds a
//!   write privilege on the table or owns it, and a grant made by hand
//!   does not survive `db init`;
//! - the purge never deletes a row younger than the retention, which
//!   cannot be set below 30 days;
//! - every change `otp-enroll` makes leaves its row (and `list`, `status`
//!   none), read back through `otp-enroll audit --json`, field by field;
//! - a login leaves its verify row with the PAM service and remote host;
//!   a login the database never decides (grace, a skip rule) leaves none;
//! - a populated version 1 database (tests/fixtures/schema-v1.sql, the
//!   schema as first released) is upgraded in place by `db init`, keeps
//!   its data, and then logs in both a version 1 host (its SQL call, as
//!   the host role) and a version 2 one (the real module); before the
//!   upgrade the new module refuses and its log line says why.

use std::fs;
use std::process::{Command, Output, Stdio};

use otp_core::store::postgresql::SCHEMA_VERSION;
use serde_json::Value;
use testkit::fixtures::{output, AUTHINFO_UNAVAIL};
use testkit::harness::hotp_codes;
use testkit::pg::{fleet_config, Postgres};
use testkit::syslog::{logged_run, LogSink};
use testkit::{binary_path, require_root, PamService, TestUser, KEY_B32, KEY_HEX, OTP_ONLY};

/// The connect_timeout the hosts' conninfo sets.
const TIMEOUT: u64 = 5;

/// What the tests' otp-enroll runs claim as SUDO_USER.
const SUDO_USER: &str = "carol";

/// The schema as version 1 of pam_otp shipped it (`git show
/// 095d5fa:otp-core/sql/schema.sql`).
const SCHEMA_V1: &str = include_str!("../fixtures/schema-v1.sql");

/// One host: a private PAM service whose config names the database, with
/// its own login role (`role`, member of pam_otp_host) and certificate,
/// and the admin role `ops` for otp-enroll.
fn host(pg: &Postgres, role: &str, extra: &str) -> PamService {
    let pam = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo(role, &pam.dir, TIMEOUT);
    let admin = pg.admin_conninfo("ops", &pam.dir, TIMEOUT);
    pam.write_config(&fleet_config(&conninfo, &admin, extra));
    pam
}

/// `otp-enroll --config <host's> ARGS` as root, run through sudo as far
/// as otp-enroll can tell (`SUDO_USER`).
fn enroll(pam: &PamService, args: &[&str]) -> Output {
    Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args(args)
        .env("LC_ALL", "C")
        .env("SUDO_USER", SUDO_USER)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn enroll_ok(pam: &PamService, args: &[&str]) -> String {
    let out = enroll(pam, args);
    assert!(
        out.status.success(),
        "otp-enroll {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `otp-enroll audit --json ARGS`, parsed; its envelope checked.
fn audit(pam: &PamService, args: &[&str]) -> Value {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let text = enroll_ok(pam, &all);
    // One object, "schema" its first member.
    assert!(text.starts_with("{\"schema\":"), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(doc["schema"], "otp-enroll.audit/1", "{doc}");
    assert_eq!(doc["store"], "postgresql", "{doc}");
    assert_eq!(doc["record"], "table", "{doc}");
    assert_eq!(doc["facility"], Value::Null, "{doc}");
    for e in entries(&doc) {
        assert_eq!(
            e.as_object().map(|o| o.len()),
            Some(15),
            "every member, null or not: {e}"
        );
    }
    doc
}

fn entries(doc: &Value) -> Vec<Value> {
    doc["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {doc}"))
        .clone()
}

/// Unix time by the database's clock.
fn db_now(pg: &Postgres) -> u64 {
    pg.psql_ok("SELECT extract(epoch FROM clock_timestamp())::bigint")
        .parse()
        .unwrap()
}

/// What otp-enroll finds in /proc/self/loginuid (the test's own, which
/// otp-enroll inherits).
fn login_uid() -> String {
    let v = fs::read_to_string("/proc/self/loginuid").unwrap_or_default();
    match v.trim() {
        "" => "unreadable".into(),
        "4294967295" => "unset".into(),
        v => v.into(),
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// `otp-enroll db init` as the database owner; its stdout.
fn db_init(pg: &Postgres) -> String {
    pg.otp_enroll_db_init()
}

/// `sql` as `role` fails, refused for want of a privilege.
fn refused(pg: &Postgres, role: &str, sql: &str) {
    let out = pg.psql_as(role, sql);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success()
            && (err.contains("permission denied") || err.contains("must be owner")),
        "{role}: {sql}: {err}"
    );
}

fn allowed(pg: &Postgres, role: &str, sql: &str) -> String {
    let out = pg.psql_as(role, sql);
    assert!(
        out.status.success(),
        "{role}: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const RECORD: &str = "SELECT pam_otp.admin_record_change('unlock', 'alice', NULL, NULL, NULL, 0, 'unset', NULL, 'adm1')";

#[test]
#[ignore = "needs root: make test"]
fn no_role_but_the_owner_can_change_the_audit_and_a_host_cannot_read_it() {
    let pg = Postgres::with_schema();
    pg.psql_ok(
        "CREATE ROLE web1 LOGIN IN ROLE pam_otp_host; CREATE ROLE ops LOGIN IN ROLE pam_otp_admin",
    );
    allowed(&pg, "ops", RECORD);
    for role in ["ops", "web1"] {
        for sql in [
            "UPDATE pam_otp.audit SET username = 'mallory'",
            "DELETE FROM pam_otp.audit",
            "TRUNCATE pam_otp.audit",
            "INSERT INTO pam_otp.audit (at, kind, db_role) VALUES (0, 'change', 'forged')",
            "SELECT * FROM pam_otp.audit",
            "SELECT pam_otp.audit_purge()",
            "SELECT pam_otp.audit_purge_at(99999999999)",
            "UPDATE pam_otp.settings SET audit_days = 30",
            "ALTER TABLE pam_otp.audit DISABLE TRIGGER ALL",
            "DROP TABLE pam_otp.audit",
        ] {
            refused(&pg, role, sql);
        }
    }
    // A host reads nothing and records no change.
    refused(
        &pg,
        "web1",
        "SELECT * FROM pam_otp.admin_audit(NULL, NULL, NULL, NULL)",
    );
    refused(&pg, "web1", RECORD);
    // The admin reads through the function; the row is as written, stamped
    // with the role that connected, not the owner the function runs as.
    assert_eq!(
        allowed(
            &pg,
            "ops",
            "SELECT kind, db_role, command, username, claimed_host FROM pam_otp.admin_audit('alice', NULL, NULL, NULL)"
        ),
        "change|ops|unlock|alice|adm1"
    );
    // What the admin sends as its command is checked: no free text there.
    let out = pg.psql_as(
        "ops",
        "SELECT pam_otp.admin_record_change('Unlock; DROP', 'alice', NULL, NULL, NULL, 0, 'unset', NULL, 'adm1')",
    );
    assert!(!out.status.success(), "{out:?}");

    // The catalog: no write privilege for anyone but the owner, who is the
    // role db init ran as.
    let writers = || {
        pg.psql_ok(
            "SELECT coalesce(string_agg(r.rolname, ','), '') FROM pg_roles r
              WHERE r.rolname IN ('pam_otp_host', 'pam_otp_admin', 'web1', 'ops')
                AND has_table_privilege(r.oid, 'pam_otp.audit', 'INSERT, UPDATE, DELETE, TRUNCATE')",
        )
    };
    assert_eq!(writers(), "");
    assert_eq!(
        pg.psql_ok(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'pam_otp.audit'::regclass"
        ),
        "postgres"
    );
    // No function a host or an admin may call updates, deletes or
    // truncates audit rows; the purge is reached from the admin's append
    // alone (which deletes only rows past the retention: the next test).
    let callable = |pattern: &str| {
        pg.psql_ok(&format!(
            "SELECT coalesce(string_agg(p.proname, ',' ORDER BY p.proname), '')
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'pam_otp'
                AND (has_function_privilege('pam_otp_admin', p.oid, 'EXECUTE')
                     OR has_function_privilege('pam_otp_host', p.oid, 'EXECUTE'))
                AND p.prosrc ~* '{pattern}'"
        ))
    };
    assert_eq!(callable("(update|delete|truncate)[^;]*audit"), "");
    assert_eq!(callable("audit_purge"), "admin_record_change");

    // A grant made by hand does not survive db init.
    pg.psql_ok("GRANT DELETE, UPDATE ON pam_otp.audit TO ops");
    assert_eq!(writers(), "ops");
    db_init(&pg);
    assert_eq!(writers(), "");
    refused(&pg, "ops", "DELETE FROM pam_otp.audit");
}

#[test]
#[ignore = "needs root: make test"]
fn the_purge_keeps_every_row_younger_than_the_retention_which_is_at_least_30_days() {
    let pg = Postgres::with_schema();
    pg.psql_ok("CREATE ROLE ops LOGIN IN ROLE pam_otp_admin");
    assert_eq!(pg.psql_ok("SELECT audit_days FROM pam_otp.settings"), "365");
    let now = db_now(&pg);
    // Rows of the past, as only the owner can write them.
    let put = |days: u64| {
        pg.psql_ok(&format!(
            "INSERT INTO pam_otp.audit (at, kind, db_role, detail) VALUES ({}, 'change', 'past', '{days}')",
            now - days * 86_400
        ))
    };
    for days in [400, 366, 364, 31, 1] {
        put(days);
    }
    let left = || {
        pg.psql_ok(
            "SELECT coalesce(string_agg(detail, ',' ORDER BY id), '') FROM pam_otp.audit WHERE db_role = 'past'",
        )
    };
    // The admin's append purges, by the database's clock: only what is
    // older than 365 days.
    allowed(&pg, "ops", RECORD);
    assert_eq!(left(), "364,31,1");
    // Below the floor is refused, whoever asks.
    let out = pg.psql("UPDATE pam_otp.settings SET audit_days = 29");
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("settings_audit_days_check"),
        "{out:?}"
    );
    allowed(&pg, "ops", RECORD);
    assert_eq!(left(), "364,31,1");
    // The owner may shorten it to the floor: 30 days.
    pg.psql_ok("UPDATE pam_otp.settings SET audit_days = 30");
    allowed(&pg, "ops", RECORD);
    assert_eq!(left(), "1");
    // db init purges too.
    put(45);
    db_init(&pg);
    assert_eq!(left(), "1");
    // The admin's own rows, all of today, are all there.
    assert_eq!(
        pg.psql_ok("SELECT count(*) FROM pam_otp.audit WHERE db_role = 'ops'"),
        "3"
    );
}

/// What every change row in `doc` but db init's says, checked field by
/// field against what the test knows; (command, token, serial, detail)
/// of each.
fn changes(doc: &Value, since: u64, until: u64) -> Vec<(String, Value, Value, Value)> {
    entries(doc)
        .iter()
        .filter(|e| e["kind"] == "change" && e["command"] != "db init")
        .map(|e| {
            let at = e["at"].as_u64().unwrap();
            assert!((since..=until).contains(&at), "{e}");
            assert!(e["id"].as_u64().is_some(), "{e}");
            assert_eq!(e["db_role"], "ops", "{e}");
            assert_eq!(e["client_addr"], "127.0.0.1", "{e}");
            for none in ["service", "rhost", "result", "accepted"] {
                assert_eq!(e[none], Value::Null, "{none}: {e}");
            }
            let c = &e["claims"];
            assert_eq!(c["uid"], 0, "{e}");
            assert_eq!(c["login_uid"], login_uid().as_str(), "{e}");
            assert_eq!(c["sudo_user"], SUDO_USER, "{e}");
            assert_eq!(c["host"], hostname().as_str(), "{e}");
            (
                e["command"].as_str().unwrap().to_string(),
                e["token"].clone(),
                e["serial"].clone(),
                e["detail"].clone(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root: make test"]
fn every_change_otp_enroll_makes_leaves_its_row() {
    require_root();
    let pg = Postgres::with_schema();
    let web1 = host(&pg, "web1", "");
    let since = db_now(&pg);
    let user = TestUser::new();
    let u = user.name.as_str();
    let codes = hotp_codes(KEY_HEX, 0, 10);
    let null = Value::Null;
    let s = |v: &str| Value::String(v.into());
    // (otp-enroll's arguments, (command, token, serial) the row must show;
    // None: the command changes nothing and leaves no row)
    type Step<'a> = (Vec<&'a str>, Option<(&'a str, Value, Value)>);
    let steps: Vec<Step> = vec![
        (
            vec![
                "--user", u, "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code", &codes[0],
            ],
            Some(("token", null.clone(), s("OATH1"))),
        ),
        (
            vec![
                "--user", u, "resync", "--token", "OATH1", &codes[5], &codes[6],
            ],
            Some(("resync", s("OATH1"), null.clone())),
        ),
        (
            vec!["--user", u, "scratch", "-n", "2"],
            Some(("scratch", null.clone(), null.clone())),
        ),
        // Nothing to unlock, a record there already: no change, no row.
        (vec!["--user", u, "unlock"], None),
        (
            vec![
                "--user",
                u,
                "new",
                "--if-missing",
                "--no-confirm",
                "--qr",
                "none",
            ],
            None,
        ),
        // Locked by three wrong codes at a login: unlock clears them.
        (
            vec!["--user", u, "unlock"],
            Some(("unlock", null.clone(), null.clone())),
        ),
        (
            vec![
                "--user",
                u,
                "new",
                "--add",
                "--id",
                "phone",
                "--no-confirm",
                "--qr",
                "none",
            ],
            Some(("new", s("phone"), null.clone())),
        ),
        (
            vec!["--user", u, "remove", "--token", "phone", "--yes"],
            Some(("remove", s("phone"), null.clone())),
        ),
        (
            vec!["--user", u, "reset", "--yes"],
            Some(("reset", null.clone(), null.clone())),
        ),
    ];
    let mut want = Vec::new();
    for (args, row) in &steps {
        if row
            .as_ref()
            .is_some_and(|(command, ..)| *command == "unlock")
        {
            for _ in 0..3 {
                let run = web1.authenticate(u, None, "000000\n");
                assert!(!run.success, "{run:?}");
            }
        }
        enroll_ok(&web1, args);
        if let Some((command, token, serial)) = row {
            want.push((
                command.to_string(),
                token.clone(),
                serial.clone(),
                null.clone(),
            ));
        }
        // Reading changes nothing and records nothing.
        let _ = enroll(&web1, &["--user", u, "status"]);
        let _ = enroll(&web1, &["--user", u, "list"]);
        let doc = audit(&web1, &["--user", u]);
        assert_eq!(changes(&doc, since, db_now(&pg)), want, "after {args:?}");
    }
    // The first token was created through enroll(): the database's own
    // row, before otp-enroll's.
    let doc = audit(&web1, &["--user", u]);
    let first = &entries(&doc)[0];
    assert_eq!(
        (
            &first["kind"],
            &first["result"],
            &first["token"],
            &first["db_role"]
        ),
        (&s("enroll"), &s("created"), &s("OATH1"), &s("ops")),
        "{doc}"
    );
    assert_eq!(first["claims"], Value::Null, "{first}");

    // import-google, migrate: users of their own.
    let google = TestUser::new();
    google.write_owned(
        &google.home.join(".google_authenticator"),
        format!("{KEY_B32}\n\" TOTP_AUTH\n"),
        0o400,
    );
    enroll_ok(&web1, &["--user", &google.name, "import-google"]);
    let migrated = TestUser::new();
    migrated.write_secret(&testkit::hotp_secret(3));
    enroll_ok(
        &web1,
        &["--user", &migrated.name, "migrate", "--to", "postgresql"],
    );
    for (who, command, detail) in [
        (&google, "import-google", null.clone()),
        (&migrated, "migrate", s("--user")),
    ] {
        let doc = audit(&web1, &["--user", &who.name]);
        assert_eq!(
            changes(&doc, since, db_now(&pg)),
            vec![(command.to_string(), null.clone(), null.clone(), detail)],
            "{doc}"
        );
        assert_eq!(entries(&doc)[0]["kind"], "enroll", "{doc}");
    }

    // The inventory: no user, the serial or the file.
    let csv = web1.write_file("tokens.csv", &format!("serial,seed\nOATH7,{KEY_HEX}\n"));
    fs::set_permissions(&csv, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    enroll_ok(&web1, &["inventory", "import", csv.to_str().unwrap()]);
    enroll_ok(&web1, &["inventory", "list"]);
    enroll_ok(&web1, &["inventory", "remove", "OATH7"]);
    let all = audit(&web1, &[]);
    let inventory: Vec<_> = changes(&all, since, db_now(&pg))
        .into_iter()
        .filter(|c| c.0.starts_with("inventory"))
        .collect();
    assert_eq!(
        inventory,
        vec![
            (
                "inventory import".to_string(),
                null.clone(),
                null.clone(),
                s(csv.to_str().unwrap())
            ),
            (
                "inventory remove".to_string(),
                null.clone(),
                s("OATH7"),
                null.clone()
            ),
        ]
    );
    for e in entries(&all) {
        if e["command"].as_str().unwrap_or("").starts_with("inventory") {
            assert_eq!(e["user"], Value::Null, "{e}");
        }
    }

    // db init, as the owner over the socket: no claims checked here but
    // its role and the lack of an address.
    db_init(&pg);
    let all = audit(&web1, &[]);
    let last = entries(&all).last().unwrap().clone();
    assert_eq!(
        (
            &last["command"],
            &last["detail"],
            &last["db_role"],
            &last["client_addr"]
        ),
        (
            &s("db init"),
            &s(&format!("at version {SCHEMA_VERSION}")),
            &s("postgres"),
            &Value::Null
        ),
        "{last}"
    );
    assert_eq!(last["claims"]["sudo_user"], Value::Null, "{last}");
}

#[test]
#[ignore = "needs root: make test"]
fn a_login_leaves_its_verify_row_and_one_the_database_never_decides_none() {
    let pg = Postgres::with_schema();
    // The database's grace period (0 by default) bounds the host's.
    pg.psql_ok("UPDATE pam_otp.settings SET grace_period = 300");
    let web1 = host(
        &pg,
        "web1",
        "grace_period = 300\n[[rule]]\nfrom = [\"198.51.100.0/24\"]\notp = \"skip\"\n",
    );
    let user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 5);
    enroll_ok(
        &web1,
        &[
            "--user", &user.name, "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code",
            &codes[0],
        ],
    );
    let since = db_now(&pg);
    let login = |rhost: Option<&str>, input: &str| {
        web1.authenticate(&user.name, rhost, &format!("{input}\n"))
            .success
    };
    assert!(login(Some("203.0.113.9"), &codes[1]));
    // Grace: no code asked, nothing verified, no row.
    assert!(login(Some("203.0.113.9"), ""));
    // A skip rule: no row either.
    assert!(login(Some("198.51.100.7"), ""));
    assert!(!login(Some("192.0.2.1"), "000000"));
    assert!(login(None, &codes[2]));
    let doc = audit(&web1, &["--user", &user.name]);
    let verifies: Vec<Value> = entries(&doc)
        .into_iter()
        .filter(|e| e["kind"] == "verify")
        .collect();
    let until = db_now(&pg);
    let s = |v: &str| Value::String(v.into());
    let want = [
        (s("hotp"), s("OATH1"), s("203.0.113.9"), Value::Bool(true)),
        (s("wrong"), Value::Null, s("192.0.2.1"), Value::Bool(false)),
        (s("hotp"), s("OATH1"), Value::Null, Value::Bool(true)),
    ];
    assert_eq!(verifies.len(), want.len(), "{doc}");
    for (e, (result, token, rhost, accepted)) in verifies.iter().zip(want) {
        assert_eq!(
            (&e["result"], &e["token"], &e["rhost"], &e["accepted"]),
            (&result, &token, &rhost, &accepted),
            "{e}"
        );
        assert_eq!(e["user"], user.name.as_str(), "{e}");
        assert_eq!(e["service"], web1.name.as_str(), "{e}");
        assert_eq!(e["db_role"], "web1", "{e}");
        assert_eq!(e["client_addr"], "127.0.0.1", "{e}");
        for none in ["command", "serial", "detail", "claims"] {
            assert_eq!(e[none], Value::Null, "{none}: {e}");
        }
        let at = e["at"].as_u64().unwrap();
        assert!((since..=until).contains(&at), "{e}");
    }
    assert_eq!(doc["user"], user.name.as_str());

    // The text form: one line per row, the same values.
    let text = enroll_ok(&web1, &["--user", &user.name, "audit"]);
    let line = text
        .lines()
        .find(|l| l.contains(" verify ") && l.contains("203.0.113.9"))
        .unwrap_or_else(|| panic!("{text}"));
    for part in [
        format!("user=\"{}\"", user.name),
        "result=\"hotp\"".into(),
        "token=\"OATH1\"".into(),
        format!("service=\"{}\"", web1.name),
        "rhost=\"203.0.113.9\"".into(),
        "db_role=\"web1\"".into(),
        "from=\"127.0.0.1\"".into(),
    ] {
        assert!(line.contains(&part), "{part} in {line}");
    }

    // --since: a day or an RFC 3339 time with an offset; none from tomorrow.
    let tomorrow = otp_enroll_day(until + 86_400);
    assert!(entries(&audit(&web1, &["--since", &tomorrow])).is_empty());
    let today = otp_enroll_day(since);
    assert_eq!(
        entries(&audit(&web1, &["--user", &user.name, "--since", &today])).len(),
        entries(&doc).len()
    );
    let bad = enroll(&web1, &["audit", "--since", "2026-05-31T00:00:00"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    // More rows than a page (1000): every one, in order, once.
    pg.psql_ok(
        "INSERT INTO pam_otp.audit (at, kind, db_role, username, result)
         SELECT extract(epoch FROM clock_timestamp())::bigint, 'verify', 'bulk', 'bulk', 'wrong'
           FROM generate_series(1, 2345)",
    );
    let ids: Vec<u64> = entries(&audit(&web1, &["--user", "bulk"]))
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2345);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let text = enroll_ok(&web1, &["--user", "bulk", "audit"]);
    assert_eq!(text.lines().last(), Some("2345 rows"));

    // The file stores have no table: it says where the record is, exit 0.
    let home = PamService::with_config(OTP_ONLY, "");
    let out = enroll(&home, &["audit"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("syslog"),
        "{out:?}"
    );
    let out = enroll(&home, &["audit", "--json"]);
    assert!(out.stdout.starts_with(b"{\"schema\":"), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &doc["schema"],
            &doc["store"],
            &doc["record"],
            &doc["facility"],
            &doc["entries"]
        ),
        (
            &Value::from("otp-enroll.audit/1"),
            &Value::from("home"),
            &Value::from("syslog"),
            &Value::from("authpriv"),
            &Value::Null
        )
    );
    // Root only.
    let plain = user
        .command(binary_path("otp-enroll").to_str().unwrap())
        .arg("--config")
        .arg(&web1.config_file)
        .arg("audit")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!plain.status.success(), "{plain:?}");
}

/// Unix time `t` as the day `--since` takes (YYYY-MM-DD, UTC), by
/// date(1).
fn otp_enroll_day(t: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs root: make test"]
fn a_version_1_database_is_upgraded_in_place_and_old_and_new_hosts_log_in() {
    let pg = Postgres::start();
    pg.psql_script(SCHEMA_V1);
    assert_eq!(pg.psql_ok("SELECT version FROM pam_otp.meta"), "1");
    // Populated as version 1 left it: an enrolled user with a hardware
    // token, emergency codes and a failure; a pending user; the
    // inventory; a host role.
    let alice = TestUser::new();
    let a = alice.name.as_str();
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('{a}', '{{\"scratch_codes\": [\"31415926\"], \"tokens\": [{{\"id\": \"OATH1\", \"type\": \"hotp\", \"secret\": \"{KEY_HEX}\", \"serial\": \"OATH1\"}}]}}'::jsonb)"
    ));
    pg.psql_ok("SELECT pam_otp.admin_set_pending('bob', true)");
    pg.psql_ok(
        "SELECT pam_otp.admin_inventory_write('version = 1' || chr(10) || '# kept' || chr(10))",
    );
    pg.psql_ok("CREATE ROLE web0 LOGIN IN ROLE pam_otp_host");
    let codes = hotp_codes(KEY_HEX, 0, 6);
    // A version 1 host, as its module calls the database (login_info,
    // then the 8-parameter verify), over the socket as its role.
    let old_host = |code: &str, rhost: &str, grace: &str| {
        allowed(
            &pg,
            "web0",
            &format!("SELECT presence FROM pam_otp.login_info('{a}')"),
        );
        allowed(
            &pg,
            "web0",
            &format!(
                "SELECT verdict, token, detail FROM pam_otp.verify('{a}', '{code}', {rhost}, '{grace}', '1', '10', '3', '30')"
            ),
        )
    };
    assert_eq!(old_host(&codes[0], "NULL", "0"), "hotp|OATH1|0");
    assert_eq!(old_host("000000", "NULL", "0"), "wrong||");
    let data = || {
        pg.psql_ok(
            "SELECT (SELECT string_agg(name || ':' || pending || ':' || failures || ':' || array_to_string(scratch_codes, ','), ';' ORDER BY name) FROM pam_otp.users)
                 || '|' || (SELECT string_agg(username || ':' || id || ':' || type || ':' || counter || ':' || coalesce(serial, '') || ':' || encode(secret, 'hex'), ';') FROM pam_otp.tokens)
                 || '|' || (SELECT doc FROM pam_otp.inventory)
                 || '|' || (SELECT totp_skew || ',' || hotp_window || ',' || max_failures || ',' || lock_interval FROM pam_otp.settings)
                 || '|' || (SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE pg_has_role(oid, 'pam_otp_host', 'MEMBER') AND rolname <> 'pam_otp_host')",
        )
    };
    // A version 2 host's role and certificate, made before the snapshot.
    let web2 = host(&pg, "web2", "");
    let before = data();
    assert!(
        before.contains(&format!("{a}:false:1:31415926"))
            && before.contains(&format!(
                "{a}:OATH1:hotp:1:OATH1:{}",
                KEY_HEX.to_lowercase()
            )),
        "{before}"
    );

    // A version 2 host before the upgrade: refused, and its log says why
    // (the new verify() is not there); nothing was used.
    let sink = LogSink::new();
    let (run, lines) = logged_run(&web2, &sink, a, None, &format!("{}\n", codes[1]));
    assert!(
        !run.success && output(&run).contains(AUTHINFO_UNAVAIL),
        "{run:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(a)
            && l.contains("older than this pam_otp")
            && l.contains("db init")),
        "{lines:#?}"
    );

    // The upgrade, by the real otp-enroll db init.
    let said = db_init(&pg);
    assert!(
        said.contains(&format!("upgraded from version 1 to {SCHEMA_VERSION}")),
        "{said}"
    );
    assert_eq!(
        pg.psql_ok("SELECT version FROM pam_otp.meta"),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(data(), before, "version 1's data, kept");
    assert_eq!(pg.psql_ok("SELECT audit_days FROM pam_otp.settings"), "365");
    assert_eq!(
        pg.psql_ok(
            "SELECT string_agg(kind || ':' || command || ':' || detail, ',') FROM pam_otp.audit"
        ),
        format!("change:db init:upgraded from version 1 to {SCHEMA_VERSION}")
    );

    // The version 1 host logs in as before (its row has no service; the
    // address only when it keeps grace entries)...
    assert_eq!(old_host(&codes[1], "'10.0.0.7'", "60"), "hotp|OATH1|1");
    // ...and the version 2 host too, through the real module.
    let run = web2.authenticate(a, Some("203.0.113.9"), &format!("{}\n", codes[2]));
    assert!(run.success, "{run:?}");
    // One database: a code used on one is used on the other.
    assert_eq!(old_host(&codes[2], "NULL", "0"), "wrong||");
    let run = web2.authenticate(a, None, &format!("{}\n", codes[1]));
    assert!(!run.success, "{run:?}");
    assert_eq!(old_host(&codes[3], "NULL", "0"), "hotp|OATH1|3");

    let doc = audit(&web2, &["--user", a]);
    let rows: Vec<(Value, Value, Value, Value, Value)> = entries(&doc)
        .iter()
        .map(|e| {
            assert_eq!(e["kind"], "verify", "{e}");
            (
                e["db_role"].clone(),
                e["service"].clone(),
                e["rhost"].clone(),
                e["client_addr"].clone(),
                e["result"].clone(),
            )
        })
        .collect();
    let (n, s) = (Value::Null, |v: &str| Value::String(v.into()));
    assert_eq!(
        rows,
        vec![
            (s("web0"), n.clone(), s("10.0.0.7"), n.clone(), s("hotp")),
            (
                s("web2"),
                s(&web2.name),
                s("203.0.113.9"),
                s("127.0.0.1"),
                s("hotp")
            ),
            (s("web0"), n.clone(), n.clone(), n.clone(), s("wrong")),
            (
                s("web2"),
                s(&web2.name),
                n.clone(),
                s("127.0.0.1"),
                s("wrong")
            ),
            (s("web0"), n.clone(), n.clone(), n.clone(), s("hotp")),
        ],
        "{doc}"
    );

    // Again: nothing to change.
    assert!(db_init(&pg).contains(&format!("at version {SCHEMA_VERSION}; nothing to change")));
}
