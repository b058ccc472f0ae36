//! What one pam_otp line leaves on the PAM handle for a later call, as PAM
//! module data:
//!
//! - the code a `split_pass` line keeps for the pam_otp line after the
//!   password module ([`keep_code`], [`take_code`]); if no line took it by
//!   the time a successful login ends, its cleanup says so ([`end_kept`]);
//! - a new token confirmed during `pam_sm_authenticate`, saved by
//!   `pam_sm_setcred` once the whole stack has succeeded
//!   ([`defer_enrollment`], [`take_enrollment`]).
//!
//! Both lines of a `split_pass` stack run inside one `pam_authenticate`
//! call, in one process: in sshd too, whose keyboard-interactive
//! authentication runs the whole `pam_authenticate` in one child
//! (auth-pam.c, `sshpam_thread`), and whose password authentication runs it
//! in the monitor. So data set by the first line is there for the second.
//! It is taken (read and cleared) by every pam_otp line that runs, so a
//! code is checked at most once and never outlives the authentication it
//! was typed for: a later `pam_authenticate` on the same handle (`login`
//! asks again after a failure) starts with none.
//!
//! A deferred token does not survive sshd's child either: sshd calls
//! `pam_setcred` in the monitor, where the child's data is gone. That is
//! why in sshd the first factor is read from `SSH_AUTH_INFO_0` instead
//! (otp_core::enroll::first_factor), and nothing is deferred.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use otp_core::auth::{Deferred, KeptCode};
use pam::constants::PamResultCode;
use pam::module::PamHandle;

/// The module data's names; nothing else uses them.
const CODE: &str = "pam_otp/split_pass/code";
const CODE_C: &CStr = c"pam_otp/split_pass/code";
const ENROLLMENT: &str = "pam_otp/enroll/deferred";

/// What the data holds. One type for every value stored under [`CODE`],
/// so reading it back as this type is always right. The user and service
/// are what the later line checks the code for, and what the log line at
/// `pam_end` names (see [`end_kept`]). The code is a secret of sorts
/// until used: `KeptCode`'s `Drop` overwrites it.
enum Kept {
    Code(KeptCode),
    Taken,
}

/// Bits libpam adds to the status it hands a data cleanup (Linux-PAM's
/// `_pam_types.h`): the data is being replaced by `pam_set_data`, and the
/// application asked for silence (`pam_end(pamh, status | PAM_DATA_SILENT)`).
const PAM_DATA_REPLACE: c_int = 0x2000_0000;
const PAM_DATA_SILENT: c_int = 0x4000_0000;
const PAM_SUCCESS: c_int = 0;

#[link(name = "pam")]
extern "C" {
    fn pam_set_data(
        pamh: *mut PamHandle,
        name: *const c_char,
        data: *mut c_void,
        cleanup: extern "C" fn(*mut PamHandle, *mut c_void, c_int),
    ) -> c_int;
}

/// Stores `kept` under [`CODE`] with [`end_kept`] as its cleanup.
/// pam-bindings' `set_data` would do, but its cleanup ignores the status
/// libpam passes, which is what tells a login that ended well.
/// An error is libpam's return code.
fn set_kept(pamh: &mut PamHandle, kept: Kept) -> Result<(), c_int> {
    let data = Box::into_raw(Box::new(kept));
    // SAFETY: `pamh` is the live handle PAM passed to this call, CODE_C a
    // NUL-terminated name libpam copies, `data` a pointer from
    // Box::into_raw that libpam owns from here on and hands back once, to
    // `end_kept` (when replaced, or at pam_end).
    let rc = unsafe { pam_set_data(pamh, CODE_C.as_ptr(), data.cast(), end_kept) };
    if rc == PAM_SUCCESS {
        return Ok(());
    }
    // SAFETY: pam_set_data failed, so libpam kept no pointer to `data`:
    // the box is ours again, and dropped here once.
    drop(unsafe { Box::from_raw(data) });
    Err(rc)
}

/// libpam's cleanup for the kept code: frees it (its `Drop` zeroes it),
/// and if the code is still there when the application ends a login that
/// succeeded, logs that no line checked it.
///
/// This is what catches a `split_pass` stack with no pam_otp line after
/// the password module in servers that never call `pam_setcred`
/// (FreeRADIUS's rlm_pam, OpenVPN's auth-pam): both pass the result of
/// `pam_authenticate` / `pam_acct_mgmt` to `pam_end`. A replaced code
/// (`PAM_DATA_REPLACE`: a pam_otp line or `pam_sm_setcred` took it) and a
/// login that failed (the password module stopped the stack, so no code
/// was needed) log nothing, as far as the status tells: a program that
/// passes PAM_SUCCESS after a refused attempt (pamtester always does)
/// gets a false alarm, the price of telling the servers that need it.
/// Linux-PAM runs data cleanups before it unloads the modules, so this
/// function is still mapped.
extern "C" fn end_kept(_pamh: *mut PamHandle, data: *mut c_void, status: c_int) {
    if data.is_null() {
        return;
    }
    // Runs outside any entry point's guard: a panic must stop here.
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `data` is the pointer `set_kept` stored, from
        // Box::into_raw of a `Kept`; libpam calls this once per stored
        // value, so it is turned back into its box exactly once.
        let kept = unsafe { Box::from_raw(data.cast::<Kept>()) };
        let replaced = status & PAM_DATA_REPLACE != 0;
        let succeeded = status & !(PAM_DATA_REPLACE | PAM_DATA_SILENT) == PAM_SUCCESS;
        if let Kept::Code(kept) = &*kept {
            if succeeded && !replaced {
                crate::log_never_checked(&kept.service, &kept.user, "pam_end");
            }
        }
    }));
    if let Err(payload) = result {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(payload))).map_err(std::mem::forget);
    }
}

pub fn keep_code(pamh: &mut PamHandle, kept: KeptCode) -> Result<(), c_int> {
    set_kept(pamh, Kept::Code(kept))
}

/// The kept code, with the user and service it was typed for, if any,
/// leaving [`Kept::Taken`] in its place.
pub fn take_code(pamh: &mut PamHandle) -> Option<KeptCode> {
    // SAFETY: every value this module stores under CODE is a `Kept`
    // (`set_kept`), and no other module knows the name.
    let code = match unsafe { pamh.get_data::<Kept>(CODE) } {
        Ok(Kept::Code(kept)) => kept.clone(),
        _ => return None,
    };
    // Replacing the data hands the old value to its cleanup, marked
    // PAM_DATA_REPLACE: freed, nothing logged.
    let _ = set_kept(pamh, Kept::Taken);
    Some(code)
}

/// A token kept for `pam_sm_setcred`: the token with the user and service
/// whose authentication made it, and the module arguments of the line that
/// made it (a stack's pam_otp lines may name different configs, and the
/// first line's `pam_sm_setcred` is the one that takes the token).
pub struct DeferredToken {
    pub token: Deferred,
    pub args: Vec<String>,
}

/// What is stored under [`ENROLLMENT`]: the one type stored there.
enum Stored {
    /// Boxed: a record is large (a temporary code beside the tokens),
    /// `Taken` is nothing.
    Token(Box<DeferredToken>),
    Taken,
}

impl Drop for DeferredToken {
    /// The key is a secret: overwrite it before the memory is freed.
    fn drop(&mut self) {
        for token in &mut self.token.file.tokens {
            token.key.fill(0);
            std::hint::black_box(&token.key);
        }
    }
}

/// Keeps `token`, made by the line with `args` (or, with `None`, drops
/// what an earlier authentication on this handle kept).
pub fn defer_enrollment(
    pamh: &mut PamHandle,
    token: Option<Deferred>,
    args: &[String],
) -> Result<(), PamResultCode> {
    match token {
        Some(token) => pamh.set_data(
            ENROLLMENT,
            Box::new(Stored::Token(Box::new(DeferredToken {
                token,
                args: args.to_vec(),
            }))),
        ),
        // Only a token kept earlier is replaced: the usual login keeps
        // nothing, and then sets no data either.
        None => {
            // SAFETY: as in `take_enrollment`: only a `Deferred` is ever
            // stored under ENROLLMENT.
            let kept = matches!(
                unsafe { pamh.get_data::<Stored>(ENROLLMENT) },
                Ok(Stored::Token(_))
            );
            if kept {
                // Replacing the data drops the token (its cleanup runs).
                pamh.set_data(ENROLLMENT, Box::new(Stored::Taken))?;
            }
            Ok(())
        }
    }
}

/// The deferred token, if any, leaving [`Stored::Taken`] in its place.
pub fn take_enrollment(pamh: &mut PamHandle) -> Option<DeferredToken> {
    // SAFETY: every value this module stores under ENROLLMENT is a
    // `Stored` (`defer_enrollment` and below); no other module knows it.
    let kept = match unsafe { pamh.get_data::<Stored>(ENROLLMENT) } {
        Ok(Stored::Token(kept)) => DeferredToken {
            token: kept.token.clone(),
            args: kept.args.clone(),
        },
        _ => return None,
    };
    let _ = pamh.set_data(ENROLLMENT, Box::new(Stored::Taken));
    Some(kept)
}
