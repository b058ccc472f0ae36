//! The per-user secret file: TOML, `version = 1` (one token) or
//! `version = 2` (several, as `[[token]]` tables).
//!
//! Read through one serde mirror of both layouts ([`RawFile`]) and the toml
//! crate, written through one mirror per layout. Reading refuses unknown
//! keys (a typo must not silently weaken a login), then
//! [`SecretFile::from_raw`] checks every value with the `check_*`
//! functions below, which otp-enroll applies to its options too, and names
//! the token and field that are wrong.
//!
//! A file is written back in the layout it was read in: a login never
//! turns a version 1 file into a version 2 one, so a module that reads
//! only version 1 keeps working until otp-enroll changes the user's
//! tokens (it writes version 2, see [`SecretFile::upgrade`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key;
use crate::otp::{self, Algorithm, Generator};

/// The layouts this build reads and writes.
pub const VERSION_1: u32 = 1;
pub const VERSION_2: u32 = 2;
pub const DEFAULT_PERIOD: u64 = 30;
pub const MAX_PERIOD: u64 = 300;
pub const MAX_SCRATCH_CODES: usize = 100;
/// A user's tokens at most: enough for phones, keys and spares; a bound on
/// what one login computes (every token of the code's length is tried).
pub const MAX_TOKENS: usize = 16;
/// The id a version 1 file's token gets when its serial is not a valid
/// id (it has no id of its own), and what `otp-enroll new` calls an app.
pub const DEFAULT_ID: &str = "app";
/// The one range of an HOTP counter, everywhere: a file holds a `counter`
/// (the next one expected) of at most this, parsing refuses more, and no
/// command or login ever stores more ([`hotp_search`]). Far below
/// i64::MAX, TOML's integer limit. Also the bound of the other integers
/// in the state tables.
pub const MAX_COUNTER: u64 = 1 << 53;

/// The counters a code may be found at when looking from `first` up to
/// `ahead` further, clipped so that the counter stored after a match at
/// `c` (that is `c + 1`) stays within [`MAX_COUNTER`]. `None` when no
/// counter is left: the token is exhausted.
pub fn hotp_search(first: u64, ahead: u64) -> Option<std::ops::RangeInclusive<u64>> {
    let last = first.saturating_add(ahead).min(MAX_COUNTER - 1);
    (first <= last).then_some(first..=last)
}

/// How codes are derived from the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpKind {
    Totp,
    Hotp,
}

impl OtpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpKind::Totp => "totp",
            OtpKind::Hotp => "hotp",
        }
    }
}

/// What the module keeps of the user between logins, whichever token was
/// used: the rate limit belongs to the user. `otp-enroll unlock` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Failed codes since the last success (see `rate_limit`).
    pub failures: u32,
    /// Unix time of the last failed code.
    pub last_failure: u64,
    /// `grace_period`: where codes were accepted from, and when (version 2
    /// only). Bounded by [`MAX_GRACE`]; see `grace`.
    pub grace: Vec<Grace>,
}

/// At most this many addresses are remembered for `grace_period`.
pub const MAX_GRACE: usize = 16;

/// A code was accepted for the user from `from` at Unix time `at`,
/// through PAM service `service`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grace {
    /// The address, normalised (`Remote::Addr`'s text).
    pub from: String,
    pub at: u64,
    /// The PAM service the code was accepted for: grace holds for that
    /// service only. An entry without one (written before grace was per
    /// service) counts as expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Fleet database only: the host role that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What the module keeps of one token between logins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenState {
    /// TOTP: the last time step accepted; a step at or before it is a replay.
    pub last_step: Option<u64>,
    /// TOTP: learned clock offset of the token, in steps.
    pub drift: i64,
    /// TOTP: Unix time the learned drift last moved (0: never). It moves
    /// one step at most per `verify::DRIFT_MOVE_INTERVAL`.
    pub drift_moved: u64,
    /// Unix time a code of this token was last accepted (version 2 only:
    /// version 1 has no place for it, and a login does not upgrade).
    pub last_used: Option<u64>,
}

impl TokenState {
    /// Forgets the learned TOTP drift, as at enrollment: what `otp-enroll
    /// unlock` does, the way back from a drift pushed away from the real
    /// device. `last_step` stays: a used code must stay used.
    pub fn forget_drift(&mut self) {
        self.drift = 0;
        self.drift_moved = 0;
    }
}

/// What an admin decided about a token's life: whether it is disabled and
/// the dates it is valid between. A token outside it keeps its counter and
/// state but accepts nothing ([`Lifecycle::inactive_at`]). Version 2 only:
/// the keys `disabled`, `not_before` and `expires` of a `[[token]]` table,
/// which a module older than them refuses (an unknown key fails closed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// `otp-enroll disable`: accepts nothing until `enable`.
    pub disabled: bool,
    /// Unix time from which the token is valid (inclusive).
    pub not_before: Option<u64>,
    /// Unix time from which the token is no longer valid (exclusive end).
    pub expires: Option<u64>,
}

/// Why a token accepts nothing at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inactive {
    Disabled,
    /// Valid from this Unix time.
    NotYetValid(u64),
    /// Expired at this Unix time.
    Expired(u64),
}

impl fmt::Display for Inactive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inactive::Disabled => f.write_str("disabled"),
            Inactive::NotYetValid(t) => write!(f, "not yet valid (valid from {t})"),
            Inactive::Expired(t) => write!(f, "expired (at {t})"),
        }
    }
}

impl Lifecycle {
    /// Why the token accepts nothing at Unix time `now`, or `None` when it
    /// is active: enabled and `not_before <= now < expires`.
    pub fn inactive_at(&self, now: u64) -> Option<Inactive> {
        if self.disabled {
            return Some(Inactive::Disabled);
        }
        if let Some(t) = self.not_before.filter(|&t| now < t) {
            return Some(Inactive::NotYetValid(t));
        }
        if let Some(t) = self.expires.filter(|&t| now >= t) {
            return Some(Inactive::Expired(t));
        }
        None
    }

    pub fn is_default(&self) -> bool {
        *self == Lifecycle::default()
    }
}

/// A temporary code's length: that of an emergency code, so that it goes
/// to the same prompt and is split from "password + code" the same way.
pub const TEMP_CODE_DIGITS: usize = otp::SCRATCH_DIGITS;
/// Uses a temporary code may be given at most: a few logins a day for the
/// week it may last at most (`otp-enroll temp-code --uses`).
pub const MAX_TEMP_CODE_USES: u32 = 20;
/// How long a temporary code may be valid at most: 7 days.
pub const MAX_TEMP_CODE_VALID: u64 = 7 * 24 * 60 * 60;
/// The salt's length in bytes (128 bits, from the kernel).
pub const TEMP_CODE_SALT_BYTES: usize = 16;
/// The hash's length in bytes: HMAC-SHA-256.
pub const TEMP_CODE_HASH_BYTES: usize = 32;

/// A temporary code (`otp-enroll temp-code`): 8 digits that log the user
/// in `uses_left` more times until `expires`, beside (and whatever the
/// state of) their tokens, for a user whose phone is lost. Only a salted
/// hash of it is kept: HMAC-SHA-256 keyed with the salt over the digits.
/// That keeps it out of sight, not out of reach: 10^8 codes are tried in
/// seconds by whoever reads the record, who holds the token keys beside
/// it anyway (SECURITY.md). Version 2 only: the `[temp_code]` table, which
/// a module older than it refuses (an unknown key fails closed).
#[derive(Clone, PartialEq, Eq)]
pub struct TempCode {
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    /// Unix time from which it accepts nothing (exclusive end).
    pub expires: u64,
    /// Logins it accepts still; 0: used up.
    pub uses_left: u32,
    /// Unix time it was made.
    pub created: u64,
    /// Who made it (the name of the real uid of `otp-enroll`, and the
    /// login uid when another): evidence, as the audit line's.
    pub created_by: String,
}

impl fmt::Debug for TempCode {
    // The hash with its salt is the code to whoever tries 10^8 codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempCode")
            .field("hash", &"[redacted]")
            .field("expires", &self.expires)
            .field("uses_left", &self.uses_left)
            .field("created", &self.created)
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// Why a temporary code accepts nothing any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TempCodeGone {
    UsedUp,
    /// Expired at this Unix time.
    Expired(u64),
}

impl TempCodeGone {
    /// Why a code that expires at `expires` with `uses_left` accepts
    /// nothing at `now` (expiry first: an expired code is expired however
    /// many uses it had), or `None` when it is live. The one rule, for
    /// the record's code and for a census's summary of it.
    pub fn at(expires: u64, uses_left: u32, now: u64) -> Option<TempCodeGone> {
        if now >= expires {
            Some(TempCodeGone::Expired(expires))
        } else if uses_left == 0 {
            Some(TempCodeGone::UsedUp)
        } else {
            None
        }
    }
}

impl fmt::Display for TempCodeGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TempCodeGone::UsedUp => f.write_str("used up"),
            TempCodeGone::Expired(t) => write!(f, "expired (at {t})"),
        }
    }
}

impl TempCode {
    /// A temporary code for `code` (8 digits), hashed with `salt`.
    pub fn new(
        code: &str,
        salt: Vec<u8>,
        created: u64,
        expires: u64,
        uses: u32,
        created_by: String,
    ) -> TempCode {
        let hash = temp_code_digest(&salt, code).to_vec();
        TempCode {
            salt,
            hash,
            expires,
            uses_left: uses,
            created,
            created_by,
        }
    }

    /// Whether `code` is this code, compared in constant time (the
    /// digests, so nothing about the digits shows in the time taken).
    pub fn matches(&self, code: &str) -> bool {
        crate::otp::code_eq_digest(&temp_code_digest(&self.salt, code), &self.hash)
    }

    /// Why it accepts nothing at Unix time `now`, or `None` when it is
    /// live: uses left and `now < expires`.
    pub fn gone_at(&self, now: u64) -> Option<TempCodeGone> {
        TempCodeGone::at(self.expires, self.uses_left, now)
    }

    pub fn live_at(&self, now: u64) -> bool {
        self.gone_at(now).is_none()
    }

    fn check(&self) -> Result<(), SecretFileError> {
        let bad = SecretFileError::TempCode;
        if self.salt.len() != TEMP_CODE_SALT_BYTES {
            return Err(bad("salt must be 16 bytes (32 hex digits)"));
        }
        if self.hash.len() != TEMP_CODE_HASH_BYTES {
            return Err(bad("hash must be 32 bytes (64 hex digits)"));
        }
        if self.uses_left > MAX_TEMP_CODE_USES {
            return Err(bad("uses is out of range (0..=20)"));
        }
        if self.expires > MAX_COUNTER || self.created > MAX_COUNTER {
            return Err(bad("expires and created must be Unix times"));
        }
        if self.created_by.is_empty()
            || self.created_by.len() > 64
            || self.created_by.chars().any(char::is_control)
        {
            return Err(bad("created_by must be 1 to 64 printable characters"));
        }
        Ok(())
    }
}

/// HMAC-SHA-256 keyed with `salt` over the code's digits.
fn temp_code_digest(salt: &[u8], code: &str) -> [u8; TEMP_CODE_HASH_BYTES] {
    use hmac::{Hmac, KeyInit, Mac};
    // HMAC takes a key of any length: this cannot fail.
    match <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(salt) {
        Ok(mut mac) => {
            mac.update(code.as_bytes());
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; TEMP_CODE_HASH_BYTES],
    }
}

/// A `[temp_code]` hex value, strictly: exactly `bytes` bytes as lower- or
/// upper-case hex digits, nothing else.
fn decode_strict_hex(text: &str, bytes: usize) -> Option<Vec<u8>> {
    if text.len() != bytes * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    key::decode_hex(text)
}

/// One second factor: an app on a phone, a hardware token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Unique among the user's tokens ([`check_id`]); a hardware token's is
    /// its serial.
    pub id: String,
    pub kind: OtpKind,
    pub key: Vec<u8>,
    pub algorithm: Algorithm,
    pub digits: u8,
    /// TOTP step length in seconds.
    pub period: u64,
    /// HOTP: the next counter expected.
    pub counter: u64,
    /// Hardware token serial number, if the key came from one.
    pub serial: Option<String>,
    /// Unix time of enrollment, if known.
    pub created: Option<u64>,
    pub state: TokenState,
    /// Disabled, and the dates it is valid between (version 2 only).
    pub lifecycle: Lifecycle,
}

impl fmt::Debug for Token {
    // Never print the key, even in a debug dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("key", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("counter", &self.counter)
            .field("serial", &self.serial)
            .field("created", &self.created)
            .field("state", &self.state)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl Token {
    /// A token with defaults for everything but its id, kind and key.
    pub fn new(id: impl Into<String>, kind: OtpKind, key: Vec<u8>) -> Token {
        Token {
            id: id.into(),
            kind,
            key,
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: DEFAULT_PERIOD,
            counter: 0,
            serial: None,
            created: None,
            state: TokenState::default(),
            lifecycle: Lifecycle::default(),
        }
    }

    /// The code generator for this token's key and settings.
    pub fn generator(&self) -> Option<Generator> {
        Generator::new(&self.key, self.algorithm, self.digits)
    }

    /// Every rule a token's values must follow.
    pub fn check(&self) -> Result<(), TokenError> {
        check_id(&self.id)?;
        check_key(&self.key)?;
        check_digits(self.digits)?;
        check_period(self.period)?;
        if self.counter > MAX_COUNTER {
            return Err(TokenError::Counter(self.counter));
        }
        if let Some(serial) = &self.serial {
            check_serial(serial)?;
        }
        let st = &self.state;
        if st.last_step.is_some_and(|s| s > MAX_COUNTER) {
            return Err(TokenError::State("last_step is out of range"));
        }
        if st.drift.unsigned_abs() > MAX_COUNTER {
            return Err(TokenError::State("drift is out of range"));
        }
        if st.drift_moved > MAX_COUNTER {
            return Err(TokenError::State("drift_moved is out of range"));
        }
        if st.last_used.is_some_and(|s| s > MAX_COUNTER) {
            return Err(TokenError::State("last_used is out of range"));
        }
        let life = &self.lifecycle;
        if life.not_before.is_some_and(|s| s > MAX_COUNTER) {
            return Err(TokenError::Dates("not_before is out of range"));
        }
        if life.expires.is_some_and(|s| s > MAX_COUNTER) {
            return Err(TokenError::Dates("expires is out of range"));
        }
        Ok(())
    }
}

/// A validated secret file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    /// The layout it was read in and is written back in.
    pub version: u32,
    /// At least one, at most [`MAX_TOKENS`], ids unique; a version 1 file
    /// holds exactly one.
    pub tokens: Vec<Token>,
    /// Unused one-time emergency codes, 8 digits each.
    pub scratch_codes: Vec<String>,
    pub state: State,
    /// The uid of the account the record was made for (version 2 only;
    /// the system store and the fleet database write it: a home file is
    /// the account's own). A record whose uid is not the account's is
    /// refused: the name was deleted and made again (`userdel`,
    /// `useradd`), and the new account inherits nothing. `None`: written
    /// before the uid was kept, not checked.
    pub uid: Option<u32>,
    /// `otp-enroll temp-code`: a temporary code for a lost phone (version
    /// 2 only). A file may hold no token when it holds one.
    pub temp_code: Option<TempCode>,
}

/// What is wrong with one token's values. Each names the field and never a
/// value that could be secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Id,
    Secret(&'static str),
    /// The decoded key's length in bytes, outside 10..=128.
    KeyLength(usize),
    Digits(u8),
    Period(u64),
    Counter(u64),
    Serial,
    State(&'static str),
    Dates(&'static str),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Id => write!(
                f,
                "id: must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 . _ - (a hardware token's is its serial)"
            ),
            TokenError::Secret(why) => write!(f, "secret: {why}"),
            TokenError::KeyLength(n) => write!(
                f,
                "secret: the key is {n} bytes, it must be {} to {} ({} to {} bits)",
                key::MIN_KEY_BYTES,
                key::MAX_KEY_BYTES,
                key::MIN_KEY_BYTES * 8,
                key::MAX_KEY_BYTES * 8
            ),
            TokenError::Digits(d) => write!(
                f,
                "digits: {d} is out of range ({}..={})",
                otp::MIN_DIGITS,
                otp::MAX_DIGITS
            ),
            TokenError::Period(p) => {
                write!(f, "period: {p} is out of range (1..={MAX_PERIOD} seconds)")
            }
            TokenError::Counter(c) => write!(f, "counter: {c} is out of range"),
            TokenError::Serial => {
                write!(f, "serial: must be 1 to 64 printable characters")
            }
            TokenError::State(why) => write!(f, "state: {why}"),
            TokenError::Dates(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Why a secret file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFileError {
    /// Not TOML, a missing required key, an unknown key, or a wrong type.
    Syntax(String),
    Version(u32),
    /// A key of one layout in a file of the other.
    Layout(&'static str),
    /// A value of a version 1 file's one token.
    Value(TokenError),
    /// A token's value, with where the token is: its position in the file
    /// (from 1) and its id when that is valid.
    Token {
        index: usize,
        id: Option<String>,
        err: TokenError,
    },
    DuplicateId(String),
    NoTokens,
    TooManyTokens(usize),
    ScratchCode(usize),
    TooManyScratchCodes(usize),
    State(&'static str),
    /// A value of the `[temp_code]` table.
    TempCode(&'static str),
}

impl fmt::Display for SecretFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretFileError::Syntax(m) => write!(f, "{m}"),
            SecretFileError::Version(v) => write!(
                f,
                "version: {v} is not supported (this build reads versions {VERSION_1} and {VERSION_2})"
            ),
            SecretFileError::Layout(why) => f.write_str(why),
            SecretFileError::Value(err) => write!(f, "{err}"),
            SecretFileError::Token { index, id, err } => match id {
                Some(id) => write!(f, "token {index} ({id}): {err}"),
                None => write!(f, "token {index}: {err}"),
            },
            SecretFileError::DuplicateId(id) => {
                write!(f, "token ids must be unique: \"{id}\" is there more than once")
            }
            SecretFileError::NoTokens => f.write_str(
                "no [[token]] table: a file holds at least one token (or a [temp_code] table)",
            ),
            SecretFileError::TooManyTokens(n) => {
                write!(f, "{n} tokens, at most {MAX_TOKENS}")
            }
            SecretFileError::ScratchCode(i) => {
                write!(f, "scratch_codes[{i}]: must be exactly 8 digits")
            }
            SecretFileError::TooManyScratchCodes(n) => {
                write!(f, "scratch_codes: {n} codes, at most {MAX_SCRATCH_CODES}")
            }
            SecretFileError::State(why) => write!(f, "state: {why}"),
            SecretFileError::TempCode(why) => write!(f, "temp_code: {why}"),
        }
    }
}

impl std::error::Error for SecretFileError {}

/// Both layouts as TOML sees them, for reading: a version 1 file's token
/// keys sit at the top, a version 2 file's in `[[token]]` tables.
/// [`SecretFile::from_raw`] refuses what belongs to the other layout.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default, rename = "type")]
    kind: Option<OtpKind>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    algorithm: Option<Algorithm>,
    #[serde(default)]
    digits: Option<u8>,
    #[serde(default)]
    period: Option<u64>,
    #[serde(default)]
    counter: Option<u64>,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default)]
    scratch_codes: Vec<String>,
    #[serde(default)]
    state: RawV1State,
    #[serde(default)]
    temp_code: Option<RawTempCode>,
    #[serde(default)]
    token: Option<Vec<RawToken>>,
    /// Version 2 only.
    #[serde(default)]
    uid: Option<u32>,
}

/// `[temp_code]`, version 2 only: see [`TempCode`].
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTempCode {
    salt: String,
    hash: String,
    // Signed, so that a negative value is refused with the key's name
    // (TOML's own error does not name it).
    expires: i64,
    uses: i64,
    created: i64,
    created_by: String,
}

/// Version 1, as written: the token's keys at the top, all state in one
/// table. Optional settings are written out all the same, so an admin
/// reading the file sees what is in force; state at its default is left
/// out.
#[derive(Serialize)]
struct RawV1 {
    version: u32,
    #[serde(rename = "type")]
    kind: OtpKind,
    secret: String,
    algorithm: Algorithm,
    digits: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
    scratch_codes: Vec<String>,
    state: RawV1State,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct RawV1State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_step: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    drift: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    drift_moved: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    failures: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    last_failure: u64,
    /// Version 2 only (a version 1 file with it is refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    grace: Vec<Grace>,
}

/// Version 2, as written.
#[derive(Serialize)]
struct RawV2 {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    scratch_codes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<RawUserState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temp_code: Option<RawTempCode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    token: Vec<RawToken>,
}

#[derive(Serialize)]
struct RawUserState {
    failures: u32,
    last_failure: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    grace: Vec<Grace>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    id: String,
    #[serde(rename = "type")]
    kind: OtpKind,
    secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    algorithm: Option<Algorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digits: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
    #[serde(default)]
    state: RawTokenState,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTokenState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_step: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    drift: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    drift_moved: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<u64>,
}

fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// What the file starts with (TOML has no place for it in the mirror).
const HEADER: &str = "# pam_otp secret file: keep it private (mode 0600). Managed by otp-enroll.\n";

/// Whether `code` is a well-formed scratch code.
pub fn is_scratch_code(code: &str) -> bool {
    code.len() == otp::SCRATCH_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

pub const MAX_ID_LEN: usize = 32;

/// A token id: 1 to 32 of `A-Z a-z 0-9 . _ -`, so it can be typed in a
/// command and shown in a log line as it is.
pub fn check_id(id: &str) -> Result<(), TokenError> {
    let ok = (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TokenError::Id)
    }
}

/// A key of a length the module accepts.
pub fn check_key(key: &[u8]) -> Result<(), TokenError> {
    if (key::MIN_KEY_BYTES..=key::MAX_KEY_BYTES).contains(&key.len()) {
        Ok(())
    } else {
        Err(TokenError::KeyLength(key.len()))
    }
}

/// Code length: 6 to 8 digits.
pub fn check_digits(digits: u8) -> Result<(), TokenError> {
    if (otp::MIN_DIGITS..=otp::MAX_DIGITS).contains(&digits) {
        Ok(())
    } else {
        Err(TokenError::Digits(digits))
    }
}

/// TOTP step: 1 to [`MAX_PERIOD`] seconds.
pub fn check_period(period: u64) -> Result<(), TokenError> {
    if (1..=MAX_PERIOD).contains(&period) {
        Ok(())
    } else {
        Err(TokenError::Period(period))
    }
}

/// A hardware token's serial: 1 to 64 bytes, no control characters (it is
/// shown and logged).
pub fn check_serial(serial: &str) -> Result<(), TokenError> {
    if serial.is_empty() || serial.len() > 64 || serial.chars().any(char::is_control) {
        Err(TokenError::Serial)
    } else {
        Ok(())
    }
}

/// The id a version 1 file's token is known by: its serial when that is a
/// valid id, else [`DEFAULT_ID`].
fn v1_id(serial: Option<&str>) -> String {
    match serial {
        Some(s) if check_id(s).is_ok() => s.to_string(),
        _ => DEFAULT_ID.to_string(),
    }
}

/// A token's key from the file: base32, else refused.
fn decode_secret(secret: &str) -> Result<Vec<u8>, TokenError> {
    key::decode_base32(secret).ok_or(TokenError::Secret("not valid base32"))
}

impl SecretFile {
    /// A version 2 file holding one token.
    pub fn with_token(token: Token) -> SecretFile {
        SecretFile {
            version: VERSION_2,
            tokens: vec![token],
            scratch_codes: Vec::new(),
            state: State::default(),
            uid: None,
            temp_code: None,
        }
    }

    pub fn parse(text: &str) -> Result<SecretFile, SecretFileError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| SecretFileError::Syntax(one_line(&e)))?;
        SecretFile::from_raw(raw)
    }

    /// Parses bytes read from disk; anything not UTF-8 is refused.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SecretFile, SecretFileError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| SecretFileError::Syntax("not UTF-8 text".into()))?;
        SecretFile::parse(text)
    }

    fn from_raw(raw: RawFile) -> Result<SecretFile, SecretFileError> {
        let file = match raw.version {
            VERSION_1 => SecretFile::from_v1(raw)?,
            VERSION_2 => SecretFile::from_v2(raw)?,
            v => return Err(SecretFileError::Version(v)),
        };
        file.check()?;
        Ok(file)
    }

    fn from_v1(raw: RawFile) -> Result<SecretFile, SecretFileError> {
        if raw.token.is_some() {
            return Err(SecretFileError::Layout(
                "token: [[token]] tables need version = 2 (version 1 holds one token at the top)",
            ));
        }
        let kind = raw
            .kind
            .ok_or(SecretFileError::Syntax("TOML: missing field `type`".into()))?;
        let secret = raw.secret.ok_or(SecretFileError::Syntax(
            "TOML: missing field `secret`".into(),
        ))?;
        let key = decode_secret(&secret).map_err(SecretFileError::Value)?;
        let st = raw.state;
        if !st.grace.is_empty() {
            return Err(SecretFileError::Layout("state: grace needs version = 2"));
        }
        if raw.uid.is_some() {
            return Err(SecretFileError::Layout("uid needs version = 2"));
        }
        if raw.temp_code.is_some() {
            return Err(SecretFileError::Layout("temp_code needs version = 2"));
        }
        let token = Token {
            id: v1_id(raw.serial.as_deref()),
            kind,
            key,
            algorithm: raw.algorithm.unwrap_or_default(),
            digits: raw.digits.unwrap_or(6),
            period: raw.period.unwrap_or(DEFAULT_PERIOD),
            counter: raw.counter.unwrap_or(0),
            serial: raw.serial,
            created: raw.created,
            state: TokenState {
                last_step: st.last_step,
                drift: st.drift,
                drift_moved: st.drift_moved,
                last_used: None,
            },
            lifecycle: Lifecycle::default(),
        };
        Ok(SecretFile {
            version: VERSION_1,
            tokens: vec![token],
            scratch_codes: raw.scratch_codes,
            state: State {
                failures: st.failures,
                last_failure: st.last_failure,
                grace: Vec::new(),
            },
            uid: None,
            temp_code: None,
        })
    }

    fn from_v2(raw: RawFile) -> Result<SecretFile, SecretFileError> {
        let top_level_token_key = raw.kind.is_some()
            || raw.secret.is_some()
            || raw.algorithm.is_some()
            || raw.digits.is_some()
            || raw.period.is_some()
            || raw.counter.is_some()
            || raw.serial.is_some()
            || raw.created.is_some();
        if top_level_token_key {
            return Err(SecretFileError::Layout(
                "version 2 keeps type, secret, algorithm, digits, period, counter, serial \
                 and created in each [[token]] table, not at the top",
            ));
        }
        let st = raw.state;
        if st.last_step.is_some() || st.drift != 0 || st.drift_moved != 0 {
            return Err(SecretFileError::Layout(
                "state: in version 2, last_step, drift and drift_moved belong in each token's \
                 [token.state]",
            ));
        }
        let raw_tokens = raw.token.unwrap_or_default();
        if raw_tokens.len() > MAX_TOKENS {
            return Err(SecretFileError::TooManyTokens(raw_tokens.len()));
        }
        let mut tokens = Vec::with_capacity(raw_tokens.len());
        for (i, t) in raw_tokens.into_iter().enumerate() {
            let key = decode_secret(&t.secret).map_err(|err| SecretFileError::Token {
                index: i + 1,
                id: check_id(&t.id).is_ok().then(|| t.id.clone()),
                err,
            })?;
            tokens.push(Token {
                id: t.id,
                kind: t.kind,
                key,
                algorithm: t.algorithm.unwrap_or_default(),
                digits: t.digits.unwrap_or(6),
                period: t.period.unwrap_or(DEFAULT_PERIOD),
                counter: t.counter.unwrap_or(0),
                serial: t.serial,
                created: t.created,
                state: TokenState {
                    last_step: t.state.last_step,
                    drift: t.state.drift,
                    drift_moved: t.state.drift_moved,
                    last_used: t.state.last_used,
                },
                lifecycle: Lifecycle {
                    disabled: t.disabled,
                    not_before: t.not_before,
                    expires: t.expires,
                },
            });
        }
        let temp_code = match raw.temp_code {
            None => None,
            Some(t) => Some(TempCode {
                salt: decode_strict_hex(&t.salt, TEMP_CODE_SALT_BYTES).ok_or(
                    SecretFileError::TempCode("salt must be 16 bytes (32 hex digits)"),
                )?,
                hash: decode_strict_hex(&t.hash, TEMP_CODE_HASH_BYTES).ok_or(
                    SecretFileError::TempCode("hash must be 32 bytes (64 hex digits)"),
                )?,
                expires: u64::try_from(t.expires).map_err(|_| {
                    SecretFileError::TempCode("expires must be a Unix time (not negative)")
                })?,
                uses_left: u32::try_from(t.uses)
                    .map_err(|_| SecretFileError::TempCode("uses is out of range (0..=20)"))?,
                created: u64::try_from(t.created).map_err(|_| {
                    SecretFileError::TempCode("created must be a Unix time (not negative)")
                })?,
                created_by: t.created_by,
            }),
        };
        Ok(SecretFile {
            version: VERSION_2,
            tokens,
            scratch_codes: raw.scratch_codes,
            state: State {
                failures: st.failures,
                last_failure: st.last_failure,
                grace: st.grace,
            },
            uid: raw.uid,
            temp_code,
        })
    }

    /// Every rule a file's values must follow: what parsing enforces, and
    /// what [`SecretFile::to_text`] checks before writing, so that nothing
    /// is written that the next login would refuse.
    pub fn check(&self) -> Result<(), SecretFileError> {
        match (self.version, self.tokens.len()) {
            (VERSION_1, _) if self.temp_code.is_some() => {
                return Err(SecretFileError::Layout("temp_code needs version = 2"))
            }
            // A temporary code given to a user without a token (whose
            // phone was removed, or who never had one).
            (VERSION_2, 0) if self.temp_code.is_some() => {}
            (VERSION_1 | VERSION_2, 0) => return Err(SecretFileError::NoTokens),
            (VERSION_1, 1) => {}
            (VERSION_1, _) => {
                return Err(SecretFileError::Layout(
                    "version 1 holds one token: several need version = 2",
                ))
            }
            (VERSION_2, n) if n > MAX_TOKENS => return Err(SecretFileError::TooManyTokens(n)),
            (VERSION_2, _) => {}
            (v, _) => return Err(SecretFileError::Version(v)),
        }
        for (i, token) in self.tokens.iter().enumerate() {
            token.check().map_err(|err| {
                if self.version == VERSION_1 {
                    SecretFileError::Value(err)
                } else {
                    SecretFileError::Token {
                        index: i + 1,
                        id: check_id(&token.id).is_ok().then(|| token.id.clone()),
                        err,
                    }
                }
            })?;
            if self.tokens.iter().take(i).any(|t| t.id == token.id) {
                return Err(SecretFileError::DuplicateId(token.id.clone()));
            }
        }
        if self.scratch_codes.len() > MAX_SCRATCH_CODES {
            return Err(SecretFileError::TooManyScratchCodes(
                self.scratch_codes.len(),
            ));
        }
        if let Some(i) = self.scratch_codes.iter().position(|c| !is_scratch_code(c)) {
            return Err(SecretFileError::ScratchCode(i));
        }
        if self.state.last_failure > MAX_COUNTER {
            return Err(SecretFileError::State("last_failure is out of range"));
        }
        if self.version == VERSION_1 && self.tokens.iter().any(|t| !t.lifecycle.is_default()) {
            return Err(SecretFileError::Layout(
                "disabled, not_before and expires need version = 2",
            ));
        }
        if !self.state.grace.is_empty() && self.version == VERSION_1 {
            return Err(SecretFileError::Layout("state: grace needs version = 2"));
        }
        if self.uid.is_some() && self.version == VERSION_1 {
            return Err(SecretFileError::Layout("uid needs version = 2"));
        }
        if let Some(t) = &self.temp_code {
            t.check()?;
        }
        if self.state.grace.len() > MAX_GRACE {
            return Err(SecretFileError::State(
                "grace: more addresses than allowed (16)",
            ));
        }
        if self
            .state
            .grace
            .iter()
            .any(|g| g.at > MAX_COUNTER || g.from.parse::<std::net::IpAddr>().is_err())
        {
            return Err(SecretFileError::State(
                "grace: each entry needs an IP address and a time",
            ));
        }
        let odd = |s: &Option<String>| {
            s.as_ref()
                .is_some_and(|s| s.is_empty() || s.len() > 64 || s.chars().any(char::is_control))
        };
        if self
            .state
            .grace
            .iter()
            .any(|g| odd(&g.service) || odd(&g.by))
        {
            return Err(SecretFileError::State(
                "grace: a service or role is 1 to 64 characters, none a control character",
            ));
        }
        Ok(())
    }

    /// From now on written as version 2: what otp-enroll does before it
    /// saves a change, so that a file it touched can hold several tokens
    /// and when each was last used.
    pub fn upgrade(&mut self) {
        self.version = VERSION_2;
    }

    /// Whether the user has something that logs in or is refused at
    /// `now` as a token is: a token (active or not), or a live temporary
    /// code. A file with neither (a temporary code used up or expired, and
    /// no token) is "no token" to a login.
    pub fn has_token_at(&self, now: u64) -> bool {
        !self.tokens.is_empty() || self.temp_code.as_ref().is_some_and(|t| t.live_at(now))
    }

    /// Drops a temporary code that accepts nothing any more at `now`,
    /// unless it is all the file holds (a file holds a token or a
    /// temporary code): what every write of a login does. Whether it
    /// dropped one.
    pub fn prune_temp_code(&mut self, now: u64) -> bool {
        let gone = self.temp_code.as_ref().is_some_and(|t| !t.live_at(now));
        if gone && !self.tokens.is_empty() {
            self.temp_code = None;
            return true;
        }
        false
    }

    /// The token with this id.
    pub fn token(&self, id: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| t.id == id)
    }

    pub fn token_mut(&mut self, id: &str) -> Option<&mut Token> {
        self.tokens.iter_mut().find(|t| t.id == id)
    }

    /// The file's text, in its version's layout, which
    /// [`SecretFile::parse`] reads back as the same file (for version 1,
    /// less the `last_used` it has no place for). Refused if a value
    /// breaks a rule of [`SecretFile::check`].
    pub fn to_text(&self) -> Result<String, SecretFileError> {
        self.check()?;
        let body = match (self.version, self.tokens.as_slice()) {
            (VERSION_1, [token]) => toml::to_string(&self.raw_v1(token)),
            _ => toml::to_string(&self.raw_v2()),
        }
        .map_err(|e| SecretFileError::Syntax(format!("TOML: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }

    fn raw_v1(&self, t: &Token) -> RawV1 {
        let totp = t.kind == OtpKind::Totp;
        RawV1 {
            version: VERSION_1,
            kind: t.kind,
            secret: key::encode_base32(&t.key),
            algorithm: t.algorithm,
            digits: t.digits,
            // Each kind's own setting always; the other's only if it is
            // not the default, so that a rewrite keeps what was there.
            period: (totp || t.period != DEFAULT_PERIOD).then_some(t.period),
            counter: (!totp || t.counter != 0).then_some(t.counter),
            serial: t.serial.clone(),
            created: t.created,
            scratch_codes: self.scratch_codes.clone(),
            state: RawV1State {
                last_step: t.state.last_step,
                drift: t.state.drift,
                drift_moved: t.state.drift_moved,
                failures: self.state.failures,
                last_failure: self.state.last_failure,
                grace: Vec::new(),
            },
        }
    }

    fn raw_v2(&self) -> RawV2 {
        let token = self
            .tokens
            .iter()
            .map(|t| {
                let totp = t.kind == OtpKind::Totp;
                RawToken {
                    id: t.id.clone(),
                    kind: t.kind,
                    secret: key::encode_base32(&t.key),
                    algorithm: Some(t.algorithm),
                    digits: Some(t.digits),
                    period: (totp || t.period != DEFAULT_PERIOD).then_some(t.period),
                    counter: (!totp || t.counter != 0).then_some(t.counter),
                    serial: t.serial.clone(),
                    created: t.created,
                    disabled: t.lifecycle.disabled,
                    not_before: t.lifecycle.not_before,
                    expires: t.lifecycle.expires,
                    state: RawTokenState {
                        last_step: t.state.last_step,
                        drift: t.state.drift,
                        drift_moved: t.state.drift_moved,
                        last_used: t.state.last_used,
                    },
                }
            })
            .collect();
        RawV2 {
            version: VERSION_2,
            uid: self.uid,
            scratch_codes: self.scratch_codes.clone(),
            state: (self.state != State::default()).then_some(RawUserState {
                failures: self.state.failures,
                last_failure: self.state.last_failure,
                grace: self.state.grace.clone(),
            }),
            temp_code: self.temp_code.as_ref().map(|t| RawTempCode {
                salt: key::encode_hex(&t.salt),
                hash: key::encode_hex(&t.hash),
                expires: i64::try_from(t.expires).unwrap_or(i64::MAX),
                uses: i64::from(t.uses_left),
                created: i64::try_from(t.created).unwrap_or(i64::MAX),
                created_by: t.created_by.clone(),
            }),
            token,
        }
    }
}

/// toml's errors span several lines with a source excerpt; a log line and a
/// short message want one. The excerpt could show a secret, so keep only the
/// message and the line number.
fn one_line(err: &toml::de::Error) -> String {
    format!("TOML: {}", err.message().trim().replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = 1
type = "totp"
secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
scratch_codes = ["31415926", "27182818"]
"#;

    /// The SPEC's version 2 example.
    const TWO: &str = r#"
version = 2
scratch_codes = ["31415926"]

[[token]]
id = "phone"
type = "totp"
secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

[[token]]
id = "OATH00012345"
type = "hotp"
serial = "OATH00012345"
secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
counter = 12
"#;

    fn only(f: &SecretFile) -> &Token {
        assert_eq!(f.tokens.len(), 1, "{f:?}");
        &f.tokens[0]
    }

    #[test]
    fn minimal_hand_written_file_gets_defaults() {
        let f = SecretFile::parse(MINIMAL).unwrap();
        assert_eq!(f.version, VERSION_1);
        let t = only(&f);
        assert_eq!(t.id, DEFAULT_ID);
        assert_eq!(t.kind, OtpKind::Totp);
        assert_eq!(t.algorithm, Algorithm::SHA1);
        assert_eq!(t.digits, 6);
        assert_eq!(t.period, 30);
        assert_eq!(t.counter, 0);
        assert_eq!(t.state, TokenState::default());
        assert_eq!(f.scratch_codes, vec!["31415926", "27182818"]);
        assert_eq!(f.state, State::default());
    }

    #[test]
    fn a_version_1_token_is_known_by_its_serial() {
        let f = SecretFile::parse(&format!("{MINIMAL}serial = \"OATH0001\"\n")).unwrap();
        assert_eq!(only(&f).id, "OATH0001");
        // A serial that is no valid id (a space) leaves the default.
        let f = SecretFile::parse(&format!("{MINIMAL}serial = \"OATH 0001\"\n")).unwrap();
        assert_eq!(only(&f).id, DEFAULT_ID);
    }

    #[test]
    fn the_specs_version_2_example_reads() {
        let f = SecretFile::parse(TWO).unwrap();
        assert_eq!(f.version, VERSION_2);
        assert_eq!(f.tokens.len(), 2);
        let phone = f.token("phone").unwrap();
        assert_eq!(
            (phone.kind, phone.digits, phone.period),
            (OtpKind::Totp, 6, 30)
        );
        let hw = f.token("OATH00012345").unwrap();
        assert_eq!(hw.kind, OtpKind::Hotp);
        assert_eq!(hw.counter, 12);
        assert_eq!(hw.serial.as_deref(), Some("OATH00012345"));
        assert_eq!(hw.key, b"1234567890123456789012345678901234567890"[..20]);
        assert_eq!(f.scratch_codes, vec!["31415926"]);
    }

    fn a_token(id: &str) -> Token {
        let mut t = Token::new(id, OtpKind::Hotp, b"12345678901234567890".to_vec());
        t.algorithm = Algorithm::SHA256;
        t.digits = 8;
        t.counter = 42;
        t.serial = Some("OATH0001234".into());
        t.created = Some(1_700_000_000);
        t
    }

    #[test]
    fn round_trip_keeps_all_data() {
        for version in [VERSION_1, VERSION_2] {
            let mut f = SecretFile::with_token(a_token("OATH0001234"));
            f.version = version;
            f.scratch_codes = vec!["12345678".into()];
            f.tokens[0].state = TokenState {
                last_step: Some(5),
                drift: -1,
                drift_moved: 77,
                last_used: (version == VERSION_2).then_some(1_700_000_100),
            };
            f.state = State {
                failures: 2,
                last_failure: 99,
                grace: Vec::new(),
            };
            let text = f.to_text().unwrap();
            assert!(text.contains("counter = 42"), "{text}");
            assert!(text.contains(&format!("version = {version}")), "{text}");
            assert!(!text.contains("period"), "period is TOTP-only:\n{text}");
            assert_eq!(SecretFile::parse(&text).unwrap(), f, "{text}");
        }
    }

    #[test]
    fn lifecycle_keys_round_trip_in_version_2_only() {
        let mut f = SecretFile::with_token(a_token("OATH0001234"));
        f.tokens[0].lifecycle = Lifecycle {
            disabled: true,
            not_before: Some(1_800_000_000),
            expires: Some(1_900_000_000),
        };
        let text = f.to_text().unwrap();
        assert!(text.contains("disabled = true"), "{text}");
        assert!(text.contains("not_before = 1800000000"), "{text}");
        assert!(text.contains("expires = 1900000000"), "{text}");
        assert_eq!(SecretFile::parse(&text).unwrap(), f, "{text}");
        // Nothing written for a token with none.
        f.tokens[0].lifecycle = Lifecycle::default();
        let text = f.to_text().unwrap();
        assert!(
            !text.contains("disabled") && !text.contains("expires"),
            "{text}"
        );
        // Version 1 has no place for them: refused, top-level keys too.
        f.tokens[0].lifecycle.disabled = true;
        f.version = VERSION_1;
        assert!(matches!(f.to_text(), Err(SecretFileError::Layout(_))));
        assert!(SecretFile::parse(&format!("{MINIMAL}disabled = true\n")).is_err());
        // Out of range is refused like any state.
        let mut f = SecretFile::with_token(a_token("x"));
        f.tokens[0].lifecycle.expires = Some(u64::MAX);
        assert!(f.to_text().is_err());
    }

    fn a_temp_code() -> TempCode {
        TempCode::new(
            "48151623",
            vec![0xab; TEMP_CODE_SALT_BYTES],
            1_800_000_000,
            1_800_028_800,
            3,
            "root (login uid 1000)".into(),
        )
    }

    #[test]
    fn a_temp_code_round_trips_as_a_salted_hash_in_version_2_only() {
        let mut f = SecretFile::parse(TWO).unwrap();
        f.temp_code = Some(a_temp_code());
        let text = f.to_text().unwrap();
        assert!(text.contains("[temp_code]"), "{text}");
        assert!(
            text.contains("uses = 3") && text.contains("expires = 1800028800"),
            "{text}"
        );
        assert!(!text.contains("48151623"), "never the code:\n{text}");
        assert!(!format!("{f:?}").contains("hash: ["), "{f:?}");
        let back = SecretFile::parse(&text).unwrap();
        assert_eq!(back, f, "{text}");
        let t = back.temp_code.unwrap();
        assert!(t.matches("48151623") && !t.matches("48151624"));
        // The same code under another salt is another hash.
        let other = TempCode::new("48151623", vec![1; 16], 0, 1, 1, "root".into());
        assert_ne!(other.hash, t.hash);
        // A record may hold the temporary code alone; without it, no token
        // is no file.
        f.tokens.clear();
        let text = f.to_text().unwrap();
        assert!(!text.contains("[[token]]"), "{text}");
        assert_eq!(SecretFile::parse(&text).unwrap(), f);
        f.temp_code = None;
        assert_eq!(f.to_text(), Err(SecretFileError::NoTokens));
        // Version 1 has no place for it, written or read.
        let mut v1 = SecretFile::parse(MINIMAL).unwrap();
        v1.temp_code = Some(a_temp_code());
        assert!(matches!(v1.to_text(), Err(SecretFileError::Layout(_))));
        let mut v2 = SecretFile::parse(MINIMAL).unwrap();
        v2.upgrade();
        v2.temp_code = Some(a_temp_code());
        let table = v2.to_text().unwrap();
        let table = &table[table.find("[temp_code]").unwrap()..table.find("[[token]]").unwrap()];
        assert!(err(&format!("{MINIMAL}{table}")).contains("version = 2"));
    }

    #[test]
    fn a_bad_temp_code_is_refused_by_name() {
        let mut f = SecretFile::parse(TWO).unwrap();
        f.temp_code = Some(a_temp_code());
        let good = f.to_text().unwrap();
        let hash = key::encode_hex(&f.temp_code.as_ref().unwrap().hash);
        let cases = [
            (
                good.replace(&hash, &hash[..62]),
                "temp_code: hash must be 32 bytes",
            ),
            (
                good.replace(&hash, &format!("{}zz", &hash[..62])),
                "temp_code: hash must be 32 bytes",
            ),
            (
                good.replace(&hash, &format!("{hash}00")),
                "temp_code: hash must be 32 bytes",
            ),
            (
                good.replace(&hash, &format!(" {}", &hash[1..])),
                "temp_code: hash must be 32 bytes",
            ),
            (
                good.replace("salt = \"abab", "salt = \"ab"),
                "temp_code: salt must be 16 bytes",
            ),
            (
                good.replace("uses = 3", "uses = -1"),
                "temp_code: uses is out of range",
            ),
            (
                good.replace("uses = 3", "uses = 21"),
                "temp_code: uses is out of range",
            ),
            (
                good.replace("expires = 1800028800", "expires = -5"),
                "temp_code: expires must be",
            ),
            (
                good.replace("root (login uid 1000)", ""),
                "temp_code: created_by",
            ),
            (good.replace("uses = 3\n", ""), "uses"),
            (
                good.replace("uses = 3", "uses = 3\ncode = \"48151623\""),
                "code",
            ),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "{want}: {e}\n{text}");
        }
        // The limits themselves are accepted; 0 uses is a used-up code.
        for uses in ["uses = 0", "uses = 20"] {
            let f = SecretFile::parse(&good.replace("uses = 3", uses)).unwrap();
            assert!(f.temp_code.is_some());
        }
    }

    #[test]
    fn a_temp_code_is_live_before_its_expiry_with_uses_left() {
        let t = a_temp_code();
        let d = t.expires;
        assert_eq!(t.gone_at(d - 1), None);
        assert_eq!(t.gone_at(d), Some(TempCodeGone::Expired(d)));
        assert_eq!(t.gone_at(d + 1), Some(TempCodeGone::Expired(d)));
        let spent = TempCode { uses_left: 0, ..t };
        assert_eq!(spent.gone_at(d - 1), Some(TempCodeGone::UsedUp));
        // Pruned at a write when tokens remain; kept when it is all there is.
        let mut f = SecretFile::parse(TWO).unwrap();
        f.temp_code = Some(spent.clone());
        assert!(f.prune_temp_code(0) && f.temp_code.is_none());
        f.tokens.clear();
        f.temp_code = Some(spent);
        assert!(!f.prune_temp_code(0) && f.temp_code.is_some());
        assert!(!f.has_token_at(0));
        f.temp_code = Some(a_temp_code());
        assert!(f.has_token_at(d - 1) && !f.has_token_at(d));
    }

    #[test]
    fn inactive_at_the_edges() {
        let life = Lifecycle {
            disabled: false,
            not_before: Some(100),
            expires: Some(200),
        };
        assert_eq!(life.inactive_at(99), Some(Inactive::NotYetValid(100)));
        assert_eq!(life.inactive_at(100), None);
        assert_eq!(life.inactive_at(101), None);
        assert_eq!(life.inactive_at(199), None);
        assert_eq!(life.inactive_at(200), Some(Inactive::Expired(200)));
        assert_eq!(life.inactive_at(201), Some(Inactive::Expired(200)));
        let off = Lifecycle {
            disabled: true,
            ..life
        };
        assert_eq!(off.inactive_at(150), Some(Inactive::Disabled));
    }

    #[test]
    fn several_tokens_round_trip_in_order() {
        let mut f = SecretFile::parse(TWO).unwrap();
        f.tokens.push(a_token("spare"));
        f.tokens[0].state.last_used = Some(1_800_000_000);
        f.tokens[0].state.last_step = Some(60_000_000);
        f.state.failures = 1;
        f.state.last_failure = 1_800_000_001;
        let text = f.to_text().unwrap();
        let back = SecretFile::parse(&text).unwrap();
        assert_eq!(back, f, "{text}");
        let ids: Vec<_> = back.tokens.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["phone", "OATH00012345", "spare"]);
    }

    /// A login keeps the layout it read; only `upgrade` changes it.
    #[test]
    fn a_version_1_file_is_written_as_version_1_until_upgraded() {
        let mut f = SecretFile::parse(MINIMAL).unwrap();
        f.tokens[0].state.last_step = Some(7);
        let text = f.to_text().unwrap();
        assert!(
            text.contains("version = 1") && !text.contains("[[token]]"),
            "{text}"
        );
        // What an older module reads: no key it does not know.
        assert!(
            !text.contains("last_used") && !text.contains("id ="),
            "{text}"
        );
        f.upgrade();
        let text = f.to_text().unwrap();
        assert!(
            text.contains("version = 2") && text.contains("[[token]]"),
            "{text}"
        );
        assert!(text.contains("id = \"app\""), "{text}");
        assert_eq!(SecretFile::parse(&text).unwrap(), f);
        // Version 1 has no place for several tokens.
        let mut g = SecretFile::parse(MINIMAL).unwrap();
        g.tokens.push(a_token("second"));
        assert!(matches!(g.to_text(), Err(SecretFileError::Layout(_))));
    }

    fn err(text: &str) -> String {
        SecretFile::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\n";
        assert!(
            err("version = 3\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"")
                .starts_with("version: 3 is not supported (this build reads versions 1 and 2)")
        );
        assert!(
            err(&base.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "not base32!"))
                .starts_with("secret:")
        );
        assert!(
            err(&base.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "JBSWY3DP"))
                .starts_with("secret:")
        );
        assert!(err(&format!("{base}digits = 5")).starts_with("digits:"));
        assert!(err(&format!("{base}digits = 9")).starts_with("digits:"));
        assert!(err(&format!("{base}period = 0")).starts_with("period:"));
        assert!(err(&format!("{base}period = 301")).starts_with("period:"));
        assert!(err(&format!("{base}counter = 9007199254740993")).starts_with("counter:"));
        assert!(
            err(&format!("{base}scratch_codes = [\"12345678\", \"1234\"]"))
                .starts_with("scratch_codes[1]")
        );
        assert!(err(&format!("{base}serial = \"\"")).starts_with("serial:"));
        assert!(err(&format!("{base}[state]\nlast_step = 9007199254740993")).starts_with("state:"));
        assert!(
            err(&format!("{base}[state]\ndrift_moved = 9007199254740993"))
                .starts_with("state: drift_moved")
        );
        // serde-level errors carry the key's name.
        assert!(err(&format!("{base}digitz = 6")).contains("digitz"));
        assert!(err(&format!("{base}algorithm = \"MD5\"")).contains("MD5"));
        assert!(err(&format!("{base}digits = \"six\"")).contains("TOML"));
        assert!(err(&format!("{base}digits = 1000")).contains("TOML"));
        assert!(err(&format!("{base}[state]\nfoo = 1")).contains("foo"));
        assert!(err(&format!("{base}[state]\nlast_used = 1")).contains("last_used"));
        assert!(err("type = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\"").contains("version"));
        assert!(err("version = 1\ntype = \"sms\"\nsecret = \"JBSWY3DPEHPK3PXP\"").contains("sms"));
        assert!(err("version = 1\ntype = \"totp\"").contains("secret"));
        assert!(err("version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"").contains("type"));
        assert!(err(&format!(
            "{base}[[token]]\nid = \"a\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXP\""
        ))
        .contains("version = 2"));
    }

    const TOKEN_A: &str =
        "[[token]]\nid = \"a\"\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\n";

    /// Version 2's own mistakes: each named, with the token where it is.
    #[test]
    fn every_bad_version_2_file_is_named() {
        let two = |body: &str| err(&format!("version = 2\n{body}"));
        assert_eq!(
            two(""),
            "no [[token]] table: a file holds at least one token (or a [temp_code] table)"
        );
        assert_eq!(
            two(&format!("{TOKEN_A}{TOKEN_A}")),
            "token ids must be unique: \"a\" is there more than once"
        );
        let seventeen: String = (0..=MAX_TOKENS)
            .map(|i| TOKEN_A.replace("\"a\"", &format!("\"t{i}\"")))
            .collect();
        assert_eq!(two(&seventeen), "17 tokens, at most 16");
        let sixteen: String = (0..MAX_TOKENS)
            .map(|i| TOKEN_A.replace("\"a\"", &format!("\"t{i}\"")))
            .collect();
        assert_eq!(
            SecretFile::parse(&format!("version = 2\n{sixteen}"))
                .unwrap()
                .tokens
                .len(),
            16
        );
        // Unknown keys, in a token and in its state.
        assert!(two(&format!("{TOKEN_A}digitz = 6\n")).contains("digitz"));
        assert!(two(&format!("{TOKEN_A}[token.state]\nfoo = 1\n")).contains("foo"));
        // The id is required, and checked.
        assert!(two(&TOKEN_A.replace("id = \"a\"\n", "")).contains("id"));
        assert_eq!(
            two(&TOKEN_A.replace("\"a\"", "\"my phone\"")),
            format!("token 1: {}", TokenError::Id)
        );
        assert!(
            two(&TOKEN_A.replace("\"a\"", &format!("\"{}\"", "x".repeat(33))))
                .starts_with("token 1: id:")
        );
        // Values are named with the token.
        assert_eq!(
            two(&format!(
                "{TOKEN_A}{}digits = 9\n",
                TOKEN_A.replace("\"a\"", "\"b\"")
            )),
            "token 2 (b): digits: 9 is out of range (6..=8)"
        );
        assert!(
            two(&TOKEN_A.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "!"))
                .starts_with("token 1 (a): secret:")
        );
        // A version 1 key at the top, or a token's state at the user's.
        assert!(two(&format!("type = \"totp\"\n{TOKEN_A}")).contains("in each [[token]] table"));
        assert!(two(&format!("[state]\nlast_step = 3\n\n{TOKEN_A}")).contains("[token.state]"));
        // The user's own state is at the top.
        let f =
            SecretFile::parse(&format!("version = 2\n[state]\nfailures = 1\n\n{TOKEN_A}")).unwrap();
        assert_eq!(f.state.failures, 1);
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let text = "version = 1\ntype = \"totp\"\nsecret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\ndigits = \"x\"\n";
        let e = err(text);
        assert!(!e.contains("JBSWY3DP"), "{e}");
        let e = err("version = 1\ntype = \"totp\"\nsecret = \"JBSW!Y3DPEHPK3PXP\"");
        assert!(!e.contains("JBSW"), "{e}");
        let e = err(&format!(
            "version = 2\n{}",
            TOKEN_A.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "JBSW!Y3DPEHPK3PXP")
        ));
        assert!(!e.contains("JBSW"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SecretFile::parse_bytes(&[0xff, 0xfe, 0x00, 0x41]).is_err());
        assert!(SecretFile::parse("").is_err());
        assert!(SecretFile::parse(&MINIMAL[..40]).is_err());
        assert!(SecretFile::parse(&TWO[..TWO.len() - 20]).is_err());
    }

    #[test]
    fn debug_output_hides_the_key() {
        for text in [MINIMAL, TWO] {
            let f = SecretFile::parse(text).unwrap();
            let dbg = format!("{f:?}");
            assert!(!dbg.contains("72, 101") && !dbg.contains("49, 50"), "{dbg}");
            assert!(dbg.contains("redacted"));
        }
    }

    /// Every shape the writer produces parses back to the same file:
    /// both kinds, optional fields present and absent, state at its limits,
    /// serials with quotes, backslashes and non-ASCII text.
    #[test]
    fn serialisation_round_trips() {
        let base = SecretFile::parse(MINIMAL).unwrap();
        let mut shapes = vec![base.clone()];
        let mut hotp = base.clone();
        let t = &mut hotp.tokens[0];
        t.kind = OtpKind::Hotp;
        t.counter = MAX_COUNTER;
        t.serial = Some(r#"OATH "12\34" ütf-8 #x = [y]"#.into());
        t.algorithm = Algorithm::SHA512;
        t.digits = 8;
        hotp.scratch_codes.clear();
        shapes.push(hotp);
        let mut state = base.clone();
        let t = &mut state.tokens[0];
        t.created = Some(1_700_000_000);
        t.state = TokenState {
            last_step: Some(MAX_COUNTER),
            drift: -crate::verify::MAX_DRIFT_STEPS,
            drift_moved: MAX_COUNTER,
            last_used: None,
        };
        t.period = 60;
        state.state = State {
            failures: u32::MAX,
            last_failure: MAX_COUNTER,
            grace: vec![Grace {
                from: "2001:db8::1".into(),
                at: MAX_COUNTER,
                service: Some("sshd".into()),
                by: None,
            }],
        };
        state.upgrade();
        shapes.push(state);
        for mut f in shapes {
            for _ in 0..2 {
                let text = f.to_text().unwrap();
                let back = SecretFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                assert!(back == f, "{text}");
                f.upgrade();
                f.tokens[0].state.last_used = Some(MAX_COUNTER);
            }
        }
    }

    /// The file says what is in force: every setting, defaults included,
    /// under the header; state only where it is not at its default.
    #[test]
    fn written_file_shows_every_setting() {
        let mut f = SecretFile::parse(MINIMAL).unwrap();
        for version in [VERSION_1, VERSION_2] {
            f.version = version;
            let text = f.to_text().unwrap();
            assert!(text.starts_with(HEADER), "{text}");
            for line in [
                &*format!("version = {version}"),
                "type = \"totp\"",
                "secret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"",
                "algorithm = \"SHA1\"",
                "digits = 6",
                "period = 30",
            ] {
                assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
            }
            assert!(
                !text.contains("failures") && !text.contains("last_step"),
                "{text}"
            );
        }
    }

    /// A value parsing would refuse is an error, not a file that the next
    /// login could not read.
    #[test]
    fn out_of_range_values_are_not_written() {
        let mut f = SecretFile::parse(MINIMAL).unwrap();
        f.tokens[0].state.last_step = Some(u64::MAX);
        assert_eq!(
            f.to_text(),
            Err(SecretFileError::Value(TokenError::State(
                "last_step is out of range"
            )))
        );
        let mut f = SecretFile::parse(TWO).unwrap();
        f.tokens[1].digits = 9;
        assert_eq!(
            f.to_text(),
            Err(SecretFileError::Token {
                index: 2,
                id: Some("OATH00012345".into()),
                err: TokenError::Digits(9)
            })
        );
        let mut f = SecretFile::parse(TWO).unwrap();
        f.tokens[1].id = "phone".into();
        assert_eq!(
            f.to_text(),
            Err(SecretFileError::DuplicateId("phone".into()))
        );
        f.tokens.clear();
        assert_eq!(f.to_text(), Err(SecretFileError::NoTokens));
    }

    /// A setting of the other kind (a hand-written `counter` in a TOTP
    /// file) survives a rewrite.
    #[test]
    fn the_other_kinds_setting_is_kept() {
        let text = format!("{MINIMAL}counter = 7\n");
        let f = SecretFile::parse(&text).unwrap();
        assert_eq!(SecretFile::parse(&f.to_text().unwrap()).unwrap(), f);
        let hotp = MINIMAL.replace("totp", "hotp") + "period = 60\n";
        let f = SecretFile::parse(&hotp).unwrap();
        assert_eq!(SecretFile::parse(&f.to_text().unwrap()).unwrap(), f);
        let two = format!("version = 2\n{TOKEN_A}counter = 7\n");
        let f = SecretFile::parse(&two).unwrap();
        assert_eq!(SecretFile::parse(&f.to_text().unwrap()).unwrap(), f);
    }

    /// The checks otp-enroll shares with parsing.
    #[test]
    fn each_rule_has_one_check() {
        assert_eq!(check_key(&[0; 9]), Err(TokenError::KeyLength(9)));
        assert_eq!(check_key(&[0; 10]), Ok(()));
        assert_eq!(check_key(&[0; 128]), Ok(()));
        assert_eq!(check_key(&[0; 129]), Err(TokenError::KeyLength(129)));
        assert_eq!(
            TokenError::KeyLength(9).to_string(),
            "secret: the key is 9 bytes, it must be 10 to 128 (80 to 1024 bits)"
        );
        assert_eq!(check_digits(5), Err(TokenError::Digits(5)));
        assert!((6..=8).all(|d| check_digits(d).is_ok()));
        assert_eq!(check_digits(9), Err(TokenError::Digits(9)));
        assert_eq!(check_period(0), Err(TokenError::Period(0)));
        assert_eq!(check_period(MAX_PERIOD), Ok(()));
        assert_eq!(
            check_period(MAX_PERIOD + 1),
            Err(TokenError::Period(MAX_PERIOD + 1))
        );
        assert_eq!(check_serial(""), Err(TokenError::Serial));
        assert_eq!(check_serial(&"x".repeat(65)), Err(TokenError::Serial));
        assert_eq!(check_serial("a\tb"), Err(TokenError::Serial));
        assert_eq!(check_serial("OATH0001234"), Ok(()));
        for good in [
            "a",
            "phone",
            "OATH00012345",
            "yubi-5.nfc_2",
            &"x".repeat(32),
        ] {
            assert_eq!(check_id(good), Ok(()), "{good}");
        }
        for bad in ["", "my phone", "a/b", "ü", "a\n", &"x".repeat(33), "a:b"] {
            assert_eq!(check_id(bad), Err(TokenError::Id), "{bad:?}");
        }
    }
}
