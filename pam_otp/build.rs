//! Two link-time choices that make loading the module cheaper; sshd loads
//! it afresh for every login (doc/performance.md has the figures).
//!
//! 1. The unwinder is linked statically (what `gcc -static-libgcc` does for
//!    C++ shared libraries), so that loading the module does not also load
//!    `libgcc_s.so.1`.
//!
//! Why: sshd does not link libgcc_s, so a Rust module that needs it makes
//! the dynamic loader map and relocate a whole second library at every
//! login, about a third of what loading the module costs. The module still
//! unwinds (a panic must become `PAM_SYSTEM_ERR`, never an abort of sshd):
//! the same unwinder code, from gcc's `libgcc_eh.a`, lives inside the
//! module, hidden (the cdylib exports only the `pam_sm_*` entry points).
//! Tested through the real libpam by
//! `it_hostile::a_panic_in_the_module_is_system_err`.
//!
//! How: `+whole-archive` puts the unwinder's objects in ahead of std's
//! `-lgcc_s`, which the linker (`--as-needed`) then drops as unneeded.
//! Where gcc has no `libgcc_eh.a` (another toolchain or target), nothing is
//! changed and the module links libgcc_s as before.
//!
//! 2. Relative relocations are packed (`-z pack-relative-relocs`, DT_RELR,
//!    glibc 2.36 / Debian 12 and later): the loader applies the module's
//!    pointer fix-ups a bitmap word at a time instead of one 24-byte record
//!    each. ld then adds a GLIBC_ABI_DT_RELR version need, so an older glibc
//!    refuses the module with a clear error instead of misloading it. The
//!    flag is used only if a probe (a shared object with one relative
//!    relocation, built with the same compiler, linker and C library) links
//!    with it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if !linux_gnu {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    static_unwinder(&cc);
    packed_relocations(&cc);
}

/// Whether `cc` links an empty shared object with the linker flag `flag`.
fn linker_accepts(cc: &str, flag: &str) -> bool {
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let src = out_dir.join("probe.c");
    // A pointer to a variable: one relative relocation, so that packing
    // them (and glibc's GLIBC_ABI_DT_RELR version) is really exercised.
    let probe = "int pam_otp_probe;\nint *pam_otp_probe_ptr = &pam_otp_probe;\n";
    if std::fs::write(&src, probe).is_err() {
        return false;
    }
    Command::new(cc)
        .args(["-shared", "-fPIC", flag, "-o"])
        .arg(out_dir.join("probe.so"))
        .arg(&src)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn packed_relocations(cc: &str) {
    let flag = "-Wl,-z,pack-relative-relocs";
    if linker_accepts(cc, flag) {
        println!("cargo:rustc-cdylib-link-arg={flag}");
    }
}

fn static_unwinder(cc: &str) {
    let found = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| PathBuf::from(s.trim()))
        // gcc answers the bare name when it has no such file.
        .filter(|p| p.is_absolute() && p.is_file());
    match found.as_deref().and_then(|p| p.parent()) {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
        }
        None => println!(
            "cargo:warning=libgcc_eh.a not found with {cc}: the module will need libgcc_s.so.1"
        ),
    }
}
