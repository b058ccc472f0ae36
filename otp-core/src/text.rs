//! Left only for log.rs (`push_decimal`) and rules.rs (`push_unsigned`),
//! which are not this module's to change: they can use `write!` as these
//! do, and then this module goes.

use std::fmt::Write;

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut String, value: i64) {
    let _ = write!(out, "{value}");
}

/// Appends `value` in decimal.
pub fn push_unsigned(out: &mut String, value: u64) {
    let _ = write!(out, "{value}");
}
