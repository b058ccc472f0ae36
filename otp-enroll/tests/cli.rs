//! The command line itself: help for every subcommand, usage errors, and no
//! panic on any input or output.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use common::*;
use testkit::TestUser;

/// Every command (SPEC.md's names; `db` and `inventory` have commands of
/// their own), kept here apart from the definition so that a command
/// dropped or renamed there shows. The unit tests in src/cli.rs check the
/// definition itself (clap's debug_assert) and the man page and
/// completions made from it.
const COMMANDS: &[&str] = &[
    "new",
    "token",
    "list",
    "resync",
    "status",
    "scratch",
    "unlock",
    "remove",
    "import-google",
    "reset",
    "disable",
    "enable",
    "expire",
    "migrate",
    "db",
    "inventory",
    "report",
    "audit",
];

#[test]
fn every_subcommand_has_help() {
    let out = ok(&run(
        {
            let mut c = enroll();
            c.arg("--help");
            c
        },
        "",
    ));
    for c in COMMANDS {
        assert!(out.contains(c), "--help lists {c}: {out}");
    }
    for c in COMMANDS {
        for args in [vec![*c, "--help"], vec!["help", *c], vec![*c, "-h"]] {
            let mut cmd = enroll();
            cmd.args(&args);
            let help = ok(&run(cmd, ""));
            // clap's usage line; the global options are listed under
            // "Global options" in every command's help.
            assert!(
                help.contains(&format!("\nUsage: otp-enroll {c} ")),
                "{args:?}: {help}"
            );
        }
    }
    let mut cmd = enroll();
    cmd.arg("--version");
    assert!(ok(&run(cmd, "")).starts_with("otp-enroll "));
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    for args in [
        &["frobnicate"][..],
        &["new", "--digits", "x"],
        &["new", "--digits", "300"],
        &["new", "--digits", "9"],
        &["new", "--period", "0"],
        &["new", "--algorithm", "md5"],
        &["new", "--qr", "png"],
        &["new", "--scratch-codes", "21"],
        &["new", "--secret", "not base32!"],
        &["new", "--secret", "JBSWY3DP"],
        &["new", "--issuer", ""],
        &["status", "--hotp"],
        &["remove", "--hotp"],
        &["list", "--force"],
        &["resync", "1"],
        &["resync", "1", "2", "3"],
        &["import-google", "a", "b"],
        &["--user"],
        &["--user", "../etc", "status"],
        &["--user", "-rf", "status"],
        &["--secret-file", "relative.toml", "status"],
        &["--secret-file", "/tmp/%x", "status"],
        &["--secret-file", "/tmp/${FOO}", "status"],
        &["--secret-file", "/tmp/$USER", "status"],
        &["help", "nope"],
    ] {
        let mut cmd = enroll();
        cmd.args(args);
        let out = run(cmd, "");
        let all = fails(&out, 2);
        assert!(all.starts_with("otp-enroll: "), "{args:?}: {all}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
#[ignore = "needs root: make test"]
fn no_panic_on_hostile_arguments_or_output() {
    let user = TestUser::new();
    let hostile: Vec<Vec<&OsStr>> = vec![
        vec![OsStr::from_bytes(b"\xff\xfe")],
        vec![
            OsStr::new("--user"),
            OsStr::from_bytes(b"\xffroot"),
            OsStr::new("status"),
        ],
        vec![
            OsStr::new("--config"),
            OsStr::new("/dev/null/x"),
            OsStr::new("status"),
        ],
        vec![
            OsStr::new("--config"),
            OsStr::new("/proc/self/mem"),
            OsStr::new("status"),
        ],
        vec![
            OsStr::new("--config"),
            OsStr::new("/etc"),
            OsStr::new("status"),
        ],
        vec![
            OsStr::new("new"),
            OsStr::new("--issuer"),
            OsStr::new("a\u{7}b"),
        ],
        vec![
            OsStr::new("new"),
            OsStr::new("--label"),
            OsStr::from_bytes(&[b'x'; 4000]),
        ],
        vec![
            OsStr::new("resync"),
            OsStr::new("99999999999999999999"),
            OsStr::new("1"),
        ],
        vec![
            OsStr::new("token"),
            OsStr::new("--counter"),
            OsStr::new("18446744073709551615"),
        ],
        vec![
            OsStr::new("scratch"),
            OsStr::new("-n"),
            OsStr::new("99999999999999999999999"),
        ],
        vec![
            OsStr::new("--secret-file"),
            OsStr::new("/"),
            OsStr::new("status"),
        ],
        vec![
            OsStr::new("--secret-file"),
            OsStr::new("/dev/zero"),
            OsStr::new("status"),
        ],
        vec![
            OsStr::new("--secret-file"),
            OsStr::new("/dev/zero"),
            OsStr::new("remove"),
            OsStr::new("-y"),
        ],
        vec![OsStr::new("import-google"), OsStr::new("/dev/zero")],
        vec![OsStr::new("import-google"), OsStr::new("/etc/shadow")],
    ];
    for args in &hostile {
        let mut cmd = enroll_as(&user);
        cmd.args(args);
        let out = run(cmd, "");
        let all = text(&out);
        assert!(!out.status.success(), "{args:?}: {all}");
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        assert!(all.starts_with("otp-enroll: "), "{args:?}: {all}");
    }

    // Output into a pipe nobody reads: an error exit, no panic, no noise.
    for args in [&["--help"][..], &["status"], &["new", "--help"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = enroll_as(&user)
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
