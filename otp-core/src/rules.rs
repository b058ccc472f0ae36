//! Address, user, group and service rules: when is a code needed at all.
//!
//! Rules are evaluated in order and the first whose every condition holds
//! decides; when none matches, the config's `default` does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;

use crate::remote::Remote;

/// What a rule (or the default) says about a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
    /// Never an IPv4-mapped IPv6 network when parsed: [`Source::parse`]
    /// makes that the IPv4 network.
    Net(IpNet),
}

/// Why a `from` entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadSource {
    /// Not `"local"`, an address or a CIDR.
    NotAnAddress,
    /// An IPv4-mapped address (`::ffff:a.b.c.d`) with a prefix below 96: it
    /// would cover IPv6 addresses that are not mapped as well.
    MappedPrefix,
}

impl fmt::Display for BadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadSource::NotAnAddress => "is not a CIDR, an address or \"local\"",
            BadSource::MappedPrefix => {
                "is an IPv4-mapped network with a prefix below 96, which also covers \
                 addresses that are not IPv4-mapped; write the IPv4 network, or a \
                 mapped one of /96 or longer (::ffff:0:0/96 is all of IPv4)"
            }
        })
    }
}

impl Source {
    /// `"local"`, a CIDR (`10.0.0.0/8`) or a single address (`10.1.2.3`,
    /// taken as /32 or /128); `None` for anything else. See
    /// [`Source::try_parse`].
    pub fn parse(text: &str) -> Option<Source> {
        Source::try_parse(text).ok()
    }

    /// [`Source::parse`], saying why an entry is refused. Host bits below
    /// the prefix are ignored.
    ///
    /// An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 network
    /// it names (`10.0.0.0/8`, the prefix less 96), as `PAM_RHOST`'s mapped
    /// addresses are taken as IPv4 ([`Remote::from_rhost`]): kept as IPv6 it
    /// would match nothing. With a prefix below 96 it is refused
    /// ([`BadSource::MappedPrefix`]). A network that merely contains the
    /// mapped range (`::/0`) is not written as mapped and keeps meaning
    /// IPv6 addresses only, as before.
    ///
    /// The address is read by std's parsers, the prefix length must be
    /// ASCII digits (at most 2 for IPv4, 3 for IPv6): the answers of ipnet's
    /// parser, which this replaced (tested against it).
    pub fn try_parse(text: &str) -> Result<Source, BadSource> {
        match text.trim() {
            "local" => Ok(Source::Local),
            net => Source::parse_net(net).map(Source::Net),
        }
    }

    /// [`Source::try_parse`] for a network only (no `"local"`), of text
    /// already trimmed: what a line of an address list holds.
    pub fn parse_net(text: &str) -> Result<IpNet, BadSource> {
        match plain_ipv4_net(text.as_bytes()) {
            Some((net, [])) => Ok(IpNet::V4(net)),
            _ => Source::parse_net_general(text),
        }
    }

    /// [`Source::parse_net`] without its fast path for plain IPv4: what
    /// that fast path is checked against (tests, the `rhost` fuzz target).
    #[doc(hidden)]
    pub fn parse_net_general(text: &str) -> Result<IpNet, BadSource> {
        let not = BadSource::NotAnAddress;
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| not)?;
        let net = match len {
            None => IpNet::from(addr),
            Some(len) => {
                let max_digits = if addr.is_ipv4() { 2 } else { 3 };
                if !(1..=max_digits).contains(&len.len())
                    || !len.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(not);
                }
                let len = len.parse().map_err(|_| not)?;
                IpNet::new(addr, len).map_err(|_| not)?
            }
        };
        if let IpNet::V6(v6) = net {
            if let Some(v4) = v6.addr().to_ipv4_mapped() {
                let len = v6
                    .prefix_len()
                    .checked_sub(96)
                    .ok_or(BadSource::MappedPrefix)?;
                let v4 = ipnet::Ipv4Net::new(v4, len).map_err(|_| not)?;
                return Ok(IpNet::V4(v4.trunc()));
            }
        }
        Ok(net.trunc())
    }

    /// Whether any of `sources` holds `remote`: `local` a login without a
    /// remote host, a network an address of its own family (a host name
    /// matches nothing). The remote is looked at once, not per entry: a
    /// rule may hold the 20 000 networks of an address list.
    fn any_holds(sources: &[Source], remote: &Remote) -> bool {
        match remote {
            Remote::Local => sources.contains(&Source::Local),
            Remote::Addr(IpAddr::V4(addr)) => sources
                .iter()
                .any(|s| matches!(s, Source::Net(IpNet::V4(net)) if net.contains(addr))),
            Remote::Addr(IpAddr::V6(addr)) => sources
                .iter()
                .any(|s| matches!(s, Source::Net(IpNet::V6(net)) if net.contains(addr))),
            Remote::Host(_) => false,
        }
    }
}

/// The IPv4 network `text` starts with when it is written plainly:
/// `a.b.c.d` or `a.b.c.d/len`, four decimal octets up to 255 without
/// leading zeros and a prefix of one or two digits up to 32, truncated to
/// its prefix; and what follows it. `None` when `text` starts otherwise;
/// the caller decides what may follow (nothing, a newline), and anything
/// else goes to the general parser, which reads or refuses it.
///
/// A login reads every line of its address lists, mostly such networks:
/// with 20 000 of them, std's parser and the string splits around it took
/// over three times as long as this one pass. Checked against the general
/// parser by `fast_ipv4_path_agrees_with_the_general_parser` and the
/// `rhost` fuzz target.
pub(crate) fn plain_ipv4_net(text: &[u8]) -> Option<(Ipv4Net, &[u8])> {
    let (a, rest) = octet(text)?;
    let (b, rest) = octet(rest.strip_prefix(b".")?)?;
    let (c, rest) = octet(rest.strip_prefix(b".")?)?;
    let (d, rest) = octet(rest.strip_prefix(b".")?)?;
    let digit = |d: u8| d - b'0';
    let (len, rest) = match *rest {
        [b'/', ten @ b'0'..=b'9', one @ b'0'..=b'9', ref rest @ ..] => {
            (digit(ten) * 10 + digit(one), rest)
        }
        [b'/', one @ b'0'..=b'9', ref rest @ ..] => (digit(one), rest),
        [b'/', ..] => return None,
        ref rest => (32, rest),
    };
    // Truncated as the general parser does: the host bits below the prefix
    // cleared (one mask here, where `trunc` works out the netmask again).
    let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    let addr = Ipv4Addr::from(u32::from_be_bytes([a, b, c, d]) & !host_bits);
    Some((Ipv4Net::new(addr, len).ok()?, rest))
}

/// The decimal octet (at most 255, no leading zero) `text` starts with,
/// and what follows it.
fn octet(text: &[u8]) -> Option<(u8, &[u8])> {
    let digit = |d: u8| u16::from(d - b'0');
    let (value, rest) = match *text {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', ref rest @ ..] => {
            (digit(a) * 100 + digit(b) * 10 + digit(c), rest)
        }
        [a @ b'1'..=b'9', b @ b'0'..=b'9', ref rest @ ..] => (digit(a) * 10 + digit(b), rest),
        [a @ b'0'..=b'9', ref rest @ ..] => (digit(a), rest),
        _ => return None,
    };
    Some((u8::try_from(value).ok()?, rest))
}

/// One entry of a rule's `ttys` list: a shell-style pattern matched on
/// `PAM_TTY`.
///
/// - `*` any run of characters, `?` one character, `[...]` one of a set
///   (`[!...]` none of it); none of them ever matches a `/`, so `pts/*` is
///   a pseudo-terminal and `tty*` is never `pts/3`.
/// - `PAM_TTY` is matched without a leading `/dev/` (login sets `tty1`,
///   sudo `/dev/pts/3`: both are taken as pam_securetty takes them), and
///   a pattern is written that way: one starting with `/` is refused.
/// - An unset or empty `PAM_TTY` (su from a script, cron, many servers)
///   matches no pattern, `*` included.
/// - sshd sets a `PAM_TTY` of its own during authentication that names no
///   terminal ("ssh"; "NODEVssh" in older OpenSSH): `tty*` matches
///   neither.
/// - The program sets `PAM_TTY`, and su takes the terminal on its standard
///   input, which its caller picks (`su </dev/tty` gives "tty"): a `ttys`
///   rule names the console only beside `services = ["login"]`
///   (SECURITY.md, "local" is not the console).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtyPattern(glob::Pattern);

/// Why a `ttys` entry was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadTty {
    /// Starts with `/`: PAM_TTY is matched without `/dev/`.
    Absolute,
    /// `**`: in these patterns it would cross a `/`.
    DoubleStar,
    /// Not a pattern (an unclosed `[`, ...): what the parser said.
    Syntax(String),
}

impl fmt::Display for BadTty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadTty::Absolute => f.write_str(
                "starts with '/': PAM_TTY is matched without its /dev/ (\"/dev/tty1\" as \"tty1\"), \
                 so write the pattern without it",
            ),
            BadTty::DoubleStar => f.write_str("holds \"**\"; only *, ? and [...] are patterns here"),
            BadTty::Syntax(why) => write!(f, "is not a pattern: {why}"),
        }
    }
}

/// How `ttys` patterns match: exact case, and no wildcard matches a `/`.
const TTY_MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl TtyPattern {
    pub fn parse(text: &str) -> Result<TtyPattern, BadTty> {
        if text.starts_with('/') {
            return Err(BadTty::Absolute);
        }
        if text.contains("**") {
            return Err(BadTty::DoubleStar);
        }
        glob::Pattern::new(text)
            .map(TtyPattern)
            .map_err(|e| BadTty::Syntax(e.msg.to_string()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the pattern matches `tty` (a `PAM_TTY` already normalised
    /// by [`tty_name`]).
    fn matches(&self, tty: &str) -> bool {
        self.0.matches_with(tty, TTY_MATCH)
    }
}

/// `PAM_TTY` as `ttys` patterns see it: without a leading `/dev/`;
/// `None` when it is unset or empty (matched by no pattern).
pub fn tty_name(item: Option<&str>) -> Option<&str> {
    let tty = item?;
    let tty = tty.strip_prefix("/dev/").unwrap_or(tty);
    (!tty.is_empty()).then_some(tty)
}

/// A rule: the conditions it names (all must hold) and its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub from: Option<Vec<Source>>,
    pub users: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub services: Option<Vec<String>>,
    /// Patterns on `PAM_TTY` ([`TtyPattern`]).
    pub ttys: Option<Vec<TtyPattern>>,
    pub otp: Action,
    /// What this rule says of a user without a token, over the config's.
    pub rollout: Rollout,
}

/// A rule's own `missing` and `enforce_after` (issue 31), each over the
/// config's for the logins the rule matches. The precedence, most
/// specific first: the rule's key, then the module argument (`nullok`
/// means `missing = "allow"`), then the config's key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    pub missing: Option<crate::config::Missing>,
    /// Unix seconds: before it, a user without a token is let in (and
    /// offered enrollment); from it on, `missing` applies.
    pub enforce_after: Option<u64>,
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
    /// `PAM_TTY` as the program set it (unset: `None`).
    pub tty: Option<&'a str>,
    pub groups: &'a dyn Groups,
}

/// The verdict and what made it, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Decision {
    pub action: Action,
    /// 1-based index of the rule that matched; `None` for the default.
    pub rule: Option<usize>,
}

/// "rule 2 (skip)", "default (require)".
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = self.action.as_str();
        match self.rule {
            Some(n) => write!(f, "rule {n} ({action})"),
            None => write!(f, "default ({action})"),
        }
    }
}

impl Rule {
    /// Whether every condition the rule names holds, the cheapest first:
    /// groups need NSS look-ups and are asked last.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        fn any<T>(list: &Option<Vec<T>>, hit: impl FnMut(&T) -> bool) -> bool {
            list.as_ref().is_none_or(|l| l.iter().any(hit))
        }
        let from = self.from.as_deref();
        from.is_none_or(|from| Source::any_holds(from, s.remote))
            && any(&self.users, |u| u == s.user)
            && any(&self.services, |v| v == s.service)
            && self.ttys.as_deref().is_none_or(|ttys| {
                tty_name(s.tty).is_some_and(|tty| ttys.iter().any(|p| p.matches(tty)))
            })
            && any(&self.groups, |g| s.groups.contains(g))
    }
}

/// First match wins; `default` when nothing matches.
///
/// A scan of the rules in order: a login makes one decision, and building
/// an index of the networks for it cost more than the scan it saved (the
/// figures are in the message of commit fc18dc6, which removed it).
pub fn decide(rules: &[Rule], default: Action, subject: &Subject<'_>) -> Decision {
    for (i, rule) in rules.iter().enumerate() {
        if rule.matches(subject) {
            return Decision {
                action: rule.otp,
                rule: Some(i + 1),
            };
        }
    }
    Decision {
        action: default,
        rule: None,
    }
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
            ttys: None,
            otp,
            rollout: Rollout::default(),
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
                tty: None,
                groups,
            },
        )
    }

    const NONE: G = G(&[]);

    #[test]
    fn decisions_are_displayed_for_the_log() {
        let rule = Decision {
            rule: Some(12),
            action: Action::Skip,
        };
        assert_eq!(rule.to_string(), "rule 12 (skip)");
        let default = Decision {
            rule: None,
            action: Action::Require,
        };
        assert_eq!(default.to_string(), "default (require)");
    }

    #[test]
    fn spec_example() {
        let rules = vec![
            Rule {
                from: nets(&["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]),
                users: None,
                groups: Some(vec!["staff".into()]),
                services: None,
                ttys: None,
                otp: Action::Skip,
                rollout: Rollout::default(),
            },
            Rule {
                from: nets(&["0.0.0.0/0", "::/0"]),
                users: Some(vec!["root".into()]),
                groups: None,
                services: None,
                ttys: None,
                otp: Action::Deny,
                rollout: Rollout::default(),
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

    fn tty_rule(patterns: &[&str]) -> Rule {
        Rule {
            ttys: Some(
                patterns
                    .iter()
                    .map(|p| TtyPattern::parse(p).unwrap())
                    .collect(),
            ),
            from: None,
            ..rule(&[], Action::Skip)
        }
    }

    /// Whether `patterns` match a login whose PAM_TTY is `tty`.
    fn tty_matches(patterns: &[&str], tty: Option<&str>) -> bool {
        let remote = Remote::Local;
        let subject = Subject {
            user: "root",
            remote: &remote,
            service: "login",
            tty,
            groups: &NONE,
        };
        tty_rule(patterns).matches(&subject)
    }

    /// The break-glass pattern: the virtual consoles, as login sets
    /// PAM_TTY ("tty1") and as a program that keeps /dev/ does; never a
    /// pseudo-terminal, a serial line, sshd's "ssh"/"NODEVssh", nor a
    /// login without PAM_TTY.
    #[test]
    fn ttys_match_the_console_and_nothing_else() {
        let console = ["tty[0-9]*"];
        for tty in ["tty1", "tty12", "/dev/tty1", "/dev/tty63"] {
            assert!(tty_matches(&console, Some(tty)), "{tty}");
        }
        for tty in [
            "ssh",
            "NODEVssh",
            "pts/0",
            "/dev/pts/3",
            "ttyS0",
            "/dev/ttyS0",
            "tty",
            "TTY1",
            ":0",
            "/tty1",
            "dev/tty1",
            "/dev//tty1",
            "tty1/../pts/3",
            "",
            "/dev/",
        ] {
            assert!(!tty_matches(&console, Some(tty)), "{tty:?}");
        }
        assert!(!tty_matches(&console, None), "unset PAM_TTY");
    }

    /// No wildcard crosses a `/`; `*` alone matches any one name but not an
    /// unset or empty PAM_TTY.
    #[test]
    fn tty_wildcards_stay_within_one_name() {
        assert!(tty_matches(&["pts/*"], Some("/dev/pts/3")));
        assert!(tty_matches(&["pts/?"], Some("pts/3")));
        assert!(!tty_matches(&["pts*"], Some("pts/3")));
        assert!(!tty_matches(&["pts?3"], Some("pts/3")));
        assert!(!tty_matches(&["pts[/]3"], Some("pts/3")));
        assert!(!tty_matches(&["*"], Some("pts/3")));
        assert!(tty_matches(&["*"], Some("tty1")));
        assert!(tty_matches(&["*"], Some("ssh")));
        assert!(!tty_matches(&["*"], None));
        assert!(!tty_matches(&["*"], Some("")));
        assert!(!tty_matches(&["*"], Some("/dev/")));
        assert!(tty_matches(&["tty[!0-9]*"], Some("ttyS0")));
        assert!(!tty_matches(&["tty[!0-9]*"], Some("tty0")));
        // Any pattern of the list.
        assert!(tty_matches(&["ttyS[0-9]*", "tty[0-9]*"], Some("tty2")));
        assert!(tty_matches(&["ttyS[0-9]*", "tty[0-9]*"], Some("ttyS1")));
    }

    #[test]
    fn bad_tty_patterns_are_refused() {
        assert_eq!(TtyPattern::parse("/dev/tty1"), Err(BadTty::Absolute));
        assert_eq!(TtyPattern::parse("**"), Err(BadTty::DoubleStar));
        assert_eq!(TtyPattern::parse("pts/**"), Err(BadTty::DoubleStar));
        assert!(matches!(
            TtyPattern::parse("tty[0-9"),
            Err(BadTty::Syntax(_))
        ));
        assert_eq!(
            TtyPattern::parse("tty[0-9]*").unwrap().as_str(),
            "tty[0-9]*"
        );
    }

    /// A rule with `ttys` and the other conditions: all must hold.
    #[test]
    fn ttys_and_services_together_name_the_console_login() {
        let rules = vec![Rule {
            users: Some(vec!["root".into()]),
            services: Some(vec!["login".into()]),
            ..tty_rule(&["tty[0-9]*"])
        }];
        let decide_tty = |service: &str, tty: Option<&str>, rhost: Option<&str>| {
            let remote = Remote::from_rhost(rhost);
            decide(
                &rules,
                Action::Require,
                &Subject {
                    user: "root",
                    remote: &remote,
                    service,
                    tty,
                    groups: &NONE,
                },
            )
            .rule
        };
        assert_eq!(decide_tty("login", Some("tty1"), None), Some(1));
        // su from a console, or from an ssh session: not the login service.
        assert_eq!(decide_tty("su", Some("tty1"), None), None);
        assert_eq!(decide_tty("su", Some("pts/0"), None), None);
        assert_eq!(decide_tty("sshd", Some("ssh"), Some("203.0.113.9")), None);
        assert_eq!(decide_tty("login", None, None), None);
    }

    #[test]
    fn first_match_wins_and_all_conditions_must_hold() {
        let rules = vec![
            Rule {
                from: None,
                users: None,
                groups: None,
                services: Some(vec!["su".into()]),
                ttys: None,
                otp: Action::Skip,
                rollout: Rollout::default(),
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

    /// The same answers as ipnet's own parser (the one used before), for
    /// well-formed and malformed text alike, IPv4-mapped networks then
    /// taken as IPv4 (or refused below /96).
    #[test]
    fn source_parsing_agrees_with_ipnet() {
        let reference = |t: &str| -> Option<Source> {
            let t = t.trim();
            if t == "local" {
                return Some(Source::Local);
            }
            let net = match t.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => IpNet::from(t.parse::<IpAddr>().ok()?),
            };
            let net = match net {
                IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
                    Some(v4) => IpNet::new(IpAddr::V4(v4), n.prefix_len().checked_sub(96)?).ok()?,
                    None => net,
                },
                IpNet::V4(_) => net,
            };
            Some(Source::Net(net.trunc()))
        };
        let mut cases: Vec<String> = [
            "local",
            " local ",
            "10.0.0.0/8",
            "10.1.2.3/8",
            "10.1.2.3",
            "0.0.0.0/0",
            "::/0",
            "fd00::/8",
            "fe80::1%eth0/64",
            "::ffff:10.1.2.3/128",
            "::ffff:10.1.2.3",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0/08",
            "10.0.0.0/008",
            "10.0.0.0/0008",
            "10.0.0.0/8/8",
            "10.0.0.0 /8",
            "10.0.0.0/ 8",
            "10.0.0/8",
            "1.2.3.4.5",
            "[::1]",
            "[::1]/128",
            "example.org",
            "",
            " ",
            "10.0.0.0/8\n",
            "１.２.３.４",
            "10.0.0.0/256",
            "2001:db8::/32",
            "2001:db8:::/32",
            "::1/128",
            "1:2:3:4:5:6:7:8/64",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // And every prefix length, with and without host bits.
        for len in 0..=130 {
            cases.push(format!("10.20.30.40/{len}"));
            cases.push(format!("2001:db8::dead:beef/{len}"));
            cases.push(format!("::ffff:10.20.30.40/{len}"));
        }
        for c in &cases {
            assert_eq!(Source::parse(c), reference(c), "{c:?}");
        }
        // One deliberate difference: ipnet took "010.0.0.0/8" as 10/8 (but
        // "010.0.0.1" alone not at all). A leading zero is octal to
        // inet_aton (010 = 8), so std refuses it everywhere, and so do we:
        // the config fails closed, naming the rule.
        assert!(reference("010.0.0.0/8").is_some());
        assert_eq!(Source::parse("010.0.0.0/8"), None);
        assert_eq!(Source::parse("010.0.0.1"), None);
    }

    /// The fast path for plain IPv4 gives the general parser's answer or
    /// none at all, and it takes every network written plainly.
    #[test]
    fn fast_ipv4_path_agrees_with_the_general_parser() {
        let mut cases: Vec<String> = Vec::new();
        // Every string of up to 6 characters over digits, dots and a slash.
        let alphabet = ['0', '1', '2', '5', '9', '.', '/'];
        let mut level = vec![String::new()];
        for _ in 0..6 {
            level = level
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            cases.extend(level.iter().cloned());
        }
        // Octets at and around every limit, in the first and last places,
        // with every kind of prefix, and what may not follow a network.
        let octets = [
            "0", "00", "01", "000", "001", "010", "099", "1", "9", "10", "99", "100", "199", "200",
            "249", "250", "255", "256", "299", "300", "999", "1000", "", "+1", "-1", "1a",
        ];
        let prefixes = [
            "", "/", "/0", "/00", "/08", "/8", "/24", "/32", "/33", "/99", "/100", "/1a", "/+8",
            "/-8", "/8/8", " ", "\n", "\r", "#", "x", ".",
        ];
        for a in octets {
            for d in octets {
                for mid in ["0.0", "1.255", "256.1"] {
                    for p in prefixes {
                        cases.push(format!("{a}.{mid}.{d}{p}"));
                    }
                }
            }
        }
        let mut fast = 0;
        for c in &cases {
            assert_eq!(Source::parse_net(c), Source::parse_net_general(c), "{c:?}");
            let plain = c
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'/');
            match plain_ipv4_net(c.as_bytes()) {
                Some((net, [])) => {
                    assert_eq!(Source::parse_net_general(c), Ok(IpNet::V4(net)), "{c:?}");
                    fast += 1;
                }
                _ => assert!(
                    !plain || !matches!(Source::parse_net_general(c), Ok(IpNet::V4(_))),
                    "{c:?} is plain IPv4 but left to the general parser"
                ),
            }
        }
        assert!(fast > 1000, "only {fast} cases took the fast path");
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

    /// PAM_RHOST's IPv4-mapped addresses are normalised to IPv4, so a
    /// rule's IPv4-mapped network is too (it used to stay IPv6 and match
    /// nothing). One with a prefix below 96 also covers addresses that are
    /// not mapped: refused, with its own reason.
    #[test]
    fn ipv4_mapped_networks_are_ipv4_networks() {
        for (mapped, v4) in [
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:10.1.2.3/104", "10.0.0.0/8"),
            ("::ffff:0.0.0.0/96", "0.0.0.0/0"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::FFFF:192.168.0.0/112", "192.168.0.0/16"),
            ("::ffff:10.1.2.3/128", "10.1.2.3/32"),
            ("::ffff:10.1.2.3", "10.1.2.3"),
            ("::ffff:a01:203", "10.1.2.3"),
        ] {
            assert_eq!(Source::parse(mapped), Source::parse(v4), "{mapped}");
            assert!(Source::parse(v4).is_some());
        }
        for below in ["::ffff:0:0/95", "::ffff:10.0.0.0/64", "::ffff:1.2.3.4/0"] {
            assert_eq!(
                Source::try_parse(below),
                Err(BadSource::MappedPrefix),
                "{below}"
            );
        }
        // Networks that merely contain the mapped range keep meaning IPv6.
        assert!(matches!(
            Source::parse("::/0"),
            Some(Source::Net(IpNet::V6(_)))
        ));
        assert!(matches!(
            Source::parse("::fffe:0:0/95"),
            Some(Source::Net(IpNet::V6(_)))
        ));
        let rules = vec![rule(&["::ffff:10.0.0.0/104"], Action::Skip)];
        for (rhost, hit) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("[::ffff:10.255.0.1]", true),
            ("11.1.2.3", false),
            ("::ffff:11.1.2.3", false),
            ("::a01:203", false),
        ] {
            let d = decide_for(&rules, "u", Some(rhost), "sshd", &NONE);
            assert_eq!(d.rule.is_some(), hit, "{rhost}");
        }
    }

    #[test]
    fn address_families_never_cross() {
        let mapped: std::net::Ipv6Addr = "::ffff:1.2.3.4".parse().unwrap();
        // Built by hand: from_rhost would have made it IPv4.
        let raw_mapped = Remote::Addr(IpAddr::V6(mapped));
        let v4 = Remote::from_rhost(Some("1.2.3.4"));
        let at = |rules: &[Rule], remote: &Remote| {
            decide(
                rules,
                Action::Require,
                &Subject {
                    user: "u",
                    remote,
                    service: "sshd",
                    tty: None,
                    groups: &NONE,
                },
            )
            .rule
        };
        let any_v6 = vec![rule(&["::/0"], Action::Skip)];
        assert_eq!(at(&any_v6, &v4), None);
        assert_eq!(at(&any_v6, &raw_mapped), Some(1));
        let any_v4 = vec![rule(&["0.0.0.0/0"], Action::Skip)];
        assert_eq!(at(&any_v4, &v4), Some(1));
        assert_eq!(at(&any_v4, &raw_mapped), None);
        // Written as IPv4-mapped, a network is IPv4's.
        let mapped_net = vec![rule(&["::ffff:0:0/96"], Action::Skip)];
        assert_eq!(at(&mapped_net, &v4), Some(1));
        assert_eq!(at(&mapped_net, &raw_mapped), None);
    }

    /// Group membership that records what it was asked, in order.
    struct Asked {
        member: Vec<&'static str>,
        log: std::cell::RefCell<Vec<String>>,
    }

    impl Groups for Asked {
        fn contains(&self, group: &str) -> bool {
            self.log.borrow_mut().push(group.to_string());
            self.member.contains(&group)
        }
    }

    /// Groups cost NSS look-ups: they are asked only of rules whose other
    /// conditions hold, in rule order, and never past the deciding rule.
    #[test]
    fn groups_are_asked_last_and_only_as_far_as_needed() {
        let with_groups = |from: &[&str], users: Option<&str>, group: &str, otp| Rule {
            from: nets(from),
            users: users.map(|u| vec![u.to_string()]),
            groups: Some(vec![group.to_string()]),
            services: None,
            ttys: None,
            otp,
            rollout: Rollout::default(),
        };
        let rules = vec![
            with_groups(&["192.168.0.0/16"], None, "g-wrong-net", Action::Deny),
            with_groups(&["10.0.0.0/8"], Some("bob"), "g-wrong-user", Action::Deny),
            with_groups(&["10.0.0.0/8"], None, "g-not-member", Action::Deny),
            with_groups(&["10.0.0.0/8"], None, "staff", Action::Skip),
            with_groups(&["10.0.0.0/8"], None, "g-past-the-match", Action::Deny),
        ];
        let asked = Asked {
            member: vec!["staff"],
            log: Default::default(),
        };
        let remote = Remote::from_rhost(Some("10.1.2.3"));
        let d = decide(
            &rules,
            Action::Require,
            &Subject {
                user: "alice",
                remote: &remote,
                service: "sshd",
                tty: None,
                groups: &asked,
            },
        );
        assert_eq!(
            d,
            Decision {
                action: Action::Skip,
                rule: Some(4)
            }
        );
        assert_eq!(*asked.log.borrow(), ["g-not-member", "staff"]);
    }

    #[test]
    fn ten_thousand_rules() {
        const N: u32 = 10_000;
        let rules: Vec<Rule> = (0..N)
            .map(|i| Rule {
                from: Some(vec![
                    Source::Net(IpNet::from(IpAddr::V4((0x0a00_0000 + i).into()))),
                    Source::Net(IpNet::from(IpAddr::V6(
                        ((0x2001_0db8u128 << 96) + u128::from(i)).into(),
                    ))),
                ]),
                users: None,
                groups: None,
                services: None,
                ttys: None,
                otp: if i + 1 == N {
                    Action::Skip
                } else {
                    Action::Deny
                },
                rollout: Rollout::default(),
            })
            .collect();
        let at = |rhost: &str| {
            decide(
                &rules,
                Action::Require,
                &Subject {
                    user: "u",
                    remote: &Remote::from_rhost(Some(rhost)),
                    service: "sshd",
                    tty: None,
                    groups: &NONE,
                },
            )
        };
        let last = Decision {
            action: Action::Skip,
            rule: Some(10_000),
        };
        assert_eq!(at("10.0.39.15"), last);
        assert_eq!(at("::ffff:10.0.39.15"), last);
        assert_eq!(at("2001:db8::270f"), last);
        assert_eq!(at("10.0.0.0").rule, Some(1));
        let default = Decision {
            action: Action::Require,
            rule: None,
        };
        assert_eq!(at("10.0.39.16"), default);
        assert_eq!(at("2001:db8::2710"), default);
        assert_eq!(at("gw.example.org"), default);
    }

    #[test]
    fn ten_thousand_rules_from_the_config() {
        let mut text = String::new();
        for i in 0..10_000u32 {
            let [_, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
            text.push_str(&format!(
                "[[rule]]\nfrom = [\"10.{b}.{c}.{d}/32\"]\notp = \"deny\"\n"
            ));
        }
        text.push_str("[[rule]]\nfrom = [\"local\"]\notp = \"skip\"\n");
        assert!(text.len() < crate::config::MAX_CONFIG_SIZE as usize);
        let cfg = crate::config::Config::parse(&text).unwrap();
        assert_eq!(cfg.rules.len(), 10_001);
        let at = |rhost| decide_for(&cfg.rules, "u", rhost, "sshd", &NONE).rule;
        assert_eq!(at(Some("10.0.39.15")), Some(10_000));
        assert_eq!(at(None), Some(10_001));
        assert_eq!(at(Some("10.0.39.16")), None);
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
