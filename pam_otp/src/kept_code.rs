//! The code a `split_pass` line keeps for the pam_otp line after the
//! password module, as PAM module data on the handle.
//!
//! Both lines run inside one `pam_authenticate` call, in one process: in
//! sshd too, whose keyboard-interactive authentication runs the whole
//! `pam_authenticate` in one child (auth-pam.c, `sshpam_thread`), and whose
//! password authentication runs it in the monitor. So data set by the first
//! line is there for the second. It is taken (read and cleared) by every
//! pam_otp line that runs, so a code is checked at most once and never
//! outlives the authentication it was typed for: a later
//! `pam_authenticate` on the same handle (`login` asks again after a
//! failure) starts with none.

use pam::module::PamHandle;

/// The module data's name; nothing else uses it.
const NAME: &str = "pam_otp/split_pass/code";

/// What the data holds. One type for every value stored under [`NAME`],
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

pub fn keep(pamh: &mut PamHandle, code: &str) -> Result<(), pam::constants::PamResultCode> {
    pamh.set_data(NAME, Box::new(Kept::Code(code.to_string())))
}

/// The kept code, if any, leaving [`Kept::Taken`] in its place.
pub fn take(pamh: &mut PamHandle) -> Option<String> {
    // SAFETY: every value this module stores under NAME is a `Kept`
    // (`keep` and below), and no other module knows the name.
    let code = match unsafe { pamh.get_data::<Kept>(NAME) } {
        Ok(Kept::Code(code)) => code.clone(),
        _ => return None,
    };
    // Replacing the data drops the old value (its cleanup runs).
    let _ = pamh.set_data(NAME, Box::new(Kept::Taken));
    Some(code)
}
