//! The whole login in-process: a scripted conversation, an injected
//! account look-up, config and secret files in a temporary directory.

use std::collections::VecDeque;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::otp::{Algorithm, Generator};

mod enrolling;
mod grace;
mod lifecycle;
mod recycled;
mod rollout;
mod tempcode;

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
    kept: Option<KeptCode>,
    /// `SSH_AUTH_INFO_0` as sshd would set it.
    ssh_auth_info: Option<String>,
    /// A new token kept for pam_sm_setcred.
    deferred: Option<Deferred>,
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

    /// A code kept by a `split_pass` line for alice under sshd (the
    /// user and service of [`World::login`]).
    fn with_kept(self, code: &str) -> Script {
        self.with_kept_for(code, "alice", "sshd")
    }

    fn with_kept_for(mut self, code: &str, user: &str, service: &str) -> Script {
        self.seen.kept = Some(KeptCode {
            code: code.into(),
            user: user.into(),
            service: service.into(),
        });
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
    fn keep_code(&mut self, kept: KeptCode) -> Result<(), ConvError> {
        self.seen.kept = Some(kept);
        Ok(())
    }
    fn take_kept_code(&mut self) -> Option<KeptCode> {
        self.seen.kept.take()
    }
    fn ssh_auth_info(&mut self) -> Option<String> {
        self.seen.ssh_auth_info.clone()
    }
    fn defer_enrollment(&mut self, token: Option<Deferred>) -> Result<(), ConvError> {
        self.seen.deferred = token;
        Ok(())
    }
}

/// The code a `split_pass` line left in `s`, if any.
fn kept_code(s: &Script) -> Option<String> {
    s.seen.kept.as_ref().map(|k| k.code.clone())
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Whose the test users' homes and files are: whoever runs the tests, or,
/// for root (who may write anything), nobody (65534), so that file
/// permissions mean to the module what they mean to a user.
fn owner() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }
}

fn give(path: &std::path::Path) {
    let (uid, gid) = owner();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

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
            if sub == "alice" || sub == "bob" {
                give(&d);
            }
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

    /// Enrolls `user` with the RFC test key (TOTP; `extra` adds keys).
    fn enroll(&self, user: &str, extra: &str) -> PathBuf {
        self.enroll_with(
            user,
            &format!("version = 1\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n{extra}"),
        )
    }

    fn enroll_with(&self, user: &str, text: &str) -> PathBuf {
        let path = self.secret_path(user);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        give(&path);
        path
    }

    fn secret(&self, user: &str) -> SecretFile {
        SecretFile::parse(&fs::read_to_string(self.secret_path(user)).unwrap()).unwrap()
    }

    /// alice and bob exist; nobody else does.
    fn lookup(&self) -> impl Fn(&str) -> Result<Option<Account>, crate::account::LookupError> + '_ {
        move |name| {
            let (uid, gid) = owner();
            Ok(["alice", "bob"].contains(&name).then(|| Account {
                name: name.into(),
                uid,
                gid,
                home: self.home(name).to_string_lossy().into_owned(),
            }))
        }
    }

    /// Makes alice's home read-only to her (so a save fails).
    fn freeze_home(&self, user: &str) {
        fs::set_permissions(self.home(user), fs::Permissions::from_mode(0o555)).unwrap();
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
        self.login_through("sshd", user, rhost, args, script, now)
    }

    /// [`World::login_at`] through PAM service `service`.
    fn login_through(
        &self,
        service: &str,
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
            service,
            tty: None,
            now,
        };
        let lookup = self.lookup();
        authenticate(&login, &all, script, &lookup)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for user in ["alice", "bob"] {
            let _ = fs::set_permissions(self.home(user), fs::Permissions::from_mode(0o755));
        }
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
    assert_eq!(kept_code(&s), Some(right_code()));
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
    assert_eq!(w.secret("alice").tokens[0].state.last_step, Some(NOW / 30));

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

/// A code kept by the first line for alice is checked for nobody else:
/// when a module between the lines changed PAM_USER (or the service
/// differs), the second line refuses without a prompt, uses up no code of
/// either user, counts nothing, and the reason names the kept-for user
/// (the log line names the other: its user="...").
#[test]
fn a_kept_code_is_checked_only_for_the_user_and_service_it_was_typed_for() {
    let w = World::new("");
    let alice = w.enroll("alice", "");
    let bob = w.enroll("bob", "");
    let (alice_before, bob_before) = (fs::read(&alice).unwrap(), fs::read(&bob).unwrap());
    // The right code for both (same key): only the names differ.
    for (kept_user, kept_service, now_user) in [
        ("alice", "sshd", "bob"),
        ("bob", "sshd", "alice"),
        ("alice", "su", "alice"),
        ("Alice", "sshd", "alice"),
        ("alice ", "sshd", "alice"),
        ("alice\u{0}", "sshd", "alice"),
    ] {
        let mut s = Script::new(&[]).with_kept_for(&right_code(), kept_user, kept_service);
        let r = w.login(now_user, &[], &mut s);
        assert_eq!(
            r.outcome,
            Outcome::AuthErr,
            "{kept_user:?}/{kept_service}: {r:?}"
        );
        let why = r.reason.to_string();
        assert!(
            why.contains(&format!("user \"{kept_user}\"")) && why.contains("changed PAM_USER"),
            "{why}"
        );
        assert!(s.seen.prompts.is_empty(), "{:?}", s.seen);
        assert_eq!(s.seen.errors, [MSG_UNAVAILABLE]);
        assert_eq!(s.seen.kept, None, "taken, never left for a later line");
    }
    assert_eq!(
        fs::read(&alice).unwrap(),
        alice_before,
        "alice's code not used"
    );
    assert_eq!(fs::read(&bob).unwrap(), bob_before, "bob's code not used");
    // The control: the same code kept for alice under sshd lets alice in.
    let mut s = Script::new(&[]).with_kept(&right_code());
    assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::Success);
}

/// The first line keeps the code with the user and service it was typed
/// for.
#[test]
fn split_pass_keeps_the_code_with_its_user_and_service() {
    let w = World::new("");
    w.enroll("bob", "");
    let mut s = Script::new(&[&format!("pw{}", right_code())]);
    let r = w.login("bob", &["split_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Ignore, "{r:?}");
    let kept = s.seen.kept.clone().unwrap();
    assert_eq!((kept.user.as_str(), kept.service.as_str()), ("bob", "sshd"));
    assert!(
        !format!("{kept:?}").contains(&right_code()),
        "Debug shows the code"
    );
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
        kept_code(&s),
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
            temp_code: None,
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
            // The name a kept code is kept for is the user's own, not
            // something the guesser sees.
            if let Some(kept) = &mut s.seen.kept {
                kept.user.clear();
            }
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
    assert!(r.reason.to_string().contains("no token"), "{r:?}");
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
        assert!(r.reason.to_string().starts_with("no such user"), "{r:?}");
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
    let mut s = Script::new(&[]).with_kept_for("123456", "nosuchuser", "sshd");
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
    assert!(
        r.reason.to_string().starts_with("implausible user name"),
        "{r:?}"
    );
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

// --- every other branch -------------------------------------------------------

const RULES: &str = "[[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n\
                     [[rule]]\nfrom = [\"192.0.2.0/24\"]\notp = \"deny\"\n\
                     [[rule]]\nusers = [\"alice\"]\nservices = [\"sudo\"]\notp = \"require\"\n";

#[test]
fn rules_skip_deny_and_require() {
    let w = World::new(RULES);
    w.enroll("alice", "");
    let mut s = Script::new(&[]);
    let r = w.login_from("alice", Some("10.9.8.7"), &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(s.seen.prompts.is_empty());
    assert!(r.reason.to_string().contains("rule 1 (skip)"), "{r:?}");

    let mut s = Script::new(&[]);
    let r = w.login_from("alice", Some("192.0.2.44"), &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(s.seen.prompts.is_empty());
    assert_eq!(s.seen.errors, [MSG_DENIED]);
    assert!(r.reason.to_string().contains("rule 2 (deny)"), "{r:?}");

    let mut s = Script::new(&[&right_code()]);
    let r = w.login_from("alice", Some("198.51.100.1"), &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.prompts, [CODE_PROMPT]);
    assert!(r.reason.to_string().contains("default (require)"), "{r:?}");
}

#[test]
fn missing_allow_lets_in_with_a_message_and_missing_deny_refuses() {
    let w = World::new("missing = \"allow\"\n");
    let mut s = Script::new(&[]);
    let r = w.login("bob", &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.infos, [MSG_NOT_ENROLLED]);
    assert!(s.seen.prompts.is_empty());

    // nullok is missing = allow, over a config that says deny.
    w.write_config("missing = \"deny\"\n");
    let mut s = Script::new(&["123456"]);
    assert_eq!(w.login("bob", &[], &mut s).outcome, Outcome::AuthErr);
    assert_eq!(s.seen.prompts, [CODE_PROMPT], "prompted all the same");
    let mut s = Script::new(&[]);
    assert_eq!(
        w.login("bob", &["nullok"], &mut s).outcome,
        Outcome::Success
    );
}

#[test]
fn forward_pass_with_and_without_a_skip() {
    let w = World::new(RULES);
    w.enroll("alice", "");
    // A skip: only "Password: ", handed on.
    let mut s = Script::new(&["hunter2"]);
    let r = w.login_from("alice", Some("10.1.1.1"), &["forward_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.prompts, [config::PASSWORD_PROMPT]);
    assert_eq!(s.seen.authtok.as_deref(), Some("hunter2"));
    // missing = allow: the message, then "Password: ", handed on.
    let mut s = Script::new(&["hunter2"]);
    let r = w.login("bob", &["forward_pass", "nullok"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.infos, [MSG_NOT_ENROLLED]);
    assert_eq!(s.seen.authtok.as_deref(), Some("hunter2"));
    // A code needed: one prompt, password handed on, code checked at once
    // (so a wrong password with the right code uses the code up).
    let typed = format!("wrong-pw{}", right_code());
    let mut s = Script::new(&[&typed]);
    let r = w.login_from("alice", Some("198.51.100.1"), &["forward_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.prompts, [config::FORWARD_PASS_PROMPT]);
    assert_eq!(s.seen.authtok.as_deref(), Some("wrong-pw"));
    assert_eq!(w.secret("alice").tokens[0].state.last_step, Some(NOW / 30));
}

#[test]
fn try_first_pass_takes_a_code_shaped_authtok_and_asks_once_more_if_wrong() {
    let w = World::new("");
    w.enroll("alice", "");
    let mut s = Script::new(&[]).with_authtok(&right_code());
    let r = w.login("alice", &["try_first_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(s.seen.prompts.is_empty());

    // Wrong code in PAM_AUTHTOK: one prompt, and the next step's code.
    let next = code_at(NOW / 30 + 1);
    let mut s = Script::new(&[&next]).with_authtok(&wrong_code());
    let r = w.login("alice", &["try_first_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.prompts, [CODE_PROMPT]);

    // A password in PAM_AUTHTOK is not tried (it costs no failure).
    let mut s = Script::new(&[&wrong_code()]).with_authtok("hunter2");
    let r = w.login("alice", &["try_first_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert_eq!(s.seen.prompts, [CODE_PROMPT]);
    assert_eq!(
        w.secret("alice").state.failures,
        1,
        "only the typed wrong code counts, not the password"
    );
}

#[test]
fn use_first_pass_takes_authtok_and_never_prompts() {
    let w = World::new("");
    w.enroll("alice", "");
    let mut s = Script::new(&[]).with_authtok(&right_code());
    assert_eq!(
        w.login("alice", &["use_first_pass"], &mut s).outcome,
        Outcome::Success
    );
    let mut s = Script::new(&["123456"]);
    let r = w.login("alice", &["use_first_pass"], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(s.seen.prompts.is_empty());
    assert!(r.reason.to_string().contains("no PAM_AUTHTOK"), "{r:?}");
}

#[test]
fn a_replayed_code_is_refused() {
    let w = World::new("");
    w.enroll("alice", "");
    let mut s = Script::new(&[&right_code()]);
    assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::Success);
    let mut s = Script::new(&[&right_code()]);
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(r.reason.to_string().contains("replayed"), "{r:?}");
}

#[test]
fn a_locked_user_is_told_when_to_try_again() {
    let w = World::new("[rate_limit]\nmax_failures = 3\ninterval = 30\n");
    w.enroll("alice", "");
    for _ in 0..3 {
        let mut s = Script::new(&[&wrong_code()]);
        assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::AuthErr);
        assert!(s.seen.errors.is_empty(), "{:?}", s.seen);
    }
    let mut s = Script::new(&[&right_code()]);
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert_eq!(
        s.seen.errors,
        ["Too many failed attempts; try again in 30 s."]
    );
    assert!(r.reason.to_string().contains("rate limited"), "{r:?}");
}

#[test]
fn a_code_that_cannot_be_saved_is_refused_and_the_file_kept() {
    let w = World::new("");
    let path = w.enroll("alice", "");
    let before = fs::read(&path).unwrap();
    w.freeze_home("alice");
    for code in [right_code(), wrong_code()] {
        let mut s = Script::new(&[&code]);
        let r = w.login("alice", &[], &mut s);
        assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
        // The same answer for a right and a wrong code: no oracle.
        assert_eq!(s.seen.errors, [MSG_NOT_SAVED]);
        assert!(r.reason.to_string().contains("saving"), "{r:?}");
    }
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn a_broken_config_fails_closed_without_a_prompt() {
    for text in [
        "default = \"skip\"\n[[rule\n",
        "misssing = \"allow\"\n",
        "totp_skew = 5000\n",
    ] {
        let w = World::new(text);
        let mut s = Script::new(&["123456"]);
        let r = w.login("alice", &[], &mut s);
        assert_eq!(r.outcome, Outcome::AuthInfoUnavail, "{text}: {r:?}");
        assert!(s.seen.prompts.is_empty());
        assert_eq!(s.seen.errors, [MSG_UNAVAILABLE]);
        assert!(
            r.reason.to_string().contains("pam_otp.toml"),
            "the file is named: {r:?}"
        );
    }
}

#[test]
fn a_broken_secret_file_fails_closed_and_is_left_alone() {
    let w = World::new("");
    let path = w.enroll_with("alice", "version = 1\ntype = \"totp\"\nsecret = \"!!\"\n");
    let mut s = Script::new(&["123456"]);
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthInfoUnavail, "{r:?}");
    assert_eq!(s.seen.errors, [MSG_UNAVAILABLE]);
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        "version = 1\ntype = \"totp\"\nsecret = \"!!\"\n"
    );
}

#[test]
fn unknown_arguments_are_warned_about_and_ignored() {
    let w = World::new("");
    w.enroll("alice", "");
    let mut s = Script::new(&[&right_code()]);
    let r = w.login("alice", &["nulok", "frobnicate=1"], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(r.warnings[0].contains("nulok") && r.warnings[0].contains("frobnicate=1"));
}

#[test]
fn a_failed_conversation_and_no_answer() {
    let w = World::new("");
    w.enroll("alice", "");
    let mut s = Script::new(&[]);
    s.answers.push_back(Err(ConvError::Failed));
    assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::ConvErr);
    let mut s = Script::new(&[]);
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(r.reason.to_string().contains("no answer"), "{r:?}");
}

#[test]
fn hotp_and_emergency_codes() {
    let w = World::new("");
    w.enroll_with(
        "alice",
        &format!(
            "version = 1\ntype = \"hotp\"\nsecret = \"{KEY_B32}\"\ncounter = 3\n\
             scratch_codes = [\"31415926\"]\n"
        ),
    );
    // RFC 4226 appendix D: counter 5 is 254676 (within the window of 10).
    let mut s = Script::new(&["254676"]);
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(w.secret("alice").tokens[0].counter, 6);
    let mut s = Script::new(&["3141-5926"]);
    assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::Success);
    let mut s = Script::new(&["31415926"]);
    assert_eq!(w.login("alice", &[], &mut s).outcome, Outcome::AuthErr);
    assert!(w.secret("alice").scratch_codes.is_empty());
}
