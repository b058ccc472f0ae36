//! Real logins through a private sshd (OpenSSH, `UsePAM yes`,
//! keyboard-interactive) with the real ssh client. Each test has its own
//! sshd, PAM service (`/etc/pam.d/sshd-pot-<id>`), pam_otp config and user.
//!
//! The `recipe_*` tests are the SSH recipes of doc/admin-guide.md, run
//! from the files the guide shows (tests/recipes.rs checks the copies):
//! `doc/recipes/ssh/*.conf` (the sshd_config lines), `doc/recipes/pam/*`
//! (the `auth` lines of /etc/pam.d/sshd) and `doc/recipes/rules/lan.toml`.
//!
//! What these tests change in them, and why: in the PAM lines each
//! `pam_otp.so` becomes the built module with `config=` a private config
//! (`testkit::recipe_stack`: the machine's /etc/security/pam_otp.toml is
//! never read); the stack's `account`/`session` part, which the recipes
//! leave as it is, is the fixture's minimal one (`pam_unix`,
//! `pam_permit`); sshd gets a private port, address, host key, pid file
//! and PAM service name, and settings no recipe is about (`LogLevel
//! VERBOSE` for the assertions on its log, no motd, no forwarding, no root
//! login: `Sshd::start_recipe`); in lan.toml, the LAN's networks become
//! `127.0.0.2/32`, the address `ssh -b 127.0.0.2` connects from. Some
//! tests add keys to the private pam_otp config (a rate limit, the
//! missing-user policy): each says which.

use testkit::{authorize_key, recipe, recipe_stack, replaced, SshRun, Sshd, SshdSetup, OTP_ONLY};
use testkit::{totp_code, totp_secret, wrong_code, TestUser, PROMPT};

const FORWARD_PROMPT: &str = "Password & verification code: ";
const NOT_ENROLLED: &str =
    "Two-factor login is not set up for this account yet: run otp-enroll to set it up.";

fn enrolled_user() -> TestUser {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user
}

fn sshd(methods: &str, pam_auth: &str, otp_config: &str) -> Sshd {
    sshd_with(methods, pam_auth, otp_config, "")
}

fn sshd_with(methods: &str, pam_auth: &str, otp_config: &str, sshd_extra: &str) -> Sshd {
    Sshd::start(&SshdSetup {
        pam_auth,
        otp_config,
        authentication_methods: methods,
        sshd_extra,
    })
}

/// Recipe 1's sshd_config lines (and recipe 3's).
const KEY_AND_CODE: &str = "ssh/key-and-code.conf";
/// Recipe 2's sshd_config lines.
const PASSWORD_AND_CODE: &str = "ssh/password-and-code.conf";

/// A private sshd with the recipe's sshd_config lines `conf` and PAM
/// `auth` lines `pam` (both under doc/recipes/), and `otp_config`.
fn recipe_sshd(conf: &str, pam: &str, otp_config: &str) -> Sshd {
    Sshd::start_recipe(
        &recipe(conf),
        &SshdSetup {
            pam_auth: &recipe_stack(&recipe(pam)),
            otp_config,
            authentication_methods: "",
            sshd_extra: "",
        },
    )
}

/// Recipe 3's rule, with the test's LAN: 127.0.0.2 (`ssh -b 127.0.0.2`).
fn lan_rule() -> String {
    replaced(
        &recipe("rules/lan.toml"),
        r#"["192.168.1.0/24", "fd00::/8"]"#,
        r#"["127.0.0.2/32"]"#,
    )
}

fn ok_line(user: &TestUser) -> String {
    format!("OK-{}", user.name)
}

/// Runs two logins at the same time.
fn side_by_side(
    a: impl FnOnce() -> SshRun + Send,
    b: impl FnOnce() -> SshRun + Send,
) -> (SshRun, SshRun) {
    std::thread::scope(|s| {
        let a = s.spawn(a);
        let b = s.spawn(b);
        (a.join().unwrap(), b.join().unwrap())
    })
}

#[track_caller]
fn assert_in(run: &SshRun, user: &TestUser, sshd: &Sshd) {
    assert!(
        run.success && run.stdout.contains(&ok_line(user)),
        "login refused: {run:#?}\n--- sshd log ---\n{}",
        sshd.log()
    );
}

#[track_caller]
fn assert_refused(run: &SshRun, user: &TestUser) {
    assert!(!run.success, "login accepted: {run:#?}");
    assert_eq!(run.status.code(), Some(255), "{run:#?}");
    assert!(!run.stdout.contains(&ok_line(user)), "{run:#?}");
    assert!(run.stderr.contains("Permission denied"), "{run:#?}");
}

#[test]
#[ignore = "needs root: make test"]
fn right_code_runs_the_command() {
    let user = enrolled_user();
    let sshd = sshd("keyboard-interactive", OTP_ONLY, "");
    let run = sshd.ssh(&user.name).answer(PROMPT, &totp_code(0)).run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.prompts.len(), 1, "{run:#?}");
    assert_eq!(
        run.prompts[0],
        format!("({}@127.0.0.1) {PROMPT}", user.name),
        "ssh shows the module's prompt"
    );
    assert!(sshd.log().contains(&format!(
        "Accepted keyboard-interactive/pam for {}",
        user.name
    )));
}

#[test]
#[ignore = "needs root: make test"]
fn wrong_code_is_refused() {
    let user = enrolled_user();
    let sshd = sshd("keyboard-interactive", OTP_ONLY, "");
    let run = sshd.ssh(&user.name).answer(PROMPT, &wrong_code()).run();
    assert_refused(&run, &user);
    assert_eq!(run.asked(PROMPT), 1, "{run:#?}");
    assert!(sshd.log().contains(&format!(
        "Failed keyboard-interactive/pam for {}",
        user.name
    )));
    // No answer at all is refused too.
    let run = sshd.ssh(&user.name).run();
    assert_refused(&run, &user);
    assert_eq!(run.asked(PROMPT), 1, "{run:#?}");
}

#[test]
#[ignore = "needs root: make test"]
fn replayed_code_is_refused() {
    let user = enrolled_user();
    let sshd = sshd("keyboard-interactive", OTP_ONLY, "");
    let c = totp_code(0);
    let first = sshd.ssh(&user.name).answer(PROMPT, &c).run();
    assert_in(&first, &user, &sshd);
    let again = sshd.ssh(&user.name).answer(PROMPT, &c).run();
    assert_refused(&again, &user);
    assert_eq!(again.asked(PROMPT), 1, "{again:#?}");
    // The code of a later step still works: the refusal was the replay.
    let next = sshd.ssh(&user.name).answer(PROMPT, &totp_code(1)).run();
    assert_in(&next, &user, &sshd);
}

/// The rate limit over ssh: after `max_failures` wrong codes even the right
/// code is refused, and the user is told when to try again (sshd passes the
/// module's error message on with the failure; ssh prints it on stderr).
#[test]
#[ignore = "needs root: make test"]
fn rate_limited_user_is_told_when_to_try_again() {
    let user = enrolled_user();
    let sshd = sshd(
        "keyboard-interactive",
        OTP_ONLY,
        "[rate_limit]\nmax_failures = 2\ninterval = 60\n",
    );
    for _ in 0..2 {
        let run = sshd.ssh(&user.name).answer(PROMPT, &wrong_code()).run();
        assert_refused(&run, &user);
    }
    let run = sshd.ssh(&user.name).answer(PROMPT, &totp_code(0)).run();
    assert_refused(&run, &user);
    assert!(
        run.stderr
            .contains("Too many failed attempts; try again in "),
        "{run:#?}"
    );
}

/// doc/admin-guide.md, recipe 1: key + code.
/// `AuthenticationMethods publickey,keyboard-interactive`; the PAM stack's
/// auth part is pam_otp alone.
#[test]
#[ignore = "needs root: make test"]
fn recipe_key_then_code() {
    let user = enrolled_user();
    let sshd = recipe_sshd(KEY_AND_CODE, "pam/code-only", "");
    let (key, public) = sshd.client_key();
    authorize_key(&user, &public);

    // Key, then a wrong code: refused.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &wrong_code())
        .run();
    assert_refused(&run, &user);
    assert_eq!(run.asked(PROMPT), 1, "{run:#?}");

    // Key, then the right code: in; the key was checked first.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &totp_code(0))
        .run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.prompts.len(), 1, "{run:#?}");
    let log = sshd.log();
    let partial = log
        .find(&format!("Partial publickey for {}", user.name))
        .unwrap_or_else(|| panic!("no partial publickey success:\n{log}"));
    let accepted = log
        .find(&format!(
            "Accepted keyboard-interactive/pam for {}",
            user.name
        ))
        .unwrap_or_else(|| panic!("no keyboard-interactive success:\n{log}"));
    assert!(partial < accepted, "{log}");

    // The code alone (no key): never even asked.
    let run = sshd
        .ssh(&user.name)
        .methods("keyboard-interactive")
        .answer(PROMPT, &totp_code(1))
        .run();
    assert_refused(&run, &user);
    assert!(run.prompts.is_empty(), "{run:#?}");

    // The key alone: refused.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .methods("publickey")
        .run();
    assert_refused(&run, &user);
    assert!(run.prompts.is_empty(), "{run:#?}");
}

/// doc/admin-guide.md, recipe 2, the older one-prompt stack (`forward_pass`).
/// `forward_pass` hands the password on to `pam_unix.so use_first_pass`.
#[test]
#[ignore = "needs root: make test"]
fn recipe_password_and_code_forward_pass() {
    let user = enrolled_user();
    user.set_password("hunter2-pw");
    let sshd = recipe_sshd(PASSWORD_AND_CODE, "pam/forward-pass", "");

    // Right password with a wrong code, and a wrong password with a right
    // code (which is spent all the same). Side by side: each failure costs
    // pam_unix's 2 s delay.
    let (wrong_code_run, wrong_password_run) = side_by_side(
        || {
            sshd.ssh(&user.name)
                .answer(FORWARD_PROMPT, &format!("hunter2-pw{}", wrong_code()))
                .run()
        },
        || {
            sshd.ssh(&user.name)
                .answer(FORWARD_PROMPT, &format!("hunter3-pw{}", totp_code(0)))
                .run()
        },
    );
    for run in [&wrong_code_run, &wrong_password_run] {
        assert_refused(run, &user);
        assert_eq!(run.prompts.len(), 1, "{run:#?}");
        assert_eq!(run.asked(FORWARD_PROMPT), 1, "{run:#?}");
    }

    // Right password + right code, typed as one answer. (The next step's
    // code: the one above was used.)
    let run = sshd
        .ssh(&user.name)
        .answer(FORWARD_PROMPT, &format!("hunter2-pw{}", totp_code(1)))
        .run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.prompts.len(), 1, "one prompt for both: {run:#?}");
    assert_eq!(run.asked(FORWARD_PROMPT), 1, "{run:#?}");
}

/// doc/admin-guide.md, recipe 2a (two prompts): Debian's `@include
/// common-auth` (pam_unix) first, then pam_otp: "Password: ", then the code.
#[test]
#[ignore = "needs root: make test"]
fn recipe_password_then_code_two_prompts() {
    let user = enrolled_user();
    user.set_password("hunter2-pw");
    let sshd = recipe_sshd(PASSWORD_AND_CODE, "pam/password-then-code", "");

    // A wrong password ends the stack (common-auth's pam_deny is
    // requisite): the code is not even asked. And a right password with a
    // wrong code. (Side by side: pam_unix delays each failure 2 s.)
    let (wrong_password, wrong_code_run) = side_by_side(
        || {
            sshd.ssh(&user.name)
                .answer("Password: ", "hunter3-pw")
                .answer(PROMPT, &totp_code(0))
                .run()
        },
        || {
            sshd.ssh(&user.name)
                .answer("Password: ", "hunter2-pw")
                .answer(PROMPT, &wrong_code())
                .run()
        },
    );
    assert_refused(&wrong_password, &user);
    assert_eq!(wrong_password.prompts.len(), 1, "{wrong_password:#?}");
    assert!(
        wrong_password.prompts[0].ends_with(") Password: "),
        "{wrong_password:#?}"
    );
    assert_refused(&wrong_code_run, &user);
    assert_eq!(wrong_code_run.prompts.len(), 2, "{wrong_code_run:#?}");

    // Both right: the password, then the code, as two prompts.
    let run = sshd
        .ssh(&user.name)
        .answer("Password: ", "hunter2-pw")
        .answer(PROMPT, &totp_code(0))
        .run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.prompts.len(), 2, "{run:#?}");
    assert!(run.prompts[0].ends_with(") Password: "), "{run:#?}");
    assert!(run.prompts[1].ends_with(&format!(") {PROMPT}")), "{run:#?}");
}

/// doc/admin-guide.md, recipe 2b, the recommended one-prompt stack
/// (doc/recipes/pam/password-and-code): `split_pass`, the password module,
/// then pam_otp again to check the kept code. sshd runs the whole
/// `pam_authenticate` of keyboard-interactive in one child process
/// (auth-pam.c, sshpam_thread), so the code the first line keeps as PAM
/// data is there for the third. The config adds a rate limit of 3 wrong
/// codes in 30 s, so that a wrong password counted as a failure would show.
#[test]
#[ignore = "needs root: make test"]
fn recipe_password_and_code_split_pass() {
    let user = enrolled_user();
    user.set_password("hunter2-pw");
    let sshd = recipe_sshd(
        PASSWORD_AND_CODE,
        "pam/password-and-code",
        "[rate_limit]\nmax_failures = 3\ninterval = 30\n",
    );
    let before = std::fs::read(user.secret_path()).unwrap();

    // Someone who knows only the user name: four wrong passwords, two of
    // them with the right code, two at a time (pam_unix delays each
    // failure 2 s). Under forward_pass this locked the user out.
    for _ in 0..2 {
        let (a, b) = side_by_side(
            || {
                sshd.ssh(&user.name)
                    .answer(FORWARD_PROMPT, &format!("hunter3-pw{}", totp_code(0)))
                    .run()
            },
            || {
                sshd.ssh(&user.name)
                    .answer(FORWARD_PROMPT, &format!("guess{}", wrong_code()))
                    .run()
            },
        );
        for run in [&a, &b] {
            assert_refused(run, &user);
            assert_eq!(run.asked(FORWARD_PROMPT), 1, "{run:#?}");
            assert!(!run.stderr.contains("Too many failed"), "{run:#?}");
        }
    }
    assert_eq!(
        std::fs::read(user.secret_path()).unwrap(),
        before,
        "a wrong password counted a failure or used a code"
    );

    // The user, with the very code the guesser typed: in, one prompt.
    let run = sshd
        .ssh(&user.name)
        .answer(FORWARD_PROMPT, &format!("hunter2-pw{}", totp_code(0)))
        .run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.prompts.len(), 1, "one prompt for both: {run:#?}");

    // Right password, wrong code: refused, and that one counts.
    let run = sshd
        .ssh(&user.name)
        .answer(FORWARD_PROMPT, &format!("hunter2-pw{}", wrong_code()))
        .run();
    assert_refused(&run, &user);
    let text = std::fs::read_to_string(user.secret_path()).unwrap();
    assert!(text.contains("failures = 1"), "{text}");
}

/// A name that is no account is asked for a code like a real user (sshd
/// runs PAM for invalid users too), then refused.
#[test]
#[ignore = "needs root: make test"]
fn a_name_that_is_no_account_is_asked_for_a_code() {
    let user = enrolled_user();
    let sshd = sshd("keyboard-interactive", OTP_ONLY, "");
    let real = sshd.ssh(&user.name).answer(PROMPT, &wrong_code()).run();
    let ghost = sshd
        .ssh("potnosuchuser")
        .answer(PROMPT, &wrong_code())
        .run();
    assert_refused(&real, &user);
    assert!(!ghost.success, "{ghost:#?}");
    assert_eq!(real.asked(PROMPT), 1, "{real:#?}");
    assert_eq!(ghost.asked(PROMPT), 1, "not asked: {ghost:#?}");
}

/// Recipe 2's older `forward_pass` stack with recipe 3's LAN rule: from
/// the LAN the module asks only "Password: " and still hands it to pam_unix.
#[test]
#[ignore = "needs root: make test"]
fn forward_pass_from_the_lan_asks_only_the_password() {
    let user = enrolled_user();
    user.set_password("hunter2-pw");
    let sshd = recipe_sshd(PASSWORD_AND_CODE, "pam/forward-pass", &lan_rule());
    let run = sshd
        .ssh(&user.name)
        .from("127.0.0.2")
        .answer("Password: ", "hunter2-pw")
        .run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.prompts.len(), 1, "{run:#?}");
    assert!(run.prompts[0].ends_with(") Password: "), "{run:#?}");

    // The password still matters.
    let run = sshd
        .ssh(&user.name)
        .from("127.0.0.2")
        .answer("Password: ", "hunter3-pw")
        .run();
    assert_refused(&run, &user);
}

/// doc/admin-guide.md, recipe 3: code only from outside the LAN.
/// Recipe 1 plus a rule that skips the code for the LAN (here the LAN is
/// 127.0.0.2/32: `ssh -b 127.0.0.2` connects from it).
#[test]
#[ignore = "needs root: make test"]
fn recipe_code_only_from_outside_the_lan() {
    let user = enrolled_user();
    let sshd = recipe_sshd(KEY_AND_CODE, "pam/code-only", &lan_rule());
    let (key, public) = sshd.client_key();
    authorize_key(&user, &public);

    // From the LAN: the key is enough, and no code is asked for.
    let run = sshd.ssh(&user.name).identity(&key).from("127.0.0.2").run();
    assert_in(&run, &user, &sshd);
    assert!(run.prompts.is_empty(), "a code was asked: {run:#?}");
    assert!(sshd.log().contains(&format!(
        "Accepted keyboard-interactive/pam for {} from 127.0.0.2",
        user.name
    )));

    // From elsewhere: asked, and refused without an answer ...
    let run = sshd.ssh(&user.name).identity(&key).from("127.0.0.1").run();
    assert_refused(&run, &user);
    assert_eq!(run.asked(PROMPT), 1, "{run:#?}");

    // ... and in with the code.
    let run = sshd
        .ssh(&user.name)
        .identity(&key)
        .from("127.0.0.1")
        .answer(PROMPT, &totp_code(0))
        .run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.asked(PROMPT), 1, "{run:#?}");
}

/// The UseDNS pitfall of doc/admin-guide.md: with `UseDNS yes` sshd hands
/// PAM the client's host name ("localhost" for 127.0.0.1), which matches no
/// address rule, so the LAN `skip` rule stops applying and the code is asked.
#[test]
#[ignore = "needs root: make test"]
fn use_dns_yes_gives_a_host_name_that_matches_no_address_rule() {
    let user = enrolled_user();
    let rule = "[[rule]]\nfrom = [\"127.0.0.1/32\"]\notp = \"skip\"\n";
    // UseDNS no (the default): the address matches, no code.
    let sshd = sshd("keyboard-interactive", OTP_ONLY, rule);
    let run = sshd.ssh(&user.name).run();
    assert_in(&run, &user, &sshd);
    assert!(run.prompts.is_empty(), "{run:#?}");
    drop(sshd);

    let sshd = sshd_with(
        "keyboard-interactive",
        OTP_ONLY,
        rule,
        "UseDNS yes\nLogLevel DEBUG1",
    );
    let run = sshd.ssh(&user.name).answer(PROMPT, &totp_code(0)).run();
    assert_in(&run, &user, &sshd);
    assert_eq!(run.asked(PROMPT), 1, "the rule still matched: {run:#?}");
    let log = sshd.log();
    assert!(
        log.contains("PAM: setting PAM_RHOST to \"localhost\""),
        "{log}"
    );
    assert!(
        sshd.log().contains(&format!(
            "Accepted keyboard-interactive/pam for {} from 127.0.0.1",
            user.name
        )),
        "{}",
        sshd.log()
    );
}

/// `missing = "allow"`: a user without a secret gets in without a prompt,
/// and is told to enroll. Where the PAM_TEXT_INFO message lands: sshd sends
/// it along with the keyboard-interactive result (no prompt), and ssh prints
/// that on stderr (at its default LogLevel, INFO); for an interactive (pty)
/// session sshd also shows it before the shell starts. Never to the askpass.
#[test]
#[ignore = "needs root: make test"]
fn unenrolled_user_under_missing_allow_gets_in_and_is_told_to_enroll() {
    let user = TestUser::new();
    let sshd = sshd("keyboard-interactive", OTP_ONLY, "missing = \"allow\"\n");

    // `ssh host command`: on stderr.
    let run = sshd.ssh(&user.name).run();
    assert_in(&run, &user, &sshd);
    assert!(run.prompts.is_empty(), "{run:#?}");
    assert!(run.stderr.contains(NOT_ENROLLED), "not told: {run:#?}");
    assert!(!run.stdout.contains(NOT_ENROLLED), "{run:#?}");

    // An interactive session: on stderr, and again at the session's start.
    let run = sshd
        .ssh(&user.name)
        .interactive("echo OK-$USER; exit\n")
        .run();
    assert_in(&run, &user, &sshd);
    assert!(run.prompts.is_empty(), "{run:#?}");
    assert!(run.stderr.contains(NOT_ENROLLED), "not told: {run:#?}");
    let told = run
        .stdout
        .find(NOT_ENROLLED)
        .unwrap_or_else(|| panic!("not shown in the session: {run:#?}"));
    let ok = run.stdout.rfind(&ok_line(&user)).unwrap();
    assert!(told < ok, "the message comes at login: {run:#?}");
}

/// The default `missing = "deny"`: a user without a secret is still asked
/// (the prompt does not reveal who is enrolled), then refused.
#[test]
#[ignore = "needs root: make test"]
fn unenrolled_user_under_missing_deny_is_asked_then_refused() {
    let user = TestUser::new();
    let sshd = sshd("keyboard-interactive", OTP_ONLY, "");
    let run = sshd.ssh(&user.name).answer(PROMPT, &totp_code(0)).run();
    assert_refused(&run, &user);
    assert_eq!(run.asked(PROMPT), 1, "{run:#?}");
}
