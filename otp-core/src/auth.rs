//! One authentication, start to finish, as plain Rust.
//!
//! The PAM glue hands over the login (user, rhost, service, clock), the
//! module arguments, and a [`Conversation`]; this decides and reports. Every
//! path out of here is a [`Report`] with an [`Outcome`] and a reason for the
//! log; anything unexpected is a refusal.
//!
//! What a guesser sees must not depend on whether an account exists or has
//! a token: a name that is not an account, and an account without a token
//! under `missing = "deny"`, go through the same prompts, the same
//! splitting of "password + code" into `PAM_AUTHTOK`, the same
//! `try_first_pass` re-prompt and (for accounts) the same rate limit and
//! file writes as an enrolled user who typed a wrong code ([`Record`]).
//! Under every `missing`, a name that is not an account sees what an
//! account without a token sees, prompts and messages in order; only the
//! return code (`PAM_USER_UNKNOWN`, as the contract says) and the log tell
//! the truth ([`Who`]).

mod enrolling;

use std::fmt;
use std::path::Path;

use crate::account::{self, Account, LookupError, SystemGroups};
use crate::audit::Origin;
use crate::config::{self, Config, Missing};
use crate::grace;
use crate::log::Level;
use crate::otp::{self, code_eq, normalize_code};
use crate::remote::Remote;
use crate::rules::{self, Action, Decision, Groups, Subject};
use crate::safe_fs::{FsError, Owner};
use crate::secret_file::{SecretFile, SecretFileError, State, TempCode};
use crate::store::exempt::{self, Exemption, Standing};
use crate::store::{self, LoginStore, Presence, StoreError};
use crate::unenrolled::{self, Tally};
use crate::verify::{self, Policy, Verdict};

pub use enrolling::{commit_enrollment, deadline_message, Why};

pub const MSG_UNAVAILABLE: &str =
    "Two-factor login is unavailable for this account; contact your administrator.";
pub const MSG_NOT_ENROLLED: &str =
    "Two-factor login is not set up for this account yet: run otp-enroll to set it up.";
pub const MSG_DENIED: &str = "Login refused by policy.";
/// What an exempt user is told ([`exemption_message`]).
pub fn exemption_message(until: u64) -> String {
    format!(
        "No verification code is asked of this account until {} (an administrator's exemption).",
        crate::date::format_unix(until)
    )
}
pub const MSG_EXEMPT_NO_FIRST_FACTOR: &str =
    "This account is exempt from the verification code for now, but this login shows no \
     password or key to stand for it; contact your administrator.";
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
    /// `PAM_IGNORE`: a `split_pass` line decided nothing; the pam_otp line
    /// after the password module does.
    Ignore,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::AuthErr => "auth_err",
            Outcome::UserUnknown => "user_unknown",
            Outcome::AuthInfoUnavail => "authinfo_unavail",
            Outcome::ConvErr => "conv_err",
            Outcome::Ignore => "ignore",
        }
    }
}

/// The result and why, for the log (never a code or a secret).
#[derive(Debug)]
#[must_use]
pub struct Report {
    pub outcome: Outcome,
    pub reason: Reason,
    /// Lines logged always, at warning level (e.g. unknown arguments).
    pub warnings: Vec<String>,
    /// Extra lines logged only with `debug`.
    pub debug: Vec<String>,
}

impl Report {
    pub fn level(&self) -> Level {
        match self.outcome {
            Outcome::Success | Outcome::Ignore => Level::Info,
            Outcome::AuthErr | Outcome::UserUnknown | Outcome::ConvErr => Level::Notice,
            Outcome::AuthInfoUnavail => Level::Err,
        }
    }
}

/// Why a login ended as it did: the log line's `reason="..."`. Never a
/// code, a password or a secret.
#[derive(Debug)]
pub enum Reason {
    /// The config or the module arguments cannot be used.
    Config(config::LoadError),
    /// The account look-up (NSS) failed.
    Lookup(LookupError),
    Denied(Decision),
    NoCodeNeeded(Decision),
    /// No token (no secret file, or no account), and `missing = "allow"`.
    NotEnrolledAllowed(Decision),
    /// `split_pass`: the answer was split, the password handed on and the
    /// code kept for the line after the password module.
    CodeKept(Decision),
    /// `split_pass` asked only for the password (the inner reason says why).
    PasswordOnly(Box<Reason>),
    /// A code was checked; `no_token`: against nothing (missing = deny).
    Checked {
        verdict: Verdict,
        no_token: bool,
        decision: Decision,
    },
    /// The secret file went away between looking and opening.
    NoSecretFile {
        path: String,
    },
    Unreadable {
        path: String,
        err: FsError,
    },
    Malformed {
        path: String,
        err: SecretFileError,
    },
    NotSaved {
        verdict: Box<Verdict>,
        path: String,
        err: FsError,
    },
    /// The new state would not make a valid file (it is not written).
    Unwritable {
        verdict: Box<Verdict>,
        path: String,
        err: SecretFileError,
    },
    /// `grace_period`: a code was accepted for the user from this address
    /// at `at`.
    Grace {
        from: String,
        at: u64,
        decision: Decision,
    },
    /// The store cannot tell what the user has, or failed otherwise.
    Store {
        location: String,
        err: StoreError,
    },
    /// Enrollment at login: see `enrolling`.
    Enroll(enrolling::EnrollReason),
    /// `split_pass`: the kept code was typed for another user or service
    /// (these), not the one this line authenticates.
    KeptForAnother {
        user: String,
        service: String,
    },
    /// `use_first_pass` and no `PAM_AUTHTOK`.
    NoAuthtok,
    SetAuthtok,
    KeepCode,
    Conversation(ConvError),
    /// An administrator's exemption (`otp-enroll exempt`) let the user
    /// in without a code.
    Exempt {
        exemption: Exemption,
        decision: Decision,
    },
    /// An exemption, but the stack shows no first factor (nothing but
    /// pam_otp would have asked anything): refused.
    ExemptNoFirstFactor {
        exemption: Exemption,
        why: &'static str,
        decision: Decision,
    },
    /// Not an account (`what` says why), answered as one up to `then`.
    Nobody {
        what: &'static str,
        then: Box<Reason>,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Config(err) => write!(f, "{err}"),
            Reason::Lookup(err) => write!(f, "{err}"),
            Reason::Denied(d) => write!(f, "denied by {d}"),
            Reason::NoCodeNeeded(d) => write!(f, "no code needed: {d}"),
            Reason::NotEnrolledAllowed(d) => {
                write!(f, "no token, missing = allow; {d}")
            }
            Reason::CodeKept(d) => write!(
                f,
                "split_pass: password handed on, code kept for the pam_otp line after the \
                 password module; {d}"
            ),
            Reason::PasswordOnly(why) => write!(f, "split_pass: {why}"),
            Reason::Checked {
                verdict,
                no_token,
                decision,
            } => {
                let what = if *no_token {
                    "no token, missing = deny: "
                } else {
                    ""
                };
                write!(f, "{what}{}; {decision}", verdict)
            }
            Reason::NoSecretFile { path } => write!(f, "no secret file ({path}), missing = deny"),
            Reason::Unreadable { path, err } => write!(f, "secret file {path}: {err}"),
            Reason::Malformed { path, err } => write!(f, "secret file {path}: {err}"),
            Reason::NotSaved { verdict, path, err } => {
                write!(f, "{verdict}, but saving {path} failed: {err}")
            }
            Reason::Unwritable { verdict, path, err } => {
                write!(
                    f,
                    "{verdict}, but the new state of {path} is invalid: {err}"
                )
            }
            Reason::Grace { from, at, decision } => write!(
                f,
                "no code needed: within grace_period of the code accepted from {from} at {at}; \
                 {decision}"
            ),
            Reason::Store { location, err } => write!(f, "store {location}: {err}"),
            Reason::Enroll(why) => write!(f, "{why}"),
            Reason::KeptForAnother { user, service } => write!(
                f,
                "split_pass: the code kept by the first pam_otp line was typed for user \"{user}\" \
                 (service \"{service}\"), but this line authenticates another user or service: a \
                 module between the lines changed PAM_USER; the code is checked for nobody else \
                 and the login is refused"
            ),
            Reason::NoAuthtok => write!(f, "use_first_pass: no PAM_AUTHTOK from an earlier module"),
            Reason::SetAuthtok => write!(f, "could not set PAM_AUTHTOK"),
            Reason::KeepCode => write!(f, "could not keep the code"),
            Reason::Conversation(ConvError::Failed) => write!(f, "conversation failed"),
            Reason::Conversation(ConvError::NoAnswer) => write!(f, "no answer to the prompt"),
            Reason::Nobody { what, then } => write!(f, "{what}; {then}"),
            Reason::Exempt {
                exemption,
                decision,
            } => write!(
                f,
                "no code needed: {}; {decision}",
                describe_exemption(exemption)
            ),
            Reason::ExemptNoFirstFactor {
                exemption,
                why,
                decision,
            } => write!(
                f,
                "{}, but an exemption replaces only the code: {why}; refused; {decision}",
                describe_exemption(exemption)
            ),
        }
    }
}

/// "exempt until T (granted T0 by WHO: REASON)", for the log.
fn describe_exemption(e: &Exemption) -> String {
    format!(
        "exempt until {} (granted {} by {}{})",
        crate::date::format_unix(e.until),
        crate::date::format_unix(e.granted),
        if e.by.is_empty() { "?" } else { &e.by },
        if e.reason.is_empty() {
            String::new()
        } else {
            format!(", reason: {}", e.reason)
        }
    )
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
    /// `split_pass`: keeps `kept` with this authentication (PAM module
    /// data) for the pam_otp line after the password module.
    fn keep_code(&mut self, kept: KeptCode) -> Result<(), ConvError>;
    /// Takes the code a `split_pass` line kept earlier in this
    /// authentication, so that it is checked at most once.
    fn take_kept_code(&mut self) -> Option<KeptCode>;
    /// `SSH_AUTH_INFO_0` from the PAM environment (set by sshd: the
    /// methods already passed); `None` when it is not set.
    fn ssh_auth_info(&mut self) -> Option<String>;
    /// Keeps a confirmed new token with this authentication, for
    /// [`commit_enrollment`] in `pam_sm_setcred`; `None` drops one kept
    /// earlier.
    fn defer_enrollment(&mut self, token: Option<Deferred>) -> Result<(), ConvError>;
}

/// What a `split_pass` line keeps for the pam_otp line after the password
/// module: the code, and the user and service it was typed for. The later
/// line checks it only for that same user and service (exact bytes): a
/// module between the lines that changes `PAM_USER` (pam_sss or winbind
/// canonicalising a name, a module of the admin's) fails the login.
#[derive(Clone, PartialEq, Eq)]
pub struct KeptCode {
    pub code: String,
    pub user: String,
    pub service: String,
}

impl fmt::Debug for KeptCode {
    /// Never the code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptCode")
            .field("user", &self.user)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Drop for KeptCode {
    /// Overwrites the code before its memory goes back to the allocator.
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.code).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// A new token confirmed during `pam_sm_authenticate` and kept for
/// `pam_sm_setcred` ([`commit_enrollment`]), with the user and service
/// whose authentication made it. It is saved for that user or not at all,
/// never for whoever `PAM_USER` names by `pam_setcred`: sudo sets
/// `PAM_USER` to the run-as user (bob, root) before it calls
/// `pam_setcred`, while the password the stack checked, and the phone
/// that confirmed the token, were the invoking user's (alice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deferred {
    pub file: SecretFile,
    pub user: String,
    pub service: String,
}

/// The login being authenticated.
pub struct Login<'a> {
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    pub service: &'a str,
    /// `PAM_TTY` (unset: `None`), for rules' `ttys`.
    pub tty: Option<&'a str>,
    /// Unix time, read by the caller.
    pub now: u64,
}

pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<Account>, LookupError>;

/// The config the module arguments name (`config=`), with the arguments
/// applied over it.
fn load_config(args: &[&str]) -> Result<Config, config::LoadError> {
    let cfg_path = config::config_path_arg(args.iter().copied()).unwrap_or(config::DEFAULT_PATH);
    let mut cfg = config::load(cfg_path)?;
    cfg.apply_args(args.iter().copied())
        .map_err(config::LoadError::Arguments)?;
    Ok(cfg)
}

/// Authenticates one login. `lookup` finds accounts (NSS in production).
pub fn authenticate(
    login: &Login<'_>,
    args: &[&str],
    conv: &mut dyn Conversation,
    lookup: Lookup<'_>,
) -> Report {
    let cfg = match load_config(args) {
        Ok(c) => c,
        Err(why) => {
            conv.error(MSG_UNAVAILABLE);
            return Report {
                outcome: Outcome::AuthInfoUnavail,
                reason: Reason::Config(why),
                warnings: Vec::new(),
                debug: Vec::new(),
            };
        }
    };
    let mut flow = Flow {
        login,
        missing: cfg.missing,
        deadline: None,
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

struct Flow<'a, 'c> {
    login: &'a Login<'a>,
    cfg: Config,
    /// `missing` for this login: the matching rule's, else the config's
    /// with the module arguments over it (`nullok`).
    missing: Missing,
    /// `enforce_after` for this login (the rule's, else the config's),
    /// while it is still ahead and `missing` is not "allow": a user
    /// without a token is let in and offered enrollment.
    deadline: Option<u64>,
    conv: &'c mut dyn Conversation,
    warnings: Vec<String>,
    /// Detail for the log, collected only with the `debug` argument.
    debug: Option<Vec<String>>,
}

type Refusal = (Outcome, Reason);

/// Who is logging in, as far as the answer to the outside may tell.
enum Who {
    Account(Account),
    /// Not an account (or not a name that can be one): taken through what
    /// an account without a token goes through, prompts and messages
    /// alike, then answered with `outcome` (the contract's return code:
    /// `PAM_USER_UNKNOWN` for no such user, SPEC "Exit and return codes").
    Nobody {
        outcome: Outcome,
        what: &'static str,
    },
}

/// Where the user's tokens and state are.
enum Record<'w> {
    /// The user's tokens, in the store.
    Tokens(Box<dyn LoginStore>),
    /// No token (`missing = "deny"`, or not an account): nothing typed is
    /// right. An account's failures are tallied as an enrolled user's are.
    /// `store`: the fleet's, which decides and counts in the database
    /// (with the same round trips for a name that is no account).
    NoToken {
        account: Option<&'w Account>,
        store: Option<Box<dyn LoginStore>>,
    },
    /// No token, and enrollment at login (`missing = "enroll"`, or an
    /// admin's `otp-enroll reset`: `pending`). No store: not an account,
    /// taken through the same enrollment (nothing is ever saved), so that
    /// who exists does not show.
    Enroll {
        store: Option<Box<dyn LoginStore>>,
        why: Why,
    },
}

/// How a typed answer reached us.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    Prompt,
    /// `PAM_AUTHTOK`, left by an earlier module (`try_first_pass`,
    /// `use_first_pass`).
    AuthTok,
    /// Kept by a `split_pass` line earlier in this authentication.
    Kept,
}

struct Typed {
    text: String,
    from: From,
}

/// What splitting "password + code" needs to know of the user's tokens.
/// With several tokens the code's length is the first token's: a typed
/// "password + code" cannot say which token the code is from.
pub struct Shape<'s> {
    pub digits: u8,
    pub scratch_codes: &'s [String],
    /// The temporary code, an 8-digit code as emergency codes are.
    pub temp_code: Option<&'s TempCode>,
}

impl store::Shape {
    fn borrowed(&self) -> Shape<'_> {
        Shape {
            digits: self.digits,
            scratch_codes: &self.scratch_codes,
            temp_code: self.temp_code.as_ref(),
        }
    }
}

impl Shape<'_> {
    /// A user with no token is split like one with the usual 6-digit app.
    pub const NO_TOKEN: Shape<'static> = Shape {
        digits: 6,
        scratch_codes: &[],
        temp_code: None,
    };

    pub fn of(file: &SecretFile) -> Shape<'_> {
        Shape {
            digits: file.tokens.first().map_or(6, |t| t.digits),
            scratch_codes: &file.scratch_codes,
            temp_code: file.temp_code.as_ref(),
        }
    }
}

/// No groups: a name that is not an account is in none.
struct NoGroups;

impl Groups for NoGroups {
    fn contains(&self, _: &str) -> bool {
        false
    }
}

impl Flow<'_, '_> {
    /// Adds a debug line, formatted only when debug lines are wanted.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(debug) = &mut self.debug {
            debug.push(line());
        }
    }

    fn run(&mut self, lookup: Lookup<'_>) -> (Outcome, Reason) {
        // Logged with or without `debug`: an admin's typo ("nulok") must
        // not go unnoticed.
        if !self.cfg.unknown_args.is_empty() {
            self.warnings.push(format!(
                "ignored unknown module arguments: {:?}",
                self.cfg.unknown_args
            ));
        }
        // Taken first, whatever happens next: a kept code is for the one
        // check after the password module, never for a later line or a
        // later authentication on the same handle.
        let kept = self.conv.take_kept_code();
        // Likewise a new token confirmed by an earlier authentication on
        // this handle that failed: it is saved only by the pam_setcred
        // that follows the authentication that made it.
        if self.conv.defer_enrollment(None).is_err() {
            return (Outcome::AuthInfoUnavail, Reason::KeepCode);
        }
        if kept.is_some() && self.cfg.split_pass {
            self.warnings.push(
                "split_pass: dropped a code kept by an earlier split_pass line (two split_pass \
                 lines in one stack?)"
                    .into(),
            );
        }
        // A kept code is checked only for the user (and service) it was
        // typed for: if a module between the lines changed PAM_USER, whose
        // password was checked and whose code was typed is no longer sure.
        let kept = match kept {
            Some(k) if !self.cfg.split_pass => {
                if k.user != self.login.user || k.service != self.login.service {
                    self.conv.error(MSG_UNAVAILABLE);
                    return (
                        Outcome::AuthErr,
                        Reason::KeptForAnother {
                            user: k.user.clone(),
                            service: k.service.clone(),
                        },
                    );
                }
                Some(k.code.clone())
            }
            _ => None,
        };
        let user = self.login.user;
        let who = if !account::plausible_user_name(user) {
            Who::Nobody {
                outcome: Outcome::AuthErr,
                what: "implausible user name",
            }
        } else {
            match lookup(user) {
                Ok(Some(a)) => Who::Account(a),
                Ok(None) => Who::Nobody {
                    outcome: Outcome::UserUnknown,
                    what: "no such user",
                },
                // NSS is down: that is an outage, not an answer about the name.
                Err(why) => return (Outcome::AuthInfoUnavail, Reason::Lookup(why)),
            }
        };
        let (outcome, why) = self.run_for(&who, kept);
        match who {
            Who::Account(_) => (outcome, why),
            // Answered as for an account up to here; now the truth. A
            // `split_pass` line still answers PAM_IGNORE so that the
            // password module runs (and delays) as it does for accounts.
            Who::Nobody {
                outcome: fail,
                what,
            } => {
                let then = Box::new(why);
                match outcome {
                    Outcome::Ignore | Outcome::ConvErr | Outcome::AuthInfoUnavail => {
                        (outcome, Reason::Nobody { what, then })
                    }
                    _ => (fail, Reason::Nobody { what, then }),
                }
            }
        }
    }

    fn run_for(&mut self, who: &Who, kept: Option<String>) -> (Outcome, Reason) {
        let remote = Remote::from_rhost(self.login.rhost);
        let decision = match who {
            Who::Account(account) => self.decide(&remote, &SystemGroups::new(account)),
            Who::Nobody { .. } => self.decide(&remote, &NoGroups),
        };
        self.note(|| format!("remote {remote:?} -> {decision}"));
        match decision.action {
            Action::Deny => {
                self.conv.error(MSG_DENIED);
                return (Outcome::AuthErr, Reason::Denied(decision));
            }
            Action::Skip => return self.pass_through(Reason::NoCodeNeeded(decision)),
            Action::Require => {}
        }

        // An administrator's exemption stands for the code only: after
        // the rules (a deny rule still denies), and only where a first
        // factor shows. The account's store is made here: under
        // postgresql the exemption comes in the query the login makes
        // first anyway.
        let store = match who {
            Who::Account(account) => {
                let store = self.store_for(account);
                match self.exemption(account, store.as_ref()) {
                    Ok(Some(exemption)) => return self.exempt(exemption, decision),
                    Ok(None) => Some(store),
                    Err(refusal) => return refusal,
                }
            }
            Who::Nobody { .. } => None,
        };
        self.rollout(&decision);

        // A name that is no account has no token: whatever `missing` and
        // the deadline say of an account without one hold for it too.
        let record = match who {
            Who::Nobody { .. } => {
                let store = match self.ask_for_nobody() {
                    Ok(store) => store,
                    Err(refusal) => return refusal,
                };
                match (self.deadline, self.missing) {
                    (Some(d), _) => Some(Record::Enroll {
                        store: None,
                        why: Why::BeforeDeadline(d),
                    }),
                    (None, Missing::Enroll) => Some(Record::Enroll {
                        store: None,
                        why: Why::Missing,
                    }),
                    (None, Missing::Deny) => Some(Record::NoToken {
                        account: None,
                        store,
                    }),
                    (None, Missing::Allow) => None,
                }
            }
            Who::Account(account) => {
                // (Made above for every account.)
                let store = match store {
                    Some(store) => store,
                    None => self.store_for(account),
                };
                match self.record_of(account, store, &decision) {
                    Ok(record) => record,
                    Err(refusal) => return refusal,
                }
            }
        };
        let Some(record) = record else {
            // missing = allow: no token, no code.
            if !self.cfg.split_pass {
                self.conv.info(MSG_NOT_ENROLLED);
            }
            return self.pass_through(Reason::NotEnrolledAllowed(decision));
        };
        let record = match record {
            Record::Tokens(store) => match self.in_grace(store.as_ref(), &remote, &decision) {
                Some(why) => return self.pass_through(why),
                None => Record::Tokens(store),
            },
            Record::Enroll { store, why } => {
                // A `split_pass` line (before the password module) has no
                // code to keep yet: it hands the password on, and the
                // pam_otp line after the password module enrolls.
                if self.cfg.split_pass {
                    return self.pass_through(Reason::Enroll(
                        enrolling::EnrollReason::AfterPassword { decision },
                    ));
                }
                // forward_pass: the password module comes after this line
                // and wants a password; asked first, it is also what the
                // first-factor rule waits for (pam_setcred).
                if self.cfg.forward_pass {
                    let password = match self.conv.prompt_hidden(config::PASSWORD_PROMPT) {
                        Ok(pw) => pw,
                        Err(e) => return conv_failure(e),
                    };
                    if self.conv.set_authtok(&password).is_err() {
                        return (Outcome::AuthInfoUnavail, Reason::SetAuthtok);
                    }
                }
                return self.enroll(store.as_deref(), why, decision);
            }
            other => other,
        };

        if self.cfg.split_pass {
            return match self.split_and_keep(&record) {
                Ok(()) => (Outcome::Ignore, Reason::CodeKept(decision)),
                Err(refusal) => refusal,
            };
        }

        let first = match kept {
            Some(text) => Typed {
                text,
                from: From::Kept,
            },
            None => match self.first_code() {
                Ok(t) => t,
                Err(refusal) => return refusal,
            },
        };
        let verdict = match self.check(&record, &first) {
            Ok(v) => v,
            Err(refusal) => return refusal,
        };
        // try_first_pass: a wrong code from the earlier module gets one prompt.
        let verdict = match verdict {
            Verdict::Refused(_) | Verdict::Inactive { .. }
                if first.from == From::AuthTok && self.cfg.try_first_pass =>
            {
                let again = match self.ask() {
                    Ok(text) => Typed {
                        text,
                        from: From::Prompt,
                    },
                    Err(refusal) => return refusal,
                };
                match self.check(&record, &again) {
                    Ok(v) => v,
                    Err(refusal) => return refusal,
                }
            }
            v => v,
        };
        let outcome = match verdict {
            Verdict::Accepted(_) => Outcome::Success,
            Verdict::Locked { retry_in } => {
                self.conv.error(&format!(
                    "Too many failed attempts; try again in {retry_in} s."
                ));
                Outcome::AuthErr
            }
            // Told nothing more than for a wrong code; the log says why.
            Verdict::Refused(_) | Verdict::Inactive { .. } => Outcome::AuthErr,
        };
        let why = Reason::Checked {
            verdict,
            no_token: matches!(record, Record::NoToken { .. }),
            decision,
        };
        (outcome, why)
    }

    fn decide(&self, remote: &Remote, groups: &dyn Groups) -> Decision {
        let subject = Subject {
            user: self.login.user,
            remote,
            service: self.login.service,
            tty: self.login.tty,
            groups,
        };
        rules::decide(&self.cfg.rules, self.cfg.default, &subject)
    }

    /// The account's store, as this login sees it.
    fn store_for(&mut self, account: &Account) -> Box<dyn LoginStore> {
        let from = grace::address(&Remote::from_rhost(self.login.rhost));
        let store = store::for_login(&self.cfg, account, self.login.now, self.login.service, from);
        let path = store.location();
        self.note(|| format!("secret file {path}"));
        store
    }

    /// The account's tokens in `store`, `None` when it has none and
    /// `missing = "allow"`.
    fn record_of<'w>(
        &mut self,
        account: &'w Account,
        store: Box<dyn LoginStore>,
        decision: &Decision,
    ) -> Result<Option<Record<'w>>, Refusal> {
        let path = store.location();
        let presence = match store.presence() {
            Ok(p) => p,
            Err(err) => {
                return Err(self.unavailable(Reason::Store {
                    location: path,
                    err,
                }))
            }
        };
        if let Presence::OtherAccountsMark { recorded } = presence {
            self.warnings.push(format!(
                "the \"enroll at next login\" mark of {} was made for {}, not this account \
                     (uid {}): a deleted account's name given again? counted as no mark \
                     (otp-enroll remove --orphans clears it)",
                self.login.user,
                recorded.map_or_else(|| "an unreadable uid".to_string(), |u| format!("uid {u}")),
                account.uid
            ));
        }
        match (presence, self.missing) {
            (Presence::Tokens, _) => Ok(Some(Record::Tokens(store))),
            // An admin's reset or require wins over `missing` and the
            // deadline, whatever they say.
            (Presence::Pending, _) => Ok(Some(Record::Enroll {
                why: Why::Pending,
                store: Some(store),
            })),
            (Presence::Nothing | Presence::OtherAccountsMark { .. }, _)
                if self.deadline.is_some() =>
            {
                Ok(Some(Record::Enroll {
                    why: Why::BeforeDeadline(self.deadline.unwrap_or_default()),
                    store: Some(store),
                }))
            }
            (Presence::Nothing | Presence::OtherAccountsMark { .. }, Missing::Enroll) => {
                Ok(Some(Record::Enroll {
                    why: Why::Missing,
                    store: Some(store),
                }))
            }
            (Presence::Nothing | Presence::OtherAccountsMark { .. }, Missing::Allow) => Ok(None),
            (Presence::Nothing | Presence::OtherAccountsMark { .. }, Missing::Deny) => {
                self.note(|| format!("no secret file ({path}), missing = deny; {decision}"));
                Ok(Some(Record::NoToken {
                    account: Some(account),
                    store: Some(store),
                }))
            }
        }
    }

    /// Under `store = "postgresql"`, the query an account's login makes
    /// first, made for a name that is no account too (its answer is not
    /// used): the round trips must not tell an invented name from a real
    /// one. The fleet's store, for the rest of the login.
    fn ask_for_nobody(&mut self) -> Result<Option<Box<dyn LoginStore>>, Refusal> {
        let Some(store) = store::for_nobody(&self.cfg, self.login.user, self.login.service) else {
            return Ok(None);
        };
        match store.presence() {
            Ok(_) => Ok(Some(store)),
            Err(err) => Err(self.unavailable(Reason::Store {
                location: store.location(),
                err,
            })),
        }
    }

    /// `missing` and `enforce_after` for the login `decision` is about:
    /// the matching rule's own keys win, then the module arguments
    /// (`nullok`), then the config's keys. A deadline counts while it is
    /// ahead (`now < enforce_after`: from that second on `missing`
    /// applies), and never under `missing = "allow"`, which lets a user
    /// without a token in anyway.
    fn rollout(&mut self, decision: &Decision) {
        let rule = decision
            .rule
            .and_then(|n| self.cfg.rules.get(n.wrapping_sub(1)))
            .map(|r| r.rollout)
            .unwrap_or_default();
        self.missing = rule.missing.unwrap_or(self.cfg.missing);
        let deadline = rule.enforce_after.or(self.cfg.enforce_after);
        self.deadline = deadline.filter(|&d| self.login.now < d && self.missing != Missing::Allow);
        let (missing, now) = (self.missing, self.login.now);
        self.note(|| {
            format!(
                "missing = {} ({}), enforce_after {}",
                missing.as_str(),
                if rule.missing.is_some() {
                    "the rule's"
                } else {
                    "the config's, or nullok"
                },
                match deadline {
                    Some(d) if now < d => format!("{} (ahead)", crate::date::format_unix(d)),
                    Some(d) => format!("{} (passed)", crate::date::format_unix(d)),
                    None => "not set".into(),
                }
            )
        });
    }

    /// The user's exemption when it holds now, honoured only within
    /// `max_exemption` of when it was granted and for the account of the
    /// uid it records. On the file stores it is read from root's
    /// `<state_dir>/exempt/` at the login's time; under postgresql the
    /// database gives the one that holds by its clock and its own
    /// `max_exemption` (`store`'s first query, which every login makes),
    /// and this host's `max_exemption` may only shorten it. Anything
    /// wrong with it is no exemption, and said so in the log; a database
    /// that does not answer refuses the login, as it would a moment later.
    fn exemption(
        &mut self,
        account: &Account,
        store: &dyn LoginStore,
    ) -> Result<Option<Exemption>, Refusal> {
        let (e, now) = if self.cfg.store == config::StoreKind::Postgresql {
            match store.exemption_now() {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(None),
                Err(err) => {
                    return Err(self.unavailable(Reason::Store {
                        location: store.location(),
                        err,
                    }))
                }
            }
        } else {
            match exempt::read(Path::new(&self.cfg.state_dir), &account.name) {
                Ok(Some(e)) => (e, self.login.now),
                Ok(None) => return Ok(None),
                Err(err) => {
                    self.warnings
                        .push(format!("{err}; no exemption, a code is asked"));
                    return Ok(None);
                }
            }
        };
        Ok(self.exemption_standing(e, account, now))
    }

    /// [`Exemption::standing_for`] at `now`, said in the log.
    fn exemption_standing(
        &mut self,
        e: Exemption,
        account: &Account,
        now: u64,
    ) -> Option<Exemption> {
        match e.standing_for(account.uid, now, self.cfg.max_exemption) {
            Standing::Holds => Some(e),
            Standing::OtherAccount { recorded } => {
                self.warnings.push(format!(
                    "{} was granted to uid {recorded}, not this account (uid {}): a deleted \
                     account's name given again? ignored, a code is asked \
                     (otp-enroll remove --orphans clears it)",
                    describe_exemption(&e),
                    account.uid
                ));
                None
            }
            Standing::NoUid => {
                self.warnings.push(format!(
                    "{} records no uid (not written by otp-enroll): ignored, a code is asked",
                    describe_exemption(&e)
                ));
                None
            }
            Standing::Ended => {
                let until = e.until;
                self.note(|| format!("exemption ended at {}", crate::date::format_unix(until)));
                None
            }
            Standing::TooLong { max } => {
                self.warnings.push(format!(
                    "{} is longer than max_exemption ({} s): ignored whole, a code is asked",
                    describe_exemption(&e),
                    max
                ));
                None
            }
            Standing::NotYetGranted => {
                self.warnings.push(format!(
                    "{} was granted after now ({}): ignored, a code is asked",
                    describe_exemption(&e),
                    crate::date::format_unix(now)
                ));
                None
            }
        }
    }

    /// An exemption in place of the code: let in where a first factor
    /// shows (as an enrollment at login would be saved), refused where
    /// nothing but this module would have asked anything.
    fn exempt(&mut self, exemption: Exemption, decision: Decision) -> Refusal {
        if !(self.cfg.forward_pass || self.cfg.split_pass) {
            let info = self.conv.ssh_auth_info();
            let authtok = self.conv.authtok().is_some();
            if let crate::enroll::FirstFactor::Unproven(why) =
                crate::enroll::first_factor(info.as_deref(), authtok)
            {
                self.conv.error(MSG_EXEMPT_NO_FIRST_FACTOR);
                return (
                    Outcome::AuthErr,
                    Reason::ExemptNoFirstFactor {
                        exemption,
                        why,
                        decision,
                    },
                );
            }
        }
        if !self.cfg.split_pass {
            self.conv.info(&exemption_message(exemption.until));
        }
        self.pass_through(Reason::Exempt {
            exemption,
            decision,
        })
    }

    /// `grace_period`: a reason to let the login in without a code, when
    /// one was accepted from this address recently enough.
    fn in_grace(
        &mut self,
        store: &dyn LoginStore,
        remote: &Remote,
        decision: &Decision,
    ) -> Option<Reason> {
        let period = self.cfg.grace_period;
        let from = grace::address(remote).filter(|_| period > 0)?;
        match store.grace(from, self.login.service, period) {
            Ok(Some(at)) => Some(Reason::Grace {
                from: from.to_string(),
                at,
                decision: *decision,
            }),
            Ok(None) => None,
            // The check that follows reports what is wrong with the store.
            Err(_) => None,
        }
    }

    /// What a store error means for the login: the log's reason, and for
    /// the user the short message that goes with it.
    fn store_refusal(&mut self, location: String, err: StoreError) -> Refusal {
        match err {
            StoreError::NotFound if self.missing != Missing::Allow => {
                (Outcome::AuthErr, Reason::NoSecretFile { path: location })
            }
            StoreError::NotFound => self.unavailable(Reason::Unreadable {
                path: location,
                err: FsError::NotFound,
            }),
            StoreError::Unreadable(err) => self.unavailable(Reason::Unreadable {
                path: location,
                err,
            }),
            StoreError::Malformed(err) => self.unavailable(Reason::Malformed {
                path: location,
                err,
            }),
            // Right or wrong, the answer is the same: a code that cannot
            // be marked used is not accepted, and a failure that cannot be
            // counted must not tell a guesser whether the code was right
            // (a full /home would otherwise be an oracle with no rate limit).
            StoreError::NotSaved { verdict, err } => {
                self.conv.error(MSG_NOT_SAVED);
                (
                    Outcome::AuthErr,
                    Reason::NotSaved {
                        verdict,
                        path: location,
                        err,
                    },
                )
            }
            StoreError::Unwritable {
                verdict: Some(verdict),
                err,
            } => {
                self.conv.error(MSG_NOT_SAVED);
                (
                    Outcome::AuthErr,
                    Reason::Unwritable {
                        verdict,
                        path: location,
                        err,
                    },
                )
            }
            err => self.unavailable(Reason::Store { location, err }),
        }
    }

    /// Success without a code. Under `forward_pass` and `split_pass` the
    /// password module still wants a password: ask for it plainly and pass
    /// it on.
    fn pass_through(&mut self, why: Reason) -> (Outcome, Reason) {
        if self.cfg.forward_pass || self.cfg.split_pass {
            match self.conv.prompt_hidden(config::PASSWORD_PROMPT) {
                Ok(pw) => {
                    if self.conv.set_authtok(&pw).is_err() {
                        return (Outcome::AuthInfoUnavail, Reason::SetAuthtok);
                    }
                }
                Err(e) => return conv_failure(e),
            }
        }
        if self.cfg.split_pass {
            (Outcome::Ignore, Reason::PasswordOnly(Box::new(why)))
        } else {
            (Outcome::Success, why)
        }
    }

    fn prompt_text(&self) -> &str {
        if self.cfg.forward_pass || self.cfg.split_pass {
            config::FORWARD_PASS_PROMPT
        } else {
            &self.cfg.prompt
        }
    }

    fn ask(&mut self) -> Result<String, Refusal> {
        let text = self.prompt_text().to_string();
        self.conv.prompt_hidden(&text).map_err(conv_failure)
    }

    fn first_code(&mut self) -> Result<Typed, Refusal> {
        if self.cfg.use_first_pass || self.cfg.try_first_pass {
            let tok = self.conv.authtok();
            match (tok, self.cfg.use_first_pass) {
                (Some(text), true) => {
                    return Ok(Typed {
                        text,
                        from: From::AuthTok,
                    })
                }
                (None, true) => return Err((Outcome::AuthErr, Reason::NoAuthtok)),
                // try_first_pass: only something shaped like a code is tried,
                // so a password left by an earlier module costs no failure.
                (Some(text), false) if normalize_code(&text).is_some() => {
                    return Ok(Typed {
                        text,
                        from: From::AuthTok,
                    })
                }
                _ => {}
            }
        }
        Ok(Typed {
            text: self.ask()?,
            from: From::Prompt,
        })
    }

    fn unavailable(&mut self, why: Reason) -> Refusal {
        self.conv.error(MSG_UNAVAILABLE);
        (Outcome::AuthInfoUnavail, why)
    }

    /// `split_pass`: ask once, hand the password on, keep the code. Nothing
    /// is checked or counted here, so a wrong password costs the user
    /// nothing: the stack stops at the password module.
    fn split_and_keep(&mut self, record: &Record<'_>) -> Result<(), Refusal> {
        let shape = self.shape_of(record)?;
        let typed = self.ask()?;
        let (password, code) = split_password_and_code(&shape.borrowed(), &typed);
        if self.conv.set_authtok(password).is_err() {
            return Err((Outcome::AuthInfoUnavail, Reason::SetAuthtok));
        }
        let kept = KeptCode {
            code: code.to_string(),
            user: self.login.user.to_string(),
            service: self.login.service.to_string(),
        };
        if self.conv.keep_code(kept).is_err() {
            return Err((Outcome::AuthInfoUnavail, Reason::KeepCode));
        }
        Ok(())
    }

    /// How to split "password + code" for this record.
    fn shape_of(&mut self, record: &Record<'_>) -> Result<store::Shape, Refusal> {
        match record {
            Record::Tokens(store) => store
                .shape()
                .map_err(|err| self.store_refusal(store.location(), err)),
            Record::NoToken { .. } | Record::Enroll { .. } => Ok(store::Shape {
                digits: Shape::NO_TOKEN.digits,
                scratch_codes: Vec::new(),
                temp_code: None,
            }),
        }
    }

    /// Under `forward_pass`, an answer to our own prompt is "password +
    /// code": hand the password on and return the code.
    fn code_of(&mut self, typed: &Typed, record: &Record<'_>) -> Result<String, Refusal> {
        if !(self.cfg.forward_pass && typed.from == From::Prompt) {
            return Ok(typed.text.clone());
        }
        let shape = self.shape_of(record)?;
        let (password, code) = split_password_and_code(&shape.borrowed(), &typed.text);
        if self.conv.set_authtok(password).is_err() {
            return Err((Outcome::AuthInfoUnavail, Reason::SetAuthtok));
        }
        Ok(code.to_string())
    }

    fn policy(&self) -> Policy {
        Policy {
            totp_skew: self.cfg.totp_skew,
            hotp_window: self.cfg.hotp_window,
            rate_limit: self.cfg.rate_limit,
        }
    }

    /// Verify in the store, which locks, checks and saves: a code counts
    /// only once saved.
    fn check(&mut self, record: &Record<'_>, typed: &Typed) -> Result<Verdict, Refusal> {
        let store = match record {
            Record::Tokens(store) => store.as_ref(),
            Record::NoToken { account, store } => {
                return self.check_no_token(*account, store.as_deref(), typed)
            }
            // Enrolled before any code is asked (run_for).
            Record::Enroll { .. } => return Ok(Verdict::Refused(verify::Refusal::Wrong)),
        };
        let code = self.code_of(typed, record)?;
        let period = self.cfg.grace_period;
        let grace = grace::address(&Remote::from_rhost(self.login.rhost))
            .filter(|_| period > 0)
            .map(|from| (from, period));
        let origin = Origin {
            service: self.login.service,
            rhost: self.login.rhost,
        };
        store
            .verify(&code, &self.policy(), grace, &origin)
            .map_err(|err| self.store_refusal(store.location(), err))
    }

    /// A user with no token: the same splitting, rate limit, lock and
    /// writes as for a wrong code of an enrolled user, and always "no".
    fn check_no_token(
        &mut self,
        account: Option<&Account>,
        store: Option<&dyn LoginStore>,
        typed: &Typed,
    ) -> Result<Verdict, Refusal> {
        let code = self.code_of(
            typed,
            &Record::NoToken {
                account,
                store: None,
            },
        )?;
        let policy = self.policy();
        // The fleet's: the database counts with its own limits.
        if let Some(store) = store {
            let origin = Origin {
                service: self.login.service,
                rhost: self.login.rhost,
            };
            match store.verify_no_token(&code, &policy, account.is_some(), &origin) {
                Ok(Some(verdict)) => return Ok(verdict),
                Ok(None) => {}
                Err(err) => return Err(self.store_refusal(store.location(), err)),
            }
        }
        let Some(account) = account else {
            let mut state = State::default();
            return Ok(verify::verify_no_token(
                &mut state,
                &code,
                &policy,
                self.login.now,
            ));
        };
        let tally = self.open_tally(account);
        let mut state = tally.as_ref().map(|t| t.state.clone()).unwrap_or_default();
        let verdict = verify::verify_no_token(&mut state, &code, &policy, self.login.now);
        if let Some(mut tally) = tally {
            if verdict.changes_state() {
                tally.state = state;
                if let Err(e) = tally.save() {
                    // The answer is "no" anyway; only the count is lost.
                    self.warnings.push(format!("{e}"));
                }
            }
        }
        Ok(verdict)
    }

    fn open_tally(&mut self, account: &Account) -> Option<Tally> {
        match unenrolled::open(
            Path::new(&self.cfg.state_dir),
            &account.name,
            account.uid,
            Owner::current(),
        ) {
            Ok(t) => {
                if let Some(recorded) = t.reset_from {
                    self.warnings.push(format!(
                        "the failure tally of {} was of uid {recorded}, not this account \
                         (uid {}): a deleted account's name given again? started afresh",
                        account.name, account.uid
                    ));
                }
                Some(t)
            }
            Err(e) => {
                // Still refused; but now the rate limit of an unenrolled
                // user shows, so the admin is told.
                self.warnings.push(format!(
                    "{e}; failures of users without a token are not counted"
                ));
                None
            }
        }
    }
}

fn conv_failure(e: ConvError) -> Refusal {
    match e {
        ConvError::Failed => (Outcome::ConvErr, Reason::Conversation(e)),
        ConvError::NoAnswer => (Outcome::AuthErr, Reason::Conversation(e)),
    }
}

/// Where the code of `typed` starts when it ends in `digits` digits, with
/// spaces or dashes allowed between them ("hunter2 123 456"): the byte
/// index of its first digit. `None` when `typed` does not end so.
fn code_start(typed: &str, digits: usize) -> Option<usize> {
    let mut seen = 0;
    for (i, c) in typed.char_indices().rev() {
        if c.is_ascii_digit() {
            seen += 1;
            if seen == digits {
                return Some(i);
            }
        } else if !(seen > 0 && (c == ' ' || c == '-')) {
            return None;
        }
    }
    None
}

/// `forward_pass` and `split_pass`: "password" + "code" typed in one go.
/// The code is the trailing `digits` digits (spaces and dashes inside it
/// allowed), or the trailing 8 when they are an unused emergency code or
/// the temporary code; the rest is the password.
pub fn split_password_and_code<'t>(shape: &Shape<'_>, typed: &'t str) -> (&'t str, &'t str) {
    let typed = typed.strip_suffix('\n').unwrap_or(typed);
    if let Some(at) = code_start(typed, otp::SCRATCH_DIGITS) {
        let tail = normalize_code(&typed[at..]).unwrap_or_default();
        let mut is_scratch = false;
        for c in shape.scratch_codes {
            is_scratch |= code_eq(c, &tail);
        }
        // The temporary code is split off as an emergency code is.
        is_scratch |= shape.temp_code.is_some_and(|t| t.matches(&tail));
        if is_scratch {
            return typed.split_at(at);
        }
    }
    match code_start(typed, usize::from(shape.digits)) {
        Some(at) => typed.split_at(at),
        // No code at the end: all of it is the password, and the code is
        // empty (a failure).
        None => (typed, ""),
    }
}

#[cfg(test)]
mod tests;
