//! PSKC (RFC 6030) key containers: plain keys, keys encrypted with a
//! pre-shared AES-CBC key, or with a key derived from a passphrase
//! (PBKDF2). Encrypted values must carry a `ValueMAC`, and it is checked.
//!
//! Problems of the whole file refuse it: nothing of it is imported. They
//! are: not XML, a DTD, a root other than `KeyContainer`, a container
//! `Version` other than RFC 6030's 1.0 (an absent one is taken as 1.0, as
//! python-pskc takes it), a pre-RFC 6030 layout (the drafts'
//! `<Device>`, `<Data Name="SECRET">`, `<SecretContainer>`, their
//! namespaces: refused by name, see [`pre_rfc_layout`]), a wrong key or
//! passphrase, a MAC that does not match, an encryption or MAC it does
//! not know.
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
//! serial, algorithm, digits, policy and everything else outside the
//! encrypted values are not authenticated either (SECURITY.md, "The
//! inventory").
//!
//! The MAC is over the encrypted value (RFC 6030); drafts before it, and
//! files written after them, put it over the plain value, which can only
//! be checked after decrypting: either is accepted, as python-pskc does,
//! and for both every cryptographic failure — a wrong key or passphrase,
//! a MAC key that does not decrypt, a padding that does not check, a MAC
//! that matches neither — gives one message ([`MAC_FAILED`]).
//!
//! Problems of one key skip that key, reported: no serial, an algorithm
//! other than HOTP/TOTP, values out of range, and RFC 6030's `<Policy>`
//! (section 5), which binds the recipient: a policy element or attribute
//! this reader does not understand, a `KeyUsage` list without OTP, a
//! `NumberOfTransactions` limit (pam_otp does not count a token's uses), a
//! PIN used in the computation (`PINUsageMode` Algorithmic), a date that
//! is no `xs:dateTime`. Start and expiry dates (the policy's and the
//! device's) and a PIN the server would have to check (Prepend, Append)
//! are handed on in the token, for [`super::select`] to decide with the
//! clock and the admin's options.
//!
//! Elements are matched by their local name (vendors vary in prefixes);
//! the root must be a `KeyContainer`.

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use otp_core::otp::Algorithm;
use otp_core::secret_file::{OtpKind, DEFAULT_PERIOD};
use roxmltree::{Document, Node};

use super::{datetime, quoted, shown, Parsed, PinMode, Skipped, VendorToken, MAX_ENTRIES};

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

/// RFC 6030's namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

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

/// Why a key with a policy this reader does not understand is skipped.
const NOT_UNDERSTOOD: &str =
    "which this importer does not understand (RFC 6030 section 5: such a key must not be used)";

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
    /// An HMAC by its URI: the names of XML Signature
    /// (`http://www.w3.org/2000/09/xmldsig#hmac-sha1`) and of its "more"
    /// registry (`http://www.w3.org/2001/04/xmldsig-more#hmac-sha256`),
    /// either namespace with any of the five hashes (some vendors write
    /// `xmldsig-more#hmac-sha1`: the same HMAC-SHA1), and the drafts'
    /// bare `HMAC-SHA1`.
    fn from_uri(uri: &str) -> Result<MacAlg, String> {
        let uri = uri.trim();
        let name = match uri.rsplit_once('#') {
            Some((
                "http://www.w3.org/2000/09/xmldsig" | "http://www.w3.org/2001/04/xmldsig-more",
                name,
            )) => name,
            Some(_) => "",
            None => uri,
        };
        match name.to_ascii_lowercase().replace("sha-", "sha").as_str() {
            "hmac-sha1" => Ok(MacAlg::Sha1),
            "hmac-sha224" => Ok(MacAlg::Sha224),
            "hmac-sha256" => Ok(MacAlg::Sha256),
            "hmac-sha384" => Ok(MacAlg::Sha384),
            "hmac-sha512" => Ok(MacAlg::Sha512),
            _ => Err(format!(
                "{} is not supported (only HMAC with SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512, \
                 named as XML Signature names them)",
                quoted(uri)
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
    match MacAlg::from_uri(prf).map_err(|e| format!("PBKDF2 PRF {e}"))? {
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
            let alg = MacAlg::from_uri(m.attribute("Algorithm").unwrap_or(""))
                .map_err(|e| format!("MAC method {e}"))?;
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
/// element or its value is missing.
enum ValueError {
    /// Refuses the whole file, naming the key.
    File(String),
    /// Refuses the whole file with [`MAC_FAILED`] alone.
    Crypto,
    /// Skips the key.
    Key(String),
}

/// The value of `elem` as bytes: a plain value as written (base64-decoded
/// when `plain_is_base64`), an encrypted one decrypted after its MAC
/// checked.
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
    // RFC 6030: the MAC is over IV || ciphertext, checked before
    // decrypting. Else it may be over the plain value (the drafts):
    // checked after, and a padding that does not check on the way is the
    // same failure.
    let mac_over_ciphertext = alg.verify(mac_key, &data, &tag);
    let plain = cipher
        .decrypt(&keys.key, &data)
        .map_err(|e| match e.as_str() {
            MAC_FAILED => ValueError::Crypto,
            _ => ValueError::File(e),
        })?;
    if !mac_over_ciphertext && !alg.verify(mac_key, &plain, &tag) {
        return Err(ValueError::Crypto);
    }
    Ok(Some(plain))
}

/// A number from its bytes, as python-pskc reads one: ASCII decimal
/// digits when every byte is one (some vendors encrypt the text
/// "298507"), else a big-endian integer (what RFC 6030's examples and
/// python-pskc write). The two agree on what matters: digits read as text
/// never give more than the same bytes read big-endian, so a counter is
/// never read higher than either reading, and the association's
/// look-ahead finds a counter read too low.
fn number_from_bytes(bytes: &[u8]) -> Option<u64> {
    if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(bytes).ok()?.parse().ok();
    }
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
}

/// A `Counter` or `TimeInterval`: decimal in a PlainValue (or base64 of
/// bytes read by [`number_from_bytes`], as python-pskc also reads it);
/// bytes by [`number_from_bytes`] when encrypted.
fn data_number(data: Node, name: &str, keys: Option<&Keys>) -> Result<Option<u64>, ValueError> {
    let Some(elem) = child(data, name) else {
        return Ok(None);
    };
    let not_a_number = || ValueError::Key(format!("{name} is not a whole number"));
    if let Some(plain) = child(elem, "PlainValue") {
        if child(elem, "EncryptedValue").is_none() {
            let t = text(plain);
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return t.parse().map(Some).map_err(|_| not_a_number());
            }
            return base64(&t)
                .and_then(|b| number_from_bytes(&b))
                .map(Some)
                .ok_or_else(not_a_number);
        }
    }
    match data_bytes(elem, keys, false)? {
        None => Ok(None),
        Some(b) => number_from_bytes(&b).map(Some).ok_or_else(not_a_number),
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

/// What a key's `<Policy>` leaves to decide, once nothing in it makes the
/// key unusable.
#[derive(Default)]
struct Policy {
    start: Option<i64>,
    expiry: Option<i64>,
    pin: Option<PinMode>,
}

/// A date element's value, or why the key is skipped.
fn date(node: Node, what: &str) -> Result<i64, String> {
    let t = text(node);
    datetime::parse(&t).ok_or_else(|| {
        format!(
            "its {what} {} is not an xs:dateTime (YYYY-MM-DDThh:mm:ss, then Z or an offset)",
            quoted(&t)
        )
    })
}

/// The attributes RFC 6030 gives `<PINPolicy>`.
const PIN_POLICY_ATTRIBUTES: [&str; 6] = [
    "PINKeyId",
    "PINUsageMode",
    "MaxFailedAttempts",
    "MinLength",
    "MaxLength",
    "PINEncoding",
];

/// A key's `<Policy>` (RFC 6030 section 5), or why the key is skipped.
fn policy(key: Node) -> Result<Policy, String> {
    let mut found = children(key, "Policy");
    let Some(elem) = found.next() else {
        return Ok(Policy::default());
    };
    if found.next().is_some() {
        return Err(format!("it has more than one Policy, {NOT_UNDERSTOOD}"));
    }
    let mut out = Policy::default();
    let mut usage: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in elem.children().filter(Node::is_element) {
        let name = c.tag_name().name();
        if name != "KeyUsage" {
            if seen.contains(&name) {
                return Err(format!(
                    "its Policy has more than one {}, {NOT_UNDERSTOOD}",
                    shown(name)
                ));
            }
            seen.push(name);
        }
        match name {
            "StartDate" => out.start = Some(date(c, "Policy StartDate")?),
            "ExpiryDate" => out.expiry = Some(date(c, "Policy ExpiryDate")?),
            "KeyUsage" => usage.push(text(c)),
            "NumberOfTransactions" => {
                return Err(format!(
                    "its Policy allows it {} uses (NumberOfTransactions), and pam_otp does not \
                     count a token's uses",
                    quoted(&text(c))
                ))
            }
            "PINPolicy" => out.pin = pin_policy(c)?,
            other => {
                return Err(format!(
                    "its Policy has <{}>, {NOT_UNDERSTOOD}",
                    shown(other)
                ))
            }
        }
    }
    if !usage.is_empty() && !usage.iter().any(|u| u == "OTP") {
        let list: Vec<String> = usage.iter().map(|u| quoted(u)).collect();
        return Err(format!(
            "its Policy allows it only for {} (KeyUsage), not for OTP",
            list.join(", ")
        ));
    }
    Ok(out)
}

/// `<PINPolicy>`: Local is the device's business; Prepend and Append are
/// handed on; Algorithmic, an unknown mode, attribute or child skip the
/// key.
fn pin_policy(elem: Node) -> Result<Option<PinMode>, String> {
    if let Some(c) = elem.children().find(Node::is_element) {
        return Err(format!(
            "its PINPolicy has <{}>, {NOT_UNDERSTOOD}",
            shown(c.tag_name().name())
        ));
    }
    if let Some(a) = elem
        .attributes()
        .find(|a| a.namespace().is_some() || !PIN_POLICY_ATTRIBUTES.contains(&a.name()))
    {
        return Err(format!(
            "its PINPolicy has the attribute {}, {NOT_UNDERSTOOD}",
            shown(a.name())
        ));
    }
    match elem.attribute("PINUsageMode").map(str::trim) {
        Some("Local") => Ok(None),
        Some("Prepend") => Ok(Some(PinMode::Prepend)),
        Some("Append") => Ok(Some(PinMode::Append)),
        Some("Algorithmic") => Err(
            "its PIN policy (PINUsageMode Algorithmic) puts the PIN into the computation of each \
             code, which pam_otp cannot do"
                .into(),
        ),
        Some(other) => Err(format!(
            "its PINPolicy PINUsageMode {} is none of RFC 6030's (Local, Prepend, Append, \
             Algorithmic), {NOT_UNDERSTOOD}",
            quoted(other)
        )),
        None => Err(format!(
            "its PINPolicy has no PINUsageMode (how its PIN is used is unknown), {NOT_UNDERSTOOD}"
        )),
    }
}

/// The later of two start dates, the earlier of two expiry dates.
fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).max()
}

fn earlier(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).min()
}

/// `xs:boolean` true.
fn is_true(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some("true" | "1"))
}

/// One key of a key package: a token, or why it was skipped. `Err`
/// refuses the whole file.
fn key_entry(
    pkg: Node,
    key: Node,
    what: String,
    keys: Option<&Keys>,
) -> Result<Result<VendorToken, Skipped>, String> {
    let skip = |why: String| {
        Ok(Err(Skipped {
            what: what.clone(),
            why,
        }))
    };
    // Every value first, whatever becomes of the key: a value that does
    // not decrypt or whose MAC does not check refuses the whole file, also
    // in a key that is skipped for another reason.
    let data = child(key, "Data");
    let fail = |e: ValueError| match e {
        ValueError::File(why) => Err(format!("{what}: {why}")),
        ValueError::Crypto => Err(MAC_FAILED.to_string()),
        ValueError::Key(why) => Ok(why),
    };
    let secret = match data.and_then(|d| child(d, "Secret")) {
        None => Ok(None),
        Some(s) => match data_bytes(s, keys, true) {
            Ok(v) => Ok(v),
            Err(e) => Err(fail(e)?),
        },
    };
    let number = |name: &str| -> Result<Result<Option<u64>, String>, String> {
        match data.map(|d| data_number(d, name, keys)) {
            None | Some(Ok(None)) => Ok(Ok(None)),
            Some(Ok(Some(n))) => Ok(Ok(Some(n))),
            Some(Err(e)) => Ok(Err(fail(e)?)),
        }
    };
    let counter = number("Counter")?;
    let period = number("TimeInterval")?;

    let alg_uri = key.attribute("Algorithm").unwrap_or("");
    let Some(kind) = kind_of(alg_uri) else {
        return skip(format!(
            "algorithm {} is not PSKC HOTP or TOTP",
            quoted(alg_uri)
        ));
    };
    let policy = match policy(key) {
        Ok(p) => p,
        Err(why) => return skip(why),
    };
    let device = child(pkg, "DeviceInfo");
    let device_date = |name: &str| match device.and_then(|d| child(d, name)) {
        None => Ok(None),
        Some(n) => date(n, &format!("DeviceInfo {name}")).map(Some),
    };
    let (device_start, device_expiry) = match (device_date("StartDate"), device_date("ExpiryDate"))
    {
        (Ok(s), Ok(e)) => (s, e),
        (Err(why), _) | (_, Err(why)) => return skip(why),
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
        if is_true(rf.attribute("CheckDigits")) {
            return skip(
                "its codes end in a Luhn check digit (ResponseFormat CheckDigits), which pam_otp \
                 does not compute"
                    .into(),
            );
        }
        match rf.attribute("Length").map(|l| l.trim().parse::<u8>()) {
            Some(Ok(l)) => digits = l,
            Some(Err(_)) => return skip("ResponseFormat Length is not a number".into()),
            None => {}
        }
    }
    let secret = match secret {
        Ok(Some(s)) => s,
        Err(why) => return skip(why),
        Ok(None) if data.is_none() => return skip("it has no Data (no secret)".into()),
        Ok(None) => return skip("it has no Secret value".into()),
    };
    let counter = match counter {
        Ok(c) => c.unwrap_or(0),
        Err(why) => return skip(why),
    };
    let period = match period {
        Ok(p) => p.unwrap_or(DEFAULT_PERIOD),
        Err(why) => return skip(why),
    };
    let serial = path(pkg, &["DeviceInfo", "SerialNo"])
        .map(text)
        .filter(|s| !s.is_empty());
    let Some(serial) = serial else {
        return skip("it has no DeviceInfo/SerialNo (a token is found by its serial)".into());
    };
    let c = VendorToken {
        serial,
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
        not_before: later(policy.start, device_start),
        expires: earlier(policy.expiry, device_expiry),
        pin: policy.pin,
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

/// In a file that declares encryption: the first key whose secret has a
/// plain value refuses the file (before any key is asked for, so the
/// admin learns of the change whatever key they gave).
fn refuse_plain_secrets(entries: &[(Node, Node, String)]) -> Result<(), String> {
    for (_, key, what) in entries {
        let secrets = children(*key, "Data").flat_map(|d| children(d, "Secret"));
        for s in secrets {
            if child(s, "PlainValue").is_some() {
                return Err(format!("{what}: {PLAIN_SECRET}"));
            }
        }
    }
    Ok(())
}

/// How a key is named in messages: its package's serial, else the
/// package's number and the Key Id.
fn key_name(pkg: Node, key: Option<Node>, n: usize) -> String {
    let serial = path(pkg, &["DeviceInfo", "SerialNo"])
        .map(text)
        .filter(|s| !s.is_empty());
    let id = key.and_then(|k| k.attribute("Id"));
    match (serial, id) {
        (Some(s), _) => shown(&s),
        (None, Some(id)) => format!("key package {n} (Key Id {})", quoted(id)),
        (None, None) => format!("key package {n}"),
    }
}

/// The namespaces of PSKC's drafts, and the draft each belongs to.
const DRAFT_NAMESPACES: [(&str, &str); 3] = [
    (
        "urn:ietf:params:xml:ns:keyprov:container",
        "draft-hoyer-keyprov-portable-symmetric-key-container",
    ),
    (
        "urn:ietf:params:xml:ns:keyprov:pskc:1.0",
        "draft-hoyer-keyprov-pskc",
    ),
    (
        "http://www.openauthentication.org/OATH/2006/08/PSKC",
        "draft-hoyer-keyprov-portable-symmetric-key-container-00",
    ),
];

/// Whether the document is one of the layouts before RFC 6030 (its
/// drafts, and vendor files written to them, such as ActivIdentity's):
/// what gives it away, and the draft. They moved the values
/// (`<Data Name="SECRET"><Value>`), the encryption (`EncryptionMethod`
/// in the container, PBE algorithms, 3DES, MACs over the plain value
/// with the encryption key) and the packages (`<Device>`) about; rather
/// than guess at each, they are refused by name.
pub fn pre_rfc_layout(root: Node) -> Option<String> {
    let ns = root.tag_name().namespace().unwrap_or("");
    if root.tag_name().name() == "SecretContainer" {
        return Some(
            "draft-hoyer-keyprov-portable-symmetric-key-container-00: a <SecretContainer>".into(),
        );
    }
    for (prefix, draft) in DRAFT_NAMESPACES {
        if ns == prefix || ns.strip_prefix(prefix).is_some_and(|r| r.starts_with(':')) {
            return Some(format!("{draft}: the namespace {}", quoted(ns)));
        }
    }
    if child(root, "Device").is_some() {
        return Some("draft-ietf-keyprov-pskc: <Device> where RFC 6030 has <KeyPackage>".into());
    }
    for name in ["EncryptionMethod", "DigestMethod", "MACAlgorithm"] {
        if child(root, name).is_some() {
            return Some(format!(
                "a draft of PSKC: <{name}> in the container, where RFC 6030 has <EncryptionKey> \
                 and <MACMethod>"
            ));
        }
    }
    let elements = root.descendants().filter(Node::is_element);
    for e in elements {
        match e.tag_name().name() {
            "Data" if e.attribute("Name").is_some() => {
                return Some(
                    "a draft of PSKC: <Data Name=...> where RFC 6030 has <Data><Secret>".into(),
                )
            }
            "Key" if e.attribute("KeyAlgorithm").is_some() => {
                return Some(
                    "a draft of PSKC: <Key KeyAlgorithm=...> where RFC 6030 has Algorithm=".into(),
                )
            }
            _ => {}
        }
    }
    None
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
    if let Some(layout) = pre_rfc_layout(root) {
        return Err(format!(
            "a pre-RFC 6030 PSKC layout ({layout}) is not supported; pskc2pskc (Debian package \
             pskc-utils) converts it to RFC 6030"
        ));
    }
    if root.tag_name().name() != "KeyContainer" {
        return Err(format!(
            "the document is a <{}>, not a PSKC <KeyContainer>",
            shown(root.tag_name().name())
        ));
    }
    // RFC 6030 section 4: Version "1.0"; python-pskc also takes "1" and a
    // container without one.
    if let Some(v) = root
        .attribute("Version")
        .or_else(|| root.attribute("version"))
    {
        if !matches!(v.trim(), "1.0" | "1") {
            return Err(format!(
                "the container's Version is {}: only RFC 6030's version 1.0 is supported",
                quoted(v)
            ));
        }
    }
    let mut entries: Vec<(Node, Node, String)> = Vec::new();
    let mut no_key: Vec<Skipped> = Vec::new();
    for (i, pkg) in children(root, "KeyPackage").enumerate() {
        let mut any = false;
        for key in children(pkg, "Key") {
            any = true;
            entries.push((pkg, key, key_name(pkg, Some(key), i + 1)));
            if entries.len() > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} keys"));
            }
        }
        if !any {
            no_key.push(Skipped {
                what: key_name(pkg, None, i + 1),
                why: "it has no Key".into(),
            });
        }
    }
    if declares_encryption(root) {
        refuse_plain_secrets(&entries)?;
    }
    let keys = keys(root, secret)?;
    let mut out = Parsed {
        encrypted: keys.is_some(),
        skipped: no_key,
        ..Parsed::default()
    };
    for (pkg, key, what) in entries {
        match key_entry(pkg, key, what, keys.as_ref())? {
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

    fn data(name: &str) -> String {
        let path = format!("{}/tests/data/pskc/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    /// The key fixtures.py encrypts its files with.
    fn fixture_key() -> Secret {
        Secret::Key(otp_core::key::decode_hex("000102030405060708090a0b0c0d0e0f").unwrap())
    }

    fn whys(p: &Parsed) -> Vec<String> {
        p.skipped
            .iter()
            .map(|s| format!("{}: {}", s.what, s.why))
            .collect()
    }

    #[test]
    fn numbers_are_digits_or_big_endian() {
        assert_eq!(number_from_bytes(b"298507"), Some(298_507));
        assert_eq!(
            number_from_bytes(&[0, 0, 0, 0, 0, 4, 142, 11]),
            Some(298_507)
        );
        assert_eq!(number_from_bytes(&[4, 142, 11]), Some(298_507));
        assert_eq!(number_from_bytes(b""), Some(0));
        assert_eq!(number_from_bytes(b"00000000000000000042"), Some(42));
        assert_eq!(number_from_bytes(b"99999999999999999999"), None);
        assert_eq!(number_from_bytes(&[1; 9]), None);
        // Digits read as text are never more than the bytes read
        // big-endian: "0" (0x30) is 0, not 48.
        assert_eq!(number_from_bytes(b"0"), Some(0));
        assert_eq!(number_from_bytes(b"2x"), Some(0x3278));
    }

    /// Issue 32, item 1: a counter encrypted as the text "298507" was read
    /// as the big-endian 55221337534519. Both encodings now give 298507,
    /// as python-pskc reads them.
    #[test]
    fn an_encrypted_counter_in_decimal_text() {
        let p = parse(&data("counter-text-aes128.xml"), &fixture_key()).unwrap();
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let got: Vec<(&str, u64)> = p
            .tokens
            .iter()
            .map(|t| (t.serial.as_str(), t.counter))
            .collect();
        assert_eq!(got, [("CTR-TEXT", 298_507), ("CTR-BIN", 298_507)]);
    }

    /// Issue 32, item 2: RFC 6030 section 5's Policy, one key each.
    #[test]
    fn policies_are_honoured() {
        let p = parse(&data("policy.xml"), &Secret::None).unwrap();
        let n = NOT_UNDERSTOOD;
        assert_eq!(
            whys(&p),
            [
                "POL-CR: its Policy allows it only for \"CR\", \"Integrity\" (KeyUsage), not for OTP"
                    .to_string(),
                "POL-ALGORITHMIC: its PIN policy (PINUsageMode Algorithmic) puts the PIN into the \
                 computation of each code, which pam_otp cannot do"
                    .into(),
                "POL-TRANSACTIONS: its Policy allows it \"10\" uses (NumberOfTransactions), and \
                 pam_otp does not count a token's uses"
                    .into(),
                format!("POL-UNKNOWN: its Policy has <OnWeekDaysOnly>, {n}"),
            ]
        );
        let got: Vec<String> = p
            .tokens
            .iter()
            .map(|t| {
                format!(
                    "{} {:?} {:?} {:?} {:?} {}",
                    t.serial,
                    t.algorithm,
                    t.not_before,
                    t.expires,
                    t.pin,
                    t.describe()
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // 2020-01-01T00:00:00+02:00 and 2099-12-31T23:00:00-05:00.
                "POL-DATES SHA1 Some(1577829600) Some(4102459200) None totp, 6 digits, period 30 s",
                "POL-EXPIRED SHA1 None Some(1625054400) None hotp, 6 digits, counter 66",
                "POL-DEVICE-EXPIRED SHA1 None Some(1643587200) None hotp, 6 digits, counter 67",
                "POL-LOCAL SHA256 None None None hotp, 8 digits, counter 69",
                "POL-PREPEND SHA512 None None Some(Prepend) hotp, 6 digits, counter 70",
                "POL-APPEND SHA1 None None Some(Append) totp, 6 digits, period 30 s",
            ]
        );
        // In 2025: the expired keys and the PIN policies are skipped.
        let chosen = super::super::select(p.tokens, 1_750_000_000, Default::default());
        let taken: Vec<&str> = chosen
            .iter()
            .filter_map(|c| match c {
                super::super::Choice::Take(a) => Some(a.token.serial.as_str()),
                super::super::Choice::Skip(_) => None,
            })
            .collect();
        assert_eq!(taken, ["POL-DATES", "POL-LOCAL"]);
    }

    /// Policy elements, attributes and values this reader does not know,
    /// dates that are no xs:dateTime: the key is skipped, saying which.
    #[test]
    fn unknown_policies_skip_the_key() {
        let n = NOT_UNDERSTOOD;
        let hotp = "urn:ietf:params:xml:ns:keyprov:pskc:hotp";
        let cases: [(&str, String); 10] = [
            (
                "<Policy><Foo/></Policy>",
                format!("its Policy has <Foo>, {n}"),
            ),
            (
                "<Policy><PINPolicy PINUsageMode=\"Local\" Weekdays=\"1\"/></Policy>",
                format!("its PINPolicy has the attribute Weekdays, {n}"),
            ),
            (
                "<Policy><PINPolicy PINUsageMode=\"Local\"><X/></PINPolicy></Policy>",
                format!("its PINPolicy has <X>, {n}"),
            ),
            (
                "<Policy><PINPolicy PINUsageMode=\"Remote\"/></Policy>",
                format!(
                    "its PINPolicy PINUsageMode \"Remote\" is none of RFC 6030's (Local, Prepend, \
                     Append, Algorithmic), {n}"
                ),
            ),
            (
                "<Policy><PINPolicy MinLength=\"4\"/></Policy>",
                format!("its PINPolicy has no PINUsageMode (how its PIN is used is unknown), {n}"),
            ),
            (
                "<Policy><ExpiryDate>01/01/2030</ExpiryDate></Policy>",
                "its Policy ExpiryDate \"01/01/2030\" is not an xs:dateTime \
                 (YYYY-MM-DDThh:mm:ss, then Z or an offset)"
                    .into(),
            ),
            (
                "<Policy><StartDate>2020-01-01T00:00:00Z</StartDate>\
                 <StartDate>2021-01-01T00:00:00Z</StartDate></Policy>",
                format!("its Policy has more than one StartDate, {n}"),
            ),
            (
                "<Policy><KeyUsage>OTP</KeyUsage></Policy><Policy/>",
                format!("it has more than one Policy, {n}"),
            ),
            (
                "<Policy><KeyUsage>otp</KeyUsage></Policy>",
                "its Policy allows it only for \"otp\" (KeyUsage), not for OTP".into(),
            ),
            (
                "<AlgorithmParameters><ResponseFormat Length=\"6\" Encoding=\"DECIMAL\" \
                 CheckDigits=\"true\"/></AlgorithmParameters>",
                "its codes end in a Luhn check digit (ResponseFormat CheckDigits), which \
                 pam_otp does not compute"
                    .into(),
            ),
        ];
        for (extra, why) in cases {
            let xml = plain(&pkg("S", hotp, extra));
            let p = parse(&xml, &Secret::None).unwrap();
            assert!(p.tokens.is_empty(), "{extra}");
            assert_eq!(whys(&p), [format!("S: {why}")], "{extra}");
        }
        // What RFC 6030 defines is read; no KeyUsage means unrestricted.
        for extra in [
            "<Policy><KeyUsage>CR</KeyUsage><KeyUsage>OTP</KeyUsage>\
             <PINPolicy PINKeyId=\"k\" PINUsageMode=\"Local\" MaxFailedAttempts=\"3\" \
             MinLength=\"4\" MaxLength=\"8\" PINEncoding=\"DECIMAL\"/></Policy>",
            "<Policy><StartDate>2020-01-01T00:00:00</StartDate></Policy>",
            "<Policy/>",
        ] {
            let p = parse(&plain(&pkg("S", hotp, extra)), &Secret::None).unwrap();
            assert!(p.skipped.is_empty(), "{extra}: {:?}", p.skipped);
        }
        // The device's dates bound the key too: the stricter wins.
        let device = "<KeyPackage><DeviceInfo><SerialNo>D</SerialNo>\
            <StartDate>2021-01-01T00:00:00Z</StartDate><ExpiryDate>2030-01-01T00:00:00Z</ExpiryDate>\
            </DeviceInfo><Key Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"><Data><Secret>\
            <PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue></Secret></Data><Policy>\
            <StartDate>2020-01-01T00:00:00Z</StartDate><ExpiryDate>2031-01-01T00:00:00Z</ExpiryDate>\
            </Policy></Key></KeyPackage>";
        let p = parse(&plain(device), &Secret::None).unwrap();
        let [t] = p.tokens.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (t.not_before, t.expires),
            (Some(1_609_459_200), Some(1_893_456_000))
        );
    }

    /// Issue 32, item 3: RFC 6030 figure 5, an HOTP key and the PIN key
    /// of the same device (the same serial): the PIN key is skipped as no
    /// OTP key and so does not make the serial a duplicate.
    #[test]
    fn rfc6030_figure5_imports_its_otp_key() {
        let p = parse(&rfc(5), &Secret::None).unwrap();
        assert_eq!(
            whys(&p),
            ["987654321: algorithm \"urn:ietf:params:xml:ns:keyprov:pskc:pin\" is not PSKC HOTP or \
              TOTP"]
        );
        let chosen = super::super::select(p.tokens, 1_750_000_000, Default::default());
        let [super::super::Choice::Take(a)] = chosen.as_slice() else {
            panic!("{chosen:?}")
        };
        assert_eq!(
            (a.token.serial.as_str(), a.token.digits, a.token.pin),
            ("987654321", 8, None)
        );
        assert_eq!(a.token.key, b"12345678901234567890");
    }

    /// Issue 32, item 5: the drafts' layouts are refused by name, before
    /// a key is asked for or found not needed.
    #[test]
    fn pre_rfc_layouts_are_refused_by_name() {
        let tail =
            "is not supported; pskc2pskc (Debian package pskc-utils) converts it to RFC 6030";
        let cases = [
            (
                "draft-ietf-keyprov-pskc-02-figure2.xml",
                "draft-ietf-keyprov-pskc: <Device> where RFC 6030 has <KeyPackage>",
            ),
            (
                "draft-hoyer-keyprov-pskc-algorithm-profiles-01-totp.xml",
                "draft-hoyer-keyprov-pskc: the namespace \"urn:ietf:params:xml:ns:keyprov:pskc:1.0\"",
            ),
            (
                "activid-layout.xml",
                "draft-hoyer-keyprov-portable-symmetric-key-container: the namespace \
                 \"urn:ietf:params:xml:ns:keyprov:container:1.0\"",
            ),
        ];
        for (file, layout) in cases {
            for secret in [Secret::None, fixture_key()] {
                assert_eq!(
                    parse(&data(file), &secret).unwrap_err(),
                    format!("a pre-RFC 6030 PSKC layout ({layout}) {tail}"),
                    "{file}"
                );
            }
        }
        let ns = format!("xmlns=\"{NAMESPACE}\"");
        for (xml, layout) in [
            ("<SecretContainer/>".to_string(), "draft-hoyer-keyprov-portable-symmetric-key-container-00: a <SecretContainer>"),
            (format!("<KeyContainer {ns}><EncryptionMethod/></KeyContainer>"), "a draft of PSKC: <EncryptionMethod> in the container, where RFC 6030 has <EncryptionKey> and <MACMethod>"),
            (format!("<KeyContainer {ns}><KeyPackage><Key><Data Name=\"SECRET\"/></Key></KeyPackage></KeyContainer>"), "a draft of PSKC: <Data Name=...> where RFC 6030 has <Data><Secret>"),
            (format!("<KeyContainer {ns}><KeyPackage><Key KeyAlgorithm=\"x\"/></KeyPackage></KeyContainer>"), "a draft of PSKC: <Key KeyAlgorithm=...> where RFC 6030 has Algorithm="),
        ] {
            assert_eq!(
                parse(&xml, &Secret::None).unwrap_err(),
                format!("a pre-RFC 6030 PSKC layout ({layout}) {tail}")
            );
        }
    }

    /// Issue 32, item 6: HMAC-SHA1 named by the xmldsig-more URI, and a
    /// MAC over the plain values, both with the right key: read. Every
    /// cryptographic failure of either: one message.
    #[test]
    fn older_mac_variants() {
        for (file, serial, counter) in [
            ("mac-xmldsig-more-sha1.xml", "MAC-MORE", 3),
            ("mac-over-plaintext.xml", "MAC-PLAIN", 11),
        ] {
            let xml = data(file);
            let p = parse(&xml, &fixture_key()).unwrap();
            let [t] = p.tokens.as_slice() else {
                panic!("{file}: {p:?}")
            };
            assert_eq!((t.serial.as_str(), t.counter), (serial, counter));
            let wrong = Secret::Key(vec![1; 16]);
            assert_eq!(parse(&xml, &wrong).unwrap_err(), MAC_FAILED, "{file}");
            let start = xml.find("<pskc:ValueMAC>").unwrap() + "<pskc:ValueMAC>".len();
            let mut changed = xml.clone();
            let first = &xml[start..start + 1];
            changed.replace_range(start..start + 1, if first == "A" { "B" } else { "A" });
            assert_eq!(
                parse(&changed, &fixture_key()).unwrap_err(),
                MAC_FAILED,
                "{file}"
            );
        }
        assert_eq!(
            MacAlg::from_uri("http://www.w3.org/2001/04/xmldsig-more#hmac-sha1"),
            Ok(MacAlg::Sha1)
        );
        assert_eq!(
            MacAlg::from_uri("http://www.w3.org/2000/09/xmldsig#hmac-sha256"),
            Ok(MacAlg::Sha256)
        );
        assert_eq!(
            MacAlg::from_uri("http://www.w3.org/2001/04/xmldsig-more#hmac-md5").unwrap_err(),
            "\"http://www.w3.org/2001/04/xmldsig-more#hmac-md5\" is not supported (only HMAC with \
             SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512, named as XML Signature names them)"
        );
        assert!(MacAlg::from_uri("urn:example#hmac-sha1").is_err());
    }

    /// Issue 32, item 7: RFC 6030 section 4's Version.
    #[test]
    fn the_container_version_is_checked() {
        let fig2 = rfc(2);
        for (v, ok) in [
            ("1.0", true),
            ("1", true),
            ("1.1", false),
            ("2.0", false),
            ("", false),
        ] {
            let xml = fig2.replace("Version=\"1.0\"", &format!("Version=\"{v}\""));
            match parse(&xml, &Secret::None) {
                Ok(_) => assert!(ok, "{v}"),
                Err(e) => {
                    assert!(!ok, "{v}: {e}");
                    assert_eq!(
                        e,
                        format!("the container's Version is \"{v}\": only RFC 6030's version 1.0 is supported")
                    );
                }
            }
        }
        let none = fig2.replace("Version=\"1.0\"", "");
        assert!(parse(&none, &Secret::None).is_ok());
    }
}
