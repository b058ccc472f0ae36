//! Where a login comes from, as `PAM_RHOST` tells it.

use std::net::IpAddr;

/// The remote end of a login, normalised for rule matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// `PAM_RHOST` unset or empty: a console, `su`, a local service.
    Local,
    /// An address. IPv4-mapped IPv6 (`::ffff:10.1.2.3`) is stored as IPv4.
    Addr(IpAddr),
    /// Anything else, such as a host name from sshd with `UseDNS yes`.
    /// A name is not an address: it matches no CIDR.
    Host(String),
}

impl Remote {
    /// Normalises `PAM_RHOST`: surrounding brackets (`[::1]`), a `%zone`
    /// suffix (`fe80::1%eth0`) and IPv4-mapped IPv6 are handled.
    ///
    /// Only unset or empty is local. Nothing is trimmed: whitespace is not
    /// an absent host (a `from = ["local"]` skip rule must not match it),
    /// and an address with whitespace around it is not an address either;
    /// both are kept as text that matches no rule.
    pub fn from_rhost(rhost: Option<&str>) -> Remote {
        let Some(raw) = rhost.filter(|s| !s.is_empty()) else {
            return Remote::Local;
        };
        let unbracketed = raw
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(raw);
        let without_zone = match unbracketed.split_once('%') {
            // Only an IPv6 address carries a zone.
            Some((addr, _zone)) if addr.contains(':') => addr,
            _ => unbracketed,
        };
        match without_zone.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Remote::Addr(IpAddr::V4(v4)),
                None => Remote::Addr(IpAddr::V6(v6)),
            },
            Ok(addr) => Remote::Addr(addr),
            Err(_) => Remote::Host(raw.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Remote {
        Remote::Addr(s.parse().unwrap())
    }

    #[test]
    fn unset_or_empty_is_local() {
        assert_eq!(Remote::from_rhost(None), Remote::Local);
        assert_eq!(Remote::from_rhost(Some("")), Remote::Local);
    }

    /// The SPEC's "local" is `PAM_RHOST` unset or empty, nothing else:
    /// whitespace is not an absent host, and an address with whitespace
    /// around it is not the address (sshd never sends either).
    #[test]
    fn whitespace_is_neither_local_nor_an_address() {
        for s in [
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\u{a0}",
            "\u{3000}",
            "\u{2028}",
            " 10.1.2.3",
            "10.1.2.3 ",
            "\t::1\n",
            " [::1] ",
        ] {
            assert_eq!(
                Remote::from_rhost(Some(s)),
                Remote::Host(s.to_string()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(Remote::from_rhost(Some("10.1.2.3")), addr("10.1.2.3"));
        assert_eq!(
            Remote::from_rhost(Some("::ffff:10.1.2.3")),
            addr("10.1.2.3")
        );
        assert_eq!(
            Remote::from_rhost(Some("[::ffff:10.1.2.3]")),
            addr("10.1.2.3")
        );
        assert_eq!(
            Remote::from_rhost(Some("[2001:db8::1]")),
            addr("2001:db8::1")
        );
        assert_eq!(Remote::from_rhost(Some("fe80::1%eth0")), addr("fe80::1"));
        assert_eq!(
            Remote::from_rhost(Some("[fe80::1%25eth0]")),
            addr("fe80::1")
        );
        assert_eq!(Remote::from_rhost(Some("::1")), addr("::1"));
    }

    #[test]
    fn names_and_junk_are_hosts() {
        for s in [
            "localhost",
            "gw.example.org",
            "10.1.2",
            "10.1.2.3.4",
            "1.2.3.4%eth0",
            "[10.0.0.1",
            "%",
        ] {
            assert!(
                matches!(Remote::from_rhost(Some(s)), Remote::Host(_)),
                "{s}"
            );
        }
    }
}
