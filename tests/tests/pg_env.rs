//! Issue 27, hole 1: nothing in the caller's environment or `$HOME`
//! reaches libpq. A local user who knows the victim's password runs the
//! real setuid util-linux `su` (and the real `sudo` with a sudoers that
//! keeps the environment, `!env_reset`), with every variable libpq reads
//! pointing at a PostgreSQL of the caller's whose `pam_otp.verify()`
//! accepts any code. Each time the wrong code is refused and the real
//! database counted the failure: it, not the fake, was asked.
//!
//! su's PAM service name is fixed and pam_wrapper does not reach a setuid
//! program, so each run is in a private mount namespace (made by root)
//! where the test's stack is bound over /etc/pam.d/su, su-l and sudo (and
//! the test's sudoers over /etc/sudoers); `setpriv` then becomes the
//! caller, who runs `script(1)` (their own terminal) and `su` in it. The
//! machine's files are never touched.
//!
//! The variables are those the loaded libpq lists (`PQconninfoParse`'s
//! `envvar`s: a newer libpq's new one fails the test until it has a case)
//! plus the ones that are not keywords, plus a `HOME` holding `.pgpass`,
//! `.pg_service.conf` and `.postgresql/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use testkit::harness::{hotp_codes, su_as_caller};
use testkit::pg::{fleet_config, Postgres};
use testkit::{
    binary_path, code_not_in, run_with_input, set_mode, PamRun, PamService, PtyRun, TestUser,
    KEY_HEX, PROMPT,
};

const PASSWORD: &str = "Victim-pw-27";

/// The victim's password, then the code; nothing else.
const STACK: &str = "auth requisite pam_unix.so nodelay\n\
                     auth required {module} config={config}\n\
                     account required pam_permit.so\n\
                     session required pam_permit.so\n";

/// Runs that bind over /etc one at a time (each in its own namespace,
/// but the sudo and su tests of this file share the fixtures' users).
fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The real database, the caller's fake one, the victim and the caller.
struct Scene {
    real: Postgres,
    _fake: Postgres,
    pam: PamService,
    victim: TestUser,
    caller: TestUser,
    /// The caller's directory of hostile files.
    evil: PathBuf,
    fake_sock: PathBuf,
    fake_port: u16,
    codes: Vec<String>,
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `host=a port=b ...` as the lines of a service file section.
fn as_service(name: &str, conninfo: &str) -> String {
    let mut s = format!("[{name}]\n");
    for kv in conninfo.split_whitespace() {
        s.push_str(kv);
        s.push('\n');
    }
    s
}

fn failures(pg: &Postgres, user: &str) -> String {
    pg.psql_ok(&format!(
        "SELECT failures FROM pam_otp.users WHERE name = '{user}'"
    ))
}

fn scene() -> Scene {
    let real = Postgres::with_schema();
    let fake = Postgres::with_schema();
    let victim = TestUser::new();
    victim.set_password(PASSWORD);
    let caller = TestUser::new();

    // The host: the admin guide's form, `service=pam_otp` looked up in one
    // root-owned service file named by the config.
    let pam = PamService::named("su", STACK, "");
    let real_conninfo = real.host_conninfo("web1", &pam.dir, 5);
    let admin = real.admin_conninfo("ops", &pam.dir, 5);
    let service_file = pam.write_file(
        "pg_service.conf",
        &format!(
            "{}{}",
            as_service("pam_otp", &real_conninfo),
            as_service("pam_otp_admin", &admin)
        ),
    );
    set_mode(&service_file, 0o600);
    pam.write_config(&format!(
        "{}service_file = {:?}\n",
        fleet_config(
            "service=pam_otp",
            "service=pam_otp_admin",
            "[rate_limit]\nmax_failures = 0\n"
        ),
        p(&service_file)
    ));
    real.psql_ok("UPDATE pam_otp.settings SET max_failures = 1000");
    let codes = hotp_codes(KEY_HEX, 0, 10);
    let enrolled = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args([
            "--user",
            &victim.name,
            "token",
            "--serial",
            "OATH1",
            "--secret",
            KEY_HEX,
        ])
        .args(["--code", &codes[0]])
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{enrolled:?}");
    assert_eq!(failures(&real, &victim.name), "0");

    // The caller's database: the victim enrolled, and a verify that says
    // yes to anything.
    let fake_admin_dir = pam.dir.join("fake-admin");
    fs::create_dir_all(&fake_admin_dir).unwrap();
    let fake_admin = fake.admin_conninfo("ops", &fake_admin_dir, 5);
    let fake_cfg = pam.write_file("fake.toml", &fleet_config(&fake_admin, &fake_admin, ""));
    let out = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&fake_cfg)
        .args([
            "--user",
            &victim.name,
            "token",
            "--serial",
            "F1",
            "--secret",
            KEY_HEX,
        ])
        .args(["--code", &codes[0]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // verify_code() (version 3's, which this module calls) and both
    // verify() signatures (versions 2 and 1, kept for older modules).
    fake.psql_ok(
        "CREATE OR REPLACE FUNCTION pam_otp.verify_code(p_user text, p_code text, p_rhost text, \
         p_grace_period bigint, p_totp_skew integer, p_hotp_window integer, \
         p_max_failures integer, p_interval bigint, p_service text, p_remote text) \
         RETURNS TABLE (verdict text, token text, detail bigint, why text) LANGUAGE sql \
         SECURITY DEFINER AS $$ SELECT 'scratch'::text, ''::text, 9::bigint, NULL::text $$; \
         CREATE OR REPLACE FUNCTION pam_otp.verify(p_user text, p_code text, p_rhost text, \
         p_grace_period bigint, p_totp_skew integer, p_hotp_window integer, \
         p_max_failures integer, p_interval bigint, p_service text, p_remote text) \
         RETURNS TABLE (verdict text, token text, detail bigint) LANGUAGE sql \
         SECURITY DEFINER AS $$ SELECT 'scratch'::text, ''::text, 9::bigint $$; \
         CREATE OR REPLACE FUNCTION pam_otp.verify(p_user text, p_code text, p_rhost text, \
         p_grace_period bigint, p_totp_skew integer, p_hotp_window integer, \
         p_max_failures integer, p_interval bigint) \
         RETURNS TABLE (verdict text, token text, detail bigint) LANGUAGE sql \
         SECURITY DEFINER AS $$ SELECT 'scratch'::text, ''::text, 9::bigint $$",
    );

    // The caller's files: a certificate of the fake's for role web1, its
    // CA, a service file, a password file, a HOME with libpq's files.
    let evil = caller.home.join("evil");
    let home = evil.join("home");
    let dotpg = home.join(".postgresql");
    fs::create_dir_all(&dotpg).unwrap();
    fs::create_dir_all(evil.join("locale")).unwrap();
    let fake_conninfo = fake.host_conninfo("web1", &evil, 5);
    fs::copy(fake.ca_cert(), evil.join("root.crt")).unwrap();
    fs::copy(fake.ca_cert(), dotpg.join("root.crt")).unwrap();
    fs::copy(evil.join("web1.crt"), dotpg.join("postgresql.crt")).unwrap();
    fs::copy(evil.join("web1.key"), dotpg.join("postgresql.key")).unwrap();
    let evil_service = format!(
        "{}{}",
        as_service("pam_otp", &fake_conninfo),
        as_service("evil", &fake_conninfo)
    );
    fs::write(evil.join("pg_service.conf"), &evil_service).unwrap();
    fs::write(home.join(".pg_service.conf"), &evil_service).unwrap();
    fs::write(home.join(".pgpass"), "*:*:*:*:caller\n").unwrap();
    fs::write(evil.join("pgpass"), "*:*:*:*:caller\n").unwrap();
    let chown = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", caller.uid, caller.gid))
        .arg(&caller.home)
        .status()
        .unwrap();
    assert!(chown.success());
    for key in [
        evil.join("web1.key"),
        dotpg.join("postgresql.key"),
        home.join(".pgpass"),
        evil.join("pgpass"),
    ] {
        set_mode(&key, 0o600);
    }
    Scene {
        fake_sock: fake.socket_dir(),
        fake_port: fake.port(),
        real,
        _fake: fake,
        pam,
        victim,
        caller,
        evil,
        codes,
    }
}

impl Scene {
    /// The caller's value for `var`: each points at the fake database or
    /// the caller's files, or at least changes what libpq would do.
    fn hostile(&self, var: &str) -> Option<String> {
        let e = |f: &str| p(&self.evil.join(f));
        Some(match var {
            "PGSERVICE" => "evil".into(),
            "PGSERVICEFILE" => e("pg_service.conf"),
            "PGSYSCONFDIR" => p(&self.evil),
            "PGUSER" => "postgres".into(),
            "PGPASSWORD" => "caller".into(),
            "PGPASSFILE" => e("pgpass"),
            "PGCHANNELBINDING" => "require".into(),
            "PGCONNECT_TIMEOUT" => "0".into(),
            "PGDATABASE" => "postgres".into(),
            "PGHOST" => p(&self.fake_sock),
            "PGHOSTADDR" => "127.0.0.1".into(),
            "PGPORT" => self.fake_port.to_string(),
            "PGCLIENTENCODING" => "SQL_ASCII".into(),
            "PGOPTIONS" => "-c search_path=public -c statement_timeout=1".into(),
            "PGAPPNAME" => "caller".into(),
            "PGSSLMODE" => "disable".into(),
            "PGSSLCOMPRESSION" => "1".into(),
            "PGSSLCERT" => e("web1.crt"),
            "PGSSLKEY" => e("web1.key"),
            "PGSSLROOTCERT" => e("root.crt"),
            "PGSSLCRL" => e("root.crt"),
            "PGSSLCRLDIR" => p(&self.evil),
            "PGSSLSNI" => "0".into(),
            "PGREQUIREPEER" => self.caller.name.clone(),
            "PGSSLMINPROTOCOLVERSION" => "TLSv1.3".into(),
            "PGSSLMAXPROTOCOLVERSION" => "TLSv1.2".into(),
            "PGGSSENCMODE" => "require".into(),
            "PGKRBSRVNAME" => "caller".into(),
            "PGGSSLIB" => "sspi".into(),
            "PGTARGETSESSIONATTRS" => "standby".into(),
            // Not keywords.
            "PGREQUIRESSL" => "0".into(),
            "PGDATESTYLE" => "SQL, DMY".into(),
            "PGTZ" => "Pacific/Kiritimati".into(),
            "PGGEQO" => "off".into(),
            "PGLOCALEDIR" => e("locale"),
            "HOME" => e("home"),
            _ => return None,
        })
    }

    /// Every case: libpq's variables, the non-keyword ones, HOME, and all
    /// of them at once.
    fn cases(&self) -> Vec<(String, Vec<(String, String)>)> {
        let listed = otp_core::pq::libpq_variables().expect("libpq5 installed");
        let mut vars: Vec<String> = listed.into_iter().map(|(_, v)| v).collect();
        for extra in [
            "PGSERVICEFILE",
            "PGSYSCONFDIR",
            "PGREQUIRESSL",
            "PGDATESTYLE",
            "PGTZ",
            "PGGEQO",
            "PGLOCALEDIR",
            "HOME",
        ] {
            if !vars.iter().any(|v| v == extra) {
                vars.push(extra.to_string());
            }
        }
        let mut cases: Vec<(String, Vec<(String, String)>)> = vars
            .iter()
            .map(|v| {
                let value = self
                    .hostile(v)
                    .unwrap_or_else(|| panic!("libpq reads {v}: give it a hostile value here"));
                (v.clone(), vec![(v.clone(), value)])
            })
            .collect();
        let all: Vec<(String, String)> = cases
            .iter()
            .flat_map(|(_, env)| env.clone())
            // PGSERVICEFILE and HOME's .pg_service.conf point at the fake:
            // all together is the attack the issue describes.
            .collect();
        cases.push(("all at once".into(), all));
        cases
    }

    /// The caller's environment for one case: a plain one, then `env`.
    fn environment(&self, env: &[(String, String)]) -> Vec<(String, String)> {
        let mut base = vec![
            (
                "PATH".to_string(),
                "/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
            ("SHELL".into(), "/bin/sh".into()),
            ("TERM".into(), "dumb".into()),
            ("LC_ALL".into(), "C".into()),
            ("HOME".into(), p(&self.caller.home)),
            ("USER".into(), self.caller.name.clone()),
        ];
        for (k, v) in env {
            base.retain(|(b, _)| b != k);
            base.push((k.clone(), v.clone()));
        }
        base
    }

    /// `mount --bind` of the test's stack over the machine's service files
    /// (in the namespace `unshare` made), then `setpriv` to the caller.
    fn namespace(&self, binds: &[(PathBuf, &str)], then: &str) -> Command {
        let mut script = String::from("mount --make-rprivate / && ");
        for (from, onto) in binds {
            script.push_str(&format!("mount --bind '{}' '{onto}' && ", p(from)));
        }
        script.push_str(&format!(
            "exec setpriv --reuid={} --regid={} --init-groups -- {then}",
            self.caller.uid, self.caller.gid
        ));
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env_clear()
            .current_dir("/");
        cmd
    }

    /// The real setuid `su VICTIM`, typed by the caller on their own
    /// terminal with `env`: the victim's password, then `code`.
    fn su(&self, env: &[(String, String)], code: &str) -> PtyRun {
        su_as_caller(
            &self.pam.dir.join("su"),
            &self.caller,
            &self.victim.name,
            &self.environment(env),
            &[],
            None,
            &[("Password: ", PASSWORD), (PROMPT, code)],
        )
    }

    /// The real `sudo -u VICTIM` (sudoers: `targetpw`, `!env_reset`), run
    /// by the caller with `env`: the victim's password, then `code`.
    fn sudo(&self, env: &[(String, String)], code: &str) -> PamRun {
        let stack = self.pam.dir.join("su");
        let sudoers = self.pam.dir.join("sudoers");
        let mut cmd = self.namespace(
            &[(stack, "/etc/pam.d/sudo"), (sudoers, "/etc/sudoers")],
            &format!("sudo -S -u {} -- id -un", self.victim.name),
        );
        cmd.envs(self.environment(env));
        run_with_input(&mut cmd, &format!("{PASSWORD}\n{code}\n"))
    }
}

/// Through su: for each variable, and all at once, the wrong code is
/// refused and the real database counts the failure; then the right code
/// works with all of them set (the real database, not a broken login).
#[test]
#[ignore = "needs root: make test"]
fn su_with_the_callers_environment_asks_the_real_database() {
    let _one = serial();
    let s = scene();
    let wrong = code_not_in(&s.codes);
    let mut expected = 0;
    for (name, env) in s.cases() {
        let run = s.su(&env, &wrong);
        expected += 1;
        assert!(
            !run.success && !run.output.contains(&format!("OK-{}", s.victim.name)),
            "{name}: the caller became the victim: {run:#?}"
        );
        assert!(
            run.output.contains(PROMPT),
            "{name}: no code asked: {run:#?}"
        );
        assert_eq!(
            failures(&s.real, &s.victim.name),
            expected.to_string(),
            "{name}: the real database did not see the failure: {run:#?}\n{}",
            s.real.log()
        );
    }
    let all = s.cases().pop().unwrap().1;
    let run = s.su(&all, &s.codes[1]);
    assert!(
        run.success && run.output.contains(&format!("OK-{}", s.victim.name)),
        "the right code, all variables set: {run:#?}"
    );
}

/// Through sudo with `!env_reset`: the same.
#[test]
#[ignore = "needs root: make test"]
fn sudo_without_env_reset_asks_the_real_database() {
    let _one = serial();
    let s = scene();
    let sudoers = s.pam.write_file(
        "sudoers",
        &format!(
            "Defaults !lecture, timestamp_timeout=0, passwd_tries=1, targetpw, !env_reset\n{} ALL=({}) ALL\n",
            s.caller.name, s.victim.name
        ),
    );
    set_mode(&sudoers, 0o440);
    let wrong = code_not_in(&s.codes);
    let mut expected = 0;
    for (name, env) in s.cases() {
        let run = s.sudo(&env, &wrong);
        expected += 1;
        assert!(
            !run.success && !run.stdout.contains(&s.victim.name),
            "{name}: the caller ran as the victim: {run:#?}"
        );
        assert!(
            run.stderr.contains(PROMPT),
            "{name}: no code asked: {run:#?}"
        );
        assert_eq!(
            failures(&s.real, &s.victim.name),
            expected.to_string(),
            "{name}: the real database did not see the failure: {run:#?}"
        );
    }
    let all = s.cases().pop().unwrap().1;
    let run = s.sudo(&all, &s.codes[1]);
    assert!(
        run.success && run.stdout.trim() == s.victim.name,
        "the right code, all variables set: {run:#?}"
    );
}

/// The pids of `parent`'s children that run the helper (`pq-helper`).
fn helpers_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, not ')' last.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        let exe = fs::read_link(entry.path().join("exe")).unwrap_or_default();
        if ppid == Some(parent) && exe.to_string_lossy().ends_with("pq-helper") {
            found.push(pid);
        }
    }
    found
}

/// Where each of `pid`'s descriptors points.
fn descriptors(pid: u32) -> Vec<(String, PathBuf)> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = fs::read_link(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect()
}

/// A descriptor the program left open without close-on-exec (util-linux
/// su keeps the caller's; a server may keep its sockets) does not reach
/// the helper, which holds the database connection as root for the whole
/// login: it has its socket and /dev/null, nothing else. The login is
/// held at the code prompt (its answer not yet written) while the
/// helper's descriptors are read from /proc.
#[test]
#[ignore = "needs root: make test"]
fn the_helper_holds_no_descriptor_the_program_left_open() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    use testkit::harness::stopwatch;

    let _one = serial();
    let s = scene();
    let left_open = s.pam.write_file("left-open", "the program's file\n");
    let argv = s
        .pam
        .pamtester_argv(&s.victim.name, None, &["authenticate"]);
    let mut login = Command::new("sh")
        .arg("-c")
        .arg("exec 9<\"$0\"; exec \"$@\"")
        .arg(&left_open)
        .args(&argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = login.stdin.take().unwrap();
    writeln!(input, "{PASSWORD}").unwrap();
    let pid = login.id();
    let deadline = stopwatch() + Duration::from_secs(30);
    let helper = loop {
        if let Some(&h) = helpers_of(pid).first() {
            break Some(h);
        }
        if stopwatch() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The test's premise: the program itself holds the file on fd 9.
    let programs = descriptors(pid);
    let helpers = helper.map(descriptors);
    writeln!(input, "{}", s.codes[1]).unwrap();
    drop(input);
    let out = login.wait_with_output().unwrap();
    let run = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        programs
            .iter()
            .any(|(fd, to)| fd == "9" && to == &left_open),
        "pamtester does not hold the file on fd 9: {programs:?}"
    );
    let helpers = helpers.unwrap_or_else(|| panic!("no helper seen during the login: {run}"));
    let foreign: Vec<_> = helpers
        .iter()
        .filter(|(fd, to)| {
            // Its own (libpq's socket to the server) are new; the
            // program's are the same files, sockets and pipes.
            fd.parse::<u32>().map_or(true, |fd| fd > 2)
                && programs.iter().any(|(_, theirs)| theirs == to)
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "the helper holds descriptors of the program: {foreign:?} (all: {helpers:?})"
    );
    assert!(out.status.success(), "the right code was refused: {run}");
}
