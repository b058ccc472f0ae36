//! `grace_period`: after a code was accepted for a user from an address,
//! that user's logins from the same address need no code for a while
//! (google-authenticator-libpam's option of the same name).
//!
//! What is remembered is kept with the user's tokens (`State::grace`), so
//! it is as safe as they are: in the user's own file under `store = "home"`
//! (where the user could read the key anyway), out of the user's reach
//! under `store = "system"`. Only IP addresses count: a host name (sshd's
//! `UseDNS yes`) is whatever the client's reverse DNS says, and a local
//! login has no address to tell one place from another. A login let in by
//! the grace period does not extend it: only a code does.
//!
//! Grace holds only for the PAM service the code was accepted for: a code
//! typed into OpenVPN does not skip the code for sshd from the same
//! address (the services may stand for different trust, and one of them
//! may see codes the other's users never typed there). An entry written
//! before entries named their service counts as expired. Under
//! `store = "postgresql"` the database decides instead, with its own
//! period and clock (`otp-core/sql/schema.sql`, `grace_at_at`).
//!
//! The list is bounded: expired entries are dropped whenever one is
//! added, and past [`MAX_GRACE`] addresses the oldest goes.

use std::net::IpAddr;

use crate::remote::Remote;
use crate::secret_file::{Grace, State, MAX_GRACE};

/// The address a grace entry is kept under, if the login has one.
pub fn address(remote: &Remote) -> Option<IpAddr> {
    match remote {
        Remote::Addr(addr) => Some(*addr),
        Remote::Local | Remote::Host(_) => None,
    }
}

/// Whether `service` can be kept with an entry (the secret file's check:
/// 1 to 64 characters, none a control character). A service that cannot
/// gets no grace.
fn keepable(service: &str) -> bool {
    !service.is_empty() && service.len() <= 64 && !service.chars().any(char::is_control)
}

/// When a code was last accepted from `from` for `service`, if that was
/// less than `period` seconds before `now` (and not in the future: a
/// clock set back must not stretch the period).
#[must_use]
pub fn granted_at(
    state: &State,
    from: IpAddr,
    service: &str,
    period: u64,
    now: u64,
) -> Option<u64> {
    if period == 0 {
        return None;
    }
    let from = from.to_string();
    state
        .grace
        .iter()
        .filter(|g| {
            g.from == from
                && g.service.as_deref() == Some(service)
                && g.at <= now
                && now - g.at < period
        })
        .map(|g| g.at)
        .max()
}

/// Records that a code was accepted from `from` for `service` at `now`:
/// replaces that address's entry for the service, drops the expired ones
/// (and those of no service), and keeps the newest [`MAX_GRACE`].
pub fn record(state: &mut State, from: IpAddr, service: &str, period: u64, now: u64) {
    let from = from.to_string();
    state.grace.retain(|g| {
        g.service.is_some()
            && !(g.from == from && g.service.as_deref() == Some(service))
            && g.at <= now
            && now - g.at < period
    });
    if !keepable(service) {
        return;
    }
    // First, and a stable sort: among entries of the same second, the one
    // just accepted is the one kept.
    state.grace.insert(
        0,
        Grace {
            from,
            at: now,
            service: Some(service.to_string()),
            by: None,
        },
    );
    state.grace.sort_by_key(|g| std::cmp::Reverse(g.at));
    state.grace.truncate(MAX_GRACE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_same_address_within_the_period_is_granted() {
        let mut st = State::default();
        record(&mut st, ip("203.0.113.7"), "sshd", 300, 1000);
        let at = |from: &str, period: u64, now: u64| granted_at(&st, ip(from), "sshd", period, now);
        assert_eq!(at("203.0.113.7", 300, 1000), Some(1000));
        assert_eq!(at("203.0.113.7", 300, 1299), Some(1000));
        assert_eq!(at("203.0.113.7", 300, 1300), None);
        assert_eq!(at("203.0.113.8", 300, 1001), None);
        assert_eq!(at("203.0.113.7", 0, 1001), None);
        // A clock set back does not stretch the period.
        assert_eq!(at("203.0.113.7", 300, 999), None);
    }

    #[test]
    fn grace_holds_for_the_same_service_only() {
        let mut st = State::default();
        record(&mut st, ip("203.0.113.7"), "openvpn", 300, 1000);
        // D-1 s, D and D+1 s of the period's end, per service.
        for (now, want) in [(1299, Some(1000)), (1300, None), (1301, None)] {
            assert_eq!(
                granted_at(&st, ip("203.0.113.7"), "openvpn", 300, now),
                want,
                "{now}"
            );
            assert_eq!(
                granted_at(&st, ip("203.0.113.7"), "sshd", 300, now),
                None,
                "{now}"
            );
        }
        // A code for sshd from the same address: its own entry, and the
        // openvpn one stays.
        record(&mut st, ip("203.0.113.7"), "sshd", 300, 1100);
        assert_eq!(st.grace.len(), 2);
        assert_eq!(
            granted_at(&st, ip("203.0.113.7"), "sshd", 300, 1101),
            Some(1100)
        );
        assert_eq!(
            granted_at(&st, ip("203.0.113.7"), "openvpn", 300, 1101),
            Some(1000)
        );
        // A service the file could not keep gets no entry (and no grace).
        let long = "x".repeat(65);
        record(&mut st, ip("203.0.113.9"), &long, 300, 1102);
        assert_eq!(granted_at(&st, ip("203.0.113.9"), &long, 300, 1103), None);
        assert_eq!(st.grace.len(), 2);
    }

    #[test]
    fn an_entry_without_a_service_counts_as_expired() {
        // As a module before grace per service wrote it.
        let mut st = State::default();
        st.grace.push(Grace {
            from: "203.0.113.7".into(),
            at: 1000,
            service: None,
            by: None,
        });
        for service in ["sshd", ""] {
            assert_eq!(granted_at(&st, ip("203.0.113.7"), service, 300, 1001), None);
        }
        // And the next record drops it.
        record(&mut st, ip("198.51.100.1"), "sshd", 300, 1001);
        assert_eq!(st.grace.len(), 1);
        assert_eq!(st.grace[0].from, "198.51.100.1");
    }

    #[test]
    fn the_list_is_bounded_and_drops_what_expired() {
        let mut st = State::default();
        for i in 0..100u64 {
            record(
                &mut st,
                ip(&format!("10.0.0.{i}")),
                "sshd",
                10_000,
                1000 + i,
            );
        }
        assert_eq!(st.grace.len(), MAX_GRACE);
        // The newest are kept.
        assert!(granted_at(&st, ip("10.0.0.99"), "sshd", 10_000, 1200).is_some());
        assert!(granted_at(&st, ip("10.0.0.0"), "sshd", 10_000, 1200).is_none());
        // One more after the others expired leaves just it.
        record(&mut st, ip("10.0.1.1"), "sshd", 10, 50_000);
        assert_eq!(st.grace.len(), 1);
        // The same address again replaces its entry.
        record(&mut st, ip("10.0.1.1"), "sshd", 10, 50_005);
        assert_eq!(
            st.grace,
            vec![Grace {
                from: "10.0.1.1".into(),
                at: 50_005,
                service: Some("sshd".into()),
                by: None,
            }]
        );
    }

    #[test]
    fn only_addresses_count() {
        assert_eq!(address(&Remote::Local), None);
        assert_eq!(address(&Remote::from_rhost(Some("host.example"))), None);
        assert_eq!(
            address(&Remote::from_rhost(Some("::ffff:10.1.2.3"))),
            Some(ip("10.1.2.3"))
        );
    }
}
