//! The recipes are files (`doc/recipes/`), and the documents that show
//! them (README.md, doc/admin-guide.md: [`DOCUMENTS`]) show them whole: a
//! fenced block right after a line `<!-- file: PATH -->` is PATH's text,
//! byte for byte, wherever it is shown; and every recipe file is loaded by
//! a test (its path under `doc/recipes/` is named in the tests' code), so
//! that a recipe and its test cannot drift (issue 29). The SSH, su, sudo,
//! FreeRADIUS and OpenVPN recipes are run by tests/sshd.rs, su.rs,
//! system_store.rs and radius.rs, each saying at its top what it changes
//! in them. The fleet recipe (`doc/recipes/fleet/`) runs here, as it is,
//! against a cluster made by Debian's own `pg_createcluster` (issue 27),
//! and so does the guide's rollout on two of its hosts (`rollout.toml`,
//! issue 31: it changes the dates and the path of the office's list).
//!
//! What the fleet test changes, and why: only the variables at the top of
//! each script (loopback and a free port instead of db1's network and
//! 5432, a private socket directory, configuration root and paths, so
//! that the machine's own cluster, /etc/postgresql and /etc/pam_otp are
//! never touched), `PG_CLUSTER_CONF_ROOT` for postgresql-common's
//! commands, an `otp-enroll` first in `PATH` that is the built one with a
//! config naming the built helper (`--config`, as the guide's other
//! tests add `config=`), and in the host's config the keys a test needs
//! (`state_dir`, `helper`, `service_file` naming the private service file).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::harness::hotp_codes;
use testkit::pg::{helper_line, DebianCluster};
use testkit::phone::{with_phone, Phone, User as PhoneUser, CONFIRM, CONFIRM_OPTIONAL};
use testkit::syslog::{LogSink, NAMESPACE_SCRIPT};
use testkit::{
    binary_path, now, run_in_pty, run_ok, set_mode, test_root, unique_id, PamService, PtyRun,
    TestUser, KEY_HEX, OTP_ONLY, PROMPT,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// The documents that may show a recipe file: a recipe shown anywhere
/// else would escape the check.
const DOCUMENTS: &[&str] = &["README.md", "doc/admin-guide.md"];

/// Every `<!-- file: PATH -->` of `doc` (named `name`) and the fenced
/// block after it. A marker indented (inside a list item) has its block
/// indented as much: the indent is not part of the file, and every
/// non-empty line of the block must carry it.
fn shown_files(name: &str, doc: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = doc.split_inclusive('\n').collect();
    let mut shown = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        i += 1;
        let marker = line.trim_start_matches(' ');
        let indent = &line[..line.len() - marker.len()];
        let Some(path) = marker
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let unindented = |l: &str| -> String {
            if l.trim_end().is_empty() {
                return l.trim_start_matches(' ').to_string();
            }
            match l.strip_prefix(indent) {
                Some(rest) => rest.to_string(),
                None => panic!("{name}: a line of {path}'s block lacks the marker's indent: {l:?}"),
            }
        };
        assert!(
            lines
                .get(i)
                .is_some_and(|l| unindented(l).starts_with("```")),
            "{name}: no fenced block right after the line {line:?}"
        );
        i += 1;
        let mut text = String::new();
        while let Some(l) = lines.get(i) {
            i += 1;
            let l = unindented(l);
            if l.trim_end() == "```" {
                break;
            }
            text.push_str(&l);
        }
        shown.push((path.to_string(), text));
    }
    shown
}

/// The documents' blocks are the recipe files, and every recipe file is
/// shown somewhere: neither can change without the other.
#[test]
fn the_documents_show_the_recipe_files_as_they_are() {
    let root = repo();
    let mut shown = Vec::new();
    for name in DOCUMENTS {
        let doc = fs::read_to_string(root.join(name))
            .unwrap_or_else(|e| panic!("{name} cannot be read: {e}"));
        for (path, text) in shown_files(name, &doc) {
            let file = fs::read_to_string(root.join(&path))
                .unwrap_or_else(|e| panic!("{name} shows {path}, which cannot be read: {e}"));
            assert!(
                file == text,
                "{name}'s block for {path} is not the file: copy the file into {name} \
                 (or the block into the file)\n--- file\n{file}--- {name}\n{text}"
            );
            shown.push(path);
        }
    }
    let files = recipe_files(&root);
    assert!(!files.is_empty());
    for f in files.iter().map(|f| format!("doc/recipes/{f}")) {
        assert!(
            shown.contains(&f),
            "{f} is a recipe no document shows (<!-- file: {f} --> and a fenced block \
             in one of {DOCUMENTS:?})"
        );
    }
}

/// The recipe files under `doc/recipes/` (their paths from there).
fn recipe_files(root: &Path) -> Vec<String> {
    let base = root.join("doc/recipes");
    let mut files = Vec::new();
    let mut dirs = vec![base.clone()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                let rel = e.path().strip_prefix(&base).unwrap().to_path_buf();
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

/// Every recipe file is loaded by a test: its path under `doc/recipes/`
/// is a string in the tests' sources (`testkit::recipe("pam/code-only")`,
/// `run_recipe("fleet/ca.sh", ...)`). A file no test names would be a
/// recipe the guide shows and nothing runs.
#[test]
fn every_recipe_file_is_loaded_by_a_test() {
    let root = repo();
    let mut sources = String::new();
    let mut dirs = vec![root.join("tests")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                // Code, not comments (this file's comments name recipes).
                for line in fs::read_to_string(&path).unwrap().lines() {
                    if !line.trim_start().starts_with("//") {
                        sources.push_str(line);
                        sources.push('\n');
                    }
                }
            }
        }
    }
    let files = recipe_files(&root);
    assert!(files.len() > 10, "{files:?}");
    let unloaded: Vec<&String> = files
        .iter()
        .filter(|f| !sources.contains(&format!("\"{f}\"")))
        .collect();
    assert!(
        unloaded.is_empty(),
        "recipe files no test loads (by their path under doc/recipes/, quoted): {unloaded:?}"
    );
}

/// `doc/recipes/<name>`.
fn recipe(name: &str) -> PathBuf {
    repo().join("doc/recipes").join(name)
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `sh SCRIPT` (a recipe, `fleet/...`) in `dir`, as root, with `vars` (only
/// these, a plain PATH and what the cluster's commands need).
fn run_recipe(script: &str, dir: &Path, vars: &[(&str, String)], path_first: &Path) -> String {
    fs::create_dir_all(dir).unwrap();
    let out = run_ok(
        Command::new("sh")
            .arg(recipe(script))
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", p(path_first)),
            )
            .env("LC_ALL", "C")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(dir),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy(from: &Path, to: &Path, names: &[&str]) {
    for n in names {
        fs::copy(from.join(n), to.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    }
}

/// The fleet recipe's machines, all on this one: the CA, db1 (a cluster
/// as `apt install postgresql` makes it) and a host per role of `hosts`
/// (web1.sh run for each, the admin's certificate on each). Dropped, the
/// work directory goes first, then the cluster.
struct RecipeFleet {
    _gone: Gone,
    cluster: DebianCluster,
    /// Each host's libpq service file, as web1.sh wrote it, in the order
    /// of `hosts`.
    service_files: Vec<PathBuf>,
    work: PathBuf,
}

struct Gone(PathBuf);

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// ca.sh, db1.sh and web1.sh as they are, for the host roles `hosts` and
/// the admin role `ops`.
fn fleet_from_recipe(hosts: &[&str]) -> RecipeFleet {
    let cluster = DebianCluster::create();
    let work = test_root().join(format!("recipe-fleet-{}", unique_id()));
    let gone = Gone(work.clone());
    fs::create_dir_all(&work).unwrap();
    set_mode(&work, 0o755);

    // `otp-enroll` in PATH: the built one, with a config naming the built
    // helper (the installed one is /usr/libexec/pam_otp/pq-helper).
    let bin = work.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let enroll_cfg = work.join("otp-enroll.toml");
    fs::write(
        &enroll_cfg,
        format!(
            "state_dir = {:?}\n[postgresql]\n{}",
            p(&work.join("state")),
            helper_line()
        ),
    )
    .unwrap();
    let wrapper = bin.join("otp-enroll");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec '{}' --config '{}' \"$@\"\n",
            p(&binary_path("otp-enroll")),
            p(&enroll_cfg)
        ),
    )
    .unwrap();
    set_mode(&wrapper, 0o755);

    let port = cluster.port().to_string();
    let (ca, db1) = (work.join("ca"), work.join("db1"));
    run_recipe(
        "fleet/ca.sh",
        &work,
        &[
            ("CA_DIR", p(&ca)),
            ("DB_HOST", "localhost".into()),
            ("ROLES", format!("{} ops", hosts.join(" "))),
        ],
        &bin,
    );

    fs::create_dir_all(&db1).unwrap();
    copy(&ca, &db1, &["ca.crt", "localhost.crt", "localhost.key"]);
    let mut db1_vars = vec![
        ("DB_HOST", "localhost".to_string()),
        ("LISTEN", "127.0.0.1".into()),
        ("PORT", port.clone()),
        ("SOCKET_DIR", p(&cluster.socket_dir())),
        ("PG_CONF_DIR", p(&cluster.conf_dir())),
        ("HOSTS_NET", "127.0.0.1/32".into()),
        ("ADMINS_NET", "127.0.0.1/32".into()),
        ("HOSTS", hosts.join(" ")),
        ("ADMINS", "ops".into()),
    ];
    db1_vars.extend(cluster.env());
    let said = run_recipe("fleet/db1.sh", &db1, &db1_vars, &bin);
    assert!(
        said.contains(&format!(
            "created schema pam_otp version {}",
            otp_core::store::postgresql::SCHEMA_VERSION
        )),
        "db init: {said}\n{}",
        cluster.log()
    );
    // Debian's defaults are still there, after the recipe's lines.
    let hba = fs::read_to_string(cluster.conf_dir().join("pg_hba.conf")).unwrap();
    assert!(
        hba.contains(
            "host    all             all             127.0.0.1/32            scram-sha-256"
        ),
        "{hba}"
    );

    let mut service_files = Vec::new();
    for host in hosts {
        let dir = work.join(host);
        fs::create_dir_all(&dir).unwrap();
        let (crt, key) = (format!("{host}.crt"), format!("{host}.key"));
        copy(&ca, &dir, &["ca.crt", &crt, &key, "ops.crt", "ops.key"]);
        let service_file = dir.join("etc/pg_service.conf");
        run_recipe(
            "fleet/web1.sh",
            &dir,
            &[
                ("HOST", host.to_string()),
                ("ADMIN", "ops".into()),
                ("DB_HOSTS", "localhost".into()),
                ("PORT", port.clone()),
                ("CERT_DIR", p(&dir.join("etc/pam_otp"))),
                ("SERVICE_FILE", p(&service_file)),
            ],
            &bin,
        );
        service_files.push(service_file);
    }
    RecipeFleet {
        _gone: gone,
        cluster,
        service_files,
        work,
    }
}

/// A host's config: the guide's `toml` with the keys only a test needs
/// (the built helper, the host's private service file).
fn host_config(toml: &str, service_file: &Path) -> String {
    let config = toml.replacen(
        "[postgresql]\n",
        &format!(
            "[postgresql]\n{}service_file = {:?}\n",
            helper_line(),
            p(service_file)
        ),
        1,
    );
    assert_ne!(config, toml, "pam_otp.toml has no [postgresql] table");
    config
}

/// ca.sh, db1.sh and web1.sh as they are, on one machine playing the CA,
/// db1 and web1, against a cluster as `apt install postgresql` makes it;
/// then the guide's pam_otp.toml: `otp-enroll` enrolls a user through
/// the admin's service, and a login through the real libpq in the built
/// helper takes the right code once.
#[test]
#[ignore = "needs root: make test"]
fn the_fleet_recipe_runs_as_it_is_against_a_debian_cluster() {
    let fleet = fleet_from_recipe(&["web1"]);
    let cluster = &fleet.cluster;
    let toml = fs::read_to_string(recipe("fleet/pam_otp.toml")).unwrap();
    let pam = PamService::with_config(OTP_ONLY, &host_config(&toml, &fleet.service_files[0]));

    let user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 3);
    let enrolled = Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(&pam.config_file)
        .args(["--user", &user.name, "token", "--serial", "RECIPE1"])
        .args(["--secret", KEY_HEX, "--code", &codes[0]])
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{enrolled:?}\n{}", cluster.log());
    assert_eq!(
        cluster.psql_as_postgres(
            "pam_otp",
            &format!(
                "SELECT count(*) FROM pam_otp.tokens WHERE username = '{}'",
                user.name
            )
        ),
        "1"
    );
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[1]));
    assert!(run.success, "the right code: {run:#?}\n{}", cluster.log());
    let again = pam.authenticate(&user.name, None, &format!("{}\n", codes[1]));
    assert!(!again.success, "the replay: {again:#?}");
    assert!(
        again.stdout.contains("Authentication failure")
            || again.stderr.contains("Authentication failure"),
        "{again:#?}"
    );
}

/// The stack of both hosts in the rollout: a password module, then
/// pam_otp, so that a user without a token can be offered one inside the
/// login (the guide's step 2).
const PASSWORD_THEN_OTP: &str = "auth required pam_unix.so\n\
                                 auth required {module} config={config}\n\
                                 account required pam_permit.so\n";
const PASSWORD: &str = "Rollout-pw-1";
/// `TZ` in the caller's environment (otp-enroll's, pamtester's): a far
/// zone changes nothing.
const FAR: &str = "Pacific/Kiritimati";
const OFFICE: &str = "10.1.2.3";
/// The guide's jq filter: who has not enrolled yet.
const LEFT: &str = r#".users[] | select(.state == "not_enrolled") | .user"#;
const ELSEWHERE: &str = "203.0.113.9";

/// `t` (Unix seconds) as a far-east admin writes it: RFC 3339 at +14:00.
fn at_plus_14(t: u64) -> String {
    let out = run_ok(
        Command::new("date")
            .env("TZ", "UTC")
            .arg("-d")
            .arg(format!("@{}", t + 14 * 3600))
            .arg("+%Y-%m-%dT%H:%M:%S+14:00"),
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `text` with `from` replaced by `to`, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replace(from, to)
}

fn quoted(arg: &std::ffi::OsStr) -> String {
    format!("'{}'", arg.to_string_lossy().replace('\'', "'\\''"))
}

/// One host of the rollout: its PAM service and the syslog its module
/// writes to.
struct RolloutHost {
    pam: PamService,
    sink: LogSink,
}

impl RolloutHost {
    /// The shell line of a login as `user` from `rhost`: pamtester
    /// (authenticate, then setcred, where an enrollment at login is saved)
    /// in a mount namespace whose /dev/log is this host's sink, `TZ` far.
    fn line(&self, user: &TestUser, rhost: &str) -> String {
        let argv = self
            .pam
            .pamtester_argv(&user.name, Some(rhost), &["authenticate", "setcred"]);
        let mut words = vec![
            "exec".to_string(),
            "env".into(),
            format!("TZ={FAR}"),
            "unshare".into(),
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            quoted(NAMESPACE_SCRIPT.as_ref()),
            quoted(self.sink.path.as_os_str()),
        ];
        words.extend(argv.iter().map(|a| quoted(a)));
        words.join(" ")
    }

    /// A login on a terminal, the user at it with a phone; what it
    /// showed, and the module's lines it logged.
    fn login(&self, user: &TestUser, rhost: &str, skip: bool) -> (PtyRun, Phone, Vec<String>) {
        let (run, phone) = with_phone(
            &self.line(user, rhost),
            PhoneUser {
                password: Some(PASSWORD),
                skip,
                // A code asked where none should be: an empty answer, so
                // the login fails here rather than hanging.
                then: Some((PROMPT, "")),
                ..PhoneUser::default()
            },
        );
        assert!(
            run.output.contains("pamtester: "),
            "namespace setup or pam_wrapper failed: {run:#?}"
        );
        (run, phone, self.sink.lines())
    }

    /// A login typing the password and then `code` at the code prompt.
    fn login_with_code(&self, user: &TestUser, rhost: &str, code: &str) -> (PtyRun, Vec<String>) {
        let run = run_in_pty(
            &self.line(user, rhost),
            &[],
            &[("Password: ", PASSWORD), (PROMPT, code)],
        );
        assert!(run.output.contains("pamtester: "), "{run:#?}");
        (run, self.sink.lines())
    }
}

/// The module's decision line among `lines` (the one with `result=`).
fn decision(lines: &[String]) -> String {
    lines
        .iter()
        .rev()
        .find(|l| l.contains(" result="))
        .cloned()
        .unwrap_or_else(|| panic!("no decision line in {lines:#?}"))
}

/// `otp-enroll --config CONFIG ARGS` as root, `TZ` far.
fn otp_enroll_run(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary_path("otp-enroll"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("TZ", FAR)
        .output()
        .unwrap()
}

/// [`otp_enroll_run`], which must succeed; stdout.
fn otp_enroll(config: &Path, args: &[&str]) -> String {
    let out = otp_enroll_run(config, args);
    assert!(out.status.success(), "otp-enroll {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report's lines of `users` (the machine has other accounts) and its
/// last line (the counts, of every account).
fn report_rows(report: &str, users: &[(&str, &TestUser)]) -> String {
    let mut rows: Vec<String> = report.lines().take(1).map(str::to_string).collect();
    for (_, u) in users {
        rows.extend(
            report
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(u.name.as_str()))
                .map(str::to_string),
        );
    }
    rows.join("\n")
}

/// The state `report --json` gives `user`.
fn json_state(json: &str, user: &TestUser) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let users = v["users"].as_array().expect("users");
    let row = users
        .iter()
        .find(|u| u["user"] == user.name.as_str())
        .unwrap_or_else(|| panic!("{} not in {json}", user.name));
    row["state"].as_str().unwrap_or_default().to_string()
}

/// The guide's rollout ("Rolling out to a fleet"), run as it shows it:
/// the fleet recipe's database (ca.sh, db1.sh), two hosts, web1 and web2
/// (web1.sh run for each: their own roles, certificates and service
/// files), each with the fleet's pam_otp.toml in which
/// `doc/recipes/fleet/rollout.toml` takes the place of the `missing` line
/// (its keys) and follows the break-glass rule (its rule), and pam_unix
/// before pam_otp under pamtester on a terminal (the first factor that
/// lets a login enroll). In place of the guide's dates the test puts a
/// time a few seconds ahead (the config's deadline, written at +14:00,
/// and it sleeps past it) and one an hour ahead (the office's).
///
/// Before the deadline: an enrolled user logs in with a code as before; a
/// user without a token is let in, told the date and offered a token,
/// and skips it with Enter; another enrolls inside the login on web1 and
/// then needs a code on web2. After it: `missing = "deny"` refuses a user
/// without a token, except from the office's addresses, whose rule has
/// the later date. `otp-enroll report` (and `--json`) before and after,
/// and the audit of the enrollment. Then the exceptions
/// ([`exceptions_after_the_deadline`]): `exempt` on one host lets a user
/// in with his password alone on the other, `unexempt` ends it, `require`
/// has a user set up a token at his next login. `TZ` far in the caller's
/// environment changes nothing. Run with `--nocapture` it prints what the guide
/// quotes.
#[test]
#[ignore = "needs root: make test"]
fn the_fleet_rollout_runs_as_the_guide_shows() {
    let fleet = fleet_from_recipe(&["web1", "web2"]);
    let office_list = fleet.work.join("office.list");
    fs::write(&office_list, "10.1.0.0/16\n").unwrap();
    set_mode(&office_list, 0o644);

    // The fleet's config with the rollout's keys and rule, the dates a
    // few seconds and an hour ahead.
    let base = fs::read_to_string(recipe("fleet/pam_otp.toml")).unwrap();
    let rollout = fs::read_to_string(recipe("fleet/rollout.toml")).unwrap();
    let (keys, rule) = rollout
        .split_once("\n\n")
        .expect("rollout.toml: its keys, a blank line, its rule");
    let deadline = now() + 25;
    let office = now() + 3600;
    let mut toml = replaced(
        &base,
        "missing = \"enroll\"            # users enroll at their first login, on any host\n",
        &format!("{keys}\n"),
    );
    toml.push('\n');
    toml.push_str(rule);
    let toml = replaced(
        &toml,
        "\"2027-01-15\"",
        &format!("\"{}\"", at_plus_14(deadline)),
    );
    let toml = replaced(
        &toml,
        "\"2027-02-01\"",
        &format!("\"{}\"", at_plus_14(office)),
    );
    let toml = replaced(
        &toml,
        "/etc/security/pam_otp.d/office.list",
        &p(&office_list),
    );
    let hosts: Vec<RolloutHost> = fleet
        .service_files
        .iter()
        .map(|sf| RolloutHost {
            pam: PamService::with_config(PASSWORD_THEN_OTP, &host_config(&toml, sf)),
            sink: LogSink::new(),
        })
        .collect();
    let (web1, web2) = (&hosts[0], &hosts[1]);
    let admin = &web1.pam.config_file;
    eprintln!("--- the config\n{}", fs::read_to_string(admin).unwrap());

    let users: Vec<(&str, TestUser)> = ["alice", "bob", "carol", "dave", "erin"]
        .iter()
        .map(|n| {
            let u = TestUser::new();
            u.set_password(PASSWORD);
            (*n, u)
        })
        .collect();
    let named: Vec<(&str, &TestUser)> = users.iter().map(|(n, u)| (*n, u)).collect();
    for (n, u) in &named {
        eprintln!("{n} is {}", u.name);
    }
    let [alice, bob, carol, dave, erin] = [0, 1, 2, 3, 4].map(|i| &users[i].1);

    // alice enrolled before the rollout (an HOTP token, by the admin).
    let hotp = hotp_codes(KEY_HEX, 0, 3);
    otp_enroll(
        admin,
        &[
            "--user",
            &alice.name,
            "token",
            "--serial",
            "ROLLOUT1",
            "--secret",
            KEY_HEX,
            "--code",
            &hotp[0],
        ],
    );
    let report = otp_enroll(admin, &["report"]);
    eprintln!("--- report, before\n{}", report_rows(&report, &named));
    let json = otp_enroll(admin, &["report", "--json"]);
    assert_eq!(json_state(&json, alice), "enrolled", "{json}");
    for u in [bob, carol, dave, erin] {
        assert_eq!(json_state(&json, u), "not_enrolled", "{json}");
    }

    let told = format!("required from {} on", otp_core::date::format_unix(deadline));
    // bob, before the deadline: told the date, offered a token, Enter.
    let (run, phone, log) = web1.login(bob, ELSEWHERE, true);
    assert!(run.success, "{run:#?}");
    assert!(run.output.contains(&told), "{}", run.output);
    assert_eq!(phone.scanned.len(), 0, "skipped without scanning");
    assert!(run.output.contains("otpauth://"), "{}", run.output);
    assert!(run.output.contains(CONFIRM_OPTIONAL), "{}", run.output);
    assert!(
        run.output
            .contains("Skipped: nothing was set up. You will be asked again at your next login."),
        "{}",
        run.output
    );
    let line = decision(&log);
    assert!(line.contains("enrollment offered and skipped"), "{line}");
    eprintln!(
        "--- bob on web1\n{}\n--- log\n{}",
        run.output,
        log.join("\n")
    );

    // carol enrolls inside the login on web1.
    let (run, phone, log) = web1.login(carol, ELSEWHERE, false);
    let enrolled_at = now();
    assert!(run.success, "{run:#?}");
    assert!(run.output.contains(&told), "{}", run.output);
    assert_eq!(phone.scanned.len(), 1, "{run:#?}");
    assert!(
        log.iter().any(|l| l.contains("enrolled at login")),
        "{log:#?}"
    );
    eprintln!(
        "--- carol on web1\n{}\n--- log\n{}",
        run.output,
        log.join("\n")
    );

    // alice, as before, on web2.
    let (run, log) = web2.login_with_code(alice, ELSEWHERE, &hotp[1]);
    assert!(run.success, "{run:#?}\n{log:#?}");

    // After the deadline.
    while now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // dave, without a token: missing = "deny", asked a code, refused.
    let (run, log) = web2.login_with_code(dave, ELSEWHERE, "123456");
    assert!(!run.success, "{run:#?}");
    assert!(!run.output.contains(&told), "{}", run.output);
    let line = decision(&log);
    assert!(line.contains("missing = deny"), "{line}");
    eprintln!(
        "--- dave on web2\n{}\n--- log\n{}",
        run.output,
        log.join("\n")
    );

    // erin from the office: its rule's date is ahead.
    let (run, _, log) = web2.login(erin, OFFICE, true);
    assert!(run.success, "{run:#?}");
    let office_told = format!("required from {} on", otp_core::date::format_unix(office));
    assert!(run.output.contains(&office_told), "{}", run.output);
    eprintln!(
        "--- erin on web2, from the office\n--- log\n{}",
        log.join("\n")
    );
    // erin from elsewhere: refused like dave.
    let (run, log) = web2.login_with_code(erin, ELSEWHERE, "123456");
    assert!(!run.success, "{run:#?}");
    eprintln!(
        "--- erin on web2, from elsewhere\n--- log\n{}",
        log.join("\n")
    );

    // carol needs a code on web2 (a step after the one she confirmed).
    while now() / 30 <= enrolled_at / 30 {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let secret = testkit::phone::secret_of(&phone.scanned[0]);
    let (run, log) = web2.login_with_code(
        carol,
        ELSEWHERE,
        &testkit::oathtool_totp(&secret, Some(now()), &[]),
    );
    assert!(run.success, "{run:#?}\n{log:#?}");
    eprintln!(
        "--- carol on web2\n{}\n--- log\n{}",
        run.output,
        log.join("\n")
    );

    let report = otp_enroll(admin, &["report"]);
    eprintln!("--- report, after\n{}", report_rows(&report, &named));
    let json = otp_enroll(admin, &["report", "--json"]);
    for u in [alice, carol] {
        assert_eq!(json_state(&json, u), "enrolled", "{json}");
    }
    for u in [bob, dave, erin] {
        assert_eq!(json_state(&json, u), "not_enrolled", "{json}");
    }
    // Who is left, as the guide asks jq.
    let left = Command::new("jq")
        .args(["-r", LEFT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut left.stdin.as_ref().unwrap(), json.as_bytes()).unwrap();
    let left = left.wait_with_output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    let left: Vec<&str> = left.lines().collect();
    for (u, is_left) in [
        (alice, false),
        (bob, true),
        (carol, false),
        (dave, true),
        (erin, true),
    ] {
        assert_eq!(
            left.contains(&u.name.as_str()),
            is_left,
            "{}: {left:?}",
            u.name
        );
    }
    let audit = otp_enroll(admin, &["audit", "--user", &carol.name]);
    eprintln!("--- audit of carol\n{audit}");
    // Her token was made by web1's role inside the login, and web2's
    // asked the database to check her code.
    assert!(
        audit.contains(&format!(
            "enroll user=\"{}\" token=\"app\" result=\"created\" db_role=\"web1\"",
            carol.name
        )),
        "{audit}"
    );
    assert!(
        audit.lines().any(|l| l.contains(" verify ")
            && l.contains("result=\"totp\"")
            && l.contains("db_role=\"web2\"")),
        "{audit}"
    );

    exceptions_after_the_deadline(&fleet.cluster, web1, web2, &named);
}

/// The guide's exceptions, after the deadline (`missing = "deny"` applies
/// to whoever is left): root on web1 exempts bob, refused past the
/// database's `max_exemption`; bob logs in on web2 with his password alone
/// (logged with who granted it and why) and `status` and `report` show it;
/// `unexempt` and he is refused again. dave, refused since the deadline,
/// is marked by `require` and set up a token at his next login on web2,
/// which he could not skip.
fn exceptions_after_the_deadline(
    cluster: &DebianCluster,
    web1: &RolloutHost,
    web2: &RolloutHost,
    named: &[(&str, &TestUser)],
) {
    const DAY: u64 = 86_400;
    let admin = &web1.pam.config_file;
    let [bob, dave] = ["bob", "dave"].map(|n| {
        named
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, u)| *u)
            .unwrap()
    });

    // Longer than the database's max_exemption (30 days): refused.
    let over = otp_enroll_run(
        admin,
        &[
            "--user",
            &bob.name,
            "exempt",
            "--until",
            &at_plus_14(now() + 40 * DAY),
        ],
    );
    let said = String::from_utf8_lossy(&over.stderr);
    assert_eq!(over.status.code(), Some(1), "{over:?}");
    assert!(said.contains("max_exemption (30 days)"), "{said}");
    assert!(said.contains("nothing was changed"), "{said}");
    eprintln!("--- exempt bob for 40 days\n{said}");
    // And lowered by the database's owner, the database refuses what the
    // host's config would allow.
    cluster.psql_as_postgres("pam_otp", "UPDATE pam_otp.settings SET max_exemption = 14");
    let over = otp_enroll_run(
        admin,
        &[
            "--user",
            &bob.name,
            "exempt",
            "--until",
            &at_plus_14(now() + 20 * DAY),
        ],
    );
    let said = String::from_utf8_lossy(&over.stderr);
    assert_eq!(over.status.code(), Some(1), "{over:?}");
    assert!(
        said.contains("max_exemption (14 days in the database)"),
        "{said}"
    );
    eprintln!("--- exempt bob for 20 days, the database's max_exemption 14\n{said}");
    cluster.psql_as_postgres("pam_otp", "UPDATE pam_otp.settings SET max_exemption = 30");

    // bob's phone is on order: exempt for two weeks, granted on web1.
    let until = now() + 14 * DAY;
    let out = otp_enroll(
        admin,
        &[
            "--user",
            &bob.name,
            "exempt",
            "--until",
            &at_plus_14(until),
            "--reason",
            "phone on order",
        ],
    );
    let shown_until = otp_core::date::format_unix(until);
    let no_code = format!(
        "no code asked until {} {} UTC",
        &shown_until[..10],
        &shown_until[11..16]
    );
    assert!(out.contains(&no_code), "{out}");
    assert!(out.contains("reason: phone on order"), "{out}");
    eprintln!("--- exempt bob\n{out}");

    // On web2, after the deadline: his password alone, no code asked.
    let (run, _, log) = web2.login(bob, ELSEWHERE, true);
    assert!(run.success, "{run:#?}\n{log:#?}");
    assert!(!run.output.contains(PROMPT), "{}", run.output);
    assert!(
        run.output.contains(&format!(
            "No verification code is asked of this account until {shown_until} (an administrator's exemption)."
        )),
        "{}",
        run.output
    );
    let line = decision(&log);
    assert!(
        line.contains(&format!("no code needed: exempt until {shown_until}"))
            && line.contains(r#"by db_role=\x22ops\x22 uid=0"#)
            && line.contains("reason: phone on order"),
        "{line}"
    );
    eprintln!(
        "--- bob on web2, exempt\n{}\n--- log\n{}",
        run.output,
        log.join("\n")
    );

    // status and report show it (on either host: the database's).
    let status = otp_enroll_run(&web2.pam.config_file, &["--user", &bob.name, "status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("exempt until"), "{status}");
    assert!(status.contains("phone on order"), "{status}");
    eprintln!("--- status of bob\n{status}");
    let report = otp_enroll(admin, &["report"]);
    let row = report_rows(&report, &[("bob", bob)]);
    assert!(
        row.contains("exempt until") && row.contains("phone on order"),
        "{row}"
    );
    eprintln!("--- report, bob exempt\n{row}");
    let json = otp_enroll(admin, &["report", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let bob_row = v["users"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["user"] == bob.name.as_str()))
        .unwrap_or_else(|| panic!("bob not in {json}"));
    assert_eq!(bob_row["exemption"]["until"], until, "{bob_row}");
    assert_eq!(bob_row["exemption"]["active"], true, "{bob_row}");
    eprintln!("--- report --json, bob\n{bob_row}");

    // unexempt (on web2 this time): a code is asked again, and refused.
    let out = otp_enroll(&web2.pam.config_file, &["--user", &bob.name, "unexempt"]);
    assert!(out.contains("exemption withdrawn"), "{out}");
    eprintln!("--- unexempt bob\n{out}");
    let (run, log) = web2.login_with_code(bob, ELSEWHERE, "123456");
    assert!(!run.success, "{run:#?}");
    let line = decision(&log);
    assert!(line.contains("missing = deny"), "{line}");
    assert!(!line.contains("exempt"), "{line}");
    eprintln!("--- bob on web2, unexempt\n--- log\n{line}");

    // require: dave, refused since the deadline, sets up a token at his
    // next login, and may not skip it.
    let out = otp_enroll(admin, &["--user", &dave.name, "require"]);
    assert!(
        out.contains(
            "will set up a token at the next login, whatever missing and enforce_after say"
        ),
        "{out}"
    );
    eprintln!("--- require dave\n{out}");
    let (run, phone, log) = web2.login(dave, ELSEWHERE, true);
    assert!(run.success, "{run:#?}\n{log:#?}");
    assert_eq!(phone.scanned.len(), 1, "{run:#?}");
    assert!(run.output.contains(CONFIRM), "{}", run.output);
    assert!(!run.output.contains(CONFIRM_OPTIONAL), "{}", run.output);
    assert!(!run.output.contains("required from"), "{}", run.output);
    // The log says he enrolled, and why: require's mark.
    assert!(
        log.iter().any(|l| l.contains(
            "result=success reason=\"enrollment pending (otp-enroll reset or require): \
             enrollment at login confirmed"
        )),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("enrolled at login: the stack succeeded")),
        "{log:#?}"
    );
    eprintln!(
        "--- dave on web2, required\n{}\n--- log\n{}",
        run.output,
        log.join("\n")
    );
    let json = otp_enroll(admin, &["report", "--json"]);
    assert_eq!(json_state(&json, dave), "enrolled", "{json}");
}
