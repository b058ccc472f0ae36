//! `make demo` (scripts/demo) as a newcomer runs it: it enrolls the demo
//! user, starts a throwaway sshd and prints the ssh command and a way to get
//! a code; a login with that code works, the same code again is refused,
//! and Ctrl-C (SIGINT to the foreground process group) removes the user,
//! its home, the private PAM service file, the temp dir and sshd.
//!
//! The test runs the script itself with a `CARGO` that answers `cargo
//! metadata` for real and does nothing for `cargo build`: the workspace is
//! already built (`make test` builds it before `cargo test`), and a nested
//! build would wait on the lock the running `cargo test` holds. It sets
//! `CARGO_TARGET_DIR` to another path of the real target directory (a
//! symlink), as Rust developers often do: the demo must find the build
//! there, not in `target/` beside the script.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use testkit::{oathtool_totp, require_root, wait_for_fresh_step};

const DEMO_USER: &str = "pamotp-demo";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The word after `before` on the first line holding it.
fn word_after<'a>(lines: &'a [String], before: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let rest = &l[l.find(before)? + before.len()..];
        rest.split_whitespace().next()
    })
}

/// `ssh -p PORT pamotp-demo@127.0.0.1 echo ...`, answering the code prompt
/// with `code` through a forced askpass.
fn ssh_with_code(dir: &Path, port: &str, code: &str) -> (bool, String) {
    let askpass = dir.join("askpass");
    let mut f = fs::File::create(&askpass).unwrap();
    writeln!(f, "#!/bin/sh\necho {code}").unwrap();
    drop(f);
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new("setsid")
        .args(["-w", "ssh", "-F", "/dev/null", "-p", port])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
        ])
        .args([
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "PubkeyAuthentication=no",
        ])
        .args(["-o", "PreferredAuthentications=keyboard-interactive", "-T"])
        .arg(format!("{DEMO_USER}@127.0.0.1"))
        .arg("echo OK-$(id -un)")
        .env_remove("SSH_AUTH_SOCK")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":pam-otp-e2e")
        .stdin(Stdio::null())
        .output()
        .expect("ssh (openssh-client) installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn demo_leftovers() -> Vec<String> {
    let mut left = Vec::new();
    if Command::new("getent")
        .args(["passwd", DEMO_USER])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        left.push(format!("user {DEMO_USER}"));
    }
    for (dir, prefix) in [
        ("/etc/pam.d", "sshd-pam-otp-demo-"),
        ("/tmp", "pam-otp-demo."),
    ] {
        for e in fs::read_dir(dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                left.push(e.path().display().to_string());
            }
        }
    }
    let ps = Command::new("pgrep")
        .args(["-f", "sshd-pam-otp-demo-"])
        .output()
        .unwrap();
    if ps.status.success() {
        left.push(format!(
            "sshd {}",
            String::from_utf8_lossy(&ps.stdout).trim()
        ));
    }
    left
}

#[test]
#[ignore = "needs root: make test"]
fn demo_lets_the_demo_user_in_with_a_code_and_ctrl_c_removes_everything() {
    require_root();
    assert!(
        demo_leftovers().is_empty(),
        "a demo is running or was left behind: {:?}",
        demo_leftovers()
    );
    let mut demo = Command::new(repo().join("scripts/demo"));
    // A Ctrl-C in a terminal reaches a foreground job whose SIGINT is not
    // ignored. A test run started in the background of a script inherits an
    // ignored SIGINT, which exec keeps and bash then cannot trap: the demo
    // would never hear the Ctrl-C below. So the demo starts with it as a
    // terminal's job has it.
    let reset_sigint = || {
        // SAFETY: signal(2) with SIG_DFL: no handler, no memory.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and only calls signal(2),
    // which is async-signal-safe.
    unsafe { demo.pre_exec(reset_sigint) };
    // The module and command the other tests use: built, and not older
    // than their sources.
    let module = testkit::module_path();
    let otp_enroll = testkit::binary_path("otp-enroll");
    let tmp = PathBuf::from("/tmp").join(format!("pam-otp-demo-test-{}", std::process::id()));
    fs::create_dir_all(&tmp).unwrap();
    // cargo's target directory under another name, and a cargo that builds
    // nothing but tells the truth about where it builds.
    let target_link = tmp.join("cargo-target");
    let profile_dir = testkit::target_dir();
    let profile = profile_dir.file_name().unwrap().to_owned();
    let target_root = profile_dir.parent().unwrap().to_path_buf();
    std::os::unix::fs::symlink(&target_root, &target_link).unwrap();
    let cargo = tmp.join("cargo");
    let real_cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    fs::write(
        &cargo,
        format!("#!/bin/sh\ncase \"$1\" in metadata) exec '{real_cargo}' \"$@\" ;; esac\nexit 0\n"),
    )
    .unwrap();
    fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = demo
        .env("CARGO", &cargo)
        .env("CARGO_TARGET_DIR", &target_link)
        .env("PROFILE", &profile)
        .env_remove("MODULE")
        .env_remove("OTP_ENROLL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, as a shell's foreground job: Ctrl-C goes
        // to the whole group.
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as libc::pid_t;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let ready = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let done = line.contains("Ctrl-C stops");
                lines.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let port = word_after(&lines, "ssh -p ").map(str::to_string);
    let secret = word_after(&lines, "oathtool --totp -b ").map(str::to_string);

    // Everything that can fail runs before the Ctrl-C, so the demo is
    // stopped and checked even when the login part fails.
    let login = (|| -> Result<(), String> {
        if !ready {
            return Err(format!("the demo did not get ready:\n{}", lines.join("\n")));
        }
        // It found the build where CARGO_TARGET_DIR puts it.
        let found = |what: &str, built: &Path| -> Result<(), String> {
            let used = word_after(&lines, &format!("demo: {what} "))
                .ok_or(format!("the demo did not say which {what} it uses"))?;
            let want = target_link.join(&profile).join(built.file_name().unwrap());
            if Path::new(used) != want {
                return Err(format!("the demo uses {used}, not {}", want.display()));
            }
            Ok(())
        };
        found("module", &module)?;
        found("otp-enroll", &otp_enroll)?;
        let port = port.as_deref().ok_or("no ssh -p PORT printed")?;
        let secret = secret.as_deref().ok_or("no oathtool command printed")?;
        wait_for_fresh_step(5);
        let code = oathtool_totp(secret, None, &[]);
        let (ok, out) = ssh_with_code(&tmp, port, &code);
        if !ok || !out.contains(&format!("OK-{DEMO_USER}")) {
            return Err(format!("login with a right code failed:\n{out}"));
        }
        let (ok, out) = ssh_with_code(&tmp, port, &code);
        if ok || !out.contains("Permission denied") {
            return Err(format!("the same code again was not refused:\n{out}"));
        }
        Ok(())
    })();

    // SAFETY: kill(2) with a negative pid signals the demo's process group
    // (created above); no memory is involved.
    unsafe { libc::kill(-pgid, libc::SIGINT) };
    let status = child.wait().unwrap();
    // Everything the demo printed up to its exit, not what the reader
    // thread happened to pass on by now (try_iter raced it and missed the
    // last lines under load): the reader ends at end of file, which comes
    // once the demo and its sshd have closed their ends of the pipe.
    let mut rest = Vec::new();
    let drained = testkit::harness::stopwatch();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => rest.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => assert!(
                drained.elapsed() < Duration::from_secs(30),
                "the demo's output did not end 30 s after it exited: {rest:?}"
            ),
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    login.unwrap();
    assert!(
        rest.iter().any(|l| l.contains("nothing left behind")),
        "{status}: {rest:?}"
    );
    assert_eq!(demo_leftovers(), Vec::<String>::new());
}
