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
#[ignore = "needs root: make test"]
fn skip_for_a_cidr() {
    let user = enrolled();
    let before = snapshot(&user.secret_path()).ignoring_atime();
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
    assert_eq!(snapshot(&user.secret_path()).ignoring_atime(), before);
}

#[test]
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
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
#[ignore = "needs root: make test"]
fn services_rule() {
    let user = enrolled();
    let svc = simple_service("");
    svc.write_config(&format!(
        "[[rule]]\nservices = [\"{}\"]\notp = \"skip\"\n",
        svc.name
    ));
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(run.success, "{run:?}");
    // Another service under the same rule set is not skipped.
    let other = simple_service("");
    other.write_config(&format!(
        "[[rule]]\nservices = [\"{}\"]\notp = \"skip\"\n",
        svc.name
    ));
    let run = no_prompt(&other, &user, Some("203.0.113.7"));
    assert!(!run.success, "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
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
    let next = totp_code(1);
    let run = svc.authenticate(&user.name, Some("203.0.113.7"), &format!("{next}\n"));
    assert!(!run.success, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "{run:?}");
}

/// 20 000 networks, one per line of a list file (`from_file`), decide as
/// the same networks written inline in the config; every login reads the
/// list again, so an edit of it is seen at once.
#[test]
#[ignore = "needs root: make test"]
fn twenty_thousand_networks_in_a_list_file_decide_as_inline() {
    let user = enrolled();
    let nets: Vec<String> = (0..20_000u32)
        .map(|i| format!("10.{}.{}.0/24", i >> 8 & 255, i & 255))
        .collect();
    let listed = PamService::new("");
    let list = listed.write_file(
        "office.list",
        &format!("# the office, as exported\n{}\n", nets.join("\n")),
    );
    let from_file = format!("[[rule]]\nfrom_file = [{list:?}]\notp = \"skip\"\n");
    let by_list = simple_service(&from_file);
    let quoted: Vec<String> = nets.iter().map(|n| format!("{n:?}")).collect();
    let inline = simple_service(&format!(
        "[[rule]]\nfrom = [{}]\notp = \"skip\"\n",
        quoted.join(", ")
    ));
    // First, middle and last network; mapped; outside; local; a name.
    let cases = [
        (Some("10.0.0.1"), true),
        (Some("10.39.15.200"), true),
        (Some("10.78.31.255"), true),
        (Some("::ffff:10.78.31.9"), true),
        (Some("10.78.32.1"), false),
        (Some("11.0.0.1"), false),
        (None, false),
        (Some("office.example.org"), false),
    ];
    for (rhost, skipped) in cases {
        for svc in [&inline, &by_list] {
            let run = no_prompt(svc, &user, rhost);
            assert_eq!(run.success, skipped, "{rhost:?}: {run:?}");
            assert_eq!(
                output(&run).contains(PROMPT),
                !skipped,
                "{rhost:?}: {run:?}"
            );
        }
    }
    // The admin drops the last network from the list: the next login obeys.
    listed.write_file("office.list", &nets[..19_999].join("\n"));
    let run = no_prompt(&by_list, &user, Some("10.78.31.255"));
    assert!(!run.success && output(&run).contains(PROMPT), "{run:?}");
}

/// A list file that cannot be used fails closed: even a config whose
/// default is "skip", under nullok, lets nobody in while one of its
/// lists is missing, unsafe or malformed.
#[test]
#[ignore = "needs root: make test"]
fn an_unusable_list_file_fails_closed() {
    let user = enrolled();
    let unenrolled = TestUser::new();
    let lists = PamService::new("");
    let list = lists.write_file("deny.list", "203.0.113.0/24\n");
    let svc = PamService::with_config(
        "auth required {module} config={config} nullok\n",
        &format!("default = \"skip\"\n[[rule]]\nfrom_file = [{list:?}]\notp = \"deny\"\n"),
    );
    // Usable: the list denies its network, the default skips the rest.
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(!run.success && output(&run).contains(AUTH_ERR), "{run:?}");
    let run = no_prompt(&svc, &user, Some("198.51.100.1"));
    assert!(run.success, "{run:?}");
    // Each case writes the list afresh (root's, 0644), then spoils it.
    let fresh = |text: &str| {
        let _ = std::fs::remove_file(&list);
        lists.write_file("deny.list", text);
    };
    for what in [
        "group-writable",
        "owned by a user",
        "malformed",
        "local",
        "missing",
    ] {
        fresh("203.0.113.0/24\n");
        match what {
            "group-writable" => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o664)).unwrap()
            }
            "owned by a user" => user.chown(&list),
            "malformed" => fresh("203.0.113.0/24\n203.0.113/24\n"),
            "local" => fresh("local\n"),
            _ => std::fs::remove_file(&list).unwrap(),
        }
        for who in [&user, &unenrolled] {
            let run = no_prompt(&svc, who, Some("198.51.100.1"));
            assert!(!run.success, "{what}: {run:?}");
            assert!(output(&run).contains(AUTHINFO_UNAVAIL), "{what}: {run:?}");
        }
    }
}

/// A relative `from_file` path is refused, not looked up somewhere.
#[test]
#[ignore = "needs root: make test"]
fn a_relative_list_path_fails_closed() {
    let user = enrolled();
    let svc = simple_service(
        "default = \"skip\"\n[[rule]]\nfrom_file = [\"office.list\"]\notp = \"deny\"\n",
    );
    let run = no_prompt(&svc, &user, Some("203.0.113.7"));
    assert!(
        !run.success && output(&run).contains(AUTHINFO_UNAVAIL),
        "{run:?}"
    );
}
