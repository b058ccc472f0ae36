//! The whole login in-process: a scripted conversation, an injected
//! account look-up, config and secret files in a temporary directory.

use std::collections::VecDeque;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::otp::{Algorithm, Generator};

const KEY: &[u8] = b"12345678901234567890";
const KEY_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// RFC 6238's T = 1111111111: step 37037037.
const NOW: u64 = 1_111_111_111;
const CODE_PROMPT: &str = "Verification code: ";

fn code_at(step: u64) -> String {
    Generator::new(KEY, Algorithm::SHA1, 6).unwrap().code(step)
}

fn right_code() -> String {
    code_at(NOW / 30)
}

/// Six digits that are no code near NOW.
fn wrong_code() -> String {
    let near: Vec<String> = (NOW / 30 - 3..=NOW / 30 + 3).map(code_at).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// What the other side of the conversation saw, and what it answers.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
struct Seen {
    prompts: Vec<String>,
    infos: Vec<String>,
    errors: Vec<String>,
    authtok: Option<String>,
    kept: Option<String>,
}

struct Script {
    answers: VecDeque<Result<String, ConvError>>,
    seen: Seen,
}

impl Script {
    fn new(answers: &[&str]) -> Script {
        Script {
            answers: answers.iter().map(|a| Ok(a.to_string())).collect(),
            seen: Seen::default(),
        }
    }

    fn with_authtok(mut self, tok: &str) -> Script {
        self.seen.authtok = Some(tok.into());
        self
    }

    fn with_kept(mut self, code: &str) -> Script {
        self.seen.kept = Some(code.into());
        self
    }
}

impl Conversation for Script {
    fn prompt_hidden(&mut self, text: &str) -> Result<String, ConvError> {
        self.seen.prompts.push(text.into());
        self.answers.pop_front().unwrap_or(Err(ConvError::NoAnswer))
    }
    fn info(&mut self, text: &str) {
        self.seen.infos.push(text.into());
    }
    fn error(&mut self, text: &str) {
        self.seen.errors.push(text.into());
    }
    fn authtok(&mut self) -> Option<String> {
        self.seen.authtok.clone()
    }
    fn set_authtok(&mut self, value: &str) -> Result<(), ConvError> {
        self.seen.authtok = Some(value.into());
        Ok(())
    }
    fn keep_code(&mut self, code: &str) -> Result<(), ConvError> {
        self.seen.kept = Some(code.into());
        Ok(())
    }
    fn take_kept_code(&mut self) -> Option<String> {
        self.seen.kept.take()
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A temporary world: a home with (or without) a secret file, a config,
/// a state directory, and accounts that the injected look-up knows.
struct World {
    dir: PathBuf,
    config: PathBuf,
}

impl World {
    fn new(config: &str) -> World {
        let dir = std::env::temp_dir().join(format!(
            "pam_otp-auth-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["", "alice", "bob", "state"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let world = World {
            config: dir.join("pam_otp.toml"),
            dir,
        };
        world.write_config(config);
        world
    }

    fn write_config(&self, config: &str) {
        let state = self.dir.join("state");
        fs::write(
            &self.config,
            format!("state_dir = {:?}\n{config}", state.to_str().unwrap()),
        )
        .unwrap();
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o644)).unwrap();
    }

    fn home(&self, user: &str) -> PathBuf {
        self.dir.join(user)
    }

    fn secret_path(&self, user: &str) -> PathBuf {
        self.home(user).join(".pam_otp.toml")
    }

    /// Enrolls `user` with the RFC test key (TOTP, or HOTP at counter 0).
    fn enroll(&self, user: &str, extra: &str) -> PathBuf {
        let path = self.secret_path(user);
        fs::write(
            &path,
            format!("version = 1\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n{extra}"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn secret(&self, user: &str) -> SecretFile {
        SecretFile::parse(&fs::read_to_string(self.secret_path(user)).unwrap()).unwrap()
    }

    /// alice and bob exist (as whoever runs the tests); nobody else does.
    fn lookup(&self) -> impl Fn(&str) -> Result<Option<Account>, String> + '_ {
        move |name| {
            Ok(["alice", "bob"].contains(&name).then(|| Account {
                name: name.into(),
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                home: self.home(name).to_string_lossy().into_owned(),
            }))
        }
    }

    fn login(&self, user: &str, args: &[&str], script: &mut Script) -> Report {
        self.login_from(user, None, args, script)
    }

    fn login_from(
        &self,
        user: &str,
        rhost: Option<&str>,
        args: &[&str],
        script: &mut Script,
    ) -> Report {
        self.login_at(user, rhost, args, script, NOW)
    }

    fn login_at(
        &self,
        user: &str,
        rhost: Option<&str>,
        args: &[&str],
        script: &mut Script,
        now: u64,
    ) -> Report {
        let config_arg = format!("config={}", self.config.display());
        let mut all: Vec<&str> = vec![&config_arg];
        all.extend_from_slice(args);
        let login = Login {
            user,
            rhost,
            service: "sshd",
            now,
        };
        let lookup = self.lookup();
        authenticate(&login, &all, script, &lookup)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// --- split_pass --------------------------------------------------------------

#[test]
fn split_pass_first_line_hands_the_password_on_and_keeps_the_code() {
    let w = World::new("");
    let path = w.enroll("alice", "");
    let before = fs::read(&path).unwrap();
    let typed = format!("hunter2{}", right_code());
    let mut s = Script::new(&[&typed]);
    let r = w.login("alice", &["split_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Ignore, "{r:?}");
    assert_eq!(s.seen.prompts, [config::FORWARD_PASS_PROMPT]);
    assert_eq!(s.seen.authtok.as_deref(), Some("hunter2"));
    assert_eq!(s.seen.kept, Some(right_code()));
    // Nothing checked, counted or written yet.
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn split_pass_second_line_checks_the_kept_code_without_a_prompt() {
    let w = World::new("");
    w.enroll("alice", "");
    let mut s = Script::new(&[]).with_kept(&right_code());
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(s.seen.prompts.is_empty(), "{:?}", s.seen);
    assert_eq!(s.seen.kept, None, "the code is taken, so checked once");
    assert_eq!(w.secret("alice").state.last_step, Some(NOW / 30));

    // The same code kept again (a replay) and a wrong one: refused and
    // counted, still without a prompt.
    for code in [right_code(), wrong_code()] {
        let mut s = Script::new(&[]).with_kept(&code);
        let r = w.login("alice", &[], &mut s);
        assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
        assert!(s.seen.prompts.is_empty());
    }
    assert_eq!(w.secret("alice").state.failures, 2);
}

#[test]
fn split_pass_a_wrong_password_costs_nothing() {
    // The stack stops at the password module after the first line: only
    // the first line runs, any number of times.
    let w = World::new("");
    let path = w.enroll("alice", "");
    let before = fs::read(&path).unwrap();
    for _ in 0..10 {
        let typed = format!("wrong-password{}", right_code());
        let mut s = Script::new(&[&typed]);
        let r = w.login("alice", &["split_pass"], &mut s);
        assert_eq!(r.outcome, Outcome::Ignore);
    }
    assert_eq!(fs::read(&path).unwrap(), before, "no failure, no code used");
    // The code was not burned: the real login still takes it.
    let mut s = Script::new(&[]).with_kept(&right_code());
    assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::Success);
}

#[test]
fn split_pass_skip_asks_only_for_the_password() {
    let w = World::new("[[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n");
    w.enroll("alice", "");
    let mut s = Script::new(&["hunter2"]);
    let r = w.login_from("alice", Some("10.1.2.3"), &["split_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Ignore, "{r:?}");
    assert_eq!(s.seen.prompts, [config::PASSWORD_PROMPT]);
    assert_eq!(s.seen.authtok.as_deref(), Some("hunter2"));
    assert_eq!(s.seen.kept, None);
    let mut s = Script::new(&[]);
    let r = w.login_from("alice", Some("10.1.2.3"), &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
}

#[test]
fn a_kept_code_is_never_left_for_a_later_line() {
    let w = World::new("");
    w.enroll("alice", "");
    let typed = format!("pw{}", right_code());
    let mut s = Script::new(&[&typed]).with_kept("999999");
    let r = w.login("alice", &["split_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Ignore);
    assert_eq!(
        s.seen.kept,
        Some(right_code()),
        "the stale code was replaced"
    );
    assert!(
        r.warnings.iter().any(|l| l.contains("dropped a code kept")),
        "{r:?}"
    );
}

// --- forward_pass ----------------------------------------------------------

#[test]
fn forward_pass_accepts_spaces_inside_the_code() {
    let w = World::new("");
    w.enroll("alice", "");
    let c = right_code();
    let typed = format!("hunter2 {} {}", &c[..3], &c[3..]);
    let mut s = Script::new(&[&typed]);
    let r = w.login("alice", &["forward_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.authtok.as_deref(), Some("hunter2 "));
}

#[test]
fn forward_pass_split() {
    fn shape(scratch_codes: &[String], digits: u8) -> Shape<'_> {
        Shape {
            digits,
            scratch_codes,
        }
    }
    let mut scratch = vec![];
    let six = shape(&scratch, 6);
    assert_eq!(
        split_password_and_code(&six, "hunter2123456"),
        ("hunter2", "123456")
    );
    assert_eq!(
        split_password_and_code(&six, "pw99123456"),
        ("pw99", "123456")
    );
    assert_eq!(split_password_and_code(&six, "password"), ("password", ""));
    assert_eq!(split_password_and_code(&six, "123456"), ("", "123456"));
    assert_eq!(
        split_password_and_code(&six, "pw123 456\n"),
        ("pw", "123 456")
    );
    assert_eq!(
        split_password_and_code(&six, "pw12-34-56"),
        ("pw", "12-34-56")
    );
    // A space after the code, or a separator before it, is not part of it.
    assert_eq!(
        split_password_and_code(&six, "pw123456 "),
        ("pw123456 ", "")
    );
    assert_eq!(
        split_password_and_code(&six, "pw-123456"),
        ("pw-", "123456")
    );
    scratch.push("31415926".to_string());
    let with_scratch = shape(&scratch, 6);
    assert_eq!(
        split_password_and_code(&with_scratch, "pw31415926"),
        ("pw", "31415926")
    );
    assert_eq!(
        split_password_and_code(&with_scratch, "pw3141 5926"),
        ("pw", "3141 5926")
    );
    assert_eq!(
        split_password_and_code(&with_scratch, "pw31415927"),
        ("pw31", "415927")
    );
    let eight = shape(&[], 8);
    assert_eq!(
        split_password_and_code(&eight, "pw12345678"),
        ("pw", "12345678")
    );
    // Multi-byte characters in the password are fine.
    assert_eq!(
        split_password_and_code(&eight, "pässwörd12345678"),
        ("pässwörd", "12345678")
    );
}

// --- what a guesser can tell -------------------------------------------------

/// Runs `answers` as logins of `user` one after the other (each login
/// gets the next answer) and returns what the other side saw of each.
fn seen_over(w: &World, user: &str, args: &[&str], logins: &[Script]) -> Vec<(Seen, bool)> {
    logins
        .iter()
        .enumerate()
        .map(|(i, script)| {
            let mut s = Script {
                answers: script.answers.clone(),
                seen: script.seen.clone(),
            };
            let r = w.login_at(user, None, args, &mut s, NOW + i as u64);
            (s.seen, r.outcome == Outcome::Success)
        })
        .collect()
}

fn guesses(args: &[&str]) -> Vec<Script> {
    let wrong = wrong_code();
    let typed = if args.contains(&"forward_pass") || args.contains(&"split_pass") {
        format!("pw{wrong}")
    } else {
        wrong.clone()
    };
    let mut scripts: Vec<Script> = (0..5).map(|_| Script::new(&[&typed])).collect();
    // try_first_pass with a code-shaped PAM_AUTHTOK, then a prompt.
    scripts.push(Script::new(&[&typed]).with_authtok(&wrong));
    scripts.push(Script::new(&[]).with_authtok("not-a-code"));
    scripts
}

#[test]
fn an_unenrolled_user_sees_what_an_enrolled_user_sees() {
    for args in [
        vec![],
        vec!["forward_pass"],
        vec!["try_first_pass"],
        vec!["forward_pass", "try_first_pass"],
        vec!["split_pass"],
    ] {
        let w = World::new("missing = \"deny\"\n");
        w.enroll("alice", "");
        let enrolled = seen_over(&w, "alice", &args, &guesses(&args));
        let unenrolled = seen_over(&w, "bob", &args, &guesses(&args));
        assert_eq!(enrolled, unenrolled, "args {args:?}");
        if !args.contains(&"split_pass") {
            // And the rate limit did show, to both.
            assert!(
                enrolled
                    .iter()
                    .any(|(s, _)| s.errors.iter().any(|e| e.contains("Too many failed"))),
                "{enrolled:#?}"
            );
        }
    }
}

#[test]
fn an_unenrolled_users_failures_are_tallied_in_the_state_dir() {
    let w = World::new("missing = \"deny\"\n");
    let mut s = Script::new(&["123456"]);
    let r = w.login("bob", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr);
    assert!(r.reason.contains("no token"), "{r:?}");
    let tally = w.dir.join("state/unenrolled/bob.toml");
    let text = fs::read_to_string(&tally).unwrap();
    assert!(text.contains("failures = 1"), "{text}");
    assert!(
        !w.secret_path("bob").exists(),
        "nothing is written in the home"
    );
}

#[test]
fn a_name_that_is_no_account_is_prompted_and_then_refused() {
    for args in [vec![], vec!["forward_pass"], vec!["try_first_pass"]] {
        let w = World::new("");
        w.enroll("alice", "");
        let real = seen_over(&w, "alice", &args, &guesses(&args)[..1]);
        let ghost = seen_over(&w, "nosuchuser", &args, &guesses(&args)[..1]);
        assert_eq!(real, ghost, "args {args:?}");
        let mut s = Script::new(&["123456"]);
        let r = w.login("nosuchuser", &args, &mut s);
        assert_eq!(r.outcome, Outcome::UserUnknown, "{r:?}");
        assert_eq!(s.seen.prompts.len(), 1);
        assert!(r.reason.starts_with("no such user"), "{r:?}");
    }
    // Nothing is written for it anywhere.
    let w = World::new("");
    let mut s = Script::new(&["123456"]);
    let _ = w.login("nosuchuser", &[], &mut s);
    assert!(!w.dir.join("state/unenrolled").exists());
}

#[test]
fn a_name_that_is_no_account_goes_through_split_pass_like_an_account() {
    let w = World::new("");
    let mut s = Script::new(&["pw123456"]);
    let r = w.login("nosuchuser", &["split_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Ignore, "{r:?}");
    assert_eq!(s.seen.authtok.as_deref(), Some("pw"));
    let mut s = Script::new(&[]).with_kept("123456");
    let r = w.login("nosuchuser", &[], &mut s);
    assert_eq!(r.outcome, Outcome::UserUnknown, "{r:?}");
    assert!(s.seen.prompts.is_empty());
}

#[test]
fn an_implausible_name_is_prompted_and_refused() {
    let w = World::new("");
    let mut s = Script::new(&["123456"]);
    let r = w.login("../etc", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr);
    assert_eq!(s.seen.prompts, [CODE_PROMPT]);
    assert!(r.reason.starts_with("implausible user name"), "{r:?}");
}

#[test]
fn a_deny_rule_answers_a_name_that_is_no_account_as_it_answers_an_account() {
    let w = World::new("[[rule]]\nfrom = [\"0.0.0.0/0\"]\notp = \"deny\"\n");
    for user in ["alice", "nosuchuser"] {
        let mut s = Script::new(&[]);
        let r = w.login_from(user, Some("192.0.2.1"), &[], &mut s);
        assert_ne!(r.outcome, Outcome::Success);
        assert!(s.seen.prompts.is_empty());
        assert_eq!(s.seen.errors, [MSG_DENIED]);
    }
}
