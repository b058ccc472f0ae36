//! The record of every change otp-enroll makes: one syslog line per user
//! changed (facility authpriv, level notice, ident `otp-enroll`, the
//! module's `key="value"` style and escaping, `otp_core::log`), one for the
//! inventory, one for the fleet database's schema. Never a key, a seed, a
//! code or an emergency code: only ids, serials and counts.
//!
//! Nothing can forget to record: otp-enroll reaches a user's record only
//! through [`admin`], a store that notes every change that succeeded, and
//! the inventory only through `crate::inventory::Inventory`, whose `save`
//! notes what changed (tests/seam.rs keeps both so). The notes are kept for
//! the run ([`JOURNAL`]: one command per process), and `main` writes them
//! out when the command is over ([`flush`]), whatever its outcome: a
//! change made before a later step failed is recorded too, with the exit
//! status. A command that changed nothing, or was refused before it did
//! (not root, bad arguments, a wrong code), leaves no line: sudo and the
//! shell record attempts; this records changes.
//!
//! Each line says who: the real uid, the login uid (`/proc/self/loginuid`,
//! as found, "unset" when no login set it) and `SUDO_USER` when the
//! environment has it, and the host. The login uid is evidence, not proof
//! (root with CAP_AUDIT_CONTROL can change it unless the system made it
//! immutable), and `SUDO_USER` is only what the caller's environment
//! claims: SECURITY.md, "What otp-enroll records".

use std::sync::Mutex;

use otp_core::account::{self, Account, LoginUid};
use otp_core::audit::Change;
use otp_core::config::{Config, StoreKind};
use otp_core::log::{clean, Level, Logger};
use otp_core::secret_file::SecretFile;
use otp_core::store::exempt::Exemption;
use otp_core::store::{self, AdminStore, Held, StoreError};

/// The man page's AUDIT LOG section.
pub const MAN: &str = "\
Every change otp-enroll makes (new, token, remove, reset, unlock, scratch,
resync, disable, enable, expire, temp-code, require, exempt, unexempt, import-google, migrate, inventory import and inventory remove, db
init, and any command that changes a record, a reset mark or the
inventory) leaves one syslog line per user it changed (facility authpriv,
level notice, ident otp-enroll), in pam_otp's key=\"value\" style and with
its escaping: command=, user=\"NAME\" (the user acted on), store=,
record= (created, updated, replaced or removed), tokens=\"ID,...\" (the
tokens added, removed or changed), serials=\"...\", emergency_codes=N (how
many there are now, when they changed), lockout=cleared, temp_code=made
(with temp_code_uses=N and temp_code_expires=UNIXTIME) or temp_code=removed
(a temporary code made, replaced or revoked), pending=set or
cleared (the mark of reset and require), exemption=granted with
exempt_until=\"TIME\" (UTC) and reason=\"TEXT\", or exemption=withdrawn
(exempt, unexempt, require), inventory= and inventory_serials=\"...\" (a token
assigned from the inventory or returned to it), exit= (the command's exit
status: a change made before a later step failed is recorded too); then
who and where: uid= (the real uid), loginuid= (the login uid the kernel
keeps, /proc/self/loginuid: who logged in, before any su or sudo; unset
when no login set it), sudo_user=\"NAME\" (when the environment has
SUDO_USER: what the caller's environment claims, nothing more) and
host=\"NAME\". A change of the inventory that concerns no user makes one
line per kind (inventory=imported, replaced or removed, with count= and
serials=), and db init one with schema=\"...\". Never a key, a seed, a
code or an emergency code. A command that changes nothing, or is refused
before it changes anything (not root, a wrong code), leaves no line.";

/// What happened to a user's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordChange {
    Created,
    Updated,
    Replaced,
    Removed,
}

impl RecordChange {
    fn as_str(self) -> &'static str {
        match self {
            RecordChange::Created => "created",
            RecordChange::Updated => "updated",
            RecordChange::Replaced => "replaced",
            RecordChange::Removed => "removed",
        }
    }
}

/// What happened to an inventory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum InventoryChange {
    Imported,
    Replaced,
    Removed,
    /// Given to a user (`token` without `--secret`).
    Assigned,
    /// Back from a user, unassigned (`remove`, `reset`).
    Returned,
}

impl InventoryChange {
    fn as_str(self) -> &'static str {
        match self {
            InventoryChange::Imported => "imported",
            InventoryChange::Replaced => "replaced",
            InventoryChange::Removed => "removed",
            InventoryChange::Assigned => "assigned",
            InventoryChange::Returned => "returned",
        }
    }
}

/// What happened to a user's temporary code (never the code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TempCodeChange {
    /// Made (or replaced): how many uses, and when it expires.
    Made {
        uses: u32,
        expires: u64,
    },
    Removed,
}

impl TempCodeChange {
    /// What became of `before`'s temporary code in `after`, if anything.
    fn between(before: Option<&SecretFile>, after: Option<&SecretFile>) -> Option<TempCodeChange> {
        let old = before.and_then(|f| f.temp_code.as_ref());
        let new = after.and_then(|f| f.temp_code.as_ref());
        match (old, new) {
            (_, Some(n)) if old != Some(n) => Some(TempCodeChange::Made {
                uses: n.uses_left,
                expires: n.expires,
            }),
            (Some(_), None) => Some(TempCodeChange::Removed),
            _ => None,
        }
    }

    fn fields(self) -> String {
        match self {
            TempCodeChange::Made { uses, expires } => {
                format!(" temp_code=made temp_code_uses={uses} temp_code_expires={expires}")
            }
            TempCodeChange::Removed => " temp_code=removed".to_string(),
        }
    }
}

/// One change, as a store or the inventory saw it succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    Record {
        user: String,
        store: StoreKind,
        change: RecordChange,
        /// The ids of the tokens added, removed or changed (all of them
        /// when the record was created, replaced or removed whole).
        tokens: Vec<String>,
        /// The serials of those of them that have one.
        serials: Vec<String>,
        /// How many emergency codes the record holds now, when they
        /// changed.
        emergency_codes: Option<usize>,
        /// The rate limit's failures were cleared.
        lockout_cleared: bool,
        /// The temporary code was made or removed.
        temp_code: Option<TempCodeChange>,
    },
    Pending {
        user: String,
        set: bool,
    },
    /// The failures counted for an account without a token were
    /// forgotten (`unlock`): its line says `lockout=cleared` too.
    UnenrolledCleared {
        user: String,
    },
    /// An exemption granted (`until`, Unix seconds, and the reason) or
    /// withdrawn (`None`).
    Exemption {
        user: String,
        granted: Option<(u64, String)>,
    },
    Inventory {
        change: InventoryChange,
        serial: String,
        /// The user, for an assignment or a return.
        user: Option<String>,
    },
    Schema(String),
}

/// The command being run and what it changed so far.
struct Journal {
    command: &'static str,
    notes: Vec<Note>,
}

/// One command per process: the journal is the process's.
static JOURNAL: Mutex<Journal> = Mutex::new(Journal {
    command: "",
    notes: Vec::new(),
});

fn journal() -> std::sync::MutexGuard<'static, Journal> {
    // A note is plain data: a panic elsewhere cannot leave it half made.
    JOURNAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Names the command whose changes are noted from now on.
pub fn begin(command: &'static str) {
    journal().command = command;
}

/// Notes a change that succeeded.
pub fn note(n: Note) {
    journal().notes.push(n);
}

/// Who made the changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub uid: u32,
    pub login_uid: LoginUid,
    pub sudo_user: Option<String>,
    pub host: String,
}

impl Actor {
    /// This process's.
    pub fn current() -> Actor {
        Actor {
            uid: nix::unistd::getuid().as_raw(),
            login_uid: account::login_uid(),
            sudo_user: std::env::var_os("SUDO_USER").map(|s| s.to_string_lossy().into_owned()),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    pub fn fields(&self) -> String {
        let login = match &self.login_uid {
            LoginUid::Set(uid) => uid.to_string(),
            LoginUid::Unset => "unset".into(),
            LoginUid::Other(found) => format!("\"{}\"", clean(found)),
            LoginUid::Unavailable => "unavailable".into(),
        };
        let mut out = format!("uid={} loginuid={login}", self.uid);
        if let Some(s) = &self.sudo_user {
            out.push_str(&format!(" sudo_user=\"{}\"", clean(s)));
        }
        out.push_str(&format!(" host=\"{}\"", clean(&self.host)));
        out
    }
}

/// `key="a,b"` (values escaped and cut as the log cuts them).
fn list(key: &str, values: &[String]) -> String {
    format!(" {key}=\"{}\"", clean(&values.join(",")))
}

fn push_unique(into: &mut Vec<String>, more: &[String]) {
    for m in more {
        if !into.contains(m) {
            into.push(m.clone());
        }
    }
}

/// The lines `notes` make for `command` ending with `exit`, one per user,
/// one per kind of inventory change without a user, one for the schema;
/// each ending with who made it.
pub fn lines(command: &str, notes: &[Note], exit: i32, actor: &Actor) -> Vec<String> {
    #[derive(Default)]
    struct UserLine {
        store: Option<StoreKind>,
        changes: Vec<&'static str>,
        tokens: Vec<String>,
        serials: Vec<String>,
        emergency_codes: Option<usize>,
        lockout_cleared: bool,
        temp_code: Option<TempCodeChange>,
        pending: Option<bool>,
        exemption: Option<Option<(u64, String)>>,
        inventory: Vec<(InventoryChange, String)>,
    }
    // By name: one line per user, in a stable order.
    let mut users: std::collections::BTreeMap<String, UserLine> = Default::default();
    let mut inventory: Vec<(InventoryChange, Vec<String>)> = Vec::new();
    let mut schema = Vec::new();
    for n in notes {
        match n {
            Note::Record {
                user,
                store,
                change,
                tokens,
                serials,
                emergency_codes,
                lockout_cleared,
                temp_code,
            } => {
                let l = users.entry(user.clone()).or_default();
                if temp_code.is_some() {
                    l.temp_code = *temp_code;
                }
                l.store = Some(*store);
                l.changes.push(change.as_str());
                push_unique(&mut l.tokens, tokens);
                push_unique(&mut l.serials, serials);
                if emergency_codes.is_some() {
                    l.emergency_codes = *emergency_codes;
                }
                l.lockout_cleared |= lockout_cleared;
            }
            Note::Pending { user, set } => {
                users.entry(user.clone()).or_default().pending = Some(*set)
            }
            Note::UnenrolledCleared { user } => {
                users.entry(user.clone()).or_default().lockout_cleared = true
            }
            Note::Exemption { user, granted } => {
                users.entry(user.clone()).or_default().exemption = Some(granted.clone())
            }
            Note::Inventory {
                change,
                serial,
                user: Some(user),
            } => users
                .entry(user.clone())
                .or_default()
                .inventory
                .push((*change, serial.clone())),
            Note::Inventory {
                change,
                serial,
                user: None,
            } => match inventory.iter_mut().find(|(c, _)| c == change) {
                Some((_, serials)) => serials.push(serial.clone()),
                None => inventory.push((*change, vec![serial.clone()])),
            },
            Note::Schema(what) => schema.push(what.clone()),
        }
    }
    let who = actor.fields();
    let head = format!("command={}", clean(command));
    let mut out = Vec::new();
    for (name, l) in users {
        let mut line = format!("{head} user=\"{}\"", clean(&name));
        if let Some(store) = l.store {
            line.push_str(&format!(" store={}", store.as_str()));
        }
        if !l.changes.is_empty() {
            line.push_str(&format!(" record={}", l.changes.join(",")));
        }
        if !l.tokens.is_empty() {
            line.push_str(&list("tokens", &l.tokens));
        }
        if !l.serials.is_empty() {
            line.push_str(&list("serials", &l.serials));
        }
        if let Some(n) = l.emergency_codes {
            line.push_str(&format!(" emergency_codes={n}"));
        }
        if l.lockout_cleared {
            line.push_str(" lockout=cleared");
        }
        if let Some(tc) = l.temp_code {
            line.push_str(&tc.fields());
        }
        if let Some(set) = l.pending {
            line.push_str(if set {
                " pending=set"
            } else {
                " pending=cleared"
            });
        }
        match &l.exemption {
            Some(Some((until, reason))) => line.push_str(&format!(
                " exemption=granted exempt_until=\"{}\" reason=\"{}\"",
                otp_core::date::format_unix(*until),
                clean(reason)
            )),
            Some(None) => line.push_str(" exemption=withdrawn"),
            None => {}
        }
        let mut kinds: Vec<InventoryChange> = l.inventory.iter().map(|(c, _)| *c).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            let serials: Vec<String> = l
                .inventory
                .iter()
                .filter(|(c, _)| *c == kind)
                .map(|(_, s)| s.clone())
                .collect();
            line.push_str(&format!(" inventory={}", kind.as_str()));
            line.push_str(&list("inventory_serials", &serials));
        }
        out.push(format!("{line} exit={exit} {who}"));
    }
    for (change, serials) in inventory {
        out.push(format!(
            "{head} inventory={} count={}{} exit={exit} {who}",
            change.as_str(),
            serials.len(),
            list("serials", &serials),
        ));
    }
    for what in schema {
        out.push(format!(
            "{head} schema=\"{}\" exit={exit} {who}",
            clean(&what)
        ));
    }
    out
}

/// Whether the command has changed anything so far: what decides, for
/// the syslog line and the fleet's audit row alike, that there is a
/// change to record (`new --if-missing` beside a record, `unlock` of a
/// user with nothing to unlock, `unexempt` without an exemption change
/// nothing).
pub fn changed_anything() -> bool {
    !journal().notes.is_empty()
}

/// Writes out what the command changed (nothing when it changed
/// nothing), with its exit status; called once, by `main`.
pub fn flush(exit: i32) {
    let (command, notes) = {
        let mut j = journal();
        (j.command, std::mem::take(&mut j.notes))
    };
    if notes.is_empty() {
        return;
    }
    let logger = Logger::program("otp-enroll");
    for line in lines(command, &notes, exit, &Actor::current()) {
        logger.log(Level::Notice, &line);
    }
}

// ---- the store that notes its changes -----------------------------------

/// The store `cfg` names for `account` (`otp_core::store::admin`), noting
/// every change that succeeds: the one way otp-enroll gets a store.
pub fn admin(cfg: &Config, account: &Account, secret: Option<&str>) -> Box<dyn AdminStore> {
    Box::new(Audited {
        inner: store::admin(cfg, account, secret),
        user: account.name.clone(),
        store: cfg.store,
    })
}

struct Audited {
    inner: Box<dyn AdminStore>,
    user: String,
    store: StoreKind,
}

fn ids(file: &SecretFile) -> (Vec<String>, Vec<String>) {
    (
        file.tokens.iter().map(|t| t.id.clone()).collect(),
        file.tokens
            .iter()
            .filter_map(|t| t.serial.clone())
            .collect(),
    )
}

impl Audited {
    fn whole(
        &self,
        change: RecordChange,
        files: &[&SecretFile],
        temp_code: Option<TempCodeChange>,
    ) {
        let (mut tokens, mut serials) = (Vec::new(), Vec::new());
        for f in files {
            let (t, s) = ids(f);
            push_unique(&mut tokens, &t);
            push_unique(&mut serials, &s);
        }
        note(Note::Record {
            user: self.user.clone(),
            store: self.store,
            change,
            tokens,
            serials,
            emergency_codes: None,
            lockout_cleared: false,
            temp_code,
        });
    }

    /// The record as it is, if it can be read (for the ids a whole
    /// replacement or removal takes away).
    fn current(&self) -> Option<SecretFile> {
        self.inner.open().ok().map(|h| h.file().clone())
    }
}

/// Done, or done with only the pending mark left as it was: a change.
fn changed(r: &Result<(), StoreError>) -> bool {
    matches!(r, Ok(()) | Err(StoreError::Pending { .. }))
}

impl AdminStore for Audited {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn exists(&self) -> Result<bool, StoreError> {
        self.inner.exists()
    }

    fn anything_there(&self) -> Result<bool, StoreError> {
        self.inner.anything_there()
    }

    fn check_can_save(&self, replace: bool) -> Result<(), StoreError> {
        self.inner.check_can_save(replace)
    }

    fn open(&self) -> Result<Box<dyn Held + '_>, StoreError> {
        let inner = self.inner.open()?;
        let before = inner.file().clone();
        Ok(Box::new(AuditedHeld {
            inner,
            before,
            of: self,
        }))
    }

    fn create(&self, file: &SecretFile) -> Result<(), StoreError> {
        let r = self.inner.create(file);
        if changed(&r) {
            let tc = TempCodeChange::between(None, Some(file));
            self.whole(RecordChange::Created, &[file], tc);
        }
        r
    }

    fn replace(&self, file: &SecretFile) -> Result<(), StoreError> {
        let before = self.current();
        let r = self.inner.replace(file);
        if changed(&r) {
            let mut files = vec![file];
            files.extend(before.as_ref());
            let tc = TempCodeChange::between(before.as_ref(), Some(file));
            self.whole(RecordChange::Replaced, &files, tc);
        }
        r
    }

    fn remove(&self) -> Result<(), StoreError> {
        let before = self.current();
        let r = self.inner.remove();
        if r.is_ok() {
            let tc = TempCodeChange::between(before.as_ref(), None);
            self.whole(
                RecordChange::Removed,
                &before.as_ref().into_iter().collect::<Vec<_>>(),
                tc,
            );
        }
        r
    }

    fn pending(&self) -> Result<bool, StoreError> {
        self.inner.pending()
    }

    fn set_pending(&self, pending: bool) -> Result<(), StoreError> {
        let was = self.inner.pending().ok();
        self.inner.set_pending(pending)?;
        if was != Some(pending) {
            note(Note::Pending {
                user: self.user.clone(),
                set: pending,
            });
        }
        Ok(())
    }

    fn exemption(&self) -> Result<Option<Exemption>, StoreError> {
        self.inner.exemption()
    }

    fn set_exemption(&self, e: Option<&Exemption>) -> Result<bool, StoreError> {
        let changed = self.inner.set_exemption(e)?;
        if changed {
            note(Note::Exemption {
                user: self.user.clone(),
                granted: e.map(|e| (e.until, e.reason.clone())),
            });
        }
        Ok(changed)
    }

    fn grant_exemption(&self, ask: &otp_core::store::exempt::Ask) -> Result<Exemption, StoreError> {
        let e = self.inner.grant_exemption(ask)?;
        note(Note::Exemption {
            user: self.user.clone(),
            granted: Some((e.until, e.reason.clone())),
        });
        Ok(e)
    }

    fn clear_unenrolled(&self) -> Result<bool, StoreError> {
        let cleared = self.inner.clear_unenrolled()?;
        if cleared {
            note(Note::UnenrolledCleared {
                user: self.user.clone(),
            });
        }
        Ok(cleared)
    }

    fn exemption_judged_by(&self) -> Option<(u64, u64)> {
        self.inner.exemption_judged_by()
    }

    fn record_change(&self, change: &Change) -> Result<(), StoreError> {
        self.inner.record_change(change)
    }
}

struct AuditedHeld<'a> {
    inner: Box<dyn Held + 'a>,
    /// The record as it was read (or last saved).
    before: SecretFile,
    of: &'a Audited,
}

/// What changed between two versions of a record.
#[derive(Debug, PartialEq, Eq)]
pub struct Diff {
    /// The ids of the tokens added, removed or changed (a counter, a
    /// used step, a drift), and the serials of those that have one.
    pub tokens: Vec<String>,
    pub serials: Vec<String>,
    /// How many emergency codes there are now, if they changed.
    pub emergency_codes: Option<usize>,
    /// The rate limit's failures were cleared.
    pub lockout_cleared: bool,
    /// The temporary code was made or removed.
    pub temp_code: Option<TempCodeChange>,
}

/// [`Diff`] of two versions of a record; `None` when they are the same.
pub fn diff(before: &SecretFile, after: &SecretFile) -> Option<Diff> {
    if before == after {
        return None;
    }
    let mut d = Diff {
        tokens: Vec::new(),
        serials: Vec::new(),
        emergency_codes: (before.scratch_codes != after.scratch_codes)
            .then_some(after.scratch_codes.len()),
        lockout_cleared: before.state.failures > 0 && after.state.failures == 0,
        temp_code: TempCodeChange::between(Some(before), Some(after)),
    };
    let gone = before
        .tokens
        .iter()
        .filter(|t| after.token(&t.id) != Some(*t));
    let new = after
        .tokens
        .iter()
        .filter(|t| before.token(&t.id) != Some(*t));
    for t in gone.chain(new) {
        push_unique(&mut d.tokens, std::slice::from_ref(&t.id));
        if let Some(s) = &t.serial {
            push_unique(&mut d.serials, std::slice::from_ref(s));
        }
    }
    Some(d)
}

impl Held for AuditedHeld<'_> {
    fn file(&self) -> &SecretFile {
        self.inner.file()
    }

    fn file_mut(&mut self) -> &mut SecretFile {
        self.inner.file_mut()
    }

    fn save(&self) -> Result<(), StoreError> {
        self.inner.save()?;
        if let Some(d) = diff(&self.before, self.inner.file()) {
            note(Note::Record {
                user: self.of.user.clone(),
                store: self.of.store,
                change: RecordChange::Updated,
                tokens: d.tokens,
                serials: d.serials,
                emergency_codes: d.emergency_codes,
                lockout_cleared: d.lockout_cleared,
                temp_code: d.temp_code,
            });
        }
        Ok(())
    }

    fn remove(self: Box<Self>) -> Result<(), StoreError> {
        let AuditedHeld { inner, before, of } = *self;
        inner.remove()?;
        let tc = TempCodeChange::between(Some(&before), None);
        of.whole(RecordChange::Removed, &[&before], tc);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::secret_file::{OtpKind, Token};

    fn actor() -> Actor {
        Actor {
            uid: 0,
            login_uid: LoginUid::Set(1000),
            sudo_user: Some("bob\n".into()),
            host: "h1".into(),
        }
    }

    fn file() -> SecretFile {
        let mut f = SecretFile::with_token(Token::new("app", OtpKind::Totp, vec![1; 20]));
        let mut hw = Token::new("OATH1", OtpKind::Hotp, vec![2; 20]);
        hw.serial = Some("OATH1".into());
        f.tokens.push(hw);
        f.scratch_codes = vec!["11111111".into()];
        f
    }

    #[test]
    fn a_diff_names_what_changed_and_nothing_secret() {
        let before = file();
        assert_eq!(diff(&before, &before), None);
        let mut after = before.clone();
        after.tokens[1].counter = 7;
        after.tokens.remove(0);
        after
            .tokens
            .push(Token::new("phone", OtpKind::Totp, vec![3; 20]));
        after.scratch_codes = vec!["22222222".into(), "33333333".into()];
        assert_eq!(
            diff(&before, &after),
            Some(Diff {
                tokens: vec!["app".into(), "OATH1".into(), "phone".into()],
                serials: vec!["OATH1".into()],
                emergency_codes: Some(2),
                lockout_cleared: false,
                temp_code: None,
            })
        );
        let mut locked = before.clone();
        locked.state.failures = 3;
        assert_eq!(
            diff(&locked, &before),
            Some(Diff {
                tokens: vec![],
                serials: vec![],
                emergency_codes: None,
                lockout_cleared: true,
                temp_code: None,
            })
        );
    }

    /// temp-code's line: made with its uses and expiry, or removed;
    /// never the code, its hash or its salt.
    #[test]
    fn a_temp_code_is_recorded_without_the_code() {
        use otp_core::secret_file::TempCode;
        let before = file();
        let mut after = before.clone();
        after.temp_code = Some(TempCode::new(
            "48151623",
            vec![9; 16],
            100,
            28_900,
            3,
            "root".into(),
        ));
        let d = diff(&before, &after).unwrap();
        assert_eq!(
            d.temp_code,
            Some(TempCodeChange::Made {
                uses: 3,
                expires: 28_900
            })
        );
        assert!(d.tokens.is_empty(), "{d:?}");
        assert_eq!(
            diff(&after, &before).unwrap().temp_code,
            Some(TempCodeChange::Removed)
        );
        let notes = [Note::Record {
            user: "bob".into(),
            store: StoreKind::System,
            change: RecordChange::Updated,
            tokens: d.tokens,
            serials: d.serials,
            emergency_codes: d.emergency_codes,
            lockout_cleared: d.lockout_cleared,
            temp_code: d.temp_code,
        }];
        let line = lines("temp-code", &notes, 0, &actor()).join("\n");
        assert!(
            line.starts_with(
                "command=temp-code user=\"bob\" store=system record=updated temp_code=made \
                 temp_code_uses=3 temp_code_expires=28900 exit=0"
            ),
            "{line}"
        );
        let hash = otp_core::key::encode_hex(&after.temp_code.unwrap().hash);
        assert!(
            !line.contains("48151623") && !line.contains(&hash[..16]),
            "{line}"
        );
    }

    #[test]
    fn one_line_per_user_with_who_made_it() {
        let notes = [
            Note::Pending {
                user: "al\"ice".into(),
                set: true,
            },
            Note::Record {
                user: "al\"ice".into(),
                store: StoreKind::System,
                change: RecordChange::Removed,
                tokens: vec!["app".into(), "OATH1".into()],
                serials: vec!["OATH1".into()],
                emergency_codes: None,
                lockout_cleared: false,
                temp_code: None,
            },
            Note::Inventory {
                change: InventoryChange::Returned,
                serial: "OATH1".into(),
                user: Some("al\"ice".into()),
            },
        ];
        assert_eq!(
            lines("reset", &notes, 0, &actor()),
            ["command=reset user=\"al\\x22ice\" store=system record=removed tokens=\"app,OATH1\" \
              serials=\"OATH1\" pending=set inventory=returned inventory_serials=\"OATH1\" exit=0 \
              uid=0 loginuid=1000 sudo_user=\"bob\\x0a\" host=\"h1\""]
        );
        let unset = Actor {
            login_uid: LoginUid::Unset,
            sudo_user: None,
            ..actor()
        };
        let imports: Vec<Note> = ["S1", "S2"]
            .iter()
            .map(|s| Note::Inventory {
                change: InventoryChange::Imported,
                serial: s.to_string(),
                user: None,
            })
            .chain([Note::Schema("created version 1".into())])
            .collect();
        assert_eq!(
            lines("inventory-import", &imports, 1, &unset),
            [
                "command=inventory-import inventory=imported count=2 serials=\"S1,S2\" exit=1 uid=0 loginuid=unset host=\"h1\"",
                "command=inventory-import schema=\"created version 1\" exit=1 uid=0 loginuid=unset host=\"h1\"",
            ]
        );
        let odd = Actor {
            login_uid: LoginUid::Other("x\u{1b}".into()),
            ..actor()
        };
        assert!(odd.fields().contains("loginuid=\"x\\x1b\""));
    }
}
