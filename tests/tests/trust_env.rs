//! Issue 27, the class: nothing the caller puts in the environment of a
//! setuid program changes what the module decides, shows or logs. A local
//! user who knows the victim's password runs the real setuid util-linux
//! `su VICTIM` on their own terminal (testkit::harness::su_as_caller),
//! with the home store and the system store, once per hostile variable
//! (and once with all of them): the victim's wrong code is refused, the
//! right one accepted, the terminal shows what it shows with a plain
//! environment (the prompt, nothing more), the module's log lines are the
//! same, and nothing of the caller's (a fake helper in PATH, a preloaded
//! library) ran.
//!
//! The variables are those glibc, Rust's std and the libraries a login
//! could load read (SECURITY.md, "What the module takes from the program
//! it runs in"), plus names a module might plausibly read
//! (`PAM_OTP_CONFIG`). The module's own calls were enumerated under gdb:
//! it reads none of them.

use std::fs;
use std::path::Path;

use testkit::harness::{state_dir, su_as_caller, write_system_secret};
use testkit::syslog::LogSink;
use testkit::{
    oathtool_hotp_hex, run_ok, set_mode, PamService, PtyRun, TestUser, KEY_HEX, NO_RATE_LIMIT,
    PROMPT,
};

const PASSWORD: &str = "Victim-pw-trust";
/// The caller's own key (their `.pam_otp.toml`, their fake config).
const CALLER_KEY_HEX: &str = "3939393939393939393939393939393939393939";
const CALLER_KEY_B32: &str = "HE4TSOJZHE4TSOJZHE4TSOJZHE4TSOJZHE4TSOJZ";

const STACK: &str = "auth requisite pam_unix.so nodelay\n\
                     auth required {module} config={config}\n\
                     account required pam_permit.so\n\
                     session required pam_permit.so\n";

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

struct Scene {
    pam: PamService,
    victim: TestUser,
    caller: TestUser,
    sink: LogSink,
    evil: std::path::PathBuf,
    /// The victim's next HOTP counter.
    counter: u64,
}

/// The caller's files: a home with their own secret, a config of theirs
/// that lets anyone in, a zoneinfo file, message catalogues, a resolver
/// file, a PATH with a fake helper and oathtool, a preloadable library.
/// Each fake leaves a mark in `evil/ran` if it is ever run or loaded.
fn caller_files(caller: &TestUser) -> std::path::PathBuf {
    let evil = caller.home.join("evil");
    for d in ["bin", "lib", "locale", "tmp", "home", "krb5", "ran"] {
        fs::create_dir_all(evil.join(d)).unwrap();
    }
    fs::write(
        evil.join("home/.pam_otp.toml"),
        format!("version = 1\ntype = \"hotp\"\nsecret = \"{CALLER_KEY_B32}\"\ncounter = 0\n"),
    )
    .unwrap();
    fs::write(
        evil.join("pam_otp.toml"),
        "store = \"home\"\nmissing = \"allow\"\nsecret_file = \"/nonexistent/%u\"\n",
    )
    .unwrap();
    fs::copy(
        "/usr/share/zoneinfo/Pacific/Kiritimati",
        evil.join("zoneinfo"),
    )
    .unwrap();
    fs::write(evil.join("hosts"), "evil 127.0.0.2\n").unwrap();
    fs::write(
        evil.join("openssl.cnf"),
        "openssl_conf = evil\n[evil]\nengines = x\n",
    )
    .unwrap();
    fs::write(
        evil.join("krb5/krb5.conf"),
        "[libdefaults]\ndefault_realm = EVIL\n",
    )
    .unwrap();
    for fake in ["pq-helper", "oathtool", "otp-enroll"] {
        let f = evil.join("bin").join(fake);
        fs::write(
            &f,
            format!(
                "#!/bin/sh\necho EVIL-{fake}\n: > {}/{fake}\nexit 0\n",
                p(&evil.join("ran"))
            ),
        )
        .unwrap();
        set_mode(&f, 0o755);
    }
    let src = evil.join("evil.c");
    fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void evil(void) {{\n\
             fputs(\"EVIL-preload\\n\", stderr);\n\
             FILE *f = fopen(\"{}/preload\", \"w\"); if (f) fclose(f);\n}}\n",
            p(&evil.join("ran"))
        ),
    )
    .unwrap();
    run_ok(
        std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(evil.join("lib/libevil.so"))
            .arg(&src),
    );
    fs::copy(evil.join("lib/libevil.so"), evil.join("lib/libpam.so.0")).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", caller.uid, caller.gid))
            .arg(&caller.home),
    );
    set_mode(&evil.join("home/.pam_otp.toml"), 0o600);
    // Whoever runs a fake (root, the victim) can leave its mark.
    set_mode(&evil.join("ran"), 0o1777);
    evil
}

fn scene(system: bool) -> Scene {
    let victim = TestUser::new();
    victim.set_password(PASSWORD);
    let caller = TestUser::new();
    let evil = caller_files(&caller);
    let store = if system { "store = \"system\"\n" } else { "" };
    let pam = PamService::named("su", STACK, &format!("{store}{NO_RATE_LIMIT}"));
    let secret = format!(
        "version = 1\ntype = \"hotp\"\nsecret = \"{}\"\ncounter = 0\n",
        testkit::KEY_B32
    );
    if system {
        write_system_secret(&state_dir(&pam), &victim.name, &secret);
    } else {
        victim.write_secret(&secret);
    }
    Scene {
        pam,
        victim,
        caller,
        sink: LogSink::new(),
        evil,
        counter: 0,
    }
}

/// The hostile values, one case each, then all at once.
fn cases(evil: &Path, caller: &TestUser) -> Vec<(&'static str, Vec<(String, String)>)> {
    let e = |f: &str| p(&evil.join(f));
    let one = |k: &str, v: String| vec![(k.to_string(), v)];
    let mut cases: Vec<(&'static str, Vec<(String, String)>)> = vec![
        ("TZ far", one("TZ", "Pacific/Kiritimati".into())),
        ("TZ file", one("TZ", e("zoneinfo"))),
        ("TZDIR", one("TZDIR", p(evil))),
        ("LANG", one("LANG", "fr_FR.UTF-8".into())),
        ("LC_ALL", one("LC_ALL", "fr_FR.UTF-8".into())),
        ("LANGUAGE", one("LANGUAGE", "fr".into())),
        ("LOCPATH", one("LOCPATH", e("locale"))),
        ("NLSPATH", one("NLSPATH", format!("{}/%N", e("locale")))),
        (
            "RES_OPTIONS",
            one("RES_OPTIONS", "ndots:15 attempts:5 debug".into()),
        ),
        ("LOCALDOMAIN", one("LOCALDOMAIN", "evil.example".into())),
        ("HOSTALIASES", one("HOSTALIASES", e("hosts"))),
        ("RUST_BACKTRACE", one("RUST_BACKTRACE", "full".into())),
        ("RUST_MIN_STACK", one("RUST_MIN_STACK", "1".into())),
        ("RUST_LOG", one("RUST_LOG", "trace".into())),
        ("HOME", one("HOME", e("home"))),
        (
            "KRB5CCNAME",
            one("KRB5CCNAME", format!("FILE:{}", e("krb5/cc"))),
        ),
        ("KRB5_CONFIG", one("KRB5_CONFIG", e("krb5/krb5.conf"))),
        ("OPENSSL_CONF", one("OPENSSL_CONF", e("openssl.cnf"))),
        (
            "GNUTLS_SYSTEM_PRIORITY_FILE",
            one("GNUTLS_SYSTEM_PRIORITY_FILE", e("openssl.cnf")),
        ),
        ("PAM_OTP_CONFIG", one("PAM_OTP_CONFIG", e("pam_otp.toml"))),
        ("TMPDIR", one("TMPDIR", e("tmp"))),
        (
            "PATH",
            one(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", e("bin")),
            ),
        ),
        ("LD_PRELOAD", one("LD_PRELOAD", e("lib/libevil.so"))),
        ("LD_LIBRARY_PATH", one("LD_LIBRARY_PATH", e("lib"))),
        ("USER", one("USER", caller.name.clone())),
        ("LOGNAME", one("LOGNAME", caller.name.clone())),
    ];
    let all: Vec<(String, String)> = cases.iter().flat_map(|(_, v)| v.clone()).collect();
    cases.push(("all at once", all));
    cases
}

impl Scene {
    /// The caller's plain environment.
    fn base(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("SHELL".into(), "/bin/sh".into()),
            ("TERM".into(), "dumb".into()),
            ("LC_ALL".into(), "C".into()),
            ("HOME".into(), p(&self.caller.home)),
            ("USER".into(), self.caller.name.clone()),
        ]
    }

    /// su with `su_env` added for su, answering `code`; the terminal and
    /// the module's log lines, both with what differs from run to run (the
    /// pid, the terminal's number) taken out.
    fn su(&self, su_env: &[(String, String)], code: &str) -> (PtyRun, String, Vec<String>) {
        let run = su_as_caller(
            &self.pam.dir.join("su"),
            &self.caller,
            &self.victim.name,
            &self.base(),
            su_env,
            Some(&self.sink),
            &[("Password: ", PASSWORD), (PROMPT, code)],
        );
        let screen = run.output.replace("\r\n", "\n");
        let logged = self
            .sink
            .lines()
            .into_iter()
            .filter(|l| l.contains("pam_otp("))
            .map(|l| normalise(&l))
            .collect();
        (run, screen, logged)
    }

    fn right(&mut self) -> String {
        let c = oathtool_hotp_hex(KEY_HEX, self.counter);
        self.counter += 1;
        c
    }
}

/// A log line without its pid (`[1234]`) and terminal number (`pts/3`).
fn normalise(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(['[', '/']) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let sep = &tail[..1];
        let after = &tail[1..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        out.push_str(sep);
        if digits > 0 && (sep == "/" || after[digits..].starts_with(']')) {
            out.push('N');
        } else {
            out.push_str(&after[..digits]);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

fn hostile_environment_changes_nothing(system: bool) {
    let mut s = scene(system);
    // The caller's code: right for the caller's own secret and config,
    // wrong for the victim.
    let wrong = oathtool_hotp_hex(CALLER_KEY_HEX, 0);
    assert_ne!(wrong, oathtool_hotp_hex(KEY_HEX, 0));
    let ok = format!("OK-{}", s.victim.name);

    let (run, base_wrong_screen, base_wrong_log) = s.su(&[], &wrong);
    assert!(!run.success && !run.output.contains(&ok), "{run:#?}");
    assert_eq!(run.output.matches(PROMPT).count(), 1, "{run:#?}");
    assert!(!base_wrong_log.is_empty(), "no log line: {run:#?}");
    let code = s.right();
    let (run, base_right_screen, base_right_log) = s.su(&[], &code);
    assert!(run.success && run.output.contains(&ok), "{run:#?}");
    let base_right_screen = base_right_screen.replace(&code, "CODE");

    for (name, env) in cases(&s.evil, &s.caller) {
        let (run, screen, logged) = s.su(&env, &wrong);
        assert!(
            !run.success && !run.output.contains(&ok),
            "{name}: the caller's code let them in: {run:#?}"
        );
        assert_eq!(screen, base_wrong_screen, "{name}: the terminal differs");
        assert_eq!(logged, base_wrong_log, "{name}: the log differs");

        let code = s.right();
        let (run, screen, logged) = s.su(&env, &code);
        assert!(
            run.success && run.output.contains(&ok),
            "{name}: the victim's right code was refused: {run:#?}\n{logged:#?}"
        );
        assert_eq!(
            screen.replace(&code, "CODE"),
            base_right_screen,
            "{name}: the terminal differs"
        );
        let expected: Vec<String> = base_right_log
            .iter()
            .map(|l| l.replace("counter 0", &format!("counter {}", s.counter - 1)))
            .collect();
        assert_eq!(logged, expected, "{name}: the log differs");
        let ran: Vec<String> = fs::read_dir(s.evil.join("ran"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(ran.is_empty(), "{name}: the caller's {ran:?} ran");
    }
}

#[test]
#[ignore = "needs root: make test"]
fn home_store_su_with_a_hostile_environment() {
    hostile_environment_changes_nothing(false);
}

#[test]
#[ignore = "needs root: make test"]
fn system_store_su_with_a_hostile_environment() {
    hostile_environment_changes_nothing(true);
}
