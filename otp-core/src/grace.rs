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

/// When a code was last accepted from `from`, if that was less than
/// `period` seconds before `now` (and not in the future: a clock set back
/// must not stretch the period).
#[must_use]
pub fn granted_at(state: &State, from: IpAddr, period: u64, now: u64) -> Option<u64> {
    if period == 0 {
        return None;
    }
    let from = from.to_string();
    state
        .grace
        .iter()
        .filter(|g| g.from == from && g.at <= now && now - g.at < period)
        .map(|g| g.at)
        .max()
}

/// Records that a code was accepted from `from` at `now`: replaces that
/// address's entry, drops the expired ones, and keeps the newest
/// [`MAX_GRACE`].
pub fn record(state: &mut State, from: IpAddr, period: u64, now: u64) {
    let from = from.to_string();
    state
        .grace
        .retain(|g| g.from != from && g.at <= now && now - g.at < period);
    // First, and a stable sort: among entries of the same second, the one
    // just accepted is the one kept.
    state.grace.insert(0, Grace { from, at: now });
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
        record(&mut st, ip("203.0.113.7"), 300, 1000);
        assert_eq!(granted_at(&st, ip("203.0.113.7"), 300, 1000), Some(1000));
        assert_eq!(granted_at(&st, ip("203.0.113.7"), 300, 1299), Some(1000));
        assert_eq!(granted_at(&st, ip("203.0.113.7"), 300, 1300), None);
        assert_eq!(granted_at(&st, ip("203.0.113.8"), 300, 1001), None);
        assert_eq!(granted_at(&st, ip("203.0.113.7"), 0, 1001), None);
        // A clock set back does not stretch the period.
        assert_eq!(granted_at(&st, ip("203.0.113.7"), 300, 999), None);
    }

    #[test]
    fn the_list_is_bounded_and_drops_what_expired() {
        let mut st = State::default();
        for i in 0..100u64 {
            record(&mut st, ip(&format!("10.0.0.{i}")), 10_000, 1000 + i);
        }
        assert_eq!(st.grace.len(), MAX_GRACE);
        // The newest are kept.
        assert!(granted_at(&st, ip("10.0.0.99"), 10_000, 1200).is_some());
        assert!(granted_at(&st, ip("10.0.0.0"), 10_000, 1200).is_none());
        // One more after the others expired leaves just it.
        record(&mut st, ip("10.0.1.1"), 10, 50_000);
        assert_eq!(st.grace.len(), 1);
        // The same address again replaces its entry.
        record(&mut st, ip("10.0.1.1"), 10, 50_005);
        assert_eq!(
            st.grace,
            vec![Grace {
                from: "10.0.1.1".into(),
                at: 50_005
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
