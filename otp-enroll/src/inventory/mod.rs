//! The vendor token inventory (root only): hardware tokens as vendors ship
//! their seeds, before an admin assigns one to a user.
//!
//! Where the inventory is kept (tokens.toml under `state_dir`, or the
//! fleet database), its lock and the reading and writing of its entries
//! are otp-core's, behind the admin seam (`otp_core::store::inventory`);
//! what vendor files hold is the library's (`otp_enroll::vendor`). Nothing
//! here is linked into pam_otp.so.

pub use otp_core::store::inventory::{
    is_root, Entry, HardwareToken, Inventory, InventoryError, MAX_ENTRIES, NOT_ROOT,
};

/// A vendor file (PSKC or CSV, read by `otp_enroll::vendor`) is refused
/// past this.
pub const MAX_IMPORT_BYTES: u64 = 16 * 1024 * 1024;
