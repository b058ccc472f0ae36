//! What one pam_otp line leaves on the PAM handle for a later call, as PAM
//! module data:
//!
//! - the code a `split_pass` line keeps for the pam_otp line after the
//!   password module ([`keep_code`], [`take_code`]);
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

use otp_core::secret_file::SecretFile;
use pam::module::PamHandle;

/// The module data's names; nothing else uses them.
const CODE: &str = "pam_otp/split_pass/code";
const ENROLLMENT: &str = "pam_otp/enroll/deferred";

/// What the data holds. One type for every value stored under [`CODE`],
/// so reading it back as this type is always right.
enum Kept {
    Code(String),
    Taken,
}

impl Drop for Kept {
    /// The code is a secret of sorts until used: overwrite it before the
    /// memory goes back to the allocator.
    fn drop(&mut self) {
        if let Kept::Code(code) = self {
            let mut bytes = std::mem::take(code).into_bytes();
            bytes.fill(0);
            std::hint::black_box(&bytes);
        }
    }
}

pub fn keep_code(pamh: &mut PamHandle, code: &str) -> Result<(), pam::constants::PamResultCode> {
    pamh.set_data(CODE, Box::new(Kept::Code(code.to_string())))
}

/// The kept code, if any, leaving [`Kept::Taken`] in its place.
pub fn take_code(pamh: &mut PamHandle) -> Option<String> {
    // SAFETY: every value this module stores under CODE is a `Kept`
    // (`keep_code` and below), and no other module knows the name.
    let code = match unsafe { pamh.get_data::<Kept>(CODE) } {
        Ok(Kept::Code(code)) => code.clone(),
        _ => return None,
    };
    // Replacing the data drops the old value (its cleanup runs).
    let _ = pamh.set_data(CODE, Box::new(Kept::Taken));
    Some(code)
}

/// What is stored under [`ENROLLMENT`]: the one type stored there.
enum Deferred {
    Token(SecretFile),
    Taken,
}

impl Drop for Deferred {
    /// The key is a secret: overwrite it before the memory is freed.
    fn drop(&mut self) {
        if let Deferred::Token(file) = self {
            for token in &mut file.tokens {
                token.key.fill(0);
                std::hint::black_box(&token.key);
            }
        }
    }
}

/// Keeps `file` (or, with `None`, drops what an earlier authentication on
/// this handle kept).
pub fn defer_enrollment(
    pamh: &mut PamHandle,
    file: Option<SecretFile>,
) -> Result<(), pam::constants::PamResultCode> {
    match file {
        Some(f) => pamh.set_data(ENROLLMENT, Box::new(Deferred::Token(f))),
        // Only a token kept earlier is replaced: the usual login keeps
        // nothing, and then sets no data either.
        None => {
            // SAFETY: as in `take_enrollment`: only a `Deferred` is ever
            // stored under ENROLLMENT.
            let kept = matches!(
                unsafe { pamh.get_data::<Deferred>(ENROLLMENT) },
                Ok(Deferred::Token(_))
            );
            if kept {
                // Replacing the data drops the token (its cleanup runs).
                pamh.set_data(ENROLLMENT, Box::new(Deferred::Taken))?;
            }
            Ok(())
        }
    }
}

/// The deferred token, if any, leaving [`Deferred::Taken`] in its place.
pub fn take_enrollment(pamh: &mut PamHandle) -> Option<SecretFile> {
    // SAFETY: every value this module stores under ENROLLMENT is a
    // `Deferred` (`defer_enrollment` and below); no other module knows it.
    let file = match unsafe { pamh.get_data::<Deferred>(ENROLLMENT) } {
        Ok(Deferred::Token(file)) => file.clone(),
        _ => return None,
    };
    let _ = pamh.set_data(ENROLLMENT, Box::new(Deferred::Taken));
    Some(file)
}
