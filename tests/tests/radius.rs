//! pam_otp behind a VPN's RADIUS server: a private FreeRADIUS 3
//! (`testkit::radius`) with `rlm_pam` and the one-prompt stack of
//! SPEC.md (`split_pass`, pam_unix, pam_otp), driven by the real
//! `radclient`. The recipe is `doc/radius-recipe.md`.

use testkit::radius::{Radius, RadiusSetup, Reply};
use testkit::*;

/// The recipe's PAM service: one prompt, the password then the code.
/// rlm_pam calls `pam_acct_mgmt` too, hence the account line.
const RECIPE_STACK: &str = "auth requisite {module} config={config} split_pass\n\
                            auth requisite pam_unix.so use_first_pass\n\
                            auth required  {module} config={config}\n\
                            account required pam_unix.so\n";

const PASSWORD: &str = "hunter2pw";

fn recipe_server(otp_config: &str) -> Radius {
    Radius::start(&RadiusSetup {
        pam_stack: RECIPE_STACK,
        otp_config,
        ..RadiusSetup::default()
    })
}

/// A user with a password and the test key's TOTP token.
fn vpn_user() -> TestUser {
    let user = TestUser::new();
    user.set_password(PASSWORD);
    user.write_secret(&totp_secret());
    user
}

#[test]
fn password_followed_by_code_is_accepted_only_with_both_right() {
    let user = vpn_user();
    let mut radius = recipe_server("");
    let before = std::fs::read(user.secret_path()).unwrap();
    let code = fresh_code();

    // Someone with the code but not the password: refused, and it costs
    // the user nothing (pam_unix ends the stack before the code is read).
    let got = radius.auth(&user.name, &format!("hunter3pw{code}"), None);
    assert_eq!(got, Reply::Reject, "wrong password + right code");
    assert_eq!(
        std::fs::read(user.secret_path()).unwrap(),
        before,
        "a wrong password counted a failure or used the code"
    );
    // The password alone: refused.
    assert_eq!(
        radius.auth(&user.name, PASSWORD, None),
        Reply::Reject,
        "password alone"
    );

    // Both right, in one field: in.
    let got = radius.auth(&user.name, &format!("{PASSWORD}{code}"), None);
    assert_eq!(
        got,
        Reply::Accept,
        "right password + right code:\n{}",
        radius.log()
    );
    let after_accept = secret_file(&user.secret_path());
    assert!(
        after_accept.tokens[0].state.last_step.is_some(),
        "the code was not used up"
    );

    // The same code again: refused.
    let got = radius.auth(&user.name, &format!("{PASSWORD}{code}"), None);
    assert_eq!(got, Reply::Reject, "replayed code");

    // Right password, wrong code: refused, and counted.
    let got = radius.auth(&user.name, &format!("{PASSWORD}{}", wrong_code()), None);
    assert_eq!(got, Reply::Reject, "right password + wrong code");
    assert_eq!(
        secret_file(&user.secret_path()).state.failures,
        2,
        "replay and wrong code counted"
    );
    assert!(radius.running(), "freeradius died:\n{}", radius.log());
}
