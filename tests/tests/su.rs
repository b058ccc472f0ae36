//! `su` through a PAM stack with pam_otp, under a pseudo-terminal, as a
//! user would type it. The real `su` (util-linux) runs with pam_wrapper and
//! a private service directory holding a file named `su`, so the machine's
//! /etc/pam.d/su is not used or touched. Run as root: the private `su` stack
//! has no pam_rootok, so root too must give the target user's code.

use testkit::{run_in_pty, totp_code, totp_secret, wrong_code, PamService, TestUser, PROMPT};

const SU_STACK: &str = "auth required {module} config={config}\n\
                        account required pam_permit.so\n\
                        session required pam_permit.so\n";

fn enrolled_user() -> TestUser {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user
}

fn su(pam: &PamService, user: &TestUser, code: &str) -> testkit::PtyRun {
    let env = pam.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_in_pty(
        &format!("su {} -c 'echo OK-$USER'", user.name),
        &env,
        &[(PROMPT, code)],
    )
}

#[test]
fn su_asks_for_the_code_and_runs_the_command() {
    let user = enrolled_user();
    let pam = PamService::named("su", SU_STACK, "");
    let code = totp_code(0);
    let run = su(&pam, &user, &code);
    assert!(run.success, "{run:#?}");
    let asked = run.output.find(PROMPT).expect("asked for the code");
    let ok = run
        .output
        .find(&format!("OK-{}", user.name))
        .unwrap_or_else(|| panic!("command did not run: {run:#?}"));
    assert!(asked < ok, "{run:#?}");
    assert!(!run.output.contains(&code), "the code was echoed: {run:#?}");

    // The same code again is a replay.
    let again = su(&pam, &user, &code);
    assert!(!again.success, "replay accepted: {again:#?}");
    assert!(
        again.output.contains("Authentication failure"),
        "{again:#?}"
    );
}

#[test]
fn su_refuses_a_wrong_code() {
    let user = enrolled_user();
    let pam = PamService::named("su", SU_STACK, "");
    let wrong = wrong_code();
    let run = su(&pam, &user, &wrong);
    assert!(!run.success, "{run:#?}");
    assert!(run.output.contains(PROMPT), "{run:#?}");
    assert!(run.output.contains("Authentication failure"), "{run:#?}");
    assert!(
        !run.output.contains(&format!("OK-{}", user.name)),
        "{run:#?}"
    );
}
