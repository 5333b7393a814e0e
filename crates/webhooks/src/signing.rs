//! Signatures per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>).
//!
//! A secret is `whsec_` followed by base64 of 24 to 64 random bytes; the
//! HMAC key is those bytes. A message is signed as
//! `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest and most key bytes a secret may carry (the specification's bounds).
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;
/// How many random bytes a generated secret has.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// A new random secret, `whsec_<base64 of 32 bytes>`.
pub fn generate_secret() -> Result<String, String> {
    let mut key = [0u8; GENERATED_SECRET_BYTES];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness for a secret: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The HMAC key of a `whsec_` secret, or why it is not one.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        format!("a secret starts with {SECRET_PREFIX:?} followed by base64 (like the ones Trellis generates)")
    })?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|e| format!("the part after {SECRET_PREFIX:?} is not valid base64: {e}"))?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        return Err(format!(
            "the secret carries {} bytes; it must carry {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} \
             random bytes (leave it out and Trellis generates one)",
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` header value for a message.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementation() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(secret_key(&a).unwrap().len(), GENERATED_SECRET_BYTES);
    }

    #[test]
    fn bad_secrets_say_why() {
        assert!(secret_key("abc").unwrap_err().contains("whsec_"));
        assert!(secret_key("whsec_!!!").unwrap_err().contains("base64"));
        assert!(secret_key("whsec_YWJj").unwrap_err().contains("24 to 64"));
    }
}
