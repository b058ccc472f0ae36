//! PAM_RHOST normalisation, rule matching and network parsing on
//! arbitrary strings.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otp_core::remote::Remote;
use otp_core::rules::{decide, Action, Groups, Rule, Source, Subject};

struct NoGroups;
impl Groups for NoGroups {
    fn contains(&self, _: &str) -> bool {
        false
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let remote = Remote::from_rhost(Some(text));
    // Only an empty PAM_RHOST is local; whitespace or junk never is.
    assert_eq!(remote == Remote::Local, text.is_empty());
    // What normalises to an address must be matched by the all-address rule;
    // names and junk by nothing.
    let rules = vec![Rule {
        from: Some(vec![
            Source::parse("0.0.0.0/0").unwrap(),
            Source::parse("::/0").unwrap(),
        ]),
        users: None,
        groups: None,
        services: None,
        ttys: None,
        otp: Action::Skip,
        rollout: Default::default(),
    }];
    let d = decide(
        &rules,
        Action::Require,
        &Subject {
            user: "u",
            remote: &remote,
            service: "s",
            tty: None,
            groups: &NoGroups,
        },
    );
    assert_eq!(d.rule.is_some(), matches!(remote, Remote::Addr(_)));
    let _ = Source::parse(text);
    // The fast path for plain IPv4 networks answers as the general parser.
    assert_eq!(Source::parse_net(text), Source::parse_net_general(text));
});
