//! Address, user, group and service rules: when is a code needed at all.
//!
//! Rules are evaluated in order and the first whose every condition holds
//! decides; when none matches, the config's `default` does.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::remote::Remote;

/// What a rule (or the default) says about a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// No code asked; the module answers success.
    Skip,
    /// A code is asked and checked.
    Require,
    /// Refused without a prompt.
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Skip => "skip",
            Action::Require => "require",
            Action::Deny => "deny",
        }
    }
}

/// One entry of a rule's `from` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `"local"`: no remote host.
    Local,
    Net(IpNet),
}

impl Source {
    /// `"local"`, a CIDR (`10.0.0.0/8`) or a single address (`10.1.2.3`,
    /// taken as /32 or /128). Host bits below the prefix are ignored.
    pub fn parse(text: &str) -> Option<Source> {
        let text = text.trim();
        if text == "local" {
            return Some(Source::Local);
        }
        if let Ok(net) = text.parse::<IpNet>() {
            return Some(Source::Net(net.trunc()));
        }
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(|a| Source::Net(IpNet::from(a)))
    }

    fn matches(&self, remote: &Remote) -> bool {
        match (self, remote) {
            (Source::Local, Remote::Local) => true,
            (Source::Net(net), Remote::Addr(addr)) => net.contains(addr),
            _ => false,
        }
    }
}

/// A rule: the conditions it names (all must hold) and its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub from: Option<Vec<Source>>,
    pub users: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub services: Option<Vec<String>>,
    pub otp: Action,
}

/// Group membership of the user logging in, asked only when a rule names
/// groups (it costs NSS look-ups).
pub trait Groups {
    fn contains(&self, group: &str) -> bool;
}

/// The login being decided.
pub struct Subject<'a> {
    pub user: &'a str,
    pub remote: &'a Remote,
    pub service: &'a str,
    pub groups: &'a dyn Groups,
}

/// The verdict and what made it, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// 1-based index of the rule that matched; `None` for the default.
    pub rule: Option<usize>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(n) => write!(f, "rule {n} ({})", self.action.as_str()),
            None => write!(f, "default ({})", self.action.as_str()),
        }
    }
}

impl Rule {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let from_ok = self
            .from
            .as_ref()
            .is_none_or(|list| list.iter().any(|src| src.matches(s.remote)));
        let user_ok = self
            .users
            .as_ref()
            .is_none_or(|list| list.iter().any(|u| u == s.user));
        let service_ok = self
            .services
            .as_ref()
            .is_none_or(|list| list.iter().any(|v| v == s.service));
        // Cheapest conditions first; groups need NSS.
        from_ok
            && user_ok
            && service_ok
            && self
                .groups
                .as_ref()
                .is_none_or(|list| list.iter().any(|g| s.groups.contains(g)))
    }
}

/// First match wins; `default` when nothing matches.
pub fn decide(rules: &[Rule], default: Action, subject: &Subject<'_>) -> Decision {
    rules.iter().position(|r| r.matches(subject)).map_or(
        Decision {
            action: default,
            rule: None,
        },
        |i| Decision {
            action: rules[i].otp,
            rule: Some(i + 1),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct G(&'static [&'static str]);
    impl Groups for G {
        fn contains(&self, group: &str) -> bool {
            self.0.contains(&group)
        }
    }

    fn nets(list: &[&str]) -> Option<Vec<Source>> {
        Some(list.iter().map(|s| Source::parse(s).unwrap()).collect())
    }

    fn rule(from: &[&str], otp: Action) -> Rule {
        Rule {
            from: nets(from),
            users: None,
            groups: None,
            services: None,
            otp,
        }
    }

    fn decide_for(
        rules: &[Rule],
        user: &str,
        rhost: Option<&str>,
        service: &str,
        groups: &G,
    ) -> Decision {
        let remote = Remote::from_rhost(rhost);
        decide(
            rules,
            Action::Require,
            &Subject {
                user,
                remote: &remote,
                service,
                groups,
            },
        )
    }

    const NONE: G = G(&[]);

    #[test]
    fn spec_example() {
        let rules = vec![
            Rule {
                from: nets(&["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]),
                users: None,
                groups: Some(vec!["staff".into()]),
                services: None,
                otp: Action::Skip,
            },
            Rule {
                from: nets(&["0.0.0.0/0", "::/0"]),
                users: Some(vec!["root".into()]),
                groups: None,
                services: None,
                otp: Action::Deny,
            },
        ];
        let staff = G(&["staff"]);
        let d = decide_for(&rules, "alice", Some("10.1.2.3"), "sshd", &staff);
        assert_eq!(
            d,
            Decision {
                action: Action::Skip,
                rule: Some(1)
            }
        );
        // IPv4-mapped IPv6 is the same address.
        let d = decide_for(&rules, "alice", Some("::ffff:192.168.7.7"), "sshd", &staff);
        assert_eq!(d.rule, Some(1));
        // Not staff: falls through to the default.
        let d = decide_for(&rules, "bob", Some("10.1.2.3"), "sshd", &NONE);
        assert_eq!(
            d,
            Decision {
                action: Action::Require,
                rule: None
            }
        );
        // root from outside: denied; root on the console: default.
        let d = decide_for(&rules, "root", Some("203.0.113.9"), "sshd", &NONE);
        assert_eq!(
            d,
            Decision {
                action: Action::Deny,
                rule: Some(2)
            }
        );
        let d = decide_for(&rules, "root", None, "login", &NONE);
        assert_eq!(d.rule, None);
        // A zone suffix is dropped before matching.
        let d = decide_for(&rules, "alice", Some("fd00::5%eth0"), "sshd", &staff);
        assert_eq!(d.rule, Some(1));
    }

    #[test]
    fn host_names_match_no_cidr() {
        let rules = vec![rule(&["0.0.0.0/0", "::/0"], Action::Skip)];
        let d = decide_for(&rules, "u", Some("office.example.org"), "sshd", &NONE);
        assert_eq!(d.rule, None);
        let d = decide_for(&rules, "u", Some("localhost"), "sshd", &NONE);
        assert_eq!(d.rule, None, "a name is not local either");
    }

    #[test]
    fn local_matches_only_without_rhost() {
        let rules = vec![rule(&["local"], Action::Skip)];
        assert_eq!(decide_for(&rules, "u", None, "login", &NONE).rule, Some(1));
        assert_eq!(
            decide_for(&rules, "u", Some(""), "login", &NONE).rule,
            Some(1)
        );
        assert_eq!(
            decide_for(&rules, "u", Some("127.0.0.1"), "sshd", &NONE).rule,
            None
        );
    }

    #[test]
    fn first_match_wins_and_all_conditions_must_hold() {
        let rules = vec![
            Rule {
                from: None,
                users: None,
                groups: None,
                services: Some(vec!["su".into()]),
                otp: Action::Skip,
            },
            rule(&["127.0.0.2/32"], Action::Skip),
            rule(&["127.0.0.0/8"], Action::Deny),
        ];
        assert_eq!(
            decide_for(&rules, "u", Some("127.0.0.2"), "sshd", &NONE).rule,
            Some(2)
        );
        assert_eq!(
            decide_for(&rules, "u", Some("127.0.0.1"), "sshd", &NONE).action,
            Action::Deny
        );
        assert_eq!(
            decide_for(&rules, "u", Some("127.0.0.1"), "su", &NONE).rule,
            Some(1)
        );
    }

    #[test]
    fn source_parsing() {
        assert_eq!(Source::parse("local"), Some(Source::Local));
        assert_eq!(Source::parse("10.1.2.3"), Source::parse("10.1.2.3/32"));
        assert_eq!(Source::parse("10.1.2.3/8"), Source::parse("10.0.0.0/8"));
        assert!(Source::parse("10.0.0.0/33").is_none());
        assert!(Source::parse("example.org").is_none());
        assert!(Source::parse("").is_none());
    }

    #[test]
    fn decision_names_its_rule() {
        assert_eq!(
            Decision {
                action: Action::Skip,
                rule: Some(3)
            }
            .to_string(),
            "rule 3 (skip)"
        );
        assert_eq!(
            Decision {
                action: Action::Require,
                rule: None
            }
            .to_string(),
            "default (require)"
        );
    }
}
