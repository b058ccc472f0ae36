//! Enrollment inside the login (`missing = "enroll"`, or after an admin's
//! `otp-enroll reset`), and the commit of a token whose first factor shows
//! only once the whole stack has succeeded ([`commit_enrollment`]).

use std::fmt;

use super::{conv_failure, Conversation, Deferred, Flow, Login, Lookup, Outcome, Reason, Report};
use crate::account;
use crate::date;
use crate::enroll::{self, FirstFactor, Offer};
use crate::rules::Decision;
use crate::store::{self, LoginStore, StoreError};

pub const MSG_CANNOT_ENROLL: &str =
    "Two-factor login is not set up for this account, and it cannot be set up here; \
     contact your administrator.";
pub const MSG_WRONG_CONFIRMATION: &str =
    "That is not the code your app shows now; check that the phone's clock is right, and try again.";
pub const MSG_NOT_CONFIRMED: &str = "No code was confirmed, so nothing was set up.";
pub const MSG_ENROLL_NOT_SAVED: &str =
    "The new token could not be saved, so the login was refused; try again later or contact your administrator.";

/// What became of an enrollment at login, for the log.
#[derive(Debug)]
pub enum EnrollReason {
    /// `split_pass`: the password was handed on; the pam_otp line after
    /// the password module enrolls.
    AfterPassword {
        decision: Decision,
    },
    /// Not here: no first factor shows.
    Refused {
        why: &'static str,
        enrolling: Why,
        decision: Decision,
    },
    /// The key could not be made (no randomness).
    NoKey(std::io::Error),
    NotConfirmed {
        why: Why,
        decision: Decision,
    },
    Saved {
        location: String,
        how: String,
        why: Why,
        decision: Decision,
    },
    NotSaved {
        location: String,
        err: StoreError,
    },
    /// Before the deadline: the enrollment was offered and an empty answer
    /// skipped it; let in.
    Skipped {
        deadline: u64,
        decision: Decision,
    },
    /// Before the deadline, where the stack cannot enroll (no first
    /// factor shows): let in and told the date, nothing offered.
    Told {
        deadline: u64,
        why_not: &'static str,
        decision: Decision,
    },
    /// Confirmed by a name that is no account: nothing to save, nothing
    /// kept (answered as an account's confirmed enrollment).
    NoAccount {
        decision: Decision,
    },
    /// Confirmed; saved by `pam_sm_setcred` once the stack has succeeded.
    Deferred {
        why: Why,
        decision: Decision,
    },
    /// `pam_sm_setcred` saved (or could not save) a deferred token.
    Committed {
        location: String,
    },
    NotCommitted {
        location: String,
        err: StoreError,
    },
    /// `pam_setcred` runs under another `PAM_SERVICE` than the
    /// authentication that made the token: nothing is saved.
    ServiceChanged {
        made: String,
        now: String,
    },
}

/// Why a login enrolls (or offers to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// No token, and `missing = "enroll"` (the config's or the rule's).
    Missing,
    /// An administrator's `otp-enroll reset` or `require`: whatever
    /// `missing` and `enforce_after` say.
    Pending,
    /// No token, and the login is before `enforce_after` (Unix seconds):
    /// offered, and an empty answer skips it.
    BeforeDeadline(u64),
}

impl Why {
    fn optional(self) -> Option<u64> {
        match self {
            Why::BeforeDeadline(d) => Some(d),
            Why::Missing | Why::Pending => None,
        }
    }
}

fn why_enrolled(why: Why) -> String {
    match why {
        Why::Pending => "enrollment pending (otp-enroll reset or require)".into(),
        Why::Missing => "no token, missing = enroll".into(),
        Why::BeforeDeadline(d) => format!(
            "no token, before enforce_after {}: enrollment offered, optional",
            date::format_unix(d)
        ),
    }
}

/// What a user without a token is told before the deadline.
pub fn deadline_message(deadline: u64) -> String {
    format!(
        "Two-factor login is not set up for this account yet; it is required from {} on: \
         run otp-enroll, or set it up here when offered.",
        date::format_unix(deadline)
    )
}

/// The confirmation prompt of an enrollment that may be skipped.
pub const OPTIONAL_CONFIRM_PROMPT: &str =
    "Enter the code your app shows now (or just Enter to skip for now): ";
pub const MSG_SKIPPED: &str =
    "Skipped: nothing was set up. You will be asked again at your next login.";
pub const MSG_NOT_CONFIRMED_OPTIONAL: &str =
    "No code was confirmed, so nothing was set up; you will be asked again at your next login.";

impl fmt::Display for EnrollReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnrollReason::AfterPassword { decision } => write!(
                f,
                "no token yet: password handed on, the pam_otp line after the password module \
                 enrolls; {decision}"
            ),
            EnrollReason::Refused {
                why,
                enrolling,
                decision,
            } => write!(
                f,
                "{}: enrollment at login refused: {why}; {decision}",
                why_enrolled(*enrolling)
            ),
            EnrollReason::NoKey(err) => write!(f, "enrollment at login: cannot make a key: {err}"),
            EnrollReason::NotConfirmed { why, decision } => write!(
                f,
                "{}: enrollment at login not confirmed ({} wrong codes), nothing saved{}; {decision}",
                why_enrolled(*why),
                enroll::TRIES,
                if why.optional().is_some() {
                    ", let in all the same (before the deadline a wrong code refuses nothing \
                     that an empty answer would not)"
                } else {
                    ""
                }
            ),
            EnrollReason::Skipped { deadline, decision } => write!(
                f,
                "no token, before enforce_after {}: enrollment offered and skipped (an empty \
                 answer), let in; {decision}",
                date::format_unix(*deadline)
            ),
            EnrollReason::Told {
                deadline,
                why_not,
                decision,
            } => write!(
                f,
                "no token, before enforce_after {}: let in and told the date; no enrollment \
                 offered here: {why_not}; {decision}",
                date::format_unix(*deadline)
            ),
            EnrollReason::Saved {
                location,
                how,
                why,
                decision,
            } => write!(
                f,
                "{}: enrolled at login, token app saved in {location} ({how}); {decision}",
                why_enrolled(*why)
            ),
            EnrollReason::NotSaved { location, err } => {
                write!(
                    f,
                    "enrollment at login confirmed, but saving {location} failed: {err}"
                )
            }
            EnrollReason::NoAccount { decision } => write!(
                f,
                "enrollment at login confirmed, nothing saved or kept: no account; {decision}"
            ),
            EnrollReason::Deferred { why, decision } => write!(
                f,
                "{}: enrollment at login confirmed; the token is saved only once the whole stack \
                 has succeeded (pam_setcred), as the password module's answer shows only then; \
                 {decision}",
                why_enrolled(*why)
            ),
            EnrollReason::Committed { location } => write!(
                f,
                "enrolled at login: the stack succeeded, token app saved in {location}"
            ),
            EnrollReason::ServiceChanged { made, now } => write!(
                f,
                "enrolled at login under service \"{made}\", but pam_setcred runs under service \
                 \"{now}\": the new token is not saved; the user enrolls again at the next login"
            ),
            EnrollReason::NotCommitted { location, err } => write!(
                f,
                "enrolled at login, but saving {location} failed: {err}; the user enrolls again \
                 at the next login"
            ),
        }
    }
}

impl Flow<'_, '_> {
    /// Shows a new token, asks for a code of it up to three times, and
    /// saves it (or keeps it for `pam_sm_setcred`) only when the login has
    /// proven a first factor.
    /// `store` is `None` for a name that is not an account: it goes
    /// through the same steps; nothing is saved or kept, and the caller
    /// answers it `PAM_USER_UNKNOWN` at the end.
    pub(super) fn enroll(
        &mut self,
        store: Option<&dyn LoginStore>,
        why: Why,
        decision: Decision,
    ) -> (Outcome, Reason) {
        let info = self.conv.ssh_auth_info();
        let authtok = self.conv.authtok().is_some();
        let optional = why.optional();
        if let Some(deadline) = optional {
            self.conv.info(&deadline_message(deadline));
        }
        // Decided before anything is shown: a secret shown here must be
        // one that a right code can save.
        let first = enroll::first_factor(info.as_deref(), authtok);
        if let FirstFactor::Unproven(why_not) = first {
            if let Some(deadline) = optional {
                // Before the deadline: let in, told the date, nothing
                // offered where nothing shows who is logging in.
                return (
                    Outcome::Success,
                    Reason::Enroll(EnrollReason::Told {
                        deadline,
                        why_not,
                        decision,
                    }),
                );
            }
            self.conv.error(MSG_CANNOT_ENROLL);
            return (
                Outcome::AuthErr,
                Reason::Enroll(EnrollReason::Refused {
                    why: why_not,
                    enrolling: why,
                    decision,
                }),
            );
        }
        let mut offer = match enroll::offer(self.login.user, &enroll::host_name(), self.login.now) {
            Ok(o) => o,
            Err(err) => return self.unavailable(Reason::Enroll(EnrollReason::NoKey(err))),
        };
        for message in offer.messages(optional.is_some()) {
            self.conv.info(&message);
        }
        match self.confirm(&mut offer, optional.is_some()) {
            Ok(Confirmed::Yes) => {}
            Ok(Confirmed::Skipped) => {
                self.conv.info(MSG_SKIPPED);
                let deadline = optional.unwrap_or_default();
                return (
                    Outcome::Success,
                    Reason::Enroll(EnrollReason::Skipped { deadline, decision }),
                );
            }
            Ok(Confirmed::No) if optional.is_some() => {
                // Decided (SECURITY.md, "A rollout with a deadline"): before
                // the deadline a wrong code refuses nothing that an empty
                // answer would not; the log says so.
                self.conv.error(MSG_NOT_CONFIRMED_OPTIONAL);
                return (
                    Outcome::Success,
                    Reason::Enroll(EnrollReason::NotConfirmed { why, decision }),
                );
            }
            Ok(Confirmed::No) => {
                self.conv.error(MSG_NOT_CONFIRMED);
                return (
                    Outcome::AuthErr,
                    Reason::Enroll(EnrollReason::NotConfirmed { why, decision }),
                );
            }
            Err(refusal) => return refusal,
        }
        let Some(store) = store else {
            // Not an account: what an account's user would see next.
            if matches!(first, FirstFactor::Proven(_)) {
                show_codes(self.conv, &offer, true);
            }
            return (
                Outcome::Success,
                Reason::Enroll(EnrollReason::NoAccount { decision }),
            );
        };
        match first {
            FirstFactor::Proven(how) => match store.create(&offer.file) {
                Ok(()) => {
                    show_codes(self.conv, &offer, true);
                    (
                        Outcome::Success,
                        Reason::Enroll(EnrollReason::Saved {
                            location: store.location(),
                            how,
                            why,
                            decision,
                        }),
                    )
                }
                Err(err) => {
                    self.conv.error(MSG_ENROLL_NOT_SAVED);
                    (
                        Outcome::AuthErr,
                        Reason::Enroll(EnrollReason::NotSaved {
                            location: store.location(),
                            err,
                        }),
                    )
                }
            },
            FirstFactor::AfterTheStack => match self.conv.defer_enrollment(Some(Deferred {
                file: offer.file,
                user: self.login.user.to_string(),
                service: self.login.service.to_string(),
            })) {
                Ok(()) => (
                    Outcome::Success,
                    Reason::Enroll(EnrollReason::Deferred { why, decision }),
                ),
                Err(_) => self.unavailable(Reason::KeepCode),
            },
            FirstFactor::Unproven(_) => (Outcome::AuthErr, Reason::KeepCode),
        }
    }

    /// Asks for a code of the new token up to [`enroll::TRIES`] times;
    /// whether one was right. `optional`: before the deadline, an empty
    /// answer skips.
    fn confirm(
        &mut self,
        offer: &mut Offer,
        optional: bool,
    ) -> Result<Confirmed, (Outcome, Reason)> {
        let prompt = if optional {
            OPTIONAL_CONFIRM_PROMPT
        } else {
            enroll::CONFIRM_PROMPT
        };
        for attempt in 1..=enroll::TRIES {
            let typed = self.conv.prompt_hidden(prompt).map_err(conv_failure)?;
            if optional && typed.trim().is_empty() {
                return Ok(Confirmed::Skipped);
            }
            if offer.confirms(&typed, self.cfg.totp_skew, self.login.now) {
                return Ok(Confirmed::Yes);
            }
            if attempt < enroll::TRIES {
                self.conv.error(MSG_WRONG_CONFIRMATION);
            }
        }
        Ok(Confirmed::No)
    }
}

/// What came of the confirmation prompt.
enum Confirmed {
    Yes,
    No,
    /// An empty answer to an optional enrollment.
    Skipped,
}

/// The emergency codes, once the token is saved. `ask`: end with a
/// prompt, so that sshd shows them before the session (text after the
/// last prompt reaches only an interactive session's login messages).
fn show_codes(conv: &mut dyn Conversation, offer: &Offer, ask: bool) {
    conv.info(&offer.codes_message());
    if ask {
        let _ = conv.prompt_hidden(enroll::CODES_SEEN_PROMPT);
    }
}

/// `pam_sm_setcred` after an authentication that kept a confirmed new
/// token ([`FirstFactor::AfterTheStack`]): the application calls it only
/// once the whole stack has succeeded, so the password module before
/// pam_otp accepted the password, and the token is saved now.
///
/// `login` holds the items as they are at `pam_setcred`; the token is
/// saved for `token.user`, the user whose authentication made it, never
/// for `login.user` when that differs (sudo: the run-as user), which is
/// logged (a warning of the report). Under another service than the one
/// that made it, nothing is saved. The caller logs the report under
/// `token.user`.
pub fn commit_enrollment(
    login: &Login<'_>,
    args: &[&str],
    conv: &mut dyn Conversation,
    token: Deferred,
    lookup: Lookup<'_>,
) -> Report {
    let mut warnings = Vec::new();
    if login.user != token.user {
        warnings.push(format!(
            "PAM_USER is \"{}\" at pam_setcred, but the new token was made by the \
             authentication of \"{}\" (the program changed PAM_USER after it, as sudo does \
             for the run-as user): it is saved for \"{}\" only",
            login.user, token.user, token.user
        ));
    }
    let report = |outcome, reason, warnings| Report {
        outcome,
        reason,
        warnings,
        debug: Vec::new(),
    };
    if login.service != token.service {
        conv.error(MSG_ENROLL_NOT_SAVED_LATE);
        return report(
            Outcome::AuthErr,
            Reason::Enroll(EnrollReason::ServiceChanged {
                made: token.service.clone(),
                now: login.service.to_string(),
            }),
            warnings,
        );
    }
    let report = |outcome, reason| report(outcome, reason, warnings);
    let user = token.user.as_str();
    let cfg = match super::load_config(args) {
        Ok(c) => c,
        Err(why) => return report(Outcome::AuthInfoUnavail, Reason::Config(why)),
    };
    if !account::plausible_user_name(user) {
        return report(
            Outcome::AuthErr,
            Reason::Nobody {
                what: "implausible user name",
                then: Box::new(Reason::KeepCode),
            },
        );
    }
    let account = match lookup(user) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return report(
                Outcome::UserUnknown,
                Reason::Nobody {
                    what: "no such user",
                    then: Box::new(Reason::KeepCode),
                },
            )
        }
        Err(why) => return report(Outcome::AuthInfoUnavail, Reason::Lookup(why)),
    };
    let store = store::for_user(&cfg, &account, login.now);
    let location = store.location();
    let offer = Offer {
        file: token.file,
        uri: String::new(),
    };
    match store.create(&offer.file) {
        Ok(()) => {
            show_codes(conv, &offer, false);
            report(
                Outcome::Success,
                Reason::Enroll(EnrollReason::Committed { location }),
            )
        }
        Err(err) => {
            conv.error(MSG_ENROLL_NOT_SAVED_LATE);
            report(
                Outcome::AuthErr,
                Reason::Enroll(EnrollReason::NotCommitted { location, err }),
            )
        }
    }
}

pub const MSG_ENROLL_NOT_SAVED_LATE: &str =
    "The new token could not be saved; you will be asked to set one up again at your next login.";
