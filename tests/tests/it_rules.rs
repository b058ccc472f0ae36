//! Rules on rhost (pamtester -I rhost=...), user, group and service, through
//! the real libpam with the built module. Every user here is enrolled, so a
//! success with empty input can only come from a `skip` rule.

use testkit::fixtures::*;

fn enrolled() -> TestUser {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user
}

/// Empty stdin: success only if no prompt was needed.
fn no_prompt(svc: &PamService, user: &TestUser, rhost: Option<&str>) -> PamRun {
    svc.authenticate(&user.name, rhost, "")
}

#[test]
fn skip_for_a_cidr() {
    let user = enrolled();
    let before = snapshot(&user.secret_path());
    let svc =
        simple_service("[[rule]]\nfrom = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, Some("10.1.2.3"));
    assert!(run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
    let run = no_prompt(&svc, &user, Some("192.168.7.1"));
    assert!(run.success, "{run:?}");
    // Outside the CIDRs a code is required.
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(PROMPT), "{run:?}");
    let run = no_prompt(&svc, &user, Some("11.1.2.3"));
    assert!(!run.success, "{run:?}");
    // A skip does not touch the secret file.
    assert_eq!(snapshot(&user.secret_path()), before);
}

#[test]
fn skip_with_bracketed_address() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"fd00::/8\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, Some("[fd12::1]"));
    assert!(run.success, "{run:?}");
    let run = no_prompt(&svc, &user, Some("fd12::1%eth0"));
    assert!(run.success, "{run:?}");
    let run = no_prompt(&svc, &user, Some("2001:db8::1"));
    assert!(!run.success, "{run:?}");
}

#[test]
fn deny_rule_for_a_user_fails_without_prompt() {
    let user = enrolled();
    let other = enrolled();
    let svc = simple_service(&format!(
        "[[rule]]\nusers = [\"{}\"]\nfrom = [\"0.0.0.0/0\", \"::/0\"]\notp = \"deny\"\n",
        user.name
    ));
    let code = fresh_code();
    let run = svc.authenticate(&user.name, Some("203.0.113.7"), &format!("{code}\n"));
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "prompted: {run:?}");
    assert!(output(&run).contains("refused by policy"), "{run:?}");
    // The rule is for that user only.
    let run = svc.authenticate(&other.name, Some("203.0.113.7"), &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    // And only from an address: a local login of the same user goes on.
    let run = svc.authenticate(&user.name, None, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
}

#[test]
fn ipv4_mapped_ipv6_matches_an_ipv4_cidr() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, Some("::ffff:10.1.2.3"));
    assert!(run.success, "{run:?}");
    let run = no_prompt(&svc, &user, Some("::ffff:11.1.2.3"));
    assert!(!run.success, "{run:?}");
}

/// A rule network written IPv4-mapped is the IPv4 network it names, like
/// the mapped addresses sshd gives (it used to match nothing at all).
#[test]
fn ipv4_mapped_rule_network_matches_ipv4_and_mapped_addresses() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"::ffff:10.0.0.0/104\"]\notp = \"skip\"\n");
    for rhost in ["10.1.2.3", "::ffff:10.1.2.3"] {
        let run = no_prompt(&svc, &user, Some(rhost));
        assert!(run.success, "{rhost}: {run:?}");
        assert!(!output(&run).contains(PROMPT), "{rhost}: {run:?}");
    }
    for rhost in ["11.1.2.3", "::ffff:11.1.2.3"] {
        let run = no_prompt(&svc, &user, Some(rhost));
        assert!(!run.success, "{rhost}: {run:?}");
        assert!(output(&run).contains(PROMPT), "{rhost}: {run:?}");
    }
    // A mapped network below /96 also covers addresses that are not
    // mapped: the config is refused, and the login with it.
    let svc = simple_service("[[rule]]\nfrom = [\"::ffff:10.0.0.0/64\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, Some("10.1.2.3"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(AUTHINFO_UNAVAIL), "{run:?}");
}

#[test]
fn host_name_matches_no_cidr() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"0.0.0.0/0\", \"::/0\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, Some("office.example.org"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(PROMPT), "{run:?}");
    let code = fresh_code();
    let run = svc.authenticate(&user.name, Some("office.example.org"), &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    // A host name is not "local" either.
    let svc = simple_service("[[rule]]\nfrom = [\"local\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, Some("office.example.org"));
    assert!(!run.success, "{run:?}");
}

#[test]
fn local_skip() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"local\"]\notp = \"skip\"\n");
    let run = no_prompt(&svc, &user, None);
    assert!(run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(!run.success, "{run:?}");
    let run = no_prompt(&svc, &user, Some("127.0.0.1"));
    assert!(!run.success, "an address is not local: {run:?}");
    // An empty PAM_RHOST is local.
    let run = no_prompt(&svc, &user, Some(""));
    assert!(run.success, "{run:?}");
}

/// "local" is an unset or empty `PAM_RHOST` only: one of whitespace is not
/// an absent host, so the code is asked (pamtester -I sets the item to the
/// text as given, whitespace included).
#[test]
fn whitespace_rhost_is_not_local() {
    let user = enrolled();
    let svc = simple_service("[[rule]]\nfrom = [\"local\"]\notp = \"skip\"\n");
    for rhost in [" ", "\t", "\n", " \t "] {
        let run = no_prompt(&svc, &user, Some(rhost));
        assert!(!run.success, "rhost {rhost:?} skipped: {run:?}");
        assert!(output(&run).contains(PROMPT), "rhost {rhost:?}: {run:?}");
    }
    // And it is asked for real: a right code lets the user in.
    let code = fresh_code();
    let run = svc.authenticate(&user.name, Some(" "), &format!("{code}\n"));
    assert!(run.success, "{run:?}");
}

#[test]
fn group_rule() {
    let group = TestGroup::new();
    let member = TestUser::with_groups(&[&group.name]);
    member.write_secret(&totp_secret());
    let outsider = enrolled();
    let svc = simple_service(&format!(
        "[[rule]]\ngroups = [\"{}\"]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n",
        group.name
    ));
    let run = no_prompt(&svc, &member, Some("10.9.9.9"));
    assert!(run.success, "{run:?}");
    let run = no_prompt(&svc, &outsider, Some("10.9.9.9"));
    assert!(!run.success, "{run:?}");
    // Both conditions must hold.
    let run = no_prompt(&svc, &member, Some("203.0.113.7"));
    assert!(!run.success, "{run:?}");
}

#[test]
fn services_rule() {
    let user = enrolled();
    let svc = simple_service("");
    write_config(
        &svc,
        &format!("[[rule]]\nservices = [\"{}\"]\notp = \"skip\"\n", svc.name),
    );
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(run.success, "{run:?}");
    // Another service under the same rule set is not skipped.
    let other = simple_service("");
    write_config(
        &other,
        &format!("[[rule]]\nservices = [\"{}\"]\notp = \"skip\"\n", svc.name),
    );
    let run = no_prompt(&other, &user, Some("203.0.113.7"));
    assert!(!run.success, "{run:?}");
}

#[test]
fn first_match_wins_and_default_applies() {
    let user = enrolled();
    let svc = simple_service(
        "default = \"deny\"\n\
         [[rule]]\nfrom = [\"10.1.0.0/16\"]\notp = \"require\"\n\
         [[rule]]\nfrom = [\"10.0.0.0/8\"]\notp = \"skip\"\n",
    );
    // 10.1.x: the first rule requires a code.
    let run = no_prompt(&svc, &user, Some("10.1.2.3"));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(PROMPT), "{run:?}");
    let code = fresh_code();
    let run = svc.authenticate(&user.name, Some("10.1.2.3"), &format!("{code}\n"));
    assert!(run.success, "{run:?}");
    // 10.2.x: the second skips.
    let run = no_prompt(&svc, &user, Some("10.2.2.3"));
    assert!(run.success, "{run:?}");
    // Elsewhere the default denies, even with a right code, without prompt.
    let next = oathtool_totp(KEY_B32, Some(now() + 30), &[]);
    let run = svc.authenticate(&user.name, Some("203.0.113.7"), &format!("{next}\n"));
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
}

/// 10 000 address rules, the last of which skips the code for one address,
/// through the real module: every login parses the config again, so an
/// edit of the config is seen at once.
#[test]
fn ten_thousand_rules_decide_through_the_module() {
    let user = enrolled();
    let mut config = String::new();
    for i in 0..9_999u32 {
        config.push_str(&format!(
            "[[rule]]\nfrom = [\"10.{}.{}.0/24\"]\notp = \"deny\"\n",
            i >> 8 & 255,
            i & 255
        ));
    }
    config.push_str("[[rule]]\nfrom = [\"198.51.100.7/32\"]\notp = \"skip\"\n");
    let svc = simple_service(&config);
    let run = no_prompt(&svc, &user, Some("198.51.100.7"));
    assert!(run.success, "{run:?}");
    let run = no_prompt(&svc, &user, Some("10.0.3.9"));
    assert!(!run.success && !output(&run).contains(PROMPT), "{run:?}");
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(!run.success && output(&run).contains(PROMPT), "{run:?}");
    // The admin turns the last rule into a deny: the next login obeys.
    write_config(&svc, &config.replace("otp = \"skip\"", "otp = \"deny\""));
    let run = no_prompt(&svc, &user, Some("198.51.100.7"));
    assert!(!run.success && !output(&run).contains(PROMPT), "{run:?}");
}
