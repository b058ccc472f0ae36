//! The module's only `unsafe` calls: what pam-bindings and std cannot do
//! for it.
//!
//! pam-bindings offers no way to set `PAM_AUTHTOK` (its `AuthTok` item can
//! only be read), which `forward_pass` needs to hand the password on. And
//! the clock is read with `clock_gettime` itself, see [`unix_time`].

use std::ffi::CString;
use std::os::raw::{c_int, c_void};

use pam::module::PamHandle;

const PAM_SUCCESS: c_int = 0;
const PAM_AUTHTOK: c_int = 6;

#[link(name = "pam")]
extern "C" {
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
}

/// Sets `PAM_AUTHTOK`. libpam copies the string, so ours may be dropped.
pub fn set_authtok(pamh: &mut PamHandle, value: &str) -> Result<(), ()> {
    let value = CString::new(value).map_err(|_| ())?;
    // SAFETY: `pamh` is the live handle PAM passed to this call; the item is
    // a NUL-terminated string that outlives the call, and pam_set_item
    // duplicates it (it frees and replaces its own copy).
    let rc = unsafe { pam_set_item(pamh, PAM_AUTHTOK, value.as_ptr().cast()) };
    if rc == PAM_SUCCESS {
        Ok(())
    } else {
        Err(())
    }
}

/// Seconds since 1970 by the system clock, `None` if it cannot be read or
/// is before 1970.
///
/// `SystemTime::now()` answers the same, but std unwraps the
/// `clock_gettime` result inside it, and that panic path formats an
/// `io::Error`, which makes the module import `strerror_r`: one more symbol
/// for the loader to bind at every login, for an error that cannot happen
/// with `CLOCK_REALTIME`. Here the error is an answer instead.
pub fn unix_time() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc == 0 {
        u64::try_from(ts.tv_sec).ok()
    } else {
        None
    }
}
