//! Privilege: the module runs as root (inside sshd, su, pamtester) but
//! touches a user's files only as that user, never follows a symlink the
//! user planted, and always gives its file-system identity back.
//!
//! The hostile homes here hold symlinks to root-owned files at every name
//! the module might create or touch; the targets live on a small tmpfs
//! mounted with `strictatime`, so even a read of them would show in their
//! access time, and every byte, inode and time of them is compared.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use otp_core::safe_fs::{self, current_fsuid, FsError, FsIdentity, Owner};
use testkit::harness::{
    flock_is_held, fs_ids, holds_flock, hotp_codes, names, snapshot, snapshot_dir, thread_groups,
    RootDir, Snapshot, TmpfsMount,
};
use testkit::{secret_file, PamService, KEY_HEX, NO_RATE_LIMIT, OTP_ONLY};
use testkit::{set_mode, write_mode, TestUser};

const UNAVAILABLE: &str = "Two-factor login is unavailable";

/// The test key's HOTP secret at `counter`, with three emergency codes.
fn hotp_secret(counter: u64) -> String {
    format!(
        "{}scratch_codes = [\"31415926\", \"27182818\", \"16180339\"]\n",
        testkit::hotp_secret(counter)
    )
}

fn pam() -> PamService {
    PamService::named("otp-priv", OTP_ONLY, NO_RATE_LIMIT)
}

/// A directory for files the module must never touch: root-owned, on its
/// own tmpfs mounted with `strictatime` (any read moves the access time).
/// The mount is dropped before the directory.
struct Untouchable {
    mount: Option<TmpfsMount>,
    dir: RootDir,
}

impl Untouchable {
    fn new(tag: &str, mode: u32) -> Untouchable {
        let dir = RootDir::new(tag, mode);
        let mount = TmpfsMount::new(
            &dir.path,
            &format!("size=1m,mode={mode:o},uid=0,gid=0,strictatime"),
        );
        Untouchable {
            mount: Some(mount),
            dir,
        }
    }

    fn path(&self) -> &Path {
        &self.dir.path
    }

    /// A root-owned file here.
    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.path().join(name);
        write_mode(&p, text, mode);
        p
    }
}

impl Drop for Untouchable {
    fn drop(&mut self) {
        self.mount.take();
    }
}

/// The detector works: an ordinary read of a file on the strictatime
/// tmpfs moves its access time, and our snapshot does not.
fn assert_reads_show(dir: &Untouchable) {
    let p = dir.file("control", "control\n", 0o600);
    let before = snapshot(&p);
    assert_eq!(snapshot(&p), before, "snapshots must not touch the atime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let _ = fs::read(&p).unwrap();
    assert_ne!(snapshot(&p).atime, before.atime, "a read moves the atime");
    fs::remove_file(&p).unwrap();
}

/// Every name next to `.pam_otp.toml` a writer might use: lock files,
/// editor and backup names, fixed temp names, and temp names of the
/// writer's own pattern (`.pam_otp.toml.<16 hex>.tmp`)
/// and of the pattern without the leading dot.
fn planted_names() -> Vec<String> {
    let mut v: Vec<String> = [
        ".pam_otp.toml.lock",
        ".pam_otp.toml.tmp",
        ".pam_otp.toml~",
        ".pam_otp.toml.bak",
        ".pam_otp.toml.new",
        ".pam_otp.toml.old",
        ".pam_otp.toml.swp",
        "..pam_otp.toml.tmp",
        "..pam_otp.toml.lock",
    ]
    .map(String::from)
    .to_vec();
    for hex in [
        "0000000000000000",
        "0123456789abcdef",
        "deadbeefcafef00d",
        "ffffffffffffffff",
    ] {
        v.push(format!(".pam_otp.toml.{hex}.tmp"));
        v.push(format!("..pam_otp.toml.{hex}.tmp"));
    }
    v
}

/// Symlinks to root-owned files (0644 and 0600, in a root-only directory)
/// at every name the module might create or touch, then also dangling
/// symlinks into that directory at the same names: logins (right, wrong,
/// replayed, emergency code) work as usual, and nothing outside the home
/// is created, changed, or even read.
#[test]
#[ignore = "needs root: make test"]
fn planted_symlinks_to_root_files_are_never_followed() {
    let user = TestUser::new();
    let path = user.write_secret(&hotp_secret(0));
    let pam = pam();
    let codes = hotp_codes(KEY_HEX, 0, 4);
    let targets = Untouchable::new("rootonly", 0o700);
    assert_reads_show(&targets);

    let mut counter = 0usize;
    for dangling in [false, true] {
        let mut links = BTreeMap::new();
        for (k, name) in planted_names().into_iter().enumerate() {
            let target = if dangling {
                targets.path().join(format!("absent-{k}"))
            } else {
                let mode = if k % 2 == 0 { 0o644 } else { 0o600 };
                targets.file(&format!("target-{k}"), &format!("root's file {k}\n"), mode)
            };
            let link = user.home.join(&name);
            let _ = fs::remove_file(&link);
            symlink(&target, &link).unwrap();
            user.chown(&link);
            links.insert(name, snapshot(&link));
        }
        let outside = snapshot_dir(targets.path());
        let home_names = names(&user.home);

        let right = pam.authenticate(&user.name, None, &format!("{}\n", codes[counter]));
        assert!(right.success, "dangling={dangling}: {right:#?}");
        let wrong = pam.authenticate(&user.name, None, "000000\n");
        assert!(!wrong.success, "{wrong:#?}");
        let replay = pam.authenticate(&user.name, None, &format!("{}\n", codes[counter]));
        assert!(!replay.success, "{replay:#?}");
        let scratch = if dangling { "27182818" } else { "31415926" };
        let emergency = pam.authenticate(&user.name, None, &format!("{scratch}\n"));
        assert!(emergency.success, "{emergency:#?}");
        counter += 1;

        assert_eq!(
            snapshot_dir(targets.path()),
            outside,
            "dangling={dangling}: something outside the home was created, changed or read"
        );
        for (name, before) in &links {
            assert_eq!(
                &snapshot(&user.home.join(name)),
                before,
                "dangling={dangling}: the planted {name} was touched"
            );
        }
        assert_eq!(names(&user.home), home_names, "no new names in the home");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
        assert_eq!(meta.mode() & 0o7777, 0o600);
        let f = secret_file(&path);
        assert_eq!(f.tokens[0].counter, counter as u64);
        assert!(!f.scratch_codes.contains(&scratch.to_string()));
    }
    drop(targets);
}

/// The secret path itself is a symlink: to a valid root-owned secret file
/// (which root could read), and to a valid secret file of the user's own
/// outside the home (which the user could read). Both are refused as
/// unavailable, and neither target is read or changed.
#[test]
#[ignore = "needs root: make test"]
fn a_symlinked_secret_file_is_refused_and_its_target_untouched() {
    let user = TestUser::new();
    let pam = pam();
    let codes = hotp_codes(KEY_HEX, 0, 1);
    // World-searchable, so only the symlink rule stands between the module
    // and the file.
    let theirs = Untouchable::new("rootsecret", 0o755);
    assert_reads_show(&theirs);
    let root_secret = theirs.file("secret.toml", &hotp_secret(0), 0o600);
    // The user's own file elsewhere (their own directory, mode 0700).
    let own = theirs.path().join("users-dir");
    fs::create_dir(&own).unwrap();
    user.chown(&own);
    set_mode(&own, 0o700);
    let own_secret = own.join("secret.toml");
    user.write_owned(&own_secret, hotp_secret(0), 0o600);

    for target in [&root_secret, &own_secret] {
        let link = user.secret_path();
        let _ = fs::remove_file(&link);
        symlink(target, &link).unwrap();
        user.chown(&link);
        let outside: Vec<Snapshot> = [target.as_path(), own.as_path(), theirs.path()]
            .iter()
            .map(|p| snapshot(p))
            .collect();
        let link_before = snapshot(&link);

        let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[0]));
        assert!(
            !run.success,
            "{}: a symlinked secret was used: {run:#?}",
            target.display()
        );
        assert!(run.stderr.contains(UNAVAILABLE), "{run:#?}");

        let after: Vec<Snapshot> = [target.as_path(), own.as_path(), theirs.path()]
            .iter()
            .map(|p| snapshot(p))
            .collect();
        assert_eq!(after, outside, "{}: read or changed", target.display());
        assert_eq!(
            snapshot(&link),
            link_before,
            "the link itself is left alone"
        );
        assert_eq!(secret_file(target).tokens[0].counter, 0);
    }
    drop(theirs);
}

/// Secrets an admin owns are not supported, and fail closed: a root-owned
/// secret file in the home cannot be read as the user, and a secret in a
/// root-owned directory (`secret=/dir/%u.toml`) can be read but not
/// replaced as the user, so its codes cannot be marked used. Either way
/// the login is refused and nothing changes.
#[test]
#[ignore = "needs root: make test"]
fn admin_owned_secrets_fail_closed() {
    let user = TestUser::new();
    let codes = hotp_codes(KEY_HEX, 0, 1);

    let path = user.write_secret(&hotp_secret(0));
    std::os::unix::fs::lchown(&path, Some(0), Some(0)).unwrap();
    let before = snapshot(&path).ignoring_atime();
    let run = pam().authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(!run.success, "{run:#?}");
    assert!(run.stderr.contains(UNAVAILABLE), "{run:#?}");
    assert_eq!(snapshot(&path).ignoring_atime(), before);

    let dir = RootDir::new("admindir", 0o755);
    let file = dir.path.join(format!("{}.toml", user.name));
    user.write_owned(&file, hotp_secret(0), 0o600);
    let stack = format!(
        "auth required {{module}} config={{config}} secret={}/%u.toml\n",
        dir.path.display()
    );
    let pam = PamService::named("otp-priv", &stack, NO_RATE_LIMIT);
    let before = snapshot(&file).ignoring_atime();
    let run = pam.authenticate(&user.name, None, &format!("{}\n", codes[0]));
    assert!(!run.success, "{run:#?}");
    assert!(run.stderr.contains("could not be recorded"), "{run:#?}");
    assert_eq!(snapshot(&file).ignoring_atime(), before);
    assert_eq!(names(&dir.path), [format!("{}.toml", user.name)]);
}

/// safe_fs, called directly as root with a real user as the owner: the
/// thread's file-system uid and gid (4th field of the `Uid:`/`Gid:` lines
/// of /proc/thread-self/status) are the user's during an access and root's
/// again after every call — after open_locked returns while the file is
/// still locked, after a replace, and after every error path.
#[test]
#[ignore = "needs root: make test"]
fn fs_identity_is_the_users_during_access_and_roots_after() {
    let user = TestUser::new();
    let owner = Owner {
        uid: user.uid,
        gid: user.gid,
    };
    let mine = (user.uid, user.gid);
    let root = (0, 0);
    let path = user.write_secret(&hotp_secret(0));
    assert_eq!(fs_ids(), root, "the test runs as root");

    {
        let _id = FsIdentity::assume(owner).unwrap();
        assert_eq!(fs_ids(), mine, "during");
        assert_eq!(current_fsuid(), user.uid);
    }
    assert_eq!(fs_ids(), root, "after FsIdentity is dropped");

    assert!(safe_fs::exists(&path, &user.home, owner).unwrap());
    assert_eq!(fs_ids(), root, "after exists");

    let held = fs::metadata(&path).unwrap();
    // Kept open (unlocked) until the end, so that the inode is not freed
    // after the replace and its number given to a file another test
    // thread of this process locks meanwhile.
    let pin = fs::File::open(&path).unwrap();
    let (locked, bytes) = safe_fs::open_locked(&path, &user.home, owner).unwrap();
    assert_eq!(bytes, hotp_secret(0).as_bytes());
    assert_eq!(
        fs_ids(),
        root,
        "back to root while the file is still locked"
    );
    assert!(
        holds_flock(std::process::id(), &held),
        "open_locked holds the lock"
    );
    locked.replace(hotp_secret(1).as_bytes()).unwrap();
    assert_eq!(fs_ids(), root, "after replace");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        mine,
        "the new file was created with the user's identity"
    );
    assert_eq!(meta.mode() & 0o7777, 0o600);
    drop(locked);
    // Another test thread's fork (before its exec closes our descriptors,
    // which are close-on-exec) may share the locked descriptor for a
    // moment: the lock goes when the last copy closes. How long that
    // moment lasts is up to the scheduler (a forked child starved of CPU
    // before its exec), so the wait ends when the lock goes and fails
    // only if it never does: 30 s.
    let waited = testkit::harness::stopwatch();
    while flock_is_held(&pin) {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "dropping unlocks: still held 30 s later"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(pin);
    assert_eq!(fs_ids(), root);

    // Error paths.
    let link = user.home.join("link");
    symlink(&path, &link).unwrap();
    user.chown(&link);
    assert!(matches!(
        safe_fs::open_locked(&link, &user.home, owner),
        Err(FsError::Symlink)
    ));
    assert_eq!(fs_ids(), root, "after a refused symlink");

    assert!(matches!(
        safe_fs::open_locked(&user.home.join("absent"), &user.home, owner),
        Err(FsError::NotFound)
    ));
    assert_eq!(fs_ids(), root, "after not found");

    let loose = user.home.join("loose");
    user.write_owned(&loose, hotp_secret(0), 0o644);
    assert!(matches!(
        safe_fs::open_locked(&loose, &user.home, owner),
        Err(FsError::Mode { .. })
    ));
    assert_eq!(fs_ids(), root, "after a bad mode");

    assert!(matches!(
        safe_fs::create_new(&path, &user.home, owner, b"x"),
        Err(FsError::Exists)
    ));
    assert_eq!(fs_ids(), root, "after create_new found a file");

    // Files only root can reach: the user's identity is what is refused
    // (root itself would get Ok(false) and a readable file).
    let shut = RootDir::new("shut", 0o700);
    let root_file = shut.path.join("secret.toml");
    write_mode(&root_file, hotp_secret(0), 0o600);
    assert!(matches!(
        safe_fs::exists(&shut.path.join("nothing"), &user.home, owner),
        Err(FsError::Io { .. })
    ));
    assert_eq!(fs_ids(), root, "after exists was denied");
    assert!(matches!(
        safe_fs::open_locked(&root_file, &user.home, owner),
        Err(FsError::Io { .. })
    ));
    assert_eq!(fs_ids(), root, "after open was denied");
    assert!(safe_fs::create_new(&shut.path.join("new.toml"), &user.home, owner, b"x").is_err());
    assert_eq!(fs_ids(), root, "after create was denied");
    assert_eq!(
        names(&shut.path),
        ["secret.toml"],
        "nothing created as root"
    );

    // The file vanishes under a holder: replace refuses.
    let (locked, _) = safe_fs::open_locked(&path, &user.home, owner).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        locked.replace(b"version = 1\n"),
        Err(FsError::NotFound)
    ));
    assert_eq!(fs_ids(), root, "after a failed replace");
    drop(locked);
    assert!(!path.exists(), "nothing recreated");

    // A panic while the identity is held: restored on unwinding.
    let caught = std::panic::catch_unwind(|| {
        let _id = FsIdentity::assume(owner).unwrap();
        assert_eq!(fs_ids(), mine);
        panic!("forced");
    });
    assert!(caught.is_err());
    assert_eq!(fs_ids(), root, "after a panic");
}

/// While it acts as the user, the module keeps the calling process's
/// supplementary groups (setfsuid/setfsgid do not change them): under `su`
/// those are the groups of whoever typed `su` (sshd and pamtester as
/// started here have none). Here this thread gets a supplementary group,
/// as `su` run by a member of it would have, and a directory only that
/// group may enter (root:group 0750) holds a file of the user's, which the
/// user cannot reach: acting as the user, neither should the module.
#[test]
#[ignore = "needs root: make test"]
fn fs_identity_drops_the_callers_supplementary_groups() {
    let user = TestUser::new();
    let group = testkit::TestGroup::new();
    let gid = group.gid;
    let owner = Owner {
        uid: user.uid,
        gid: user.gid,
    };
    let dir = RootDir::new("groupdir", 0o750);
    std::os::unix::fs::lchown(&dir.path, Some(0), Some(gid)).unwrap();
    let file = dir.path.join("secret.toml");
    user.write_owned(&file, hotp_secret(0), 0o600);
    assert!(
        !user.succeeds("cat", &[&file]),
        "the user cannot read it themselves"
    );

    // This thread only (the raw system call, not glibc's process-wide
    // wrapper): the caller is a member of `group`.
    let _groups = ThreadGroups::set(&[gid]);
    assert_eq!(thread_groups(), [gid]);
    {
        let _id = FsIdentity::assume(owner).unwrap();
        assert!(
            !thread_groups().contains(&gid),
            "acting as the user with the caller's groups {:?}",
            thread_groups()
        );
    }
    let opened = safe_fs::open_locked(&file, &user.home, owner).map(|(_, bytes)| bytes.len());
    assert!(
        matches!(opened, Err(FsError::Io { .. })),
        "the module opened, as the user, a file the user cannot reach: {opened:?}"
    );
}

/// Supplementary groups of the current thread only; cleared on drop.
struct ThreadGroups;

impl ThreadGroups {
    fn set(groups: &[u32]) -> ThreadGroups {
        // SAFETY: setgroups(2) reads `groups.len()` gids from the slice.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_setgroups,
                groups.len() as libc::c_long,
                groups.as_ptr(),
            )
        };
        assert_eq!(rc, 0, "setgroups");
        ThreadGroups
    }
}

impl Drop for ThreadGroups {
    fn drop(&mut self) {
        // SAFETY: an empty list; no memory is read.
        unsafe {
            libc::syscall(
                libc::SYS_setgroups,
                0 as libc::c_long,
                std::ptr::null::<u32>(),
            )
        };
    }
}
