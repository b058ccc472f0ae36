//! One authentication, start to finish, as plain Rust.
//!
//! The PAM glue hands over the login (user, rhost, service, clock), the
//! module arguments, and a [`Conversation`]; this decides and reports. Every
//! path out of here is a [`Report`] with an [`Outcome`] and a reason for the
//! log; anything unexpected is a refusal.

use std::path::Path;

use crate::account::{self, Account, SystemGroups};
use crate::config::{self, Config, Missing};
use crate::log::Level;
use crate::otp::{self, code_eq};
use crate::remote::Remote;
use crate::rules::{self, Action, Subject};
use crate::safe_fs::{self, FsError};
use crate::secret_file::SecretFile;
use crate::verify::{self, Policy, Verdict};

pub const MSG_UNAVAILABLE: &str =
    "Two-factor login is unavailable for this account; contact your administrator.";
pub const MSG_NOT_ENROLLED: &str =
    "Two-factor login is not set up for this account yet: run otp-enroll to set it up.";
pub const MSG_DENIED: &str = "Login refused by policy.";
pub const MSG_NOT_SAVED: &str =
    "Your code could not be recorded, so the login was refused; try again later or contact your administrator.";

/// What the PAM glue answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    AuthErr,
    UserUnknown,
    AuthInfoUnavail,
    ConvErr,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::AuthErr => "auth_err",
            Outcome::UserUnknown => "user_unknown",
            Outcome::AuthInfoUnavail => "authinfo_unavail",
            Outcome::ConvErr => "conv_err",
        }
    }
}

/// The result and why, for the log (never a code or a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub reason: String,
    /// Lines logged always, at warning level (e.g. unknown arguments).
    pub warnings: Vec<String>,
    /// Extra lines logged only with `debug`.
    pub debug: Vec<String>,
}

impl Report {
    pub fn level(&self) -> Level {
        match self.outcome {
            Outcome::Success => Level::Info,
            Outcome::AuthErr | Outcome::UserUnknown | Outcome::ConvErr => Level::Notice,
            Outcome::AuthInfoUnavail => Level::Err,
        }
    }
}

/// The conversation failed (`PAM_CONV_ERR`) or the user gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvError {
    Failed,
    NoAnswer,
}

/// The PAM conversation and items, as seen from here.
pub trait Conversation {
    /// Asks with echo off.
    fn prompt_hidden(&mut self, text: &str) -> Result<String, ConvError>;
    fn info(&mut self, text: &str);
    fn error(&mut self, text: &str);
    /// `PAM_AUTHTOK` as an earlier module left it.
    fn authtok(&mut self) -> Option<String>;
    fn set_authtok(&mut self, value: &str) -> Result<(), ConvError>;
}

/// The login being authenticated.
pub struct Login<'a> {
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    pub service: &'a str,
    /// Unix time, read by the caller.
    pub now: u64,
}

pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<Account>, String>;

struct Flow<'a, 'c> {
    login: &'a Login<'a>,
    cfg: Config,
    conv: &'c mut dyn Conversation,
    warnings: Vec<String>,
    /// Detail for the log, collected only with the `debug` argument (the
    /// glue logs it only then; formatting it costs every login otherwise).
    debug: Option<Vec<String>>,
}

/// Authenticates one login. `lookup` finds accounts (NSS in production).
pub fn authenticate(
    login: &Login<'_>,
    args: &[&str],
    conv: &mut dyn Conversation,
    lookup: Lookup<'_>,
) -> Report {
    let cfg_path = config::config_path_arg(args.iter().copied()).unwrap_or(config::DEFAULT_PATH);
    let cfg = config::load(cfg_path).and_then(|mut c| {
        c.apply_args(args.iter().copied())
            .map(|()| c)
            .map_err(|e| format!("module arguments: {e}"))
    });
    let cfg = match cfg {
        Ok(c) => c,
        Err(why) => {
            conv.error(MSG_UNAVAILABLE);
            return Report {
                outcome: Outcome::AuthInfoUnavail,
                reason: why,
                warnings: Vec::new(),
                debug: Vec::new(),
            };
        }
    };
    let mut flow = Flow {
        login,
        cfg,
        conv,
        warnings: Vec::new(),
        debug: args.contains(&"debug").then(Vec::new),
    };
    let (outcome, reason) = flow.run(lookup);
    Report {
        outcome,
        reason,
        warnings: flow.warnings,
        debug: flow.debug.unwrap_or_default(),
    }
}

impl Flow<'_, '_> {
    /// Adds a debug line, formatted only when debug lines are wanted.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(debug) = &mut self.debug {
            debug.push(line());
        }
    }

    fn run(&mut self, lookup: Lookup<'_>) -> (Outcome, String) {
        // Logged with or without `debug`: an admin's typo ("nulok") must
        // not go unnoticed.
        if !self.cfg.unknown_args.is_empty() {
            self.warnings.push(format!(
                "ignored unknown module arguments: {:?}",
                self.cfg.unknown_args
            ));
        }
        let user = self.login.user;
        if !account::plausible_user_name(user) {
            return (Outcome::AuthErr, "implausible user name".into());
        }
        let account = match lookup(user) {
            Ok(Some(a)) => a,
            Ok(None) => return (Outcome::UserUnknown, "no such user".into()),
            Err(why) => return (Outcome::AuthInfoUnavail, why),
        };

        let remote = Remote::from_rhost(self.login.rhost);
        let groups = SystemGroups::new(&account);
        let subject = Subject {
            user,
            remote: &remote,
            service: self.login.service,
            groups: &groups,
        };
        let decision = rules::decide(&self.cfg.rules, self.cfg.default, &subject);
        self.note(|| format!("remote {remote:?} -> {decision}"));
        match decision.action {
            Action::Deny => {
                self.conv.error(MSG_DENIED);
                return (Outcome::AuthErr, format!("denied by {decision}"));
            }
            Action::Skip => return self.pass_through(format!("no code needed: {decision}")),
            Action::Require => {}
        }

        let path = config::expand_template(&self.cfg.secret, &account.name, &account.home);
        self.note(|| format!("secret file {path}"));
        // Only a name free in directories nobody else can write to means
        // "not enrolled": an unsafe, missing or unreadable directory (the
        // home, say) is an error, as it is for the open below.
        let home = Path::new(&account.home);
        let present = match safe_fs::exists(Path::new(&path), home, account.owner()) {
            Ok(present) => present,
            Err(e) => {
                // Prompt anyway, as the open would after it: whether a file
                // is there must not show.
                let _ = self.ask();
                self.conv.error(MSG_UNAVAILABLE);
                return (Outcome::AuthInfoUnavail, format!("secret file {path}: {e}"));
            }
        };
        if !present {
            return match self.cfg.missing {
                Missing::Allow => {
                    self.conv.info(MSG_NOT_ENROLLED);
                    self.pass_through(format!("no secret file, missing = allow; {decision}"))
                }
                Missing::Deny => {
                    // Prompt anyway: the prompt must not reveal who is enrolled.
                    let _ = self.ask();
                    (
                        Outcome::AuthErr,
                        format!("no secret file ({path}), missing = deny"),
                    )
                }
            };
        }

        let first = match self.first_code() {
            Ok(c) => c,
            Err(e) => return e,
        };
        let verdict = match self.check(&account, &path, &first) {
            Ok(v) => v,
            Err(e) => return e,
        };
        // try_first_pass: a wrong code from the earlier module gets one prompt.
        let verdict = match (verdict, first.from_authtok && self.cfg.try_first_pass) {
            (Verdict::Refused(_), true) => {
                let typed = match self.ask() {
                    Ok(t) => t,
                    Err(e) => return e,
                };
                match self.check(
                    &account,
                    &path,
                    &Typed {
                        text: typed,
                        from_authtok: false,
                    },
                ) {
                    Ok(v) => v,
                    Err(e) => return e,
                }
            }
            (v, _) => v,
        };
        let mut why = String::with_capacity(64);
        verdict.describe_into(&mut why);
        why.push_str("; ");
        decision.push_to(&mut why);
        match verdict {
            Verdict::Accepted(_) => (Outcome::Success, why),
            Verdict::Locked { retry_in } => {
                self.conv.error(&format!(
                    "Too many failed attempts; try again in {retry_in} s."
                ));
                (Outcome::AuthErr, why)
            }
            Verdict::Refused(_) => (Outcome::AuthErr, why),
        }
    }

    /// Success without a code. Under `forward_pass` the next module still
    /// wants a password, so ask for it plainly and pass it on.
    fn pass_through(&mut self, why: String) -> (Outcome, String) {
        if self.cfg.forward_pass {
            match self.conv.prompt_hidden("Password: ") {
                Ok(pw) => {
                    if self.conv.set_authtok(&pw).is_err() {
                        return (Outcome::AuthInfoUnavail, "could not set PAM_AUTHTOK".into());
                    }
                }
                Err(e) => return conv_failure(e),
            }
        }
        (Outcome::Success, why)
    }

    fn prompt_text(&self) -> &str {
        if self.cfg.forward_pass {
            config::FORWARD_PASS_PROMPT
        } else {
            &self.cfg.prompt
        }
    }

    fn ask(&mut self) -> Result<String, (Outcome, String)> {
        let text = self.prompt_text().to_string();
        self.conv.prompt_hidden(&text).map_err(conv_failure)
    }

    fn first_code(&mut self) -> Result<Typed, (Outcome, String)> {
        if self.cfg.use_first_pass || self.cfg.try_first_pass {
            let tok = self.conv.authtok();
            match (tok, self.cfg.use_first_pass) {
                (Some(t), true) => {
                    return Ok(Typed {
                        text: t,
                        from_authtok: true,
                    })
                }
                (None, true) => {
                    return Err((
                        Outcome::AuthErr,
                        "use_first_pass: no PAM_AUTHTOK from an earlier module".into(),
                    ))
                }
                // try_first_pass: only something shaped like a code is tried,
                // so a password left by an earlier module costs no failure.
                (Some(t), false) if otp::normalize_code(&t).is_some() => {
                    return Ok(Typed {
                        text: t,
                        from_authtok: true,
                    })
                }
                _ => {}
            }
        }
        Ok(Typed {
            text: self.ask()?,
            from_authtok: false,
        })
    }

    /// Lock, read, verify, save. A code counts only once saved.
    fn check(
        &mut self,
        account: &Account,
        path: &str,
        typed: &Typed,
    ) -> Result<Verdict, (Outcome, String)> {
        let unavailable = |conv: &mut dyn Conversation, why: String| {
            conv.error(MSG_UNAVAILABLE);
            (Outcome::AuthInfoUnavail, why)
        };
        let home = Path::new(&account.home);
        let (locked, bytes) = match safe_fs::open_locked(Path::new(path), home, account.owner()) {
            Ok(x) => x,
            Err(FsError::NotFound) if self.cfg.missing == Missing::Deny => {
                return Err((
                    Outcome::AuthErr,
                    format!("no secret file ({path}), missing = deny"),
                ))
            }
            Err(e) => return Err(unavailable(self.conv, format!("secret file {path}: {e}"))),
        };
        let mut file = match SecretFile::parse_bytes(&bytes) {
            Ok(f) => f,
            Err(e) => return Err(unavailable(self.conv, format!("secret file {path}: {e}"))),
        };
        let code = if self.cfg.forward_pass && !typed.from_authtok {
            let (password, code) = split_password_and_code(&file, &typed.text);
            if self.conv.set_authtok(password).is_err() {
                return Err((Outcome::AuthInfoUnavail, "could not set PAM_AUTHTOK".into()));
            }
            code.to_string()
        } else {
            typed.text.clone()
        };
        let policy = Policy {
            totp_skew: self.cfg.totp_skew,
            hotp_window: self.cfg.hotp_window,
            rate_limit: self.cfg.rate_limit,
        };
        let verdict = verify::verify(&mut file, &code, &policy, self.login.now);
        if verdict.changes_state() {
            if let Err(e) = locked.replace(file.to_toml().as_bytes()) {
                // Right or wrong, the answer is the same: a code that cannot
                // be marked used is not accepted, and a failure that cannot
                // be counted must not tell a guesser whether the code was
                // right (a full /home would otherwise be an oracle with no
                // rate limit).
                self.conv.error(MSG_NOT_SAVED);
                let why = format!("{}, but saving {path} failed: {e}", verdict.describe());
                return Err((Outcome::AuthErr, why));
            }
        }
        Ok(verdict)
    }
}

struct Typed {
    text: String,
    from_authtok: bool,
}

fn conv_failure(e: ConvError) -> (Outcome, String) {
    match e {
        ConvError::Failed => (Outcome::ConvErr, "conversation failed".into()),
        ConvError::NoAnswer => (Outcome::AuthErr, "no answer to the prompt".into()),
    }
}

/// `forward_pass`: "password" + "code" typed in one go. The code is the
/// trailing `digits` digits, or the trailing 8 when they are an unused
/// emergency code; the rest is the password.
pub fn split_password_and_code<'t>(file: &SecretFile, typed: &'t str) -> (&'t str, &'t str) {
    let typed = typed.strip_suffix('\n').unwrap_or(typed);
    let trailing_digits = typed.bytes().rev().take_while(u8::is_ascii_digit).count();
    let at = |n: usize| typed.len() - n;
    if trailing_digits >= otp::SCRATCH_DIGITS {
        let tail = &typed[at(otp::SCRATCH_DIGITS)..];
        let mut is_scratch = false;
        for c in &file.scratch_codes {
            is_scratch |= code_eq(c, tail);
        }
        if is_scratch {
            return typed.split_at(at(otp::SCRATCH_DIGITS));
        }
    }
    let digits = usize::from(file.digits);
    if trailing_digits >= digits {
        typed.split_at(at(digits))
    } else {
        // No code at the end: all of it is the password, and the code is
        // empty (a failure).
        (typed, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_file::OtpKind;

    #[test]
    fn forward_pass_split() {
        let mut f = SecretFile::new(OtpKind::Totp, b"12345678901234567890".to_vec());
        assert_eq!(
            split_password_and_code(&f, "hunter2123456"),
            ("hunter2", "123456")
        );
        assert_eq!(
            split_password_and_code(&f, "pw99123456"),
            ("pw99", "123456")
        );
        assert_eq!(split_password_and_code(&f, "password"), ("password", ""));
        assert_eq!(split_password_and_code(&f, "123456"), ("", "123456"));
        f.scratch_codes = vec!["31415926".into()];
        assert_eq!(
            split_password_and_code(&f, "pw31415926"),
            ("pw", "31415926")
        );
        assert_eq!(
            split_password_and_code(&f, "pw31415927"),
            ("pw31", "415927")
        );
        f.digits = 8;
        assert_eq!(
            split_password_and_code(&f, "pw12345678"),
            ("pw", "12345678")
        );
        // Multi-byte characters in the password are fine.
        assert_eq!(
            split_password_and_code(&f, "pässwörd12345678"),
            ("pässwörd", "12345678")
        );
    }
}
