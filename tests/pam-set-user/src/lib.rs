//! A PAM module for the tests only (`libpam_set_user.so`, never installed):
//! its `auth` line sets `PAM_USER` to the `user=NAME` argument and answers
//! `PAM_IGNORE`, as a module that canonicalises the login name does (pam_sss
//! or winbind turning "Alice" into "alice@example.org"). Debian ships no
//! module that changes `PAM_USER` on request, so the split_pass test of a
//! stack whose user changes between the two pam_otp lines loads this one.

#![forbid(unsafe_code)]

use std::ffi::{CStr, CString};

use pam::constants::{PamFlag, PamResultCode};
use pam::items::User;
use pam::module::{PamHandle, PamHooks};
use pam::pam_hooks;

struct SetUser;
pam_hooks!(SetUser);

impl PamHooks for SetUser {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let name = args
            .iter()
            .find_map(|a| a.to_bytes().strip_prefix(b"user="))
            .and_then(|n| CString::new(n).ok());
        let Some(name) = name else {
            return PamResultCode::PAM_SERVICE_ERR;
        };
        match pamh.set_item_str(User(&name)) {
            Ok(()) => PamResultCode::PAM_IGNORE,
            Err(code) => code,
        }
    }

    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }
}
