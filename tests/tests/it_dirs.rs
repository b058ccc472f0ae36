//! The directories above the secret file, through the real libpam: a
//! directory another user can write to (a home shared with a group, a
//! group-writable directory under an absolute `secret=` template) lets them
//! rename the file away, put back an older copy, or snapshot and restore it
//! around each login. Such a file is refused, present or not, and so is a
//! home that does not exist: neither may look like "not enrolled".
//! Each test first shows, as the other user, that the attack it stops is
//! possible on the layout it builds.

use std::fs;
use std::os::unix::fs::chown;
use std::path::PathBuf;

use testkit::fixtures::*;

const RHOST: Option<&str> = Some("203.0.113.7");
const NULLOK: &str = "auth required {module} config={config} nullok\n";

/// A victim whose home is 0775 and in a group `mate` is also in: the
/// layout of a home "shared with the team".
struct SharedHome {
    victim: TestUser,
    mate: TestUser,
    // Dropped after the users: a group cannot be deleted while it is
    // someone's group.
    _group: TestGroup,
}

fn shared_home() -> SharedHome {
    let group = TestGroup::new();
    let victim = TestUser::with_groups(&[&group.name]);
    let mate = TestUser::with_groups(&[&group.name]);
    chown(&victim.home, Some(victim.uid), Some(group.gid)).unwrap();
    set_mode(&victim.home, 0o775);
    SharedHome {
        victim,
        mate,
        _group: group,
    }
}

fn assert_unavailable(run: &PamRun) {
    assert!(!run.success, "let in: {run:?}");
    assert!(output(run).contains(AUTHINFO_UNAVAIL), "{run:?}");
    assert!(output(run).contains("unavailable"), "{run:?}");
}

/// (a) Under nullok, the co-group user renames the victim's secret away;
/// the victim's next login must not get in without a code.
#[test]
#[ignore = "needs root: make test"]
fn group_writable_home_without_a_secret_is_unavailable_under_nullok() {
    let h = shared_home();
    let path = h.victim.write_secret(&totp_secret());
    let away = h.victim.home.join("moved-away");
    assert!(
        h.mate.succeeds("mv", &[&path, &away]),
        "the co-group user can rename the file away"
    );
    assert!(!path.exists());
    let svc = PamService::with_config(NULLOK, "");
    // Asked for a code as if the file were there (whether it is must not
    // show), then refused as unavailable whatever the answer.
    let run = svc.authenticate(&h.victim.name, RHOST, "123456\n");
    assert_unavailable(&run);
    assert!(!output(&run).contains("not set up"), "{run:?}");
}

/// (b) The same home with the file in place: refused even with the right
/// code, so a copy put back (a replay, a reset rate limit) is never used.
#[test]
#[ignore = "needs root: make test"]
fn group_writable_home_with_a_secret_is_refused() {
    let h = shared_home();
    let path = h.victim.write_secret(&totp_secret());
    let copy = h.mate.home.join("snapshot");
    assert!(
        h.mate.succeeds("mv", &[&path, &copy]) && h.mate.succeeds("mv", &[&copy, &path]),
        "the co-group user can take the file and put it back"
    );
    let before = snapshot(&path).ignoring_atime();
    let svc = simple_service("");
    let code = fresh_code();
    let run = svc.authenticate(&h.victim.name, RHOST, &format!("{code}\n"));
    assert_unavailable(&run);
    assert_eq!(
        snapshot(&path).ignoring_atime(),
        before,
        "the file was left as it was"
    );
}

/// A home that is writable by others but sticky (chmod 1777, like /tmp):
/// others may create names in it but not rename or remove the user's, so it
/// is no hole, and logins work. Not a layout anyone should use, but a
/// sticky directory is safe on the way to the file and this shows why.
#[test]
#[ignore = "needs root: make test"]
fn sticky_world_writable_home_still_works() {
    let user = TestUser::new();
    let other = TestUser::new();
    let path = user.write_secret(&totp_secret());
    set_mode(&user.home, 0o1777);
    let away = other.home.join("moved-away");
    assert!(
        !other.succeeds("mv", &[&path, &away]),
        "sticky: another user cannot rename the user's file"
    );
    assert!(path.exists());
    let svc = simple_service("");
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    set_mode(&user.home, 0o755);
    assert!(run.success, "{run:?}");
}

/// (c) A nullok user whose home is gone (unmounted, deleted): an error,
/// not "not enrolled".
#[test]
#[ignore = "needs root: make test"]
fn missing_home_is_unavailable_under_nullok() {
    let user = TestUser::new();
    fs::remove_dir_all(&user.home).unwrap();
    let svc = PamService::with_config(NULLOK, "");
    let run = svc.authenticate(&user.name, RHOST, "123456\n");
    assert_unavailable(&run);
}

/// The same under `missing = "deny"`: unavailable, not the "no secret
/// file" refusal of a user who simply has none.
#[test]
#[ignore = "needs root: make test"]
fn missing_home_is_unavailable_under_deny() {
    let user = TestUser::new();
    fs::remove_dir_all(&user.home).unwrap();
    let svc = simple_service("missing = \"deny\"\n");
    let run = svc.authenticate(&user.name, RHOST, "123456\n");
    assert_unavailable(&run);
}

/// (d) A home only the user can write to works as before: the right code
/// is accepted, and nullok still lets a user without a file in.
#[test]
#[ignore = "needs root: make test"]
fn a_safe_home_still_works() {
    let user = TestUser::new();
    let svc = PamService::with_config(NULLOK, "");
    let run = svc.authenticate(&user.name, RHOST, "");
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains("not set up"), "{run:?}");
    user.write_secret(&totp_secret());
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
}

/// A directory tree for an absolute `secret=` template, root's, removed on
/// drop: `<base>/<shared>/<user>/secret.toml`.
struct Tree {
    base: RootDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            base: RootDir::new("dirs", 0o755),
        }
    }

    /// `base/shared` (root, group `gid`, `mode`) holding the user's own
    /// directory (theirs, 0700) and in it their secret.
    fn secret_under(&self, user: &TestUser, gid: u32, mode: u32) -> PathBuf {
        let shared = self.base.path.join("shared");
        fs::create_dir(&shared).unwrap();
        chown(&shared, Some(0), Some(gid)).unwrap();
        set_mode(&shared, mode);
        let own = shared.join(&user.name);
        fs::create_dir(&own).unwrap();
        user.chown(&own);
        set_mode(&own, 0o700);
        let file = own.join("secret.toml");
        user.write_owned(&file, totp_secret(), 0o600);
        file
    }

    fn service(&self) -> PamService {
        PamService::with_config(
            &format!(
                "auth required {{module}} config={{config}} secret={}/shared/%u/secret.toml\n",
                self.base.path.display()
            ),
            "",
        )
    }
}

/// (e) An absolute template through a group-writable directory: a member
/// of the group can swap the user's whole directory, so the file in it is
/// refused.
#[test]
#[ignore = "needs root: make test"]
fn absolute_template_through_a_group_writable_directory_is_refused() {
    let group = TestGroup::new();
    let user = TestUser::new();
    let mate = TestUser::with_groups(&[&group.name]);
    let tree = Tree::new();
    let file = tree.secret_under(&user, group.gid, 0o775);
    let own = file.parent().unwrap().to_path_buf();
    let away = tree.base.path.join("shared").join("swapped");
    assert!(
        mate.succeeds("mv", &[&own, &away]) && mate.succeeds("mv", &[&away, &own]),
        "a group member can swap the user's directory"
    );
    let before = snapshot(&file).ignoring_atime();
    let svc = tree.service();
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert_unavailable(&run);
    assert_eq!(snapshot(&file).ignoring_atime(), before);
}

/// The same template through directories only root and the user can
/// write to works.
#[test]
#[ignore = "needs root: make test"]
fn absolute_template_through_safe_directories_works() {
    let user = TestUser::new();
    let tree = Tree::new();
    tree.secret_under(&user, 0, 0o755);
    let svc = tree.service();
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    assert!(run.success, "{run:?}");
}

/// A user-private group (the group named after the user, with no other
/// members, as Debian creates them) does not make a group-writable home
/// safe here: proving that no one else is in a group means enumerating
/// every account of every NSS source, which LDAP/SSSD do not allow (see
/// safe_fs). The home 0775 in the user's own group is refused too.
#[test]
#[ignore = "needs root: make test"]
fn group_writable_home_in_the_users_private_group_is_refused() {
    let user = TestUser::new();
    let path = user.write_secret(&totp_secret());
    set_mode(&user.home, 0o775);
    let svc = simple_service("");
    let before = snapshot(&path).ignoring_atime();
    let code = fresh_code();
    let run = svc.authenticate(&user.name, RHOST, &format!("{code}\n"));
    set_mode(&user.home, 0o755);
    assert_unavailable(&run);
    assert_eq!(snapshot(&path).ignoring_atime(), before);
}

/// Under `missing = "deny"` the prompt must not tell who is enrolled: in a
/// home others can write to, a user with a secret file and one without are
/// both asked for a code and both refused the same way.
#[test]
#[ignore = "needs root: make test"]
fn unsafe_home_asks_for_a_code_whether_or_not_there_is_a_file() {
    let h = shared_home();
    let svc = simple_service("missing = \"deny\"\n");
    let without = svc.authenticate(&h.victim.name, RHOST, "123456\n");
    h.victim.write_secret(&totp_secret());
    let with = svc.authenticate(&h.victim.name, RHOST, "123456\n");
    for run in [&without, &with] {
        assert_unavailable(run);
        assert!(output(run).contains(PROMPT), "{run:?}");
    }
}
