//! The set-up `make demo` and `make test` do first (scripts/setup with the
//! lists in scripts/packages/), as a newcomer meets it: on this machine,
//! where everything is installed, it is a quick silent no-op; on a fresh
//! machine it installs every package of its set with apt-get, and
//! cargo-fuzz; where it cannot, it stops at once with one line that says
//! what is missing and how to get it.
//!
//! Nothing is installed or removed for real: the fresh machine is a PATH
//! with stand-ins for dpkg-query, apt-get and cargo in front, which keep a
//! list of what is "installed" and log how they were called.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use testkit::harness::stopwatch;
use testkit::{finish_with_cpu, require_root, TestUser};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The system's command directories, less any that holds a cargo: a PATH
/// on which cargo is not found.
fn path_without_cargo() -> String {
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .filter(|d| !Path::new(d).join("cargo").exists())
    .copied()
    .collect::<Vec<_>>()
    .join(":")
}

/// A fresh machine: stand-ins for dpkg-query (nothing installed but what
/// the apt-get stand-in installed), apt-get and cargo, in a temp dir.
struct FreshMachine {
    dir: PathBuf,
}

const DPKG_QUERY: &str = r#"#!/bin/bash
# dpkg-query -W -f=FORMAT -- PACKAGE...: "NAME=installed " for those in the list.
rc=0; seen_dashdash=
for a in "$@"; do
    if [ -z "$seen_dashdash" ]; then [ "$a" = -- ] && seen_dashdash=1; continue; fi
    if grep -qx -- "$a" "$STUB_DIR/installed"; then printf '%s=installed ' "$a"
    else echo "dpkg-query: no packages found matching $a" >&2; rc=1; fi
done
exit $rc
"#;

const APT_GET: &str = r#"#!/bin/bash
echo "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-}" >>"$STUB_DIR/log"
if [ -n "${STUB_APT_FAILS:-}" ]; then echo "E: Unable to locate package $STUB_APT_FAILS" >&2; exit 100; fi
if [[ " $* " == *" install "* ]]; then
    after=
    for a in "$@"; do [ -n "$after" ] && echo "$a" >>"$STUB_DIR/installed"; [ "$a" = -- ] && after=1; done
fi
exit 0
"#;

const CARGO: &str = r#"#!/bin/bash
echo "cargo $*" >>"$STUB_DIR/log"
if [ "$1" = install ]; then
    for tool in "$@"; do :; done
    printf '#!/bin/sh\n' >"$STUB_DIR/$tool"; chmod +x "$STUB_DIR/$tool"
fi
"#;

impl FreshMachine {
    fn new(tag: &str) -> FreshMachine {
        let dir = PathBuf::from(format!(
            "/tmp/pam-otp-setup-test-{}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("dpkg-query", DPKG_QUERY),
            ("apt-get", APT_GET),
            ("cargo", CARGO),
        ] {
            let p = dir.join(name);
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(dir.join("installed"), "").unwrap();
        fs::write(dir.join("log"), "").unwrap();
        FreshMachine { dir }
    }

    /// `scripts/setup SET` on this machine, as root, with no standard input.
    fn setup(&self, set: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(repo().join("scripts/setup"));
        cmd.arg(set)
            .env(
                "PATH",
                format!("{}:{}", self.dir.display(), path_without_cargo()),
            )
            .env("STUB_DIR", &self.dir)
            .env_remove("CARGO")
            .env_remove("SUDO_USER")
            .env_remove("DEBIAN_FRONTEND")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn log(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn installed(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("installed"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FreshMachine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// "Quick" is the work done: the dpkg-query of the lists and no more. It
/// is bounded as the CPU time of make and everything it ran (a `cargo
/// install` or an apt-get would take seconds of it; the apt-get here is a
/// stand-in that logs its calls), which a loaded machine does not
/// stretch; the wall time, which it does (processes starved of CPU), is
/// printed.
#[test]
#[ignore = "needs root: make test"]
fn on_this_machine_it_is_a_quiet_no_op_well_under_a_second() {
    require_root();
    // The real dpkg-query and cargo; an apt-get that must not be called.
    let stubs = FreshMachine::new("noop");
    let apt_only = stubs.dir.join("apt-only");
    fs::create_dir(&apt_only).unwrap();
    fs::rename(stubs.dir.join("apt-get"), apt_only.join("apt-get")).unwrap();
    for target in ["setup-demo", "setup-test"] {
        let started = stopwatch();
        let child = Command::new("make")
            .args(["--no-print-directory", "-C"])
            .arg(repo())
            .arg(target)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    apt_only.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("STUB_DIR", &stubs.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, cpu) = finish_with_cpu(child);
        let took = started.elapsed();
        assert!(
            out.success,
            "make {target} (run make test once first, which installs everything):\n{}{}",
            out.stdout, out.stderr
        );
        assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
        eprintln!("make {target}, everything installed: {took:?}, {cpu:?} of CPU");
        assert!(
            cpu < Duration::from_secs(1),
            "make {target} used {cpu:?} of CPU"
        );
    }
    assert_eq!(stubs.log(), Vec::<String>::new(), "apt-get or cargo called");
}

#[test]
#[ignore = "needs root: make test"]
fn a_fresh_machine_gets_the_whole_test_set_and_cargo_fuzz_once() {
    require_root();
    let m = FreshMachine::new("fresh");
    let out = m.setup("test", &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let log = m.log();
    assert!(
        log.first()
            .is_some_and(|l| l.starts_with("apt-get ") && l.contains(" update ")),
        "apt-get update first: {log:?}"
    );
    let install = log
        .iter()
        .find(|l| l.contains(" install "))
        .unwrap_or_else(|| panic!("no apt-get install: {log:?}"));
    assert!(
        install.contains(" -y ") && install.ends_with("DEBIAN_FRONTEND=noninteractive"),
        "non-interactive, for CI without standard input: {install}"
    );
    let installed = m.installed();
    for p in [
        "libpam0g-dev",
        "openssh-server",
        "openssh-client",
        "oathtool",
        "pamtester",
        "libpam-wrapper",
        "zbar-tools",
        "valgrind",
        "debhelper",
        "lintian",
    ] {
        assert!(
            installed.iter().any(|i| i == p),
            "{p} not installed: {installed:?}"
        );
    }
    assert!(
        log.iter().any(|l| l == "cargo install --locked cargo-fuzz"),
        "{log:?}"
    );
    let said = stdout(&out);
    assert!(
        said.starts_with("make test: installing ") && said.contains(" libpam0g-dev "),
        "says what it installs: {said}"
    );

    // Idempotent: a second run has nothing to do.
    let before = m.log().len();
    let again = m.setup("test", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(m.log()[before..], [] as [String; 0]);
    assert_eq!(
        (stdout(&again), stderr(&again)),
        (String::new(), String::new())
    );
}

#[test]
#[ignore = "needs root: make test"]
fn the_demo_set_is_smaller_than_the_test_set() {
    require_root();
    let m = FreshMachine::new("demo");
    let out = m.setup("demo", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let installed = m.installed();
    for p in ["libpam0g-dev", "openssh-server", "oathtool"] {
        assert!(installed.iter().any(|i| i == p), "{p}: {installed:?}");
    }
    for p in ["pamtester", "zbar-tools", "valgrind", "lintian"] {
        assert!(!installed.iter().any(|i| i == p), "{p}: {installed:?}");
    }
    assert!(
        !m.log().iter().any(|l| l.starts_with("cargo ")),
        "{:?}",
        m.log()
    );
}

#[test]
#[ignore = "needs root: make test"]
fn no_cargo_stops_at_once_with_one_line() {
    require_root();
    let m = FreshMachine::new("nocargo");
    fs::remove_file(m.dir.join("cargo")).unwrap();
    for (env, hint) in [
        (&[][..], "rustup"),
        (
            &[("SUDO_USER", "alice")][..],
            "sudo env \"PATH=$PATH\" make test",
        ),
    ] {
        let out = m.setup("test", env);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with("make test: cargo not found: install a Rust toolchain")
                && err.contains(hint),
            "{err}"
        );
        assert_eq!(stdout(&out), "");
    }
    assert_eq!(m.log(), Vec::<String>::new(), "nothing installed");
}

#[test]
#[ignore = "needs root: make test"]
fn a_failing_apt_get_ends_with_one_line_naming_the_packages() {
    require_root();
    let m = FreshMachine::new("aptfails");
    fs::write(
        m.dir.join("installed"),
        "gcc\nlibc6-dev\npasswd\nutil-linux\n",
    )
    .unwrap();
    let out = m.setup("demo", &[("STUB_APT_FAILS", "oathtool")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("E: Unable to locate package oathtool"),
        "apt's own words: {err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "make demo: apt-get could not install libpam0g-dev libpq-dev pkg-config openssh-server openssh-client oathtool "
        ),
        "{err}"
    );
}

/// A copy of what `make demo`/`make test` run first, where a test user can
/// read it (the checkout may be in a directory only root can enter).
fn copy_for(user: &TestUser) -> PathBuf {
    let dir = user.home.join("tree");
    fs::create_dir_all(dir.join("scripts/packages")).unwrap();
    for f in [
        "Makefile",
        "scripts/setup",
        "scripts/demo",
        "scripts/packages/demo",
        "scripts/packages/test",
    ] {
        fs::copy(repo().join(f), dir.join(f)).unwrap();
    }
    for d in ["", "scripts", "scripts/packages"] {
        fs::set_permissions(dir.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
#[ignore = "needs root: make test"]
fn not_root_stops_at_once_with_one_line() {
    require_root();
    let user = TestUser::new();
    let tree = copy_for(&user);
    for set in ["demo", "test"] {
        let out = user
            .command(tree.join("scripts/setup").to_str().unwrap())
            .arg(set)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with(&format!("make {set}: run it as root (sudo make {set}): ")),
            "{err}"
        );
        assert_eq!(stdout(&out), "");

        // Through make, as typed: that line first, then only make's own
        // "Error 1"; nothing was built or run.
        let out = user
            .command("make")
            .args(["--no-print-directory", "-C"])
            .arg(&tree)
            .arg(set)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with(&format!("make {set}: run it as root")),
            "{err}"
        );
        assert!(lines[1].contains("Error 1"), "{err}");
        assert_eq!(stdout(&out), "", "nothing else ran");
    }
}
