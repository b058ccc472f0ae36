//! `store = "postgresql"` through the real libpam (pamtester, pam_wrapper)
//! and the real `otp-enroll`, against a private PostgreSQL the test
//! starts (`testkit::pg`), over TLS with a client certificate per host
//! role: an admin's token logs in on any host once; hosts share one rate
//! limit; reset, migrate and the inventory work on the database; a
//! database that is down or silent refuses the login within
//! `connect_timeout` with a clear log line, and logins work again once it
//! is back.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use testkit::fixtures::{output, AUTHINFO_UNAVAIL, AUTH_ERR};
use testkit::harness::{hotp_codes, stopwatch};
use testkit::pg::{fleet_config, Postgres};
use testkit::syslog::{logged_run, LogSink};
use testkit::{binary_path, finish, spawn_with_input, PamService, TestUser, KEY_HEX, OTP_ONLY};

/// The connect_timeout the hosts' conninfo sets.
const TIMEOUT: u64 = 2;

/// One host: a private PAM service whose config names the database, with
/// its own login role (`host`, member of pam_otp_host) and certificate.
fn host(pg: &Postgres, host: &str, extra: &str) -> PamService {
    let pam = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo(host, &pam.dir, TIMEOUT);
    let admin = pg.admin_conninfo("ops", &pam.dir, TIMEOUT);
    pam.write_config(&fleet_config(&conninfo, &admin, extra));
    pam
}

/// `otp-enroll --config <host's> ARGS` as root.
fn enroll(pam: &PamService, args: &[&str]) -> Output {
    Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args(args)
        .env("LC_ALL", "C")
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

/// A user with the test key as an HOTP token (serial OATH1), set up by an
/// admin through `host`; the codes from counter 1 on.
fn user_with_token(pam: &PamService) -> (TestUser, Vec<String>) {
    let user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 40);
    enroll_ok(
        pam,
        &[
            "--user", &user.name, "token", "--serial", "OATH1", "--secret", KEY_HEX, "--code",
            &codes[0],
        ],
    );
    (user, codes[1..].to_vec())
}

#[test]
#[ignore = "needs root: make test"]
fn a_token_an_admin_set_up_logs_in_on_every_host_and_each_code_once() {
    let pg = Postgres::with_schema();
    let (web1, web2) = (host(&pg, "web1", ""), host(&pg, "web2", ""));
    let (user, codes) = user_with_token(&web1);
    let status = enroll_ok(&web2, &["--user", &user.name, "status"]);
    assert!(
        status.contains("OATH1") && status.contains("postgresql:"),
        "{status}"
    );

    let run = web1.authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(run.success, "{run:?}");
    // The same code on the other host: used.
    let run = web2.authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(!run.success && output(&run).contains(AUTH_ERR), "{run:?}");
    // The next code works there.
    let run = web2.authenticate(&user.name, None, &format!("{}\n", codes[1]));
    assert!(run.success, "{run:?}");
    let list = enroll_ok(&web1, &["--user", &user.name, "list"]);
    assert!(list.contains("OATH1") && !list.contains("never"), "{list}");
    // Seeds did not reach the host: its config and its files hold none.
    for entry in std::fs::read_dir(&web1.dir).unwrap().flatten() {
        let text = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains(KEY_HEX),
            "{}",
            entry.path().display()
        );
    }
    enroll_ok(&web2, &["--user", &user.name, "remove", "--yes"]);
    let run = web1.authenticate(&user.name, None, &format!("{}\n", codes[2]));
    assert!(!run.success, "removed everywhere: {run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn one_code_typed_on_four_hosts_at_once_lets_one_login_in() {
    let pg = Postgres::with_schema();
    let hosts: Vec<PamService> = (1..=4).map(|i| host(&pg, &format!("web{i}"), "")).collect();
    let (user, codes) = user_with_token(&hosts[0]);
    for (round, code) in codes.iter().take(5).enumerate() {
        let children: Vec<_> = hosts
            .iter()
            .map(|h| {
                spawn_with_input(
                    &mut h.pamtester_command(&user.name, None, &["authenticate"]),
                    &format!("{code}\n"),
                )
            })
            .collect();
        let runs: Vec<_> = children.into_iter().map(finish).collect();
        let won = runs.iter().filter(|r| r.success).count();
        assert_eq!(won, 1, "round {round}: {runs:#?}");
        // The losers' "wrong" counted: clear it for the next round.
        enroll_ok(&hosts[round % 4], &["--user", &user.name, "unlock"]);
    }
}

#[test]
#[ignore = "needs root: make test"]
fn failures_on_several_hosts_add_up_to_one_rate_limit() {
    let pg = Postgres::with_schema();
    let hosts: Vec<PamService> = (1..=4).map(|i| host(&pg, &format!("web{i}"), "")).collect();
    let (user, codes) = user_with_token(&hosts[0]);
    // max_failures = 3 (the default and the database's ceiling): one
    // wrong code on each of three hosts.
    for h in &hosts[..3] {
        let run = h.authenticate(&user.name, None, "000000\n");
        assert!(!run.success, "{run:?}");
    }
    let sink = LogSink::new();
    let (run, lines) = logged_run(
        &hosts[3],
        &sink,
        &user.name,
        None,
        &format!("{}\n", codes[0]),
    );
    assert!(!run.success, "the fourth host must be locked too: {run:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rate limited") && l.contains(&user.name)),
        "{lines:#?}"
    );
    // An admin's unlock on any host lifts it for all.
    enroll_ok(&hosts[1], &["--user", &user.name, "unlock"]);
    let run = hosts[3].authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(run.success, "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn reset_from_one_host_is_seen_by_the_others() {
    let pg = Postgres::with_schema();
    let (web1, web2) = (host(&pg, "web1", ""), host(&pg, "web2", ""));
    let (user, codes) = user_with_token(&web1);
    let out = enroll_ok(&web1, &["--user", &user.name, "reset", "--yes"]);
    assert!(out.contains("next login"), "{out}");
    // Not enrolled (exit 1), and pending, seen from the other host.
    let status = enroll(&web2, &["--user", &user.name, "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("enrollment pending"), "{status:?}");
    // The old token opens nothing anywhere; pamtester proves no first
    // factor, so the pending enrollment refuses instead of enrolling.
    let sink = LogSink::new();
    let (run, lines) = logged_run(&web2, &sink, &user.name, None, &format!("{}\n", codes[0]));
    assert!(!run.success, "{run:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&user.name) && l.contains("enroll")),
        "{lines:#?}"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn a_database_that_is_down_or_silent_refuses_within_connect_timeout_and_says_so() {
    let mut pg = Postgres::with_schema();
    let web1 = host(&pg, "web1", "");
    let (user, codes) = user_with_token(&web1);
    pg.stop();
    let sink = LogSink::new();
    let started = stopwatch();
    let (run, lines) = logged_run(
        &web1,
        &sink,
        &user.name,
        Some("203.0.113.9"),
        &format!("{}\n", codes[0]),
    );
    let took = started.elapsed();
    assert!(
        !run.success && output(&run).contains(AUTHINFO_UNAVAIL),
        "{run:?}"
    );
    assert!(took < Duration::from_secs(TIMEOUT + 1), "took {took:?}");
    let line = lines
        .iter()
        .find(|l| l.contains("cannot connect to the database"))
        .unwrap_or_else(|| panic!("no clear line: {lines:#?}"));
    assert!(
        line.contains(&user.name) && line.contains("203.0.113.9") && line.contains(&web1.name),
        "{line}"
    );
    pg.start_again();
    let run = web1.authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(run.success, "works again: {run:?}");

    // A server that takes the connection and never answers. The module's
    // wait is timed on the server's side, from the moment it has the
    // module's connection to the moment the module hangs up: the login's
    // wall time adds pamtester's start and end, which a loaded machine
    // stretches as it likes (printed, and bounded only as a hang).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let server = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || silent_server(silent, &done))
    };
    let black_hole = PamService::with_config(
        OTP_ONLY,
        &fleet_config(
            &format!(
                "host=127.0.0.1 port={port} dbname=pam_otp user=web1 sslmode=verify-full sslrootcert={} connect_timeout={TIMEOUT}",
                pg.ca_cert().display()
            ),
            "host=127.0.0.1 port=1 dbname=x",
            "",
        ),
    );
    let started = stopwatch();
    let run = black_hole.authenticate(&user.name, None, &format!("{}\n", codes[1]));
    let took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let held = server.join().unwrap();
    assert!(
        !run.success && output(&run).contains(AUTHINFO_UNAVAIL),
        "{run:?}"
    );
    let held = held.expect("the module never connected to the silent server");
    eprintln!("the silent server held the module {held:?}; the login took {took:?}");
    assert!(
        held < Duration::from_secs(TIMEOUT + 1),
        "the module waited {held:?} for a silent server (connect_timeout = {TIMEOUT})"
    );
}

/// Takes every connection to `listener` and never answers, until `done`
/// is set; how long the clients held on, from the first connection taken
/// to the last one closed by its client (None: nobody connected). Taken
/// by polling every millisecond, so the time measured can only be a
/// little short, never long.
fn silent_server(listener: TcpListener, done: &AtomicBool) -> Option<Duration> {
    listener.set_nonblocking(true).unwrap();
    let clock = stopwatch();
    let mut first = None;
    let mut last = None;
    while !done.load(Ordering::SeqCst) {
        assert!(
            clock.elapsed() < Duration::from_secs(60),
            "the silent server ran 60 s"
        );
        let Ok((mut conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        first.get_or_insert(clock.elapsed());
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 512];
        // What it sends (a startup or SSL request) is never answered;
        // read until it hangs up.
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        last = Some(clock.elapsed());
    }
    Some(last? - first?)
}

#[test]
#[ignore = "needs root: make test"]
fn migrate_copies_home_files_into_the_database_and_logins_use_them() {
    let pg = Postgres::with_schema();
    let web1 = host(&pg, "web1", "");
    let user = TestUser::new();
    user.write_secret(&testkit::hotp_secret(3));
    let out = enroll_ok(
        &web1,
        &["--user", &user.name, "migrate", "--to", "postgresql"],
    );
    assert!(
        out.contains(&format!("{}: copied 1 token", user.name)),
        "{out}"
    );
    let again = enroll(
        &web1,
        &["--user", &user.name, "migrate", "--to", "postgresql"],
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already in the fleet database"),
        "{again:?}"
    );
    let code = &hotp_codes(KEY_HEX, 3, 1)[0];
    let run = web1.authenticate(&user.name, None, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    // The home file was left as it was, and is not what the host reads.
    assert_eq!(
        testkit::secret_file(&user.secret_path()).tokens[0].counter,
        3
    );
}

#[test]
#[ignore = "needs root: make test"]
fn the_inventory_lives_in_the_database() {
    let pg = Postgres::with_schema();
    let web1 = host(&pg, "web1", "");
    let csv = web1.write_file("tokens.csv", &format!("serial,seed\nOATH7,{KEY_HEX}\n"));
    std::fs::set_permissions(&csv, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = enroll_ok(&web1, &["inventory", "import", csv.to_str().unwrap()]);
    assert!(out.contains("OATH7"), "{out}");
    let list = enroll_ok(&web1, &["inventory", "list"]);
    assert!(list.contains("OATH7"), "{list}");
    assert!(
        !web1.dir.join("state").join("inventory").exists(),
        "nothing on the host"
    );
    assert!(pg
        .psql_ok("SELECT doc FROM pam_otp.inventory")
        .contains("OATH7"));
    let user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 3);
    enroll_ok(
        &web1,
        &[
            "--user", &user.name, "token", "--serial", "OATH7", "--code", &codes[0],
        ],
    );
    let list = enroll_ok(&web1, &["inventory", "list"]);
    assert!(list.contains(&user.name), "assigned: {list}");
    let run = web1.authenticate(&user.name, None, &format!("{}\n", codes[1]));
    assert!(run.success, "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn a_plain_user_is_told_where_the_tokens_are() {
    let pg = Postgres::with_schema();
    let web1 = host(&pg, "web1", "");
    let user = TestUser::new();
    let out = user
        .command(binary_path("otp-enroll").to_str().unwrap())
        .arg("--config")
        .arg(&web1.config_file)
        .arg("status")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("fleet database"),
        "{err}"
    );
}

/// `conninfo` of `primary` made a multi-host string that also names
/// `standby`, for the one that takes writes.
fn both(conninfo: &str, primary: &Postgres, standby: &Postgres) -> String {
    conninfo.replace(
        &format!("host=127.0.0.1 port={}", primary.port()),
        &format!(
            "host=127.0.0.1,127.0.0.1 port={},{} target_session_attrs=read-write",
            primary.port(),
            standby.port()
        ),
    )
}

#[test]
#[ignore = "needs root: make test"]
fn a_failover_to_a_synchronous_standby_keeps_every_used_code_used() {
    let mut primary = Postgres::with_schema();
    let web1 = PamService::with_config(OTP_ONLY, "");
    let conninfo = primary.host_conninfo("web1", &web1.dir, TIMEOUT);
    let admin = primary.admin_conninfo("ops", &web1.dir, TIMEOUT);
    let mut standby = primary.start_standby();
    web1.write_config(&fleet_config(
        &both(&conninfo, &primary, &standby),
        &both(&admin, &primary, &standby),
        "",
    ));
    let (user, codes) = user_with_token(&web1);
    let login = |code: &str| {
        web1.authenticate(&user.name, None, &format!("{code}\n"))
            .success
    };

    // Logins, one code each. After six the primary dies; two logins
    // are tried while nothing takes writes (refused: nothing is used);
    // then the standby is promoted and the logins go on with the next
    // codes, through the same multi-host conninfo.
    let (mut accepted, mut refused) = (Vec::new(), 0usize);
    for (i, code) in codes.iter().take(12).enumerate() {
        match i {
            6 => primary.stop_immediate(),
            8 => standby.promote(),
            _ => {}
        }
        if (6..8).contains(&i) {
            assert!(!login(code), "accepted with no primary");
            refused += 1;
            continue;
        }
        assert!(login(code), "code {i} refused:\n{}", standby.log());
        accepted.push(code.clone());
    }
    println!(
        "failover: {} logins accepted, {refused} refused while the primary was gone and before the promotion",
        accepted.len()
    );
    // No code accepted before the failover is accepted after it.
    for code in &accepted {
        assert!(!login(code), "{code} accepted twice");
    }
}
