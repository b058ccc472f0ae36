//! The PAM module (`libpam_otp.so`, installed as `pam_otp.so`): the
//! entry points, thin glue between libpam and [`otp_core::auth`].
//!
//! Read the items and arguments, read the clock, converse, call the core,
//! map its outcome to a PAM code, log one line. Every entry point catches
//! panics and answers `PAM_SYSTEM_ERR` (pam-bindings' own guard, which
//! answers `PAM_ABORT`, stays as the backstop).
//!
//! Why a crate of its own: it is only a `cdylib`, so cargo applies the
//! release profile's LTO to it (not to a crate that is also an `rlib`),
//! and std, toml and serde are linked into it rather than called through
//! the GOT.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// The module's own unsafe code is in ffi.rs and module_data.rs only.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod ffi;
#[allow(unsafe_code)]
mod module_data;

use std::cell::Cell;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use pam::constants::{PamFlag, PamResultCode, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};
use pam::pam_hooks;

use otp_core::account;
use otp_core::auth::{self, ConvError, Conversation, Deferred, KeptCode, Login, Outcome, Report};
use otp_core::log::{clean, clean_reason, Level, Logger};

struct PamOtp;
pam_hooks!(PamOtp);

impl PamHooks for PamOtp {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        guard(|| {
            quiet_panics();
            authenticate(pamh, &args, flags)
        })
    }

    /// Credentials are none of our business, but the application calls
    /// this only after the whole authentication succeeded, so it is where
    /// a token confirmed during the login is saved when its first factor
    /// (a password module earlier in the stack) showed only then; and
    /// where a stack that checks no code can be told: a code still kept
    /// by a `split_pass` line was never checked (no pam_otp line after the
    /// password module). Programs that never call this (rlm_pam, OpenVPN)
    /// are told at `pam_end` instead (module_data::end_kept). This
    /// line's arguments are not used: a deferred token is saved with the
    /// arguments of the line that made it.
    fn sm_setcred(pamh: &mut PamHandle, _args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        guard(|| {
            quiet_panics();
            if let Some(kept) = module_data::take_enrollment(pamh) {
                // PAM_DELETE_CRED ends credentials; it proves nothing.
                if flags & PAM_DELETE_CRED == 0 {
                    commit_enrollment(pamh, kept);
                }
            }
            if let Some(kept) = module_data::take_code(pamh) {
                log_never_checked(&kept.service, &kept.user, "pam_setcred");
            }
            PamResultCode::PAM_SUCCESS
        })
    }
}

/// The error for a `split_pass` code that no line checked, seen at `when`
/// (`pam_setcred`, or `pam_end` for programs that never call it).
fn log_never_checked(service: &str, user: &str, when: &str) {
    Logger::new(service).log(
        Level::Err,
        &format!(
            "user=\"{}\" split_pass: the code kept for this login was never checked \
             (seen at {when}): the stack has no pam_otp line after the password module, \
             so no code was required",
            clean(user)
        ),
    );
}

/// Where a panic happened, "file:line", kept in place (at most
/// [`PanicAt::CAP`] bytes, cut at a character boundary).
///
/// Plain bytes, not a `String`, so that [`PANIC_AT`] has no destructor: a
/// thread-local that needs one makes std register it with glibc
/// (`__cxa_thread_atexit_impl`) on first use, and glibc then never
/// unloads the module while that thread lives. In a server that runs
/// logins on a pool of threads (FreeRADIUS, OpenVPN), one caught panic
/// would keep that load of the module, its statics and its code, mapped
/// for the life of the process: `pam_end` could no longer unload it, and
/// the next `pam_start` would not load the module on disk again (after an
/// upgrade, say) but reuse the pinned one.
#[derive(Clone, Copy)]
struct PanicAt {
    text: [u8; PanicAt::CAP],
    len: usize,
}

impl PanicAt {
    const CAP: usize = 160;

    fn new(file: &str, line: u32) -> PanicAt {
        let mut at = PanicAt {
            text: [0; PanicAt::CAP],
            len: 0,
        };
        let line = format!(":{line}");
        let room = PanicAt::CAP - line.len().min(PanicAt::CAP);
        // The end of a long path says more than its start.
        let mut start = file.len().saturating_sub(room);
        while !file.is_char_boundary(start) {
            start += 1;
        }
        for part in [file.get(start..).unwrap_or(""), line.as_str()] {
            for &b in part.as_bytes() {
                if let Some(slot) = at.text.get_mut(at.len) {
                    *slot = b;
                    at.len += 1;
                }
            }
        }
        at
    }

    fn as_str(&self) -> &str {
        self.text
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("?")
    }
}

thread_local! {
    /// Where this thread's last panic happened, for the log. No destructor
    /// (see [`PanicAt`]): a const initialiser and a `Copy` value.
    static PANIC_AT: Cell<Option<PanicAt>> = const { Cell::new(None) };
}

/// Replaces std's default panic hook, which would print the message and a
/// backtrace on the calling program's stderr (for `su` and `login`, the
/// user's terminal), with one that only notes the location for the log.
/// The std linked into this module is the module's own, so the hook covers
/// only panics in this module's code, never the host's. Installed once per
/// load of the module (its statics, the `Once` and std's hook, are those
/// of this load); `set_hook` and the `Once` are safe with several threads
/// authenticating at once, and the hook touches only the panicking
/// thread's [`PANIC_AT`].
fn quiet_panics() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| PanicAt::new(l.file(), l.line()));
            let _ = PANIC_AT.try_with(|p| p.set(at));
        }));
    });
}

/// Runs `f`, turning a panic into `PAM_SYSTEM_ERR`. The panic payload is
/// dropped inside a second guard: dropping it may itself panic.
fn guard(f: impl FnOnce() -> PamResultCode) -> PamResultCode {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(payload) => {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(payload)));
            let at = PANIC_AT
                .try_with(Cell::take)
                .ok()
                .flatten()
                .map_or_else(|| "unknown place".into(), |at| at.as_str().to_owned());
            Logger::new("?").log(
                Level::Err,
                &format!(
                    "internal error (panic at {}) caught; refusing the login",
                    clean(&at)
                ),
            );
            PamResultCode::PAM_SYSTEM_ERR
        }
    }
}

fn item_string(bytes: Option<&CStr>) -> Option<String> {
    bytes.map(|c| String::from_utf8_lossy(c.to_bytes()).into_owned())
}

/// `PAM_SERVICE`, "?" when unset (for the log).
fn service_item(pamh: &PamHandle) -> String {
    item_string(pamh.get_item::<Service>().ok().flatten().map(|s| s.0))
        .unwrap_or_else(|| "?".into())
}

fn rhost_item(pamh: &PamHandle) -> Option<String> {
    item_string(pamh.get_item::<RHost>().ok().flatten().map(|s| s.0))
}

/// `PAM_TTY`, `None` when unset (rules' `ttys` match no pattern then).
fn tty_item(pamh: &PamHandle) -> Option<String> {
    item_string(pamh.get_item::<Tty>().ok().flatten().map(|s| s.0))
}

/// `PAM_USER` as already set (no prompt), "" when unset.
fn user_item(pamh: &PamHandle) -> String {
    item_string(pamh.get_item::<User>().ok().flatten().map(|s| s.0)).unwrap_or_default()
}

/// `PAM_DELETE_CRED` (Linux-PAM's `_pam_types.h`).
const PAM_DELETE_CRED: PamFlag = 0x0004;

/// The clock, read here (the core takes `now`); `None` before 1970.
fn now() -> Option<u64> {
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (now != 0).then_some(now)
}

fn lossy_args(args: &[&CStr]) -> Vec<String> {
    // Arguments that are not UTF-8 are passed on lossily and then fail to
    // match anything, so they are logged as unknown.
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Saves a token that `pam_sm_authenticate` confirmed and deferred: for
/// the user whose authentication made it (not whoever `PAM_USER` names
/// now: sudo has set it to the run-as user), with the arguments of the line
/// that made it. Logged under that user.
fn commit_enrollment(pamh: &mut PamHandle, kept: module_data::DeferredToken) {
    let service = service_item(pamh);
    let rhost = rhost_item(pamh);
    let user = user_item(pamh);
    let made_for = kept.token.user.clone();
    let logger = Logger::new(&service);
    let Some(now) = now() else {
        logger.log(
            Level::Err,
            "system clock is before 1970; new token not saved",
        );
        return;
    };
    let tty = tty_item(pamh);
    let arg_refs: Vec<&str> = kept.args.iter().map(String::as_str).collect();
    let login = Login {
        user: &user,
        rhost: rhost.as_deref(),
        service: &service,
        tty: tty.as_deref(),
        now,
    };
    let mut conv = PamConversation { pamh, args: &[] };
    let report = auth::commit_enrollment(
        &login,
        &arg_refs,
        &mut conv,
        kept.token.clone(),
        &account::lookup,
    );
    let logged = Login {
        user: &made_for,
        ..login
    };
    log_report(&logger, &logged, &report, arg_refs.contains(&"debug"));
}

fn authenticate(pamh: &mut PamHandle, args: &[&CStr], _flags: PamFlag) -> PamResultCode {
    let service = service_item(pamh);
    let rhost = rhost_item(pamh);
    let logger = Logger::new(&service);
    let user = match pamh.get_user(None) {
        Ok(u) => u,
        Err(code) => {
            logger.log(Level::Err, &format!("cannot get the user name: {code:?}"));
            return PamResultCode::PAM_USER_UNKNOWN;
        }
    };
    let args = lossy_args(args);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // Debug builds only (what the integration tests load): proves through
    // the real libpam that a panic unwinds to `guard` with the module's own
    // static unwinder (build.rs) and becomes PAM_SYSTEM_ERR.
    #[cfg(debug_assertions)]
    #[allow(clippy::panic)] // the whole point of this test hook
    if arg_refs.contains(&"test_panic") {
        panic!("test_panic argument (debug build)");
    }

    // The glue is where the clock is read; the core takes `now`.
    let Some(now) = now() else {
        logger.log(Level::Err, "system clock is before 1970; refusing");
        return PamResultCode::PAM_AUTHINFO_UNAVAIL;
    };

    let tty = tty_item(pamh);
    let login = Login {
        user: &user,
        rhost: rhost.as_deref(),
        service: &service,
        tty: tty.as_deref(),
        now,
    };
    let mut conv = PamConversation { pamh, args: &args };
    // auth::Lookup still takes the reason as text.
    let report = auth::authenticate(&login, &arg_refs, &mut conv, &account::lookup);
    log_report(&logger, &login, &report, arg_refs.contains(&"debug"));
    match report.outcome {
        Outcome::Success => PamResultCode::PAM_SUCCESS,
        Outcome::AuthErr => PamResultCode::PAM_AUTH_ERR,
        Outcome::UserUnknown => PamResultCode::PAM_USER_UNKNOWN,
        Outcome::AuthInfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Outcome::ConvErr => PamResultCode::PAM_CONV_ERR,
        Outcome::Ignore => PamResultCode::PAM_IGNORE,
    }
}

fn log_report(logger: &Logger, login: &Login<'_>, report: &Report, debug: bool) {
    let line = format!(
        "user=\"{}\" rhost=\"{}\" service=\"{}\" result={} reason=\"{}\"",
        clean(login.user),
        clean(login.rhost.unwrap_or("")),
        clean(login.service),
        report.outcome.as_str(),
        clean_reason(&report.reason.to_string()),
    );
    logger.log(report.level(), &line);
    for w in &report.warnings {
        logger.log(
            Level::Warning,
            &format!("user=\"{}\" {}", clean(login.user), clean_reason(w)),
        );
    }
    if debug {
        for d in &report.debug {
            logger.log(
                Level::Debug,
                &format!("user=\"{}\" {}", clean(login.user), clean_reason(d)),
            );
        }
    }
}

struct PamConversation<'a> {
    pamh: &'a mut PamHandle,
    /// The line's arguments, kept with a deferred token.
    args: &'a [String],
}

impl PamConversation<'_> {
    fn send(
        &mut self,
        style: pam::constants::PamMessageStyle,
        text: &str,
    ) -> Result<Option<String>, ConvError> {
        let conv = match self.pamh.get_item::<Conv>() {
            Ok(Some(c)) => c,
            _ => return Err(ConvError::Failed),
        };
        match conv.send(style, text) {
            Ok(Some(reply)) => Ok(Some(String::from_utf8_lossy(reply.as_bytes()).into_owned())),
            Ok(None) => Ok(None),
            Err(_) => Err(ConvError::Failed),
        }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt_hidden(&mut self, text: &str) -> Result<String, ConvError> {
        self.send(PAM_PROMPT_ECHO_OFF, text)?
            .ok_or(ConvError::NoAnswer)
    }

    fn info(&mut self, text: &str) {
        let _ = self.send(PAM_TEXT_INFO, text);
    }

    fn error(&mut self, text: &str) {
        let _ = self.send(PAM_ERROR_MSG, text);
    }

    fn authtok(&mut self) -> Option<String> {
        let tok = self.pamh.get_item::<AuthTok>().ok().flatten()?;
        String::from_utf8(tok.as_bytes().to_vec()).ok()
    }

    fn set_authtok(&mut self, value: &str) -> Result<(), ConvError> {
        ffi::set_authtok(self.pamh, value).map_err(|()| ConvError::Failed)
    }

    fn keep_code(&mut self, kept: KeptCode) -> Result<(), ConvError> {
        module_data::keep_code(self.pamh, kept).map_err(|_| ConvError::Failed)
    }

    fn take_kept_code(&mut self) -> Option<KeptCode> {
        module_data::take_code(self.pamh)
    }

    fn ssh_auth_info(&mut self) -> Option<String> {
        ffi::getenv(self.pamh, c"SSH_AUTH_INFO_0")
    }

    fn defer_enrollment(&mut self, token: Option<Deferred>) -> Result<(), ConvError> {
        module_data::defer_enrollment(self.pamh, token, self.args).map_err(|_| ConvError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_system_err() {
        let code = guard(|| panic!("forced panic inside the core"));
        assert_eq!(code, PamResultCode::PAM_SYSTEM_ERR);
        assert_eq!(
            guard(|| PamResultCode::PAM_SUCCESS),
            PamResultCode::PAM_SUCCESS
        );
    }

    #[test]
    fn the_panic_location_is_kept_without_a_destructor() {
        assert!(!std::mem::needs_drop::<Cell<Option<PanicAt>>>());
        assert_eq!(PanicAt::new("src/lib.rs", 42).as_str(), "src/lib.rs:42");
        // A long path keeps its end, cut at a character boundary.
        let long = format!("/{}/é/core.rs", "ü".repeat(200));
        let at = PanicAt::new(&long, 7);
        assert!(at.as_str().ends_with("/é/core.rs:7"), "{}", at.as_str());
        assert!(at.as_str().len() <= PanicAt::CAP);
        let code = guard(|| panic!("located"));
        assert_eq!(code, PamResultCode::PAM_SYSTEM_ERR);
    }

    #[test]
    fn a_panic_whose_payload_panics_on_drop_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        let code = guard(|| std::panic::panic_any(Bomb));
        assert_eq!(code, PamResultCode::PAM_SYSTEM_ERR);
    }
}
