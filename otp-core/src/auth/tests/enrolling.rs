//! Enrollment at login, the system store and the grace period, in-process:
//! the conversation reads the key from the messages it was shown, as a
//! phone reads the QR code, and answers with a code of it.

use super::*;
use crate::auth::enrolling::{MSG_ENROLL_NOT_SAVED_LATE, OPTIONAL_CONFIRM_PROMPT};
use crate::enroll;
use crate::key;

/// A user at the other end: reads the `otpauth://` URI from the text
/// messages and types `wrong` wrong codes before a right one (or only wrong
/// ones if `wrong` >= 3).
pub(super) struct Phone {
    pub(super) seen: Seen,
    wrong: usize,
    /// The password an earlier module left (`PAM_AUTHTOK`).
    now: u64,
    /// What it types at a code prompt (none: no answer).
    code: Option<String>,
    /// Answers an optional enrollment's prompt with nothing (skips it).
    skip: bool,
}

impl Phone {
    pub(super) fn new(wrong: usize) -> Phone {
        Phone {
            seen: Seen::default(),
            wrong,
            now: NOW,
            code: None,
            skip: false,
        }
    }

    /// Skips an optional enrollment (an empty answer).
    pub(super) fn skipping(mut self) -> Phone {
        self.skip = true;
        self
    }

    /// The time its app shows codes for.
    pub(super) fn at(mut self, now: u64) -> Phone {
        self.now = now;
        self
    }

    /// Types `code` at "Verification code: ", and the password "hunter2"
    /// before it at the "password + code" prompt.
    pub(super) fn typing(mut self, code: &str) -> Phone {
        self.code = Some(code.into());
        self
    }

    pub(super) fn after_publickey(mut self) -> Phone {
        self.seen.ssh_auth_info = Some("publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\n".into());
        self
    }

    pub(super) fn with_authtok(mut self, tok: &str) -> Phone {
        self.seen.authtok = Some(tok.into());
        self
    }

    pub(super) fn uri(&self) -> Option<String> {
        let all = self.seen.infos.join("\n");
        let at = all.find("otpauth://")?;
        Some(
            all[at..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        )
    }

    pub(super) fn key(&self) -> Vec<u8> {
        let uri = self.uri().expect("a URI was shown");
        let secret = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("secret="))
            .unwrap();
        key::decode_base32(secret).unwrap()
    }

    pub(super) fn code(&self) -> String {
        Generator::new(&self.key(), Algorithm::SHA1, 6)
            .unwrap()
            .code(self.now / 30)
    }
}

impl Conversation for Phone {
    fn prompt_hidden(&mut self, text: &str) -> Result<String, ConvError> {
        self.seen.prompts.push(text.into());
        if text == OPTIONAL_CONFIRM_PROMPT && self.skip {
            return Ok(String::new());
        }
        if text == enroll::CONFIRM_PROMPT || text == OPTIONAL_CONFIRM_PROMPT {
            if self.wrong > 0 {
                self.wrong -= 1;
                let right = self.code();
                return Ok(if right == "123456" {
                    "654321"
                } else {
                    "123456"
                }
                .into());
            }
            return Ok(self.code());
        }
        if text == enroll::CODES_SEEN_PROMPT {
            return Ok(String::new());
        }
        if text == config::PASSWORD_PROMPT {
            return Ok("hunter2".into());
        }
        match &self.code {
            Some(code) if text == config::FORWARD_PASS_PROMPT => Ok(format!("hunter2{code}")),
            Some(code) => Ok(code.clone()),
            None => Err(ConvError::NoAnswer),
        }
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

pub(super) fn login(w: &World, user: &str, args: &[&str], conv: &mut dyn Conversation) -> Report {
    login_at(w, user, args, conv, NOW)
}

pub(super) fn login_at(
    w: &World,
    user: &str,
    args: &[&str],
    conv: &mut dyn Conversation,
    now: u64,
) -> Report {
    let config_arg = format!("config={}", w.config.display());
    let mut all: Vec<&str> = vec![&config_arg];
    all.extend_from_slice(args);
    let login = Login {
        user,
        rhost: Some("203.0.113.7"),
        service: "sshd",
        tty: None,
        now,
    };
    authenticate(&login, &all, conv, &w.lookup())
}

#[test]
fn after_a_public_key_a_user_without_a_token_enrolls_in_the_login() {
    let w = World::new("missing = \"enroll\"\n");
    let mut phone = Phone::new(1).after_publickey();
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let line = r.reason.to_string();
    assert!(line.contains("enrolled at login"), "{line}");
    assert!(line.contains("sshd accepted publickey first"), "{line}");
    // The QR code, the URI and the key were shown before the prompt.
    let all = phone.seen.infos.join("\n");
    assert!(all.contains('▀'), "{all}");
    assert!(all.contains(&key::grouped_base32(&phone.key())));
    assert_eq!(
        phone.seen.prompts,
        [
            enroll::CONFIRM_PROMPT,
            enroll::CONFIRM_PROMPT,
            enroll::CODES_SEEN_PROMPT
        ]
    );
    assert_eq!(
        phone.seen.errors,
        [crate::auth::enrolling::MSG_WRONG_CONFIRMATION]
    );
    // Saved: the key shown, the confirming code used, the emergency codes
    // shown once, after the save.
    let file = w.secret("alice");
    assert_eq!(file.tokens[0].key, phone.key());
    assert_eq!(file.tokens[0].state.last_step, Some(NOW / 30));
    let shown = phone.seen.infos.last().unwrap();
    for code in &file.scratch_codes {
        assert!(shown.contains(code.as_str()));
    }
    // The next login asks for a code, and the confirming one is used up.
    let mut s = Script::new(&[&phone.code()]);
    let r = w.login("alice", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert_eq!(s.seen.prompts, [CODE_PROMPT]);
}

#[test]
fn three_wrong_confirmation_codes_save_nothing() {
    let w = World::new("missing = \"enroll\"\n");
    let mut phone = Phone::new(3).after_publickey();
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(
        r.reason.to_string().contains("not confirmed"),
        "{}",
        r.reason
    );
    assert_eq!(phone.seen.prompts.len(), enroll::TRIES);
    assert!(!w.secret_path("alice").exists());
}

#[test]
fn without_a_first_factor_nothing_is_shown_or_saved() {
    let w = World::new("missing = \"enroll\"\n");
    // sshd, nothing before keyboard-interactive.
    let mut phone = Phone::new(0);
    phone.seen.ssh_auth_info = Some(String::new());
    let r = login(&w, "alice", &[], &mut phone.with_authtok("hunter2"));
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(
        r.reason.to_string().contains("SSH_AUTH_INFO_0"),
        "{}",
        r.reason
    );
    // Not sshd, no password module before pam_otp.
    let mut phone = Phone::new(0);
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(phone.seen.infos.is_empty() && phone.seen.prompts.is_empty());
    assert_eq!(
        phone.seen.errors,
        [crate::auth::enrolling::MSG_CANNOT_ENROLL]
    );
    assert!(!w.secret_path("alice").exists());
}

#[test]
fn after_a_password_module_the_token_waits_for_setcred() {
    let w = World::new("missing = \"enroll\"\n");
    let mut phone = Phone::new(0).with_authtok("hunter2");
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(r.reason.to_string().contains("pam_setcred"), "{}", r.reason);
    assert!(!w.secret_path("alice").exists(), "not saved before setcred");
    let token = phone.seen.deferred.take().expect("kept for setcred");
    assert_eq!(
        (token.user.as_str(), token.service.as_str()),
        ("alice", "sshd")
    );
    // pam_sm_setcred, called once the whole stack succeeded.
    let config_arg = format!("config={}", w.config.display());
    let l = Login {
        user: "alice",
        rhost: None,
        service: "sshd",
        tty: None,
        now: NOW,
    };
    let r = commit_enrollment(&l, &[&config_arg], &mut phone, token, &w.lookup());
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(w.secret("alice").tokens[0].key, phone.key());
    // A later authentication on the same handle drops what an earlier one
    // kept before doing anything else.
    let mut s = Script::new(&[&wrong_code()]);
    s.seen.deferred = Some(Deferred {
        file: w.secret("alice"),
        user: "alice".into(),
        service: "sshd".into(),
    });
    let _ = w.login("alice", &[], &mut s);
    assert!(s.seen.deferred.is_none());
}

/// sudo: alice authenticates (her password, her phone), then sudo sets
/// PAM_USER to the run-as user before pam_setcred. The token is saved for
/// alice, whose authentication made it, and for nobody else; the change is
/// logged naming both.
#[test]
fn a_token_is_saved_for_the_user_who_made_it_not_for_pam_user_at_setcred() {
    let w = World::new("missing = \"enroll\"\n");
    let config_arg = format!("config={}", w.config.display());
    let mut phone = Phone::new(0).with_authtok("alice's password");
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let token = phone.seen.deferred.take().expect("kept for setcred");
    let at_setcred = Login {
        user: "bob",
        rhost: None,
        service: "sshd",
        tty: None,
        now: NOW,
    };
    let r = commit_enrollment(&at_setcred, &[&config_arg], &mut phone, token, &w.lookup());
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(
        w.secret("alice").tokens[0].key,
        phone.key(),
        "alice's phone"
    );
    assert!(!w.secret_path("bob").exists(), "bob got alice's phone");
    assert!(
        r.warnings
            .iter()
            .any(|l| l.contains("\"bob\" at pam_setcred") && l.contains("saved for \"alice\" only")),
        "{r:?}"
    );
    // The emergency codes were shown (to alice, on her terminal).
    let codes = w.secret("alice").scratch_codes;
    assert!(phone.seen.infos.iter().any(|m| m.contains(&codes[0])));
}

/// A token made under one service is not saved by a pam_setcred under
/// another: nothing is saved for anyone.
#[test]
fn a_token_is_not_saved_under_another_service() {
    let w = World::new("missing = \"enroll\"\n");
    let config_arg = format!("config={}", w.config.display());
    let mut phone = Phone::new(0).with_authtok("hunter2");
    let _ = login(&w, "alice", &[], &mut phone);
    let token = phone.seen.deferred.take().expect("kept for setcred");
    let at_setcred = Login {
        user: "alice",
        rhost: None,
        service: "other",
        tty: None,
        now: NOW,
    };
    let r = commit_enrollment(&at_setcred, &[&config_arg], &mut phone, token, &w.lookup());
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(r.reason.to_string().contains("not saved"), "{}", r.reason);
    assert!(!w.secret_path("alice").exists());
    assert!(phone
        .seen
        .errors
        .contains(&MSG_ENROLL_NOT_SAVED_LATE.to_string()));
}

#[test]
fn a_split_pass_first_line_hands_the_password_on_and_the_second_enrolls() {
    let w = World::new("missing = \"enroll\"\n");
    let mut phone = Phone::new(0);
    let r = login(&w, "alice", &["split_pass"], &mut phone);
    assert_eq!(r.outcome, Outcome::Ignore, "{r:?}");
    assert_eq!(phone.seen.prompts, [config::PASSWORD_PROMPT]);
    assert_eq!(phone.seen.authtok.as_deref(), Some("hunter2"));
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(phone.seen.deferred.is_some());
}

#[test]
fn a_reset_user_enrolls_whatever_missing_says() {
    let w = World::new("missing = \"deny\"\n");
    let account = w.lookup()("alice").unwrap().unwrap();
    let cfg = config::load(w.config.to_str().unwrap()).unwrap();
    let store = store::admin(&cfg, &account, None);
    store.set_pending(true).unwrap();
    let mut phone = Phone::new(0).after_publickey();
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(
        r.reason.to_string().contains("enrollment pending"),
        "{}",
        r.reason
    );
    assert!(!store.pending().unwrap(), "the save clears the mark");
    assert_eq!(w.secret("alice").tokens[0].key, phone.key());
}

/// What a guesser saw of a login: `seen` with the user's own name and
/// what is new at every enrollment (the key, its QR code, the emergency
/// codes) masked, and without what only the module keeps (a deferred
/// token, the name a kept code is kept for).
fn as_a_guesser_sees(seen: &Seen, user: &str) -> Seen {
    let mut seen = seen.clone();
    seen.deferred = None;
    if let Some(kept) = &mut seen.kept {
        kept.user.clear();
    }
    for info in &mut seen.infos {
        *info = if info.contains("otpauth://") {
            "<key>".into()
        } else if !info.is_ascii() {
            "<QR code>".into()
        } else if info.contains("emergency codes") {
            "<emergency codes>".into()
        } else {
            info.replace(user, "<user>")
        };
    }
    seen
}

/// An unknown name sees what an account without a token sees, under every
/// `missing`, on both file stores and over every way of asking: the same
/// prompts and messages in the same order, the same `PAM_AUTHTOK` handed
/// on, the same answer; only the log says "no such user". Before, under
/// `missing = "allow"`, the account was told "not set up" and let through
/// while the unknown name was asked for a code; and under "deny" and
/// "enroll" the unknown name was answered PAM_USER_UNKNOWN where the
/// account got PAM_AUTH_ERR or PAM_SUCCESS.
#[test]
fn a_name_that_is_no_account_gets_what_an_account_without_a_token_gets() {
    let arg_sets: [&[&str]; 4] = [&[], &["forward_pass"], &["try_first_pass"], &["split_pass"]];
    // Before a deadline still ahead (enforce_after), and with none.
    for (store, deadline) in [
        ("home", ""),
        ("system", ""),
        ("home", "enforce_after = \"2100-01-01\"\n"),
        ("system", "enforce_after = \"2100-01-01\"\n"),
    ] {
        for missing in ["allow", "deny", "enroll"] {
            // No lock: an unknown name's failures are not counted (see
            // SECURITY.md), so after a few the account's lock would show.
            let w = World::new(&format!(
                "store = \"{store}\"\nmissing = \"{missing}\"\n{deadline}[rate_limit]\nmax_failures = 0\n"
            ));
            for args in arg_sets {
                // 0 and 1 wrong confirmations enroll, 3 do not; a password
                // from an earlier module, or none; a code typed, or none.
                let phones = || {
                    [
                        Phone::new(0).typing(&wrong_code()),
                        Phone::new(1).with_authtok("hunter2").typing(&wrong_code()),
                        Phone::new(3).with_authtok(&wrong_code()),
                        Phone::new(0).after_publickey().typing("123456"),
                        Phone::new(0).after_publickey().skipping(),
                        Phone::new(0),
                    ]
                };
                for (mut account, mut nobody) in phones().into_iter().zip(phones()) {
                    let a = login(&w, "bob", args, &mut account);
                    let n = login(&w, "nosuchuser", args, &mut nobody);
                    let what = format!(
                        "store {store}, missing {missing}, {deadline}{args:?}: {a:?} {n:?}"
                    );
                    assert_eq!(
                        as_a_guesser_sees(&account.seen, "bob"),
                        as_a_guesser_sees(&nobody.seen, "nosuchuser"),
                        "{what}"
                    );
                    // The answer is the contract's for no such user, except
                    // where an account's is "not mine to decide" (a
                    // split_pass line handing over, a conversation error).
                    let expected = match a.outcome {
                        Outcome::Ignore | Outcome::ConvErr | Outcome::AuthInfoUnavail => a.outcome,
                        _ => Outcome::UserUnknown,
                    };
                    assert_eq!(n.outcome, expected, "{what}");
                    // The log tells, and nothing is kept for pam_setcred.
                    let line = n.reason.to_string();
                    assert!(line.starts_with("no such user; "), "{line}");
                    assert!(nobody.seen.deferred.is_none(), "{what}");
                    // bob's enrollment, when confirmed, waits for
                    // pam_setcred or is saved (after a public key): start
                    // the next pair without a token.
                    let _ = fs::remove_file(w.secret_path("bob"));
                    let _ = fs::remove_file(w.dir.join("state/users/bob.toml"));
                }
            }
            // Nothing was written for the unknown name anywhere.
            for path in [
                "state/unenrolled/nosuchuser.toml",
                "state/users/nosuchuser.toml",
            ] {
                assert!(!w.dir.join(path).exists(), "{path}");
            }
        }
    }
}

#[test]
fn the_system_store_keeps_the_file_under_the_state_dir() {
    let w = World::new("store = \"system\"\nmissing = \"enroll\"\n");
    let mut phone = Phone::new(0).after_publickey();
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let path = w.dir.join("state/users/alice.toml");
    let file = SecretFile::parse(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file.tokens[0].key, phone.key());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dir = fs::metadata(w.dir.join("state/users")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    assert!(!w.secret_path("alice").exists(), "nothing in the home");
    // And a code of it logs in through the same store.
    let code = Generator::new(&phone.key(), Algorithm::SHA1, 6)
        .unwrap()
        .code(NOW / 30 + 1);
    let mut s = Script::new(&[&code]);
    let r = w.login_at("alice", None, &["debug"], &mut s, NOW + 30);
    assert_eq!(r.outcome, Outcome::Success, "{r:?} {:?}", s.seen);
}

#[test]
fn grace_period_spares_the_same_address_for_a_while() {
    let w = World::new("grace_period = 300\n");
    w.enroll("alice", "");
    let from = Some("203.0.113.7");
    let mut s = Script::new(&[&right_code()]);
    let r = w.login_from("alice", from, &[], &mut s);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    // The v1 file became v2 to hold the grace entry.
    assert_eq!(w.secret("alice").version, crate::secret_file::VERSION_2);
    // Same address, within the period: no prompt.
    let mut s = Script::new(&[]);
    let r = w.login_at("alice", from, &[], &mut s, NOW + 299);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(s.seen.prompts.is_empty());
    assert!(
        r.reason.to_string().contains("grace_period"),
        "{}",
        r.reason
    );
    // After it, another address, no address: a code is asked.
    for (rhost, now) in [
        (from, NOW + 300),
        (Some("203.0.113.8"), NOW + 10),
        (None, NOW + 10),
    ] {
        let mut s = Script::new(&[&wrong_code()]);
        let r = w.login_at("alice", rhost, &[], &mut s, now);
        assert_eq!(r.outcome, Outcome::AuthErr, "{rhost:?} {r:?}");
        assert_eq!(s.seen.prompts, [CODE_PROMPT]);
    }
    // The module argument overrides the config: 0 turns it off.
    let mut s = Script::new(&[&wrong_code()]);
    let r = w.login_at("alice", from, &["grace_period=0"], &mut s, NOW + 5);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
}

#[test]
fn forward_pass_asks_the_password_first_then_enrolls_for_setcred() {
    let w = World::new("missing = \"enroll\"\n");
    let mut phone = Phone::new(0);
    let r = login(&w, "alice", &["forward_pass"], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(phone.seen.prompts[0], config::PASSWORD_PROMPT);
    assert_eq!(phone.seen.authtok.as_deref(), Some("hunter2"));
    assert!(phone.seen.deferred.is_some(), "saved only at pam_setcred");
    assert!(!w.secret_path("alice").exists());
}

#[test]
fn a_name_that_is_no_account_is_taken_through_the_same_enrollment() {
    let w = World::new("missing = \"enroll\"\n");
    for args in [&[][..], &["split_pass"][..]] {
        // bob exists and has no token; mallory does not exist.
        let mut account = Phone::new(1).with_authtok("hunter2");
        let mut nobody = Phone::new(1).with_authtok("hunter2");
        let a = login(&w, "bob", args, &mut account);
        let n = login(&w, "mallory", args, &mut nobody);
        // The same prompts, the same number of messages, the same errors.
        assert_eq!(account.seen.prompts, nobody.seen.prompts, "{args:?}");
        assert_eq!(
            account.seen.infos.len(),
            nobody.seen.infos.len(),
            "{args:?}"
        );
        assert_eq!(account.seen.errors, nobody.seen.errors, "{args:?}");
        // No such user at the end (the log tells), and nothing kept for
        // pam_setcred.
        assert!(nobody.seen.deferred.is_none());
        if args.is_empty() {
            assert_eq!(a.outcome, Outcome::Success, "{a:?}");
            assert_eq!(n.outcome, Outcome::UserUnknown, "{n:?}");
            assert!(n.reason.to_string().contains("no account"), "{n:?}");
        } else {
            assert_eq!((a.outcome, n.outcome), (Outcome::Ignore, Outcome::Ignore));
        }
    }
    assert!(
        !w.secret_path("bob").exists(),
        "bob's token waits for pam_setcred"
    );
}

/// A record that holds only a used-up temporary code (`otp-enroll
/// temp-code` for a user without a token) is no token: the login enrolls,
/// and the new token takes the record's place (`create`, under its lock).
#[test]
fn a_spent_temporary_code_alone_gives_way_to_enrollment_at_login() {
    let w = World::new("missing = \"enroll\"\n");
    let mut f = SecretFile::parse(&format!(
        "version = 2\n\n[[token]]\nid = \"x\"\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n"
    ))
    .unwrap();
    f.tokens.clear();
    f.temp_code = Some(crate::secret_file::TempCode::new(
        "48151623",
        vec![7; 16],
        NOW - 60,
        NOW + 3600,
        0,
        "root".into(),
    ));
    w.enroll_with("alice", &f.to_text().unwrap());
    let mut phone = Phone::new(0).after_publickey();
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(r.reason.to_string().contains("enrolled at login"), "{r:?}");
    let file = w.secret("alice");
    assert_eq!(file.tokens.len(), 1);
    assert_eq!(file.tokens[0].key, phone.key());
    assert_eq!(file.temp_code, None, "the spent code went with the record");
}

/// Behind a password module (the token waits for pam_setcred), the log
/// line still says why the login enrolls: an administrator's reset or
/// require, or `missing = "enroll"`.
#[test]
fn a_deferred_enrollment_says_why() {
    let w = World::new("missing = \"deny\"\n");
    let account = w.lookup()("alice").unwrap().unwrap();
    let cfg = config::load(w.config.to_str().unwrap()).unwrap();
    store::admin(&cfg, &account, None)
        .set_pending(true)
        .unwrap();
    let mut phone = Phone::new(0).with_authtok("hunter2");
    let r = login(&w, "alice", &[], &mut phone);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let said = r.reason.to_string();
    assert!(
        said.contains("enrollment pending") && said.contains("pam_setcred"),
        "{said}"
    );

    let w = World::new("missing = \"enroll\"\n");
    let mut phone = Phone::new(0).with_authtok("hunter2");
    let said = login(&w, "alice", &[], &mut phone).reason.to_string();
    assert!(
        said.contains("no token, missing = enroll") && said.contains("pam_setcred"),
        "{said}"
    );
}
