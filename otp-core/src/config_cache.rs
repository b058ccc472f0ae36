//! A compiled copy of a large admin config, so that a login does not parse
//! thousands of rules of TOML again.
//!
//! Why: the config is read at every login, and with 10 000 address rules
//! parsing it is 95 % of what a login costs (130 M instructions, nearly all
//! of it inside the toml crate). Matching itself is cheap (`RuleSet`).
//!
//! What makes it safe to trust:
//! - It is used only for the exact bytes it was made from: the cache holds
//!   the SHA-256 and length of the config text, and a login compares them
//!   with the text it has just read (no timestamps are trusted).
//! - It is trusted exactly as far as the config: it lives in a directory
//!   that must be owned by the caller (root, for the module) with no access
//!   for group or others, not a symlink, in a parent only its owner or root
//!   can rename entries in (`/run`); the file is opened without
//!   following symlinks, must be a regular file with the same owner and no
//!   group/other access, and is size-bounded. Whoever could change it could
//!   change the config.
//! - It holds a config that passed the full parse and validation, and the
//!   decoder re-checks every value (enums, prefix lengths, non-empty lists,
//!   the config's own `validate`) and that it consumed every byte: anything
//!   unexpected is a miss, and a miss parses the TOML as if there were no
//!   cache (and writes a new one).
//! - Only configs of [`MIN_SIZE`] or more use it: a typical config never
//!   touches the directory, and parsing it costs less than the cache would.
//!
//! It lives on tmpfs (`/run/pam_otp`): gone at reboot, rebuilt by the first
//! login after. Writes are temp file + rename, so a reader sees the old
//! file or the new one.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::{Config, Missing};
use crate::rate_limit::RateLimit;
use crate::rules::{Action, Rule, Source};

/// Configs smaller than this are parsed every time: about 90 one-line
/// rules, where parsing (~1.5 M instructions) already costs three times a
/// cache hit; a typical hand-written config is far below it.
pub const MIN_SIZE: usize = 4 * 1024;
/// Where the module keeps its caches.
pub const SYSTEM_DIR: &str = "/run/pam_otp";
/// A cache larger than this is not read (the config itself is at most 8 MiB).
const MAX_SIZE: u64 = 32 * 1024 * 1024;
/// Format and version: a module that encodes differently uses another.
const MAGIC: &[u8; 8] = b"PAMOTPC\x02";

/// The SHA-256 of a config's text.
pub type Digest32 = [u8; 32];

pub fn digest(text: &[u8]) -> Digest32 {
    Sha256::digest(text).into()
}

/// A cache directory; [`CacheDir::system`] for the module.
pub struct CacheDir {
    path: PathBuf,
}

impl CacheDir {
    pub fn system() -> CacheDir {
        CacheDir::at(Path::new(SYSTEM_DIR))
    }

    pub fn at(path: &Path) -> CacheDir {
        CacheDir {
            path: path.to_path_buf(),
        }
    }

    /// Where the compiled copy of the config at `config_path` is kept.
    pub fn file_for(&self, config_path: &str) -> PathBuf {
        self.path.join(file_name(config_path))
    }

    /// The compiled config for `text` (read from `config_path`), if there
    /// is a trustworthy one made from exactly these bytes.
    pub fn get(&self, config_path: &str, text: &[u8], digest: &Digest32) -> Option<Config> {
        if !self.usable(false) {
            return None;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.file_for(config_path))
            .ok()?;
        let st = file.metadata().ok()?;
        let euid = nix::unistd::geteuid().as_raw();
        if !st.file_type().is_file() || st.uid() != euid || st.mode() & 0o077 != 0 {
            return None;
        }
        let size = st.size();
        if size > MAX_SIZE {
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).ok()?);
        file.take(MAX_SIZE).read_to_end(&mut bytes).ok()?;
        decode(&bytes, digest, text.len() as u64)
    }

    /// Saves `cfg`, parsed from `text`, for the next logins. Best effort:
    /// a failure only means the next login parses the TOML again.
    pub fn put(&self, config_path: &str, text: &[u8], digest: &Digest32, cfg: &Config) {
        if !self.usable(true) {
            return;
        }
        let name = file_name(config_path);
        let temp = self
            .path
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let Ok(mut file) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
        else {
            return;
        };
        let written = file.write_all(&encode(cfg, digest, text.len() as u64));
        let renamed = written.is_ok() && std::fs::rename(&temp, self.path.join(name)).is_ok();
        if !renamed {
            let _ = std::fs::remove_file(&temp);
        }
    }

    /// Whether the directory is safe to use: owned by whoever runs this
    /// (root, for the module), no access for group or others, not a
    /// symlink, in a parent nobody else can rename it in (not writable by
    /// group or others, or sticky). With `create`, made (0700) when missing.
    ///
    /// Files in it are then opened by path (no symlinks followed at the
    /// last step): only the owner of the directory, or of its parent, could
    /// swap anything between this check and the use, and whoever that is
    /// could change the config itself. By path, not relative to the
    /// directory's descriptor, because std has no openat/renameat/unlinkat:
    /// nix's would be three more symbols for the loader to bind at every
    /// login, also for the configs that never use the cache.
    fn usable(&self, create: bool) -> bool {
        if create {
            use std::os::unix::fs::DirBuilderExt;
            // An existing directory (or anything else there) is checked below.
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&self.path);
        }
        let euid = nix::unistd::geteuid().as_raw();
        let dir_ok = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&self.path)
            .and_then(|dir| dir.metadata())
            .is_ok_and(|st| st.uid() == euid && st.mode() & 0o077 == 0);
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        let parent_ok = std::fs::metadata(parent).is_ok_and(|st| {
            (st.uid() == euid || st.uid() == 0)
                && (st.mode() & 0o022 == 0 || st.mode() & libc::S_ISVTX != 0)
        });
        dir_ok && parent_ok
    }
}

/// One cache file per config path (the module's `config=` may name
/// several): a hash of the path, so any path gives a plain file name.
fn file_name(config_path: &str) -> String {
    let d = Sha256::digest(config_path.as_bytes());
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

// --- encoding -------------------------------------------------------------
//
// Little-endian. MAGIC, digest, text length, the config, a checksum of all
// that, MAGIC again. (The digest proves which config text the cache was
// made from; the checksum, that the cache itself is as it was written.)
// Strings: u32 length + UTF-8. Optional lists: u32 count, u32::MAX for none.
// Sources: tag 0 local, 4 + 4 bytes + prefix, 6 + 16 bytes + prefix.

const NONE: u32 = u32::MAX;

fn encode(cfg: &Config, digest: &Digest32, text_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + cfg.rules.len() * 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(digest);
    out.extend_from_slice(&text_len.to_le_bytes());
    put_str(&mut out, &cfg.secret);
    out.push(match cfg.missing {
        Missing::Deny => 0,
        Missing::Allow => 1,
    });
    out.push(action_code(cfg.default));
    put_str(&mut out, &cfg.prompt);
    out.push(u8::from(cfg.forward_pass));
    out.extend_from_slice(&cfg.totp_skew.to_le_bytes());
    out.extend_from_slice(&cfg.hotp_window.to_le_bytes());
    out.push(u8::from(cfg.enroll_on_login));
    out.extend_from_slice(&cfg.rate_limit.max_failures.to_le_bytes());
    out.extend_from_slice(&cfg.rate_limit.interval.to_le_bytes());
    put_str(&mut out, &cfg.state_dir);
    put_u32(&mut out, cfg.rules.len());
    for rule in &cfg.rules {
        match &rule.from {
            None => out.extend_from_slice(&NONE.to_le_bytes()),
            Some(list) => {
                put_u32(&mut out, list.len());
                for src in list {
                    match src {
                        Source::Local => out.push(0),
                        Source::Net(IpNet::V4(n)) => {
                            out.push(4);
                            out.extend_from_slice(&n.addr().octets());
                            out.push(n.prefix_len());
                        }
                        Source::Net(IpNet::V6(n)) => {
                            out.push(6);
                            out.extend_from_slice(&n.addr().octets());
                            out.push(n.prefix_len());
                        }
                    }
                }
            }
        }
        for names in [&rule.users, &rule.groups, &rule.services] {
            match names {
                None => out.extend_from_slice(&NONE.to_le_bytes()),
                Some(list) => {
                    put_u32(&mut out, list.len());
                    for n in list {
                        put_str(&mut out, n);
                    }
                }
            }
        }
        out.push(action_code(rule.otp));
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// A 64-bit checksum, 8 bytes a step. Each step is a bijection of the
/// state for a given word, so a change in any one word always changes the
/// result: every damaged byte is caught (tested), at ~1 instruction a byte.
fn checksum(bytes: &[u8]) -> u64 {
    fn mix(h: u64) -> u64 {
        let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }
    let mut h = 0x243f_6a88_85a3_08d3 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    let mut tail = [0u8; 8];
    for (t, b) in tail.iter_mut().zip(words.remainder()) {
        *t = *b;
    }
    mix(h ^ u64::from_le_bytes(tail))
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Counts and lengths come from a config of at most 8 MiB.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(NONE).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn action_code(a: Action) -> u8 {
    match a {
        Action::Skip => 0,
        Action::Require => 1,
        Action::Deny => 2,
    }
}

/// A bounds-checked reader: every method answers `None` past the end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).ok().map(str::to_string)
    }

    fn action(&mut self) -> Option<Action> {
        match self.u8()? {
            0 => Some(Action::Skip),
            1 => Some(Action::Require),
            2 => Some(Action::Deny),
            _ => None,
        }
    }

    /// A count for a list that the config check requires to be non-empty;
    /// `Some(None)` for an absent list. Bounded by the bytes left (every
    /// element takes at least one), so no count can make us allocate much.
    fn list_len(&mut self) -> Option<Option<usize>> {
        match self.u32()? {
            NONE => Some(None),
            0 => None,
            n => {
                let n = usize::try_from(n).ok()?;
                (n <= self.rest.len()).then_some(Some(n))
            }
        }
    }

    fn names(&mut self) -> Option<Option<Vec<String>>> {
        let Some(n) = self.list_len()? else {
            return Some(None);
        };
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            let s = self.string()?;
            if s.trim().is_empty() {
                return None;
            }
            list.push(s);
        }
        Some(Some(list))
    }

    fn source(&mut self) -> Option<Source> {
        let net = match self.u8()? {
            0 => return Some(Source::Local),
            4 => {
                let addr = Ipv4Addr::from(self.array::<4>()?);
                IpNet::new(IpAddr::V4(addr), self.u8()?).ok()?
            }
            6 => {
                let addr = Ipv6Addr::from(self.array::<16>()?);
                IpNet::new(IpAddr::V6(addr), self.u8()?).ok()?
            }
            _ => return None,
        };
        // Parsing truncates host bits; a cache that has some is not ours.
        (net == net.trunc()).then_some(Source::Net(net))
    }
}

fn decode(bytes: &[u8], digest: &Digest32, text_len: u64) -> Option<Config> {
    let trailer = 8 + MAGIC.len();
    let body_end = bytes.len().checked_sub(trailer)?;
    let (body, tail) = bytes.split_at(body_end);
    let (sum, magic) = tail.split_at(8);
    if magic != MAGIC || sum != checksum(body).to_le_bytes() {
        return None;
    }
    let mut r = Reader { rest: body };
    if r.take(MAGIC.len())? != MAGIC || r.array::<32>()? != *digest || r.u64()? != text_len {
        return None;
    }
    let mut cfg = Config {
        secret: r.string()?,
        missing: match r.u8()? {
            0 => Missing::Deny,
            1 => Missing::Allow,
            _ => return None,
        },
        default: r.action()?,
        prompt: r.string()?,
        forward_pass: r.bool()?,
        totp_skew: r.u32()?,
        hotp_window: r.u32()?,
        enroll_on_login: r.bool()?,
        rate_limit: RateLimit {
            max_failures: r.u32()?,
            interval: r.u64()?,
        },
        state_dir: r.string()?,
        ..Config::default()
    };
    let n = usize::try_from(r.u32()?).ok()?;
    if n > r.rest.len() {
        return None;
    }
    let mut rules = Vec::with_capacity(n);
    for _ in 0..n {
        let from = match r.list_len()? {
            None => None,
            Some(len) => Some((0..len).map(|_| r.source()).collect::<Option<Vec<_>>>()?),
        };
        rules.push(Rule {
            from,
            users: r.names()?,
            groups: r.names()?,
            services: r.names()?,
            otp: r.action()?,
        });
    }
    cfg.rules = rules;
    if !r.rest.is_empty() {
        return None;
    }
    cfg.validate().ok()?;
    Some(cfg)
}

/// Hooks for the fuzz target `config_cache` (not used by the module): a
/// body framed as a cache file with the right header and checksum, so that
/// fuzzing reaches the decoder past the checksum, and the codec itself.
#[doc(hidden)]
pub mod fuzzing {
    use super::{checksum, decode, encode, Config, Digest32, MAGIC};

    const DIGEST: Digest32 = [7; 32];
    const TEXT_LEN: u64 = 4096;

    /// `body` (what follows the header) as a whole cache file.
    pub fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&DIGEST);
        out.extend_from_slice(&TEXT_LEN.to_le_bytes());
        out.extend_from_slice(body);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(MAGIC);
        out
    }

    pub fn decode_framed(bytes: &[u8]) -> Option<Config> {
        decode(bytes, &DIGEST, TEXT_LEN)
    }

    pub fn encode_framed(cfg: &Config) -> Vec<u8> {
        encode(cfg, &DIGEST, TEXT_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample(rules: usize) -> String {
        let mut t = String::from(
            "secret = \"/var/lib/otp/%u\"\nmissing = \"allow\"\ndefault = \"deny\"\n\
             prompt = \"Code, please: \"\nforward_pass = true\ntotp_skew = 2\n\
             hotp_window = 20\nenroll_on_login = true\n[rate_limit]\nmax_failures = 5\n\
             interval = 60\n\
             [[rule]]\nfrom = [\"local\", \"fd00::/8\", \"10.1.2.3/8\"]\nusers = [\"root\"]\n\
             groups = [\"wheel\", \"ünïcode\"]\nservices = [\"sshd\"]\notp = \"skip\"\n\
             [[rule]]\nusers = [\"alice\"]\notp = \"require\"\n",
        );
        for i in 0..rules {
            t.push_str(&format!(
                "[[rule]]\nfrom = [\"10.{}.{}.0/24\", \"2001:db8:{:x}::/48\"]\notp = \"deny\"\n",
                i >> 8 & 255,
                i & 255,
                i
            ));
        }
        t
    }

    #[test]
    fn encoding_round_trips_every_field() {
        for n in [0, 1, 500] {
            let text = sample(n);
            let cfg = Config::parse(&text).unwrap();
            let d = digest(text.as_bytes());
            let bytes = encode(&cfg, &d, text.len() as u64);
            assert_eq!(decode(&bytes, &d, text.len() as u64), Some(cfg));
        }
        let cfg = Config::default();
        let d = digest(b"");
        assert_eq!(decode(&encode(&cfg, &d, 0), &d, 0), Some(cfg));
    }

    #[test]
    fn the_fuzzing_frame_is_what_the_encoder_writes() {
        let cfg = Config::parse(&sample(3)).unwrap();
        let encoded = fuzzing::encode_framed(&cfg);
        // The body: between the 48-byte header and the 16-byte trailer.
        let body = &encoded[48..encoded.len() - 16];
        assert_eq!(fuzzing::frame(body), encoded);
        assert_eq!(fuzzing::decode_framed(&encoded), Some(cfg));
    }

    #[test]
    fn another_text_is_a_miss() {
        let text = sample(3);
        let cfg = Config::parse(&text).unwrap();
        let d = digest(text.as_bytes());
        let bytes = encode(&cfg, &d, text.len() as u64);
        let other = digest(b"something else");
        assert_eq!(decode(&bytes, &other, text.len() as u64), None);
        assert_eq!(decode(&bytes, &d, text.len() as u64 + 1), None);
    }

    /// Every truncation and every single-byte change of a valid cache is
    /// refused, without a panic or a huge allocation.
    #[test]
    fn damaged_caches_are_refused_without_panicking() {
        let text = sample(20);
        let cfg = Config::parse(&text).unwrap();
        let d = digest(text.as_bytes());
        let len = text.len() as u64;
        let bytes = encode(&cfg, &d, len);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], &d, len), None, "cut at {cut}");
        }
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..bytes.len() {
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut damaged = bytes.clone();
                damaged[i] ^= (x as u8) | 1;
                assert_eq!(decode(&damaged, &d, len), None, "byte {i}");
            }
        }
        // A huge count with a checksum that matches (as from a buggy
        // writer) is refused, not allocated.
        let mut huge = bytes[..bytes.len() - 16].to_vec();
        let at = MAGIC.len() + 32 + 8;
        huge[at..at + 4].copy_from_slice(&u32::MAX.wrapping_sub(1).to_le_bytes());
        let sum = checksum(&huge);
        huge.extend_from_slice(&sum.to_le_bytes());
        huge.extend_from_slice(MAGIC);
        assert_eq!(decode(&huge, &d, len), None);
    }

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "pam-otp-cache-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn put_then_get_and_a_changed_config_misses() {
        let base = TempDir::new("hit");
        let cache = CacheDir::at(&base.0.join("cache"));
        let text = sample(10);
        let cfg = Config::parse(&text).unwrap();
        let d = digest(text.as_bytes());
        assert!(cache.get("/etc/x.toml", text.as_bytes(), &d).is_none());
        cache.put("/etc/x.toml", text.as_bytes(), &d, &cfg);
        let dir = std::fs::metadata(base.0.join("cache")).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
        assert_eq!(cache.get("/etc/x.toml", text.as_bytes(), &d), Some(cfg));
        // Another path has its own file.
        assert!(cache.get("/etc/y.toml", text.as_bytes(), &d).is_none());
        // The config changed: a miss.
        let changed = text.replace("deny", "skip");
        let d2 = digest(changed.as_bytes());
        assert!(cache.get("/etc/x.toml", changed.as_bytes(), &d2).is_none());
        // No temp files left.
        let names: Vec<_> = std::fs::read_dir(base.0.join("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(!names[0].starts_with('.'));
    }

    #[test]
    fn an_unsafe_directory_or_file_is_not_used() {
        let base = TempDir::new("unsafe");
        let text = sample(2);
        let cfg = Config::parse(&text).unwrap();
        let d = digest(text.as_bytes());
        // Group/other access on the directory: neither read nor written.
        let open = base.0.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cache = CacheDir::at(&open);
        cache.put("/c", text.as_bytes(), &d, &cfg);
        assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
        // A good directory in a parent others may write to (not sticky):
        // someone could swap it, so it is not used.
        let shared = base.0.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let inside = CacheDir::at(&shared.join("cache"));
        inside.put("/c", text.as_bytes(), &d, &cfg);
        assert!(inside.get("/c", text.as_bytes(), &d).is_none());
        let made: Vec<_> = std::fs::read_dir(shared.join("cache")).unwrap().collect();
        assert!(made.is_empty(), "{made:?}");
        // The same with the sticky bit (as /tmp): only owners rename.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        inside.put("/c", text.as_bytes(), &d, &cfg);
        assert!(inside.get("/c", text.as_bytes(), &d).is_some());
        // A symlink to a good directory is not followed.
        let good = base.0.join("good");
        CacheDir::at(&good).put("/c", text.as_bytes(), &d, &cfg);
        assert!(CacheDir::at(&good).get("/c", text.as_bytes(), &d).is_some());
        let link = base.0.join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(CacheDir::at(&link).get("/c", text.as_bytes(), &d).is_none());
        // A readable cache file, or a symlink in place of it, is not used.
        let file = good.join(file_name("/c"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(CacheDir::at(&good).get("/c", text.as_bytes(), &d).is_none());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let moved = good.join("moved");
        std::fs::rename(&file, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &file).unwrap();
        assert!(CacheDir::at(&good).get("/c", text.as_bytes(), &d).is_none());
    }

    /// Through `config::load_with`: the first load writes the cache, later
    /// ones read it (shown by planting a different config under the same
    /// digest, which only the cache path can return), an edited config is
    /// parsed again, and a small config never touches the cache.
    #[test]
    fn load_uses_the_cache_for_the_same_text_only() {
        let base = TempDir::new("load");
        let cache = CacheDir::at(&base.0.join("cache"));
        let path = base.0.join("pam_otp.toml");
        let path_str = path.to_str().unwrap();
        let text = sample(400);
        assert!(text.len() >= MIN_SIZE);
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let parsed = Config::parse(&text).unwrap();
        assert_eq!(
            crate::config::load_with(path_str, Some(&cache)).unwrap(),
            parsed
        );
        assert_eq!(std::fs::read_dir(base.0.join("cache")).unwrap().count(), 1);

        let d = digest(text.as_bytes());
        let mut planted = parsed.clone();
        planted.prompt = "from the cache: ".into();
        cache.put(path_str, text.as_bytes(), &d, &planted);
        assert_eq!(
            crate::config::load_with(path_str, Some(&cache)).unwrap(),
            planted
        );

        let edited = text.replace("otp = \"deny\"", "otp = \"skip\"");
        std::fs::write(&path, &edited).unwrap();
        let reparsed = crate::config::load_with(path_str, Some(&cache)).unwrap();
        assert_eq!(reparsed, Config::parse(&edited).unwrap());
        assert_ne!(reparsed, parsed);

        let small = base.0.join("small.toml");
        std::fs::write(&small, sample(0)).unwrap();
        let other = CacheDir::at(&base.0.join("unused"));
        crate::config::load_with(small.to_str().unwrap(), Some(&other)).unwrap();
        assert!(!base.0.join("unused").exists());
    }
}
