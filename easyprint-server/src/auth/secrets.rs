//! Random tokens, their stored hashes and password hashing.
//!
//! Session tokens, CSRF tokens and API keys are 256-bit random values; only their SHA-256 is
//! stored, so a copy of the database grants nothing. Passwords use argon2id with the crate's
//! default (OWASP) parameters.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh 256-bit random token, hex encoded (64 characters, safe in headers, cookies and URLs).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fresh 128-bit random identifier, hex encoded (for public ids such as file ids).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A password meant to be typed: 12 random base32 letters and digits (60 bits) in groups of
/// four, e.g. `k7qd-m2xa-p4tz`. The alphabet has no `0`, `1`, `8` or `9`, so nothing is
/// mistaken for `o`, `l` or `b`.
pub fn typable_password() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    let bits = u64::from_le_bytes(bytes);
    let mut out = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize]));
    }
    out
}

/// SHA-256 of a token: what the database stores and looks up.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`). CPU- and memory-heavy: call it
/// from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a stored PHC string. `None` (unknown user) still spends the time
/// of one verification so response times do not reveal which user names exist.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("dummy password").unwrap_or_default());
    let (phc, known) = match stored {
        Some(s) => (s, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && known
}

/// Whether `phc` is a PHC string this server can verify (used for hashes given in the config).
pub fn is_valid_password_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hex() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_token());
        assert_eq!(random_id().len(), 32);
    }

    #[test]
    fn typable_passwords_have_60_random_bits_in_three_groups() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = typable_password();
            let groups: Vec<&str> = p.split('-').collect();
            assert_eq!(groups.len(), 3, "{p}");
            assert!(groups.iter().all(|g| g.len() == 4), "{p}");
            assert!(p
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
            seen.extend(p.bytes().filter(|&b| b != b'-'));
            assert!(crate::auth::store::validate_new_password(&p).is_ok());
        }
        // 2400 draws from 32 symbols: every symbol shows up (all 60 bits are used).
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn password_round_trip() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(is_valid_password_hash(&phc));
        assert!(verify_password("correct horse", Some(&phc)));
        assert!(!verify_password("wrong horse", Some(&phc)));
        assert!(!verify_password("dummy password", None));
        assert!(!verify_password("x", Some("not a hash")));
        assert!(!is_valid_password_hash("plaintext"));
    }
}
