//! PSKC (RFC 6030) key containers: plain keys, keys encrypted with a
//! pre-shared AES-CBC key, or with a key derived from a passphrase
//! (PBKDF2). Encrypted values must carry a `ValueMAC`, and it is checked
//! before anything is decrypted.
//!
//! Problems of the whole file (not XML, a DTD, a wrong key or passphrase,
//! a MAC that does not match, an encryption it does not know) refuse the
//! file: nothing of it is imported.
//!
//! What the MAC covers: RFC 6030's `ValueMAC` authenticates encrypted
//! values only. So a file that declares encryption (an `EncryptionKey`, a
//! `MACMethod`, or any `EncryptedValue`) and carries a secret in plain
//! (`<Secret><PlainValue>`, also beside an encrypted one) is refused
//! whole: an attacker who cannot decrypt the file could otherwise swap a
//! token's seed for one they know. Plain `Counter`, `Time`,
//! `TimeInterval` and `TimeDrift` are accepted (python-pskc and RFC 6030's
//! own examples write them so): they are not secret, and a changed one
//! gives a token that does not work, never one that an attacker can use —
//! the admin's code at association proves counter, period and digits
//! against the authenticated seed. A value element with both a plain and
//! an encrypted value is refused (which one counts would be a guess). The
//! serial, algorithm, digits and everything else outside the encrypted
//! values are not authenticated either (SECURITY.md, "Token inventory").
//!
//! A wrong key or passphrase, a MAC key that does not decrypt, and a MAC
//! that does not match give one message ([`MAC_FAILED`]). Problems of one key package (no
//! serial, an algorithm other than HOTP/TOTP, values out of range) skip
//! that package, reported.
//!
//! Elements are matched by their local name (vendors vary in prefixes and
//! some still use the draft namespaces); the root must be a
//! `KeyContainer`.

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use otp_core::otp::Algorithm;
use otp_core::secret_file::{OtpKind, DEFAULT_PERIOD};
use roxmltree::{Document, Node};

use super::{HardwareToken, Parsed, Skipped, MAX_ENTRIES};
use crate::output::{quoted, shown};

/// How encrypted values may be opened: what the admin gave.
#[derive(Clone, Default)]
pub enum Secret {
    #[default]
    None,
    /// `--key HEX`: the pre-shared AES key (or a derived key itself).
    Key(Vec<u8>),
    /// `--passphrase-file`: the passphrase for PBKDF2.
    Passphrase(Vec<u8>),
}

/// PBKDF2 iteration counts above this are refused (a hostile file could
/// otherwise keep the command busy for hours).
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// XML nodes at most (elements, text, attributes).
const MAX_NODES: u32 = 4_000_000;

const AES_BLOCK: usize = 16;

/// Every cryptographic failure of an encrypted file: a wrong key or
/// passphrase, a MAC key that does not decrypt, a ValueMAC that does not
/// match, a value whose padding does not check. One message: which of
/// them it was tells the admin nothing more (the remedy is the same) and
/// an attacker probing the importer nothing at all.
pub const MAC_FAILED: &str =
    "wrong key or passphrase, or the file was changed: its MAC does not check";

/// A plain secret in a file that declares encryption or a MAC.
const PLAIN_SECRET: &str = "its secret is in plain text (a PlainValue) in a file that declares \
    encryption or a MAC, and the MAC covers only encrypted values: whoever changed the file may \
    have put their own seed there";

fn pskc_error(e: &roxmltree::Error) -> String {
    match e {
        roxmltree::Error::DtdDetected => "DTD/entities are not allowed in a PSKC file (refused: entities can expand to gigabytes, as in the \"billion laughs\" attack)".into(),
        roxmltree::Error::NodesLimitReached => format!("more than {MAX_NODES} XML nodes"),
        other => format!("not well-formed XML: {}", shown(&other.to_string())),
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

fn text(node: Node) -> String {
    node.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>()
        .trim()
        .to_string()
}

fn base64(value: &str) -> Option<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// The last part of an algorithm URI (after `#`, else after the last `:`).
fn fragment(uri: &str) -> &str {
    uri.rsplit_once('#')
        .or_else(|| uri.rsplit_once(':'))
        .map_or(uri, |(_, f)| f)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
}

impl Cipher {
    fn from_uri(uri: &str) -> Result<Cipher, String> {
        match uri.trim() {
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => Ok(Cipher::Aes128),
            "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => Ok(Cipher::Aes192),
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => Ok(Cipher::Aes256),
            other => Err(format!(
                "encryption method {} is not supported (only AES-128/192/256-CBC)",
                quoted(other)
            )),
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }

    /// Decrypts IV || ciphertext (PKCS#7 padding).
    fn decrypt(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
        if key.len() != self.key_len() {
            return Err(format!(
                "the key is {} bytes, the file's encryption ({self:?}-CBC) needs {}",
                key.len(),
                self.key_len()
            ));
        }
        let (iv, ct) = data
            .split_at_checked(AES_BLOCK)
            .ok_or("an encrypted value is shorter than its IV")?;
        if ct.is_empty() || ct.len() % AES_BLOCK != 0 {
            return Err("an encrypted value is not a whole number of AES blocks".into());
        }
        let wrong = |_| MAC_FAILED.to_string();
        let bad_len = |_| "bad key or IV length".to_string();
        match self {
            Cipher::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                .map_err(bad_len)?
                .decrypt_padded_vec::<Pkcs7>(ct)
                .map_err(wrong),
            Cipher::Aes192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
                .map_err(bad_len)?
                .decrypt_padded_vec::<Pkcs7>(ct)
                .map_err(wrong),
            Cipher::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                .map_err(bad_len)?
                .decrypt_padded_vec::<Pkcs7>(ct)
                .map_err(wrong),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MacAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl MacAlg {
    fn from_uri(uri: &str) -> Result<MacAlg, String> {
        match uri.trim() {
            "http://www.w3.org/2000/09/xmldsig#hmac-sha1" => Ok(MacAlg::Sha1),
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha224" => Ok(MacAlg::Sha224),
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256" => Ok(MacAlg::Sha256),
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384" => Ok(MacAlg::Sha384),
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512" => Ok(MacAlg::Sha512),
            other => Err(format!(
                "MAC method {} is not supported (HMAC-SHA1/224/256/384/512)",
                quoted(other)
            )),
        }
    }

    /// Whether `tag` is the HMAC of `data` under `key` (constant time).
    fn verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + KeyInit>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            MacAlg::Sha1 => check::<hmac::Hmac<sha1::Sha1>>(key, data, tag),
            MacAlg::Sha224 => check::<hmac::Hmac<sha2::Sha224>>(key, data, tag),
            MacAlg::Sha256 => check::<hmac::Hmac<sha2::Sha256>>(key, data, tag),
            MacAlg::Sha384 => check::<hmac::Hmac<sha2::Sha384>>(key, data, tag),
            MacAlg::Sha512 => check::<hmac::Hmac<sha2::Sha512>>(key, data, tag),
        }
    }
}

/// The key that opens the file's encrypted values, and its MAC.
struct Keys {
    key: Vec<u8>,
    mac: Option<(MacAlg, Vec<u8>)>,
}

/// An `EncryptedValue` or `MACKey`: method and IV || ciphertext.
fn encrypted(node: Node) -> Result<(Cipher, Vec<u8>), String> {
    let method = child(node, "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or("an encrypted value has no EncryptionMethod")?;
    let cipher = Cipher::from_uri(method)?;
    let value = path(node, &["CipherData", "CipherValue"])
        .ok_or("an encrypted value has no CipherData/CipherValue")?;
    let data = base64(&text(value)).ok_or("a CipherValue is not base64")?;
    Ok((cipher, data))
}

/// The encryption key, from --key or derived from the passphrase as the
/// file's `EncryptionKey/DerivedKey` says (PBKDF2).
fn encryption_key(root: Node, secret: &Secret, wanted_len: usize) -> Result<Vec<u8>, String> {
    let enc_key = child(root, "EncryptionKey");
    let derived = enc_key.and_then(|k| child(k, "DerivedKey"));
    let name = enc_key
        .and_then(|k| {
            child(k, "KeyName").or_else(|| derived.and_then(|d| child(d, "MasterKeyName")))
        })
        .map(text)
        .map(|n| format!(" (named {} in the file)", quoted(&n)))
        .unwrap_or_default();
    match (secret, derived) {
        (Secret::Key(k), _) => Ok(k.clone()),
        (Secret::Passphrase(p), Some(d)) => derive(d, p, wanted_len),
        (Secret::Passphrase(_), None) => Err(format!(
            "the file is encrypted with a pre-shared key{name}, not a passphrase: give it with --key HEX"
        )),
        (Secret::None, Some(_)) => Err(format!(
            "the file is encrypted with a passphrase{name}: give it with --passphrase-file FILE"
        )),
        (Secret::None, None) => Err(format!(
            "the file is encrypted with a pre-shared key{name}: give it with --key HEX"
        )),
    }
}

fn derive(derived: Node, passphrase: &[u8], wanted_len: usize) -> Result<Vec<u8>, String> {
    let method =
        child(derived, "KeyDerivationMethod").ok_or("DerivedKey has no KeyDerivationMethod")?;
    let alg = method.attribute("Algorithm").unwrap_or("");
    if !matches!(fragment(alg), "pbkdf2" | "pbes2" | "PBKDF2" | "PBES2") {
        return Err(format!(
            "key derivation {} is not supported (only PBKDF2)",
            quoted(alg)
        ));
    }
    let params = method
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "PBKDF2-params")
        .ok_or("KeyDerivationMethod has no PBKDF2-params")?;
    let salt = path(params, &["Salt", "Specified"])
        .and_then(|s| base64(&text(s)))
        .ok_or("PBKDF2-params has no base64 Salt/Specified")?;
    let rounds: u32 = child(params, "IterationCount")
        .and_then(|n| text(n).parse().ok())
        .filter(|n| *n >= 1)
        .ok_or("PBKDF2-params has no valid IterationCount")?;
    if rounds > MAX_ITERATIONS {
        return Err(format!(
            "PBKDF2 IterationCount {rounds} is more than the {MAX_ITERATIONS} allowed"
        ));
    }
    let len = match child(params, "KeyLength") {
        Some(n) => text(n)
            .parse::<usize>()
            .ok()
            .filter(|l| matches!(l, 16 | 24 | 32))
            .ok_or("PBKDF2 KeyLength must be 16, 24 or 32")?,
        None => wanted_len,
    };
    let prf = child(params, "PRF")
        .and_then(|p| p.attribute("Algorithm"))
        .unwrap_or("http://www.w3.org/2000/09/xmldsig#hmac-sha1");
    let mut out = vec![0u8; len];
    match MacAlg::from_uri(prf).map_err(|_| {
        format!(
            "PBKDF2 PRF {} is not supported (HMAC-SHA1/256/512)",
            quoted(prf)
        )
    })? {
        MacAlg::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase, &salt, rounds, &mut out),
        MacAlg::Sha224 => pbkdf2::pbkdf2_hmac::<sha2::Sha224>(passphrase, &salt, rounds, &mut out),
        MacAlg::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, &salt, rounds, &mut out),
        MacAlg::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(passphrase, &salt, rounds, &mut out),
        MacAlg::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(passphrase, &salt, rounds, &mut out),
    }
    Ok(out)
}

/// The keys for the file's encrypted values, if it has any.
fn keys(root: Node, secret: &Secret) -> Result<Option<Keys>, String> {
    let first = root
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "EncryptedValue");
    let Some(first) = first else {
        return Ok(None);
    };
    let (cipher, _) = encrypted(first)?;
    let key = encryption_key(root, secret, cipher.key_len())?;
    let mac = match child(root, "MACMethod") {
        None => None,
        Some(m) => {
            let alg = MacAlg::from_uri(m.attribute("Algorithm").unwrap_or(""))?;
            let mac_key = match child(m, "MACKey") {
                Some(k) => {
                    let (c, data) = encrypted(k)?;
                    c.decrypt(&key, &data)?
                }
                // PSKC drafts before RFC 6030: the encryption key is the MAC key.
                None => key.clone(),
            };
            Some((alg, mac_key))
        }
    };
    Ok(Some(Keys { key, mac }))
}

/// A `Data` value (Secret, Counter, ...): plain (base64 for the secret,
/// decimal for numbers) or encrypted and MAC-checked. `Ok(None)` when the
/// element or its value is missing. `Err((whole_file, why))`.
enum ValueError {
    /// Refuses the whole file, naming the key package.
    File(String),
    /// Refuses the whole file with [`MAC_FAILED`] alone.
    Crypto,
    /// Skips the key package.
    Key(String),
}

fn data_bytes(
    elem: Node,
    keys: Option<&Keys>,
    plain_is_base64: bool,
) -> Result<Option<Vec<u8>>, ValueError> {
    if child(elem, "PlainValue").is_some() && child(elem, "EncryptedValue").is_some() {
        return Err(ValueError::File(format!(
            "its {} has both a PlainValue and an EncryptedValue",
            elem.tag_name().name()
        )));
    }
    if let Some(plain) = child(elem, "PlainValue") {
        let t = text(plain);
        return if plain_is_base64 {
            base64(&t)
                .map(Some)
                .ok_or_else(|| ValueError::Key("the PlainValue is not base64".into()))
        } else {
            Ok(Some(t.into_bytes()))
        };
    }
    let Some(enc) = child(elem, "EncryptedValue") else {
        return Ok(None);
    };
    let keys = keys.ok_or_else(|| ValueError::File("an encrypted value but no key".into()))?;
    let (cipher, data) = encrypted(enc).map_err(ValueError::File)?;
    let (alg, mac_key) = keys.mac.as_ref().ok_or_else(|| {
        ValueError::File(
            "encrypted values but no MACMethod: their integrity cannot be checked".into(),
        )
    })?;
    let tag = child(elem, "ValueMAC").map(text).ok_or_else(|| {
        ValueError::File(
            "an encrypted value has no ValueMAC: its integrity cannot be checked".into(),
        )
    })?;
    let tag = base64(&tag).ok_or_else(|| ValueError::File("a ValueMAC is not base64".into()))?;
    if !alg.verify(mac_key, &data, &tag) {
        return Err(ValueError::Crypto);
    }
    let plain = cipher
        .decrypt(&keys.key, &data)
        .map_err(|e| match e.as_str() {
            MAC_FAILED => ValueError::Crypto,
            _ => ValueError::File(e),
        })?;
    if plain_is_base64 {
        Ok(Some(plain))
    } else {
        // Encrypted integers are their big-endian bytes.
        if plain.len() > 8 {
            return Err(ValueError::Key(
                "an encrypted number is longer than 8 bytes".into(),
            ));
        }
        let n = plain.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
        Ok(Some(n.to_string().into_bytes()))
    }
}

fn data_number(data: Node, name: &str, keys: Option<&Keys>) -> Result<Option<u64>, ValueError> {
    let Some(elem) = child(data, name) else {
        return Ok(None);
    };
    match data_bytes(elem, keys, false)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ValueError::Key(format!("{name} is not a whole number"))),
    }
}

fn kind_of(uri: &str) -> Option<OtpKind> {
    let lower = uri.trim().to_ascii_lowercase();
    if !lower.contains("pskc") {
        return None;
    }
    match lower.rsplit_once(['#', ':']).map(|(_, f)| f) {
        Some("hotp") => Some(OtpKind::Hotp),
        Some("totp") => Some(OtpKind::Totp),
        _ => None,
    }
}

fn suite(key: Node) -> Result<Algorithm, String> {
    let Some(s) = path(key, &["AlgorithmParameters", "Suite"]) else {
        return Ok(Algorithm::SHA1);
    };
    let t = text(s);
    let name = t
        .strip_prefix("HMAC-")
        .or_else(|| t.strip_prefix("hmac-"))
        .unwrap_or(&t)
        .replace('-', "");
    if name.is_empty() {
        return Ok(Algorithm::SHA1);
    }
    Algorithm::parse(&name)
        .ok_or_else(|| format!("Suite {} is not HMAC-SHA1, SHA256 or SHA512", quoted(&t)))
}

/// One key package: a token, or why it was skipped.
fn package(
    pkg: Node,
    n: usize,
    keys: Option<&Keys>,
) -> Result<Result<HardwareToken, Skipped>, String> {
    let serial = path(pkg, &["DeviceInfo", "SerialNo"])
        .map(text)
        .filter(|s| !s.is_empty());
    let key = child(pkg, "Key");
    let what = package_name(pkg, n);
    let skip = |why: String| {
        Ok(Err(Skipped {
            what: what.clone(),
            why,
            serial: serial.clone(),
        }))
    };
    let Some(key) = key else {
        return skip("it has no Key".into());
    };
    let alg_uri = key.attribute("Algorithm").unwrap_or("");
    let Some(kind) = kind_of(alg_uri) else {
        return skip(format!(
            "algorithm {} is not PSKC HOTP or TOTP",
            quoted(alg_uri)
        ));
    };
    let algorithm = match suite(key) {
        Ok(a) => a,
        Err(why) => return skip(why),
    };
    let mut digits = 6u8;
    if let Some(rf) = path(key, &["AlgorithmParameters", "ResponseFormat"]) {
        if let Some(enc) = rf.attribute("Encoding") {
            if !enc.eq_ignore_ascii_case("DECIMAL") {
                return skip(format!("its codes are {}, not DECIMAL", shown(enc)));
            }
        }
        match rf.attribute("Length").map(|l| l.trim().parse::<u8>()) {
            Some(Ok(l)) => digits = l,
            Some(Err(_)) => return skip("ResponseFormat Length is not a number".into()),
            None => {}
        }
    }
    let Some(data) = child(key, "Data") else {
        return skip("it has no Data (no secret)".into());
    };
    let fail = |e: ValueError| match e {
        ValueError::File(why) => Err(format!("{what}: {why}")),
        ValueError::Crypto => Err(MAC_FAILED.to_string()),
        ValueError::Key(why) => Ok(Err(Skipped {
            what: what.clone(),
            why,
            serial: serial.clone(),
        })),
    };
    // The secret first: crypto failures refuse the file even when the
    // package would be skipped for a missing serial.
    let secret = match child(data, "Secret").map(|s| data_bytes(s, keys, true)) {
        Some(Ok(Some(s))) => s,
        Some(Err(e)) => return fail(e),
        Some(Ok(None)) | None => return skip("it has no Secret value".into()),
    };
    let counter = match data_number(data, "Counter", keys) {
        Ok(c) => c.unwrap_or(0),
        Err(e) => return fail(e),
    };
    let period = match data_number(data, "TimeInterval", keys) {
        Ok(p) => p.unwrap_or(DEFAULT_PERIOD),
        Err(e) => return fail(e),
    };
    let Some(serial_no) = serial.clone() else {
        return skip("it has no DeviceInfo/SerialNo (a token is found by its serial)".into());
    };
    let c = HardwareToken {
        serial: serial_no,
        kind,
        key: secret,
        algorithm,
        digits,
        period: if kind == OtpKind::Totp {
            period
        } else {
            DEFAULT_PERIOD
        },
        counter: if kind == OtpKind::Hotp { counter } else { 0 },
    };
    match c.check() {
        Ok(()) => Ok(Ok(c)),
        Err(why) => skip(why),
    }
}

/// Whether the file declares encryption: an `EncryptionKey` or a
/// `MACMethod` in the container, or an encrypted value anywhere.
fn declares_encryption(root: Node) -> bool {
    child(root, "EncryptionKey").is_some()
        || child(root, "MACMethod").is_some()
        || root
            .descendants()
            .any(|n| n.is_element() && n.tag_name().name() == "EncryptedValue")
}

/// In a file that declares encryption: the first key package whose secret
/// has a plain value refuses the file (before any key is asked for, so the
/// admin learns of the change whatever key they gave).
fn refuse_plain_secrets(packages: &[Node]) -> Result<(), String> {
    for (i, pkg) in packages.iter().enumerate() {
        let secrets = children(*pkg, "Key")
            .flat_map(|k| children(k, "Data"))
            .flat_map(|d| children(d, "Secret"));
        for s in secrets {
            if child(s, "PlainValue").is_some() {
                return Err(format!("{}: {PLAIN_SECRET}", package_name(*pkg, i + 1)));
            }
        }
    }
    Ok(())
}

/// How a key package is named in messages: its serial, else its number
/// and Key Id.
fn package_name(pkg: Node, n: usize) -> String {
    let serial = path(pkg, &["DeviceInfo", "SerialNo"])
        .map(text)
        .filter(|s| !s.is_empty());
    let id = child(pkg, "Key").and_then(|k| k.attribute("Id"));
    match (serial, id) {
        (Some(s), _) => shown(&s),
        (None, Some(id)) => format!("key package {n} (Key Id {})", quoted(id)),
        (None, None) => format!("key package {n}"),
    }
}

/// Reads a PSKC document. `Err` refuses the whole file.
pub fn parse(xml: &str, secret: &Secret) -> Result<Parsed, String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let doc = Document::parse_with_options(xml, opts).map_err(|e| pskc_error(&e))?;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" {
        return Err(format!(
            "the document is a <{}>, not a PSKC <KeyContainer>",
            shown(root.tag_name().name())
        ));
    }
    let packages: Vec<Node> = children(root, "KeyPackage").collect();
    if packages.len() > MAX_ENTRIES {
        return Err(format!(
            "{} key packages, more than the {MAX_ENTRIES} allowed",
            packages.len()
        ));
    }
    if declares_encryption(root) {
        refuse_plain_secrets(&packages)?;
    }
    let keys = keys(root, secret)?;
    let mut out = Parsed {
        encrypted: keys.is_some(),
        ..Parsed::default()
    };
    for (i, pkg) in packages.into_iter().enumerate() {
        match package(pkg, i + 1, keys.as_ref())? {
            Ok(c) => out.tokens.push(c),
            Err(s) => out.skipped.push(s),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

    fn plain(packages: &str) -> String {
        format!("<?xml version=\"1.0\"?>\n<KeyContainer Version=\"1.0\" xmlns=\"{NS}\">{packages}</KeyContainer>")
    }

    fn pkg(serial: &str, alg: &str, extra: &str) -> String {
        format!(
            "<KeyPackage><DeviceInfo><SerialNo>{serial}</SerialNo></DeviceInfo>\
             <Key Id=\"1\" Algorithm=\"{alg}\">{extra}<Data><Secret><PlainValue>\
             MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue></Secret>\
             <Counter><PlainValue>7</PlainValue></Counter>\
             <TimeInterval><PlainValue>60</PlainValue></TimeInterval></Data></Key></KeyPackage>"
        )
    }

    #[test]
    fn plain_hotp_totp_and_parameters() {
        let xml = plain(&format!(
            "{}{}",
            pkg("S1", "urn:ietf:params:xml:ns:keyprov:pskc:hotp", "<AlgorithmParameters><ResponseFormat Length=\"8\" Encoding=\"DECIMAL\"/></AlgorithmParameters>"),
            pkg("S2", "urn:ietf:params:xml:ns:keyprov:pskc#totp", "<AlgorithmParameters><Suite>HMAC-SHA256</Suite></AlgorithmParameters>")
        ));
        let p = parse(&xml, &Secret::None).unwrap();
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let [h, t] = p.tokens.as_slice() else {
            panic!("{:?}", p.tokens)
        };
        assert_eq!(
            (h.kind, h.digits, h.counter, h.period),
            (OtpKind::Hotp, 8, 7, 30)
        );
        assert_eq!(h.key, b"12345678901234567890");
        assert_eq!(
            (t.kind, t.digits, t.period, t.counter, t.algorithm),
            (OtpKind::Totp, 6, 60, 0, Algorithm::SHA256)
        );
    }

    #[test]
    fn skipped_packages_are_reported() {
        let no_serial = pkg("", "urn:ietf:params:xml:ns:keyprov:pskc:hotp", "");
        let xml = plain(&format!(
            "{}{}{}{}",
            pkg("S1", "urn:ietf:params:xml:ns:keyprov:pskc:ocra", ""),
            no_serial,
            pkg("S3", "urn:ietf:params:xml:ns:keyprov:pskc:hotp", "<AlgorithmParameters><ResponseFormat Length=\"4\"/></AlgorithmParameters>"),
            pkg("S4", "urn:ietf:params:xml:ns:keyprov:pskc:hotp", "<AlgorithmParameters><ResponseFormat Length=\"6\" Encoding=\"HEXADECIMAL\"/></AlgorithmParameters>"),
        ));
        let p = parse(&xml, &Secret::None).unwrap();
        assert!(p.tokens.is_empty());
        let whys: Vec<String> = p
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.what, s.why))
            .collect();
        assert_eq!(whys.len(), 4, "{whys:?}");
        assert!(
            whys[0].starts_with("S1: algorithm") && whys[0].contains("ocra"),
            "{whys:?}"
        );
        assert!(
            whys[1].starts_with("key package 2") && whys[1].contains("SerialNo"),
            "{whys:?}"
        );
        assert!(
            whys[2].starts_with("S3:") && whys[2].contains("digits"),
            "{whys:?}"
        );
        assert!(whys[3].contains("HEXADECIMAL"), "{whys:?}");
    }

    #[test]
    fn whole_file_refusals() {
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><KeyContainer>&lol2;</KeyContainer>";
        assert!(parse(dtd, &Secret::None)
            .unwrap_err()
            .contains("DTD/entities are not allowed"));
        let e = parse("<KeyContainer><KeyPackage>", &Secret::None).unwrap_err();
        assert!(e.contains("not well-formed XML"), "{e}");
        assert!(parse("<html/>", &Secret::None)
            .unwrap_err()
            .contains("not a PSKC"));
        assert!(parse("", &Secret::None).is_err());
    }

    #[test]
    fn uri_helpers() {
        assert_eq!(
            kind_of("http://www.ietf.org/keyprov/pskc#hotp"),
            Some(OtpKind::Hotp)
        );
        assert_eq!(
            kind_of("urn:ietf:params:xml:ns:keyprov:pskc:totp"),
            Some(OtpKind::Totp)
        );
        assert_eq!(kind_of("urn:example:hotp"), None);
        assert_eq!(fragment("a#pbkdf2"), "pbkdf2");
        assert!(Cipher::from_uri("http://www.w3.org/2001/04/xmlenc#kw-aes128").is_err());
    }

    #[test]
    fn cbc_and_mac_reject_wrong_keys() {
        // RFC 6030 figure 6's MAC key, encrypted with its pre-shared key.
        let data =
            base64("ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX").unwrap();
        let key = [
            0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78,
            0x90, 0x12,
        ];
        let mac_key = Cipher::Aes128.decrypt(&key, &data).unwrap();
        assert_eq!(
            mac_key,
            [
                0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0x00, 0x11, 0x22, 0x33, 0x44,
                0x55, 0x66, 0x77, 0x88, 0x99, 0x00
            ]
        );
        assert!(Cipher::Aes128.decrypt(&[0u8; 16], &data).is_err());
        assert!(Cipher::Aes256
            .decrypt(&key, &data)
            .unwrap_err()
            .contains("needs 32"));
        assert!(Cipher::Aes128.decrypt(&key, &data[..20]).is_err());
        let secret =
            base64("AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv").unwrap();
        let tag = base64("Su+NvtQfmvfJzF6bmQiJqoLRExc=").unwrap();
        assert!(MacAlg::Sha1.verify(&mac_key, &secret, &tag));
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert!(!MacAlg::Sha1.verify(&mac_key, &secret, &bad));
        assert!(!MacAlg::Sha256.verify(&mac_key, &secret, &tag));
    }

    fn rfc(n: u32) -> String {
        let path = format!(
            "{}/tests/data/pskc/rfc6030-figure{n}.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    /// RFC 6030 figure 6 altered as an attacker would: what the MAC does
    /// not cover is refused or harmless, and every crypto failure reads
    /// the same.
    #[test]
    fn plain_secrets_in_an_encrypted_file_and_one_crypto_message() {
        let key = otp_core::key::decode_hex("12345678901234567890123456789012").unwrap();
        let fig6 = rfc(6);
        let start = fig6.find("<EncryptedValue>").unwrap();
        let end = fig6.find("</ValueMAC>").unwrap() + "</ValueMAC>".len();
        let plain = "<PlainValue>YXR0YWNrZXIta25vd24tc2VlZCE=</PlainValue>";
        let swapped = format!("{}{plain}{}", &fig6[..start], &fig6[end..]);
        let both = format!("{}{plain}{}", &fig6[..start], &fig6[start..]);
        for xml in [&swapped, &both] {
            for secret in [Secret::Key(key.clone()), Secret::None] {
                assert_eq!(
                    parse(xml, &secret).unwrap_err(),
                    format!("987654321: {PLAIN_SECRET}")
                );
            }
        }
        // Without the container's declarations, but one value encrypted.
        let mut bare = fig6.clone();
        let (mstart, mend) = (
            bare.find("<EncryptionKey>").unwrap(),
            bare.find("</MACMethod>").unwrap() + "</MACMethod>".len(),
        );
        bare.replace_range(mstart..mend, "");
        let bare_counter = bare.replace(
            "<PlainValue>0</PlainValue>",
            &fig6[start..fig6.find("</EncryptedValue>").unwrap() + "</EncryptedValue>".len()],
        );
        let bare_counter = format!(
            "{}{plain}{}",
            &bare_counter[..bare_counter.find("<EncryptedValue>").unwrap()],
            &bare_counter[bare_counter.find("</ValueMAC>").unwrap() + "</ValueMAC>".len()..]
        );
        assert_eq!(
            parse(&bare_counter, &Secret::Key(key.clone())).unwrap_err(),
            format!("987654321: {PLAIN_SECRET}")
        );
        // A counter both plain and encrypted: which counts would be a guess.
        let counter_both = fig6.replace(
            "<PlainValue>0</PlainValue>",
            &format!(
                "<PlainValue>0</PlainValue>{}",
                &fig6[start..fig6.find("</EncryptedValue>").unwrap() + "</EncryptedValue>".len()]
            ),
        );
        assert!(parse(&counter_both, &Secret::Key(key.clone()))
            .unwrap_err()
            .contains("Counter has both a PlainValue and an EncryptedValue"));
        // The plain counter as the RFC writes it: accepted.
        assert_eq!(parse(&fig6, &Secret::Key(key)).unwrap().tokens.len(), 1);
        // A wrong key (the MAC key does not decrypt) and a changed
        // ValueMAC: one message.
        let wrong = otp_core::key::decode_hex("12345678901234567890123456789013").unwrap();
        assert_eq!(parse(&fig6, &Secret::Key(wrong)).unwrap_err(), MAC_FAILED);
        let key = otp_core::key::decode_hex("12345678901234567890123456789012").unwrap();
        let bad_mac = fig6.replace("Su+NvtQf", "Tu+NvtQf");
        assert_eq!(parse(&bad_mac, &Secret::Key(key)).unwrap_err(), MAC_FAILED);
    }

    #[test]
    fn rfc6030_examples() {
        // Figure 2: a 4-byte key and no serial: skipped.
        let p = parse(&rfc(2), &Secret::None).unwrap();
        assert!(p.tokens.is_empty() && p.skipped.len() == 1, "{p:?}");
        // Figure 6: AES-128-CBC with a pre-shared key, HMAC-SHA1.
        let key = otp_core::key::decode_hex("12345678901234567890123456789012").unwrap();
        let p = parse(&rfc(6), &Secret::Key(key)).unwrap();
        let [t] = p.tokens.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (t.serial.as_str(), t.digits, t.counter),
            ("987654321", 8, 0)
        );
        assert_eq!(t.key, b"12345678901234567890");
        let wrong = otp_core::key::decode_hex("12345678901234567890123456789013").unwrap();
        assert!(parse(&rfc(6), &Secret::Key(wrong)).is_err());
        assert!(parse(&rfc(6), &Secret::None).unwrap_err().contains("--key"));
        // Figure 7: PBKDF2 from "qwerty".
        let p = parse(&rfc(7), &Secret::Passphrase(b"qwerty".to_vec())).unwrap();
        let [t] = p.tokens.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(t.key, b"12345678901234567890");
        assert!(parse(&rfc(7), &Secret::Passphrase(b"qwertz".to_vec())).is_err());
        assert!(parse(&rfc(7), &Secret::None)
            .unwrap_err()
            .contains("--passphrase-file"));
    }
}
