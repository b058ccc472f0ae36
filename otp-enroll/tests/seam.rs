//! otp-enroll reaches every store through otp-core's admin seam
//! (`otp_core::store::admin` and `AdminStore` for a user's record,
//! `store::inventory::Inventory` for the vendor inventory): no concrete
//! store type, no file access of its own (`safe_fs`), no database
//! connection of its own (`otp_core::pq`). Issue 28 found all three in
//! otp-enroll/src (an `enum Backend { File, Db }`, six detours into
//! safe_fs, a second file-or-database seam for the inventory); this test
//! keeps them from coming back.

use std::fs;
use std::path::{Path, PathBuf};

/// Names that only one file of otp-enroll/src may use, and why: the one
/// way to a store that records its changes, the one way to the inventory.
const ONLY_IN: &[(&str, &str, &str)] = &[
    (
        "store::admin",
        "audit.rs",
        "a store that records its changes in the audit log: crate::audit::admin",
    ),
    (
        "store::inventory",
        "inventory/mod.rs",
        "the inventory that records its changes in the audit log: crate::inventory::Inventory",
    ),
];

/// The names otp-enroll/src must not use, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        "safe_fs",
        "files are the store's to read and write: an AdminStore method, or Account::read_own_file",
    ),
    ("otp_core::pq", "the database is the store's to reach"),
    ("FileStore", "a concrete store: hold a dyn AdminStore"),
    ("PgHost", "a concrete store (the host role's)"),
    ("PgAdmin", "a concrete store: hold a dyn AdminStore"),
    ("PgStore", "a concrete store"),
    (
        "PgAudit",
        "a concrete store: store::audit_log, store::record_change or AdminStore::record_change",
    ),
    ("Backend", "a file-or-database seam of otp-enroll's own"),
];

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Where `text`, the file `file` of otp-enroll/src, uses a forbidden
/// name as a whole word: (line, name, why).
fn offenders_in(file: &str, text: &str) -> Vec<(usize, &'static str, &'static str)> {
    let only: Vec<(&str, &str)> = ONLY_IN
        .iter()
        .filter(|(_, owner, _)| *owner != file)
        .map(|(name, _, why)| (*name, *why))
        .collect();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for &(name, why) in FORBIDDEN.iter().chain(&only) {
            let whole = line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                !before.is_some_and(ident) && !after.is_some_and(ident)
            });
            if whole {
                found.push((n + 1, name, why));
            }
        }
    }
    found
}

fn offenders(text: &str) -> Vec<(usize, &'static str, &'static str)> {
    offenders_in("", text)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn otp_enroll_names_no_store_type_and_no_safe_fs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 10,
        "otp-enroll/src has {} .rs files?",
        files.len()
    );
    let mut report = String::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().to_str().unwrap();
        for (line, name, why) in offenders_in(rel, &fs::read_to_string(file).unwrap()) {
            report.push_str(&format!(
                "{}:{line}: {name}: {why}\n",
                file.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "otp-enroll/src goes around the store seam (otp_core::store):\n{report}"
    );
}

/// The check itself, so that it cannot quietly stop finding anything.
#[test]
fn the_check_finds_what_it_forbids_and_only_that() {
    let bad = "use otp_core::safe_fs::{self, FsError};\n\
               let s = otp_core::store::FileStore::new(&c, &a, None);\n\
               enum Backend { File(FileStore), Db(PgAdmin) }\n\
               use otp_core::pq::Connection;\n";
    let names: Vec<&str> = offenders(bad).iter().map(|(_, n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "safe_fs",
            "FileStore",
            "FileStore",
            "PgAdmin",
            "Backend",
            "otp_core::pq"
        ]
    );
    let fine = "use otp_core::store::{self, AdminStore, FsError};\n\
                let s = crate::audit::admin(&cfg, &account, None); // a Backends list\n\
                let unsafe_fs_name = 1;\n";
    assert_eq!(offenders(fine), []);
    // The one way to a store, and to the inventory: in their own file only.
    let direct = "let s = store::admin(&cfg, &account, None);\n\
                  use otp_core::store::inventory::Inventory;\n";
    let names: Vec<&str> = offenders(direct).iter().map(|(_, n, _)| *n).collect();
    assert_eq!(names, ["store::admin", "store::inventory"]);
    assert_eq!(offenders_in("audit.rs", "store::admin(&c, &a, None)"), []);
    assert_eq!(
        offenders_in(
            "inventory/mod.rs",
            "use otp_core::store::inventory as core;"
        ),
        []
    );
}
