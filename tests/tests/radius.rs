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

/// rlm_pam (FreeRADIUS 3.2, `src/modules/rlm_pam/rlm_pam.c`, `do_pam`)
/// calls `pam_start(pamauth, username, &conv, &handle)` and then
/// `pam_authenticate`, with no `pam_set_item` at all: `PAM_RHOST` is
/// never set. So a rule on the NAS's address (or the VPN user's) never
/// matches, and a RADIUS login is a "local" one (`from = ["local"]`
/// matches it), whatever machine sent it.
#[test]
fn rlm_pam_sets_no_pam_rhost_so_radius_logins_are_local() {
    let user = vpn_user();
    // A rule that would skip the code for the NAS (radclient sends from
    // 127.0.0.1): it does not apply, the code is still asked.
    let mut radius = recipe_server("[[rule]]\nfrom = [\"127.0.0.0/8\"]\notp = \"skip\"\n");
    assert_eq!(
        radius.auth(&user.name, PASSWORD, None),
        Reply::Reject,
        "the NAS's address matched a rule: rlm_pam sets PAM_RHOST now? update the recipe"
    );
    let code = fresh_code();
    assert_eq!(
        radius.auth(&user.name, &format!("{PASSWORD}{code}"), None),
        Reply::Accept,
        "{}",
        radius.log()
    );

    // A "local" rule (meant for the console) matches every RADIUS login:
    // here it skips the code for the whole VPN. The recipe warns.
    radius.write_config("[[rule]]\nfrom = [\"local\"]\notp = \"skip\"\n");
    assert_eq!(
        radius.auth(&user.name, PASSWORD, None),
        Reply::Accept,
        "a `local` rule did not match a RADIUS login: rlm_pam sets PAM_RHOST now?\n{}",
        radius.log()
    );
    assert_eq!(
        radius.auth(&user.name, "hunter3pw", None),
        Reply::Reject,
        "the password still matters"
    );
}

/// What does work: FreeRADIUS picks the PAM service by the NAS's address
/// (`Packet-Src-IP-Address`, the address the request came from, not an
/// attribute the NAS writes) through the `Pam-Auth` control attribute,
/// and a pam_otp rule on that service (`services = [...]`) skips the code.
/// radclient sends from 127.0.0.2 (the office NAS) or 127.0.0.1 (the VPN).
#[test]
fn an_office_nas_skips_the_code_through_its_own_pam_service() {
    let user = vpn_user();
    let mut radius = Radius::start(&RadiusSetup {
        pam_stack: RECIPE_STACK,
        more_services: &[("office", RECIPE_STACK)],
        otp_config: "[[rule]]\nservices = [\"{service}-office\"]\notp = \"skip\"\n",
        authorize: "\tif (&Packet-Src-IP-Address == 127.0.0.2) {\n\
                    \t\tupdate control {\n\
                    \t\t\t&Pam-Auth := \"{service}-office\"\n\
                    \t\t}\n\
                    \t}\n",
        ..RadiusSetup::default()
    });
    let office = Some("127.0.0.2");
    assert_eq!(
        radius.auth(&user.name, PASSWORD, office),
        Reply::Accept,
        "{}",
        radius.log()
    );
    assert_eq!(
        radius.auth(&user.name, "hunter3pw", office),
        Reply::Reject,
        "office, wrong password"
    );
    // From the other NAS the code is still needed.
    assert_eq!(
        radius.auth(&user.name, PASSWORD, None),
        Reply::Reject,
        "VPN NAS, password alone"
    );
    let code = fresh_code();
    assert_eq!(
        radius.auth(&user.name, &format!("{PASSWORD}{code}"), None),
        Reply::Accept,
        "{}",
        radius.log()
    );
    let before = std::fs::read(user.secret_path()).unwrap();
    assert_eq!(
        radius.auth(&user.name, PASSWORD, office),
        Reply::Accept,
        "office again"
    );
    assert_eq!(
        std::fs::read(user.secret_path()).unwrap(),
        before,
        "an office login touched the secret file"
    );
}
