//! The vendor token inventory (root only): hardware tokens as vendors ship
//! their seeds, before an admin assigns one to a user.
//!
//! Where the inventory is kept (tokens.toml under `state_dir`, or the
//! fleet database), its lock and the reading and writing of its entries
//! are otp-core's, behind the admin seam (`otp_core::store::inventory`);
//! what vendor files hold is the library's (`otp_enroll::vendor`). Nothing
//! here is linked into pam_otp.so. [`Inventory`] is otp-core's with one
//! addition: its `save` notes what changed for the audit log
//! (`crate::audit`), so no command that changes the inventory can leave
//! that out.

use otp_core::config::Config;
use otp_core::store::inventory as core;
pub use otp_core::store::inventory::{
    is_root, Entry, HardwareToken, InventoryError, MAX_ENTRIES, NOT_ROOT,
};

use crate::audit::{self, InventoryChange, Note};

/// A vendor file (PSKC or CSV, read by `otp_enroll::vendor`) is refused
/// past this.
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

/// The inventory, locked until dropped (`otp_core`'s, noting its changes).
pub struct Inventory {
    inner: core::Inventory,
    /// The entries as read (or last saved).
    before: Vec<Entry>,
}

impl Inventory {
    pub fn open(cfg: &Config) -> Result<Inventory, InventoryError> {
        let inner = core::Inventory::open(cfg)?;
        let before = inner.entries().to_vec();
        Ok(Inventory { inner, before })
    }

    pub fn exists(cfg: &Config) -> bool {
        core::Inventory::exists(cfg)
    }

    pub fn path(&self) -> &std::path::Path {
        self.inner.path()
    }

    pub fn entries(&self) -> &[Entry] {
        self.inner.entries()
    }

    pub fn find(&self, serial: &str) -> Option<&Entry> {
        self.inner.find(serial)
    }

    pub fn find_mut(&mut self, serial: &str) -> Option<&mut Entry> {
        self.inner.find_mut(serial)
    }

    pub fn put(&mut self, entry: Entry) {
        self.inner.put(entry)
    }

    pub fn remove(&mut self, serial: &str) -> bool {
        self.inner.remove(serial)
    }

    /// Saves (`otp_core`'s `save`), then notes every entry that changed.
    pub fn save(&mut self) -> Result<(), InventoryError> {
        self.inner.save()?;
        let after = self.inner.entries().to_vec();
        for n in changes(&self.before, &after) {
            audit::note(n);
        }
        self.before = after;
        Ok(())
    }
}

/// What became of each entry between two versions of the inventory.
pub fn changes(before: &[Entry], after: &[Entry]) -> Vec<Note> {
    let find = |list: &[Entry], serial: &str| -> Option<Entry> {
        list.iter().find(|e| e.token.serial == serial).cloned()
    };
    let mut out = Vec::new();
    let mut push = |change, serial: &str, user: Option<&String>| {
        out.push(Note::Inventory {
            change,
            serial: serial.to_string(),
            user: user.cloned(),
        })
    };
    for b in before {
        if find(after, &b.token.serial).is_none() {
            push(InventoryChange::Removed, &b.token.serial, None);
        }
    }
    for a in after {
        let serial = &a.token.serial;
        match find(before, serial) {
            None => push(InventoryChange::Imported, serial, None),
            Some(b) if b == *a => {}
            Some(b) => match (&b.assigned_to, &a.assigned_to) {
                (None, Some(u)) => push(InventoryChange::Assigned, serial, Some(u)),
                (Some(u), None) => push(InventoryChange::Returned, serial, Some(u)),
                // Re-assigned in one step: back from one, to the other.
                (Some(from), Some(to)) if from != to => {
                    push(InventoryChange::Returned, serial, Some(from));
                    push(InventoryChange::Assigned, serial, Some(to));
                }
                (_, user) => push(InventoryChange::Replaced, serial, user.as_ref()),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::otp::Algorithm;
    use otp_core::secret_file::OtpKind;

    fn entry(serial: &str, user: Option<&str>, counter: u64) -> Entry {
        Entry {
            token: HardwareToken {
                serial: serial.into(),
                kind: OtpKind::Hotp,
                key: vec![1; 20],
                algorithm: Algorithm::SHA1,
                digits: 6,
                period: 30,
                counter,
                not_before: None,
                expires: None,
            },
            imported: 1,
            source: "f.csv".into(),
            assigned_to: user.map(String::from),
        }
    }

    #[test]
    fn every_kind_of_change_is_named() {
        let before = [
            entry("GONE", None, 0),
            entry("GIVE", None, 0),
            entry("BACK", Some("bob"), 3),
            entry("SAME", Some("al"), 0),
            entry("NEWSEED", None, 0),
        ];
        let mut newseed = entry("NEWSEED", None, 0);
        newseed.token.key = vec![2; 20];
        let after = [
            entry("GIVE", Some("al"), 5),
            entry("BACK", None, 9),
            entry("SAME", Some("al"), 0),
            newseed,
            entry("NEW", None, 0),
        ];
        let got: Vec<(InventoryChange, String, Option<String>)> = changes(&before, &after)
            .into_iter()
            .map(|n| match n {
                Note::Inventory {
                    change,
                    serial,
                    user,
                } => (change, serial, user),
                other => panic!("{other:?}"),
            })
            .collect();
        let al = Some("al".to_string());
        assert_eq!(
            got,
            [
                (InventoryChange::Removed, "GONE".into(), None),
                (InventoryChange::Assigned, "GIVE".into(), al),
                (InventoryChange::Returned, "BACK".into(), Some("bob".into())),
                (InventoryChange::Replaced, "NEWSEED".into(), None),
                (InventoryChange::Imported, "NEW".into(), None),
            ]
        );
    }
}
