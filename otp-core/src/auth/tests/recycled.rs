//! A recycled account name inherits nothing (issue 31, item 7): under
//! `store = "system"` a record keeps the uid of the account it was made
//! for, and a login of an account of that name with another uid is
//! refused, with a log line that says why; a record without a uid (made
//! before) is not checked. Records the admin's store makes carry the uid;
//! an admin can still remove an orphan.

use super::*;
use crate::store::{self, StoreError};

fn system_world() -> World {
    let w = World::new("store = \"system\"\n");
    let users = w.dir.join("state/users");
    fs::create_dir_all(&users).unwrap();
    fs::set_permissions(&users, fs::Permissions::from_mode(0o700)).unwrap();
    w
}

fn write_record(w: &World, uid_line: &str) -> PathBuf {
    let path = w.dir.join("state/users/alice.toml");
    fs::write(
        &path,
        format!(
            "version = 2\n{uid_line}scratch_codes = []\n\n[[token]]\nid = \"phone\"\n\
             type = \"totp\"\nsecret = \"{KEY_B32}\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn a_record_made_for_another_uid_is_refused_and_says_why() {
    let (uid, _) = owner();
    let other = uid.wrapping_add(1);
    for (uid_line, accepted) in [
        (String::new(), true),
        (format!("uid = {uid}\n"), true),
        (format!("uid = {other}\n"), false),
    ] {
        let w = system_world();
        let path = write_record(&w, &uid_line);
        let before = fs::read_to_string(&path).unwrap();
        let mut s = Script::new(&[&right_code()]);
        let r = w.login("alice", &[], &mut s);
        if accepted {
            assert_eq!(r.outcome, Outcome::Success, "{uid_line:?}: {r:?}");
            continue;
        }
        assert_eq!(r.outcome, Outcome::AuthInfoUnavail, "{r:?}");
        let why = r.reason.to_string();
        assert!(
            why.contains(&format!("made for uid {other}"))
                && why.contains(&format!("is uid {uid}"))
                && why.contains("remove"),
            "{why}"
        );
        // Asked like anyone (the record is read after the prompt), told
        // only that it is unavailable; nothing of the record moved.
        assert_eq!(s.seen.prompts, [CODE_PROMPT]);
        assert_eq!(s.seen.errors, [MSG_UNAVAILABLE]);
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
    }
}

#[test]
fn the_admins_store_records_the_uid_and_can_remove_an_orphan() {
    let w = system_world();
    let cfg = crate::config::load(w.config.to_str().unwrap()).unwrap();
    let lookup = w.lookup();
    let alice = lookup("alice").unwrap().unwrap();
    let admin = store::admin(&cfg, &alice, None);
    let token =
        crate::secret_file::Token::new("phone", crate::secret_file::OtpKind::Totp, KEY.to_vec());
    let mut file = SecretFile::with_token(token);
    file.version = 1;
    admin.create(&file).unwrap();
    let made =
        SecretFile::parse(&fs::read_to_string(w.dir.join("state/users/alice.toml")).unwrap())
            .unwrap();
    assert_eq!((made.version, made.uid), (2, Some(alice.uid)));
    assert!(admin.open().is_ok());

    // The same name, another account: refused, and removable.
    let other = Account {
        uid: alice.uid.wrapping_add(1),
        ..alice.clone()
    };
    let admin = store::admin(&cfg, &other, None);
    match admin.open() {
        Err(StoreError::Orphan { recorded, uid }) => {
            assert_eq!((recorded, uid), (alice.uid, other.uid));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an orphan opened"),
    }
    admin.remove().unwrap();
    assert!(!w.dir.join("state/users/alice.toml").exists());
}

fn mark_alice(w: &World, text: &str) {
    let dir = w.dir.join("state/pending");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("alice");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_reset_mark_made_for_another_uid_counts_as_no_mark() {
    // `otp-enroll reset alice`, `userdel alice`, `useradd alice` (another
    // uid): under missing = "deny" the new account is refused as a user
    // without a token, not offered the deleted account's enrollment.
    let (uid, _) = owner();
    let comment = "# pam_otp: enroll this user at their next login (otp-enroll reset)\n";
    for (text, honoured) in [
        (format!("{comment}uid = {}\n", uid.wrapping_add(1)), false),
        (format!("{comment}uid = {uid}\n"), true),
        // A mark of a released version (no uid): honoured, see pending.rs.
        (comment.to_string(), true),
    ] {
        let w = World::new("missing = \"deny\"\n");
        mark_alice(&w, &text);
        let mut s = Script::new(&[&wrong_code()]);
        let r = w.login("alice", &[], &mut s);
        let warned = r
            .warnings
            .iter()
            .any(|l| l.contains("was made for uid") && l.contains("counted as no mark"));
        if honoured {
            assert_ne!(s.seen.prompts, [CODE_PROMPT], "{text:?}: {r:?}");
            assert!(!warned, "{:?}", r.warnings);
            continue;
        }
        assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
        assert_eq!(s.seen.prompts, [CODE_PROMPT], "{r:?}");
        assert!(warned, "{:?}", r.warnings);
        // The mark stays for `remove --orphans` (or the new account's reset).
        assert_eq!(
            fs::read_to_string(w.dir.join("state/pending/alice")).unwrap(),
            text
        );
    }
}

#[test]
fn a_new_account_does_not_start_locked_out_by_the_old_ones_failures() {
    // missing = "deny": bob has no token; a deleted bob (another uid)
    // ran up failures just now, enough to be rate-limited.
    let (uid, _) = owner();
    let w = World::new("missing = \"deny\"\n");
    let dir = w.dir.join("state/unenrolled");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let tally = dir.join("bob.toml");
    fs::write(
        &tally,
        format!(
            "failures = 1000\nlast_failure = {NOW}\nuid = {}\n",
            uid.wrapping_add(1)
        ),
    )
    .unwrap();
    fs::set_permissions(&tally, fs::Permissions::from_mode(0o600)).unwrap();
    let mut s = Script::new(&["123456"]);
    let r = w.login("bob", &[], &mut s);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(r.reason.to_string().contains("no token"), "{r:?}");
    let text = fs::read_to_string(&tally).unwrap();
    assert!(
        text.contains("failures = 1\n") && text.contains(&format!("uid = {uid}\n")),
        "{text}"
    );
    assert!(
        r.warnings
            .iter()
            .any(|l| l.contains("started afresh") && l.contains(&format!("uid {uid}"))),
        "{:?}",
        r.warnings
    );
}
