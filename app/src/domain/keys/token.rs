//! The key format `crl_<public id>_<secret><checksum>` and its HMAC.
//!
//! - public id: 12 base62 characters, the lookup prefix (not secret);
//! - secret: 32 base62 characters from the OS random source (~190 bits);
//! - checksum: 6 base62 characters of the CRC-32 of everything before it,
//!   so scanners and the gateway reject a mistyped key before any lookup.
//!
//! Only `HMAC-SHA256(pepper, secret)` is stored; the pepper is a server-side
//! setting, so a copy of the database alone cannot test guesses.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

pub const PREFIX: &str = "crl_";
pub const PUBLIC_ID_LEN: usize = 12;
pub const SECRET_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole key.
pub const KEY_LEN: usize = PREFIX.len() + PUBLIC_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The token of an `Authorization: Bearer <token>` header value (the
/// scheme in either case that clients send), trimmed; `None` for any other
/// scheme. The portal's REST API and the gateway read keys through this.
pub fn bearer(authorization: &str) -> Option<&str> {
    authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .map(str::trim)
}

/// The server-side secret mixed into every key's HMAC. The HMAC's keyed
/// state is computed once, here, not for every key checked.
#[derive(Clone)]
pub struct Pepper(Hmac<Sha256>);

impl Pepper {
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        Self(Hmac::<Sha256>::new_from_slice(bytes.as_ref()).expect("HMAC takes any key length"))
    }

    /// HMAC-SHA256 of a key's secret part.
    pub fn hmac(&self, secret: &str) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of `secret` against a stored HMAC.
    pub fn verify(&self, secret: &str, stored: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(secret.as_bytes());
        mac.verify_slice(stored).is_ok()
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(…)")
    }
}

/// A key, parsed and checksum-verified, not yet looked up.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub public_id: &'a str,
    /// The random part (without the checksum).
    pub secret: &'a str,
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParsedKey({})", display_prefix(self.public_id))
    }
}

/// Why a string is not a Corral key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("an API key starts with crl_")]
    Prefix,
    #[error("an API key is {KEY_LEN} characters long")]
    Length,
    #[error("an API key has only letters and digits after crl_ and one _")]
    Characters,
    #[error("the API key's checksum does not match: it was mistyped or cut short")]
    Checksum,
}

/// Parses a key and checks its checksum.
pub fn parse(key: &str) -> Result<ParsedKey<'_>, FormatError> {
    let rest = key.strip_prefix(PREFIX).ok_or(FormatError::Prefix)?;
    if key.len() != KEY_LEN {
        return Err(FormatError::Length);
    }
    let (public_id, tail) = rest.split_at(PUBLIC_ID_LEN);
    let Some(tail) = tail.strip_prefix('_') else {
        return Err(FormatError::Characters);
    };
    if !public_id.bytes().chain(tail.bytes()).all(is_base62) {
        return Err(FormatError::Characters);
    }
    let (secret, checksum) = tail.split_at(SECRET_LEN);
    if checksum.as_bytes() != encode_checksum(crc32(&key.as_bytes()[..KEY_LEN - CHECKSUM_LEN])) {
        return Err(FormatError::Checksum);
    }
    Ok(ParsedKey { public_id, secret })
}

/// A new key: `(whole key, public id, secret)`.
pub fn generate() -> (String, String, String) {
    let mut rng = rand::rngs::OsRng;
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| BASE62[rng.gen_range(0..62)] as char)
            .collect()
    };
    let public_id = pick(PUBLIC_ID_LEN);
    let secret = pick(SECRET_LEN);
    let body = format!("{PREFIX}{public_id}_{secret}");
    let checksum = encode_checksum(crc32(body.as_bytes()));
    let key = format!(
        "{body}{}",
        std::str::from_utf8(&checksum).expect("base62 is ASCII")
    );
    (key, public_id, secret)
}

/// What a key looks like in lists: `crl_<public id>_…`.
pub fn display_prefix(public_id: &str) -> String {
    format!("{PREFIX}{public_id}_…")
}

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn encode_checksum(mut n: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// CRC-32 (IEEE) remainders of every byte, computed at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE), as zlib computes it, a byte at a time.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = (crc >> 8) ^ CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_parse_back() {
        let (key, id, secret) = generate();
        assert_eq!(key.len(), KEY_LEN);
        let parsed = parse(&key).unwrap();
        assert_eq!(parsed.public_id, id);
        assert_eq!(parsed.secret, secret);
        assert_ne!(generate().0, key);
    }

    #[test]
    fn mistyped_keys_fail_the_checksum() {
        let (key, ..) = generate();
        let mut bytes = key.clone().into_bytes();
        let i = PREFIX.len() + PUBLIC_ID_LEN + 5;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(parse(&typo), Err(FormatError::Checksum));
        assert_eq!(parse(&key[..KEY_LEN - 1]), Err(FormatError::Length));
        assert_eq!(parse("sk-abc"), Err(FormatError::Prefix));
        let bad = key.replacen('_', "-", 2);
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn hmac_verifies_only_the_right_secret_and_pepper() {
        let pepper = Pepper::new(b"pepper");
        let stored = pepper.hmac("s3cret");
        assert!(pepper.verify("s3cret", &stored));
        assert!(!pepper.verify("s3creT", &stored));
        assert!(!Pepper::new(b"other").verify("s3cret", &stored));
        assert_eq!(format!("{pepper:?}"), "Pepper(…)");
    }
}
