//! The recipes are files (`doc/recipes/`), and the documents that show
//! them (README.md, doc/admin-guide.md: [`DOCUMENTS`]) show them whole: a
//! fenced block right after a line `<!-- file: PATH -->` is PATH's text,
//! byte for byte, wherever it is shown; and every recipe file is loaded by
//! a test (its path under `doc/recipes/` is named in the tests' code), so
//! that a recipe and its test cannot drift (issue 29). The SSH, su, sudo,
//! FreeRADIUS and OpenVPN recipes are run by tests/sshd.rs, su.rs,
//! system_store.rs and radius.rs, each saying at its top what it changes
//! in them. The fleet recipe (`doc/recipes/fleet/`) runs here, as it is,
//! against a cluster made by Debian's own `pg_createcluster` (issue 27).
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
use testkit::{
    binary_path, run_ok, set_mode, test_root, unique_id, PamService, TestUser, KEY_HEX, OTP_ONLY,
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
/// block after it.
fn shown_files(name: &str, doc: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = doc.split_inclusive('\n').collect();
    let mut shown = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        i += 1;
        let Some(path) = line
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        assert!(
            lines.get(i).is_some_and(|l| l.starts_with("```")),
            "{name}: no fenced block right after the line {line:?}"
        );
        i += 1;
        let mut text = String::new();
        while let Some(l) = lines.get(i) {
            i += 1;
            if l.trim_end() == "```" {
                break;
            }
            text.push_str(l);
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

/// ca.sh, db1.sh and web1.sh as they are, on one machine playing the CA,
/// db1 and web1, against a cluster as `apt install postgresql` makes it;
/// then the guide's pam_otp.toml: `otp-enroll` enrolls a user through
/// the admin's service, and a login through the real libpq in the built
/// helper takes the right code once.
#[test]
#[ignore = "needs root: make test"]
fn the_fleet_recipe_runs_as_it_is_against_a_debian_cluster() {
    let cluster = DebianCluster::create();
    let work = test_root().join(format!("recipe-fleet-{}", unique_id()));
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(work.clone());
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
    let (ca, db1, web1) = (work.join("ca"), work.join("db1"), work.join("web1"));
    run_recipe(
        "fleet/ca.sh",
        &work,
        &[
            ("CA_DIR", p(&ca)),
            ("DB_HOST", "localhost".into()),
            ("ROLES", "web1 ops".into()),
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
        ("HOSTS", "web1".into()),
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

    fs::create_dir_all(&web1).unwrap();
    copy(
        &ca,
        &web1,
        &["ca.crt", "web1.crt", "web1.key", "ops.crt", "ops.key"],
    );
    let service_file = web1.join("etc/pg_service.conf");
    run_recipe(
        "fleet/web1.sh",
        &web1,
        &[
            ("HOST", "web1".into()),
            ("ADMIN", "ops".into()),
            ("DB_HOSTS", "localhost".into()),
            ("PORT", port.clone()),
            ("CERT_DIR", p(&web1.join("etc/pam_otp"))),
            ("SERVICE_FILE", p(&service_file)),
        ],
        &bin,
    );

    // The guide's config, with the keys only a test needs.
    let toml = fs::read_to_string(recipe("fleet/pam_otp.toml")).unwrap();
    let config = toml.replacen(
        "[postgresql]\n",
        &format!(
            "[postgresql]\n{}service_file = {:?}\n",
            helper_line(),
            p(&service_file)
        ),
        1,
    );
    assert_ne!(config, toml, "pam_otp.toml has no [postgresql] table");
    let pam = PamService::with_config(OTP_ONLY, &config);

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
