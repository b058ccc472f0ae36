//! Calls pam-bindings does not offer: setting `PAM_AUTHTOK` (its `AuthTok`
//! item can only be read), which `forward_pass` needs to hand the password
//! on, and reading the PAM environment (`SSH_AUTH_INFO_0`). One of the
//! module's two files with `unsafe` code; the other is module_data.rs
//! (storing module data with a cleanup of its own, reading it back).

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};

use pam::module::PamHandle;

const PAM_SUCCESS: c_int = 0;
const PAM_AUTHTOK: c_int = 6;

#[link(name = "pam")]
extern "C" {
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// The value of `name` in the PAM environment (not the process's), copied.
pub fn getenv(pamh: &mut PamHandle, name: &CStr) -> Option<String> {
    // SAFETY: `pamh` is the live handle PAM passed to this call and `name`
    // a NUL-terminated string; pam_getenv only reads them.
    let value = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-null result points into libpam's copy of the
    // environment, NUL-terminated, valid until the environment changes;
    // it is copied here before anything else runs.
    let value = unsafe { CStr::from_ptr(value) };
    Some(value.to_string_lossy().into_owned())
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
