//! Bearer secrets: enrolment tokens (`twe_<64 hex>`) and API keys
//! (`twk_<64 hex>`), 32 random bytes each. Only their SHA-256 (lowercase
//! hex of the whole secret text, prefix included) is ever stored.

use ring::rand::SecureRandom;

/// Prefix of enrolment tokens.
pub const TOKEN_PREFIX: &str = "twe_";
/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "twk_";

/// The system random generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// A new secret: `prefix` + 64 lowercase hex digits.
pub fn generate(prefix: &str) -> Result<String, RandomError> {
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| RandomError)?;
    Ok(format!("{prefix}{}", crate::pki::hex(&b)))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    crate::pki::hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_shape_and_differ() {
        let a = generate(TOKEN_PREFIX).unwrap();
        let b = generate(TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(a.starts_with("twe_"));
        assert!(a[4..]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
