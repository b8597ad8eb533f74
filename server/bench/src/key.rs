//! The bench's API key, made as `app/src/domain/keys/token.rs` makes one:
//! `crl_<public id>_<secret><checksum>`, stored as `HMAC-SHA256(pepper, secret)`.
//! (Copied rather than imported: the `app` crate brings Leptos with it.)

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

const PREFIX: &str = "crl_";
const PUBLIC_ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A key as the client presents it and as the database stores it.
pub struct ApiKey {
    /// The whole key, `crl_…`.
    pub key: String,
    /// A well-formed key with the same public id and another secret: it
    /// passes the checksum and the look-up, and must fail the HMAC.
    pub wrong_key: String,
    pub public_id: String,
    pub secret_hmac: Vec<u8>,
}

impl ApiKey {
    /// A fresh random key whose HMAC is taken with `pepper`.
    pub fn generate(pepper: &str) -> Self {
        let public_id = random_base62(PUBLIC_ID_LEN);
        let secret = random_base62(SECRET_LEN);
        let mut mac =
            Hmac::<Sha256>::new_from_slice(pepper.as_bytes()).expect("HMAC takes any key length");
        mac.update(secret.as_bytes());
        Self {
            key: assemble(&public_id, &secret),
            wrong_key: assemble(&public_id, &random_base62(SECRET_LEN)),
            secret_hmac: mac.finalize().into_bytes().to_vec(),
            public_id,
        }
    }
}

/// `n` random characters from `0-9A-Za-z`.
pub fn random_base62(n: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
        .collect()
}

fn assemble(public_id: &str, secret: &str) -> String {
    let body = format!("{PREFIX}{public_id}_{secret}");
    let checksum = encode_checksum(crc32(body.as_bytes()));
    format!("{body}{checksum}")
}

fn encode_checksum(mut n: u32) -> String {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// CRC-32 (IEEE), as zlib computes it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
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
    fn keys_have_corrals_shape_and_a_matching_checksum() {
        let k = ApiKey::generate("a-pepper-of-at-least-thirty-two-bytes");
        assert_eq!(
            k.key.len(),
            4 + PUBLIC_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
        );
        assert!(k.key.starts_with(&format!("crl_{}_", k.public_id)));
        let (body, checksum) = k.key.split_at(k.key.len() - CHECKSUM_LEN);
        assert_eq!(checksum, encode_checksum(crc32(body.as_bytes())));
        assert_ne!(k.key, k.wrong_key);
        assert_eq!(k.secret_hmac.len(), 32);
    }
}
