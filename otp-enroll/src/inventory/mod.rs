//! The vendor token inventory (root only): hardware tokens as vendors ship
//! their seeds, before an admin assigns one to a user.
//!
//! Where the inventory is kept (tokens.toml under `state_dir`, or the
//! fleet database), its lock and the reading and writing of its entries
//! are otp-core's, behind the admin seam (`otp_core::store::inventory`);
//! here are the vendor files' parsers (PSKC in `pskc.rs`, CSV in
//! `csv.rs`) and what they give. Nothing here is linked into pam_otp.so.

pub mod csv;
pub mod pskc;

pub use otp_core::store::inventory::{
    is_root, Entry, HardwareToken, Inventory, InventoryError, MAX_ENTRIES, NOT_ROOT,
};

/// A vendor file (PSKC or CSV) is refused past this.
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;

/// An entry of a vendor file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The serial, or where the entry is when it has none.
    pub what: String,
    pub why: String,
    /// The entry's serial, when it has one (a serial twice in a file
    /// refuses both entries, also when one of them is skipped anyway).
    pub serial: Option<String>,
}

/// What a vendor file holds.
#[derive(Debug, Default)]
pub struct Parsed {
    pub tokens: Vec<HardwareToken>,
    pub skipped: Vec<Skipped>,
    /// Whether the file had encrypted values (PSKC).
    pub encrypted: bool,
}
