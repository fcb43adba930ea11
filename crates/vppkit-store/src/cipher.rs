//! Encryption of secrets at rest (content tokens, notification auth tokens).

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use vppkit_core::Secret;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// First byte of a sealed value stored in clear (explicit choice).
const SCHEME_PLAINTEXT: u8 = 0;
/// First byte of a sealed value encrypted with AES-256-GCM.
const SCHEME_AES256GCM: u8 = 1;
const NONCE_LEN: usize = 12;

/// How backends protect secrets they write to disk.
///
/// Either AES-256-GCM with a 256-bit key the embedder supplies (a fresh random
/// 96-bit nonce per value; the row the value belongs to is bound in as
/// associated data, so a value copied into another row does not decrypt), or,
/// as an explicit choice, [`SecretCipher::plaintext`].
///
/// ```
/// use vppkit_core::Secret;
/// use vppkit_store::SecretCipher;
///
/// let cipher = SecretCipher::from_key_bytes(&[7u8; 32])?;
/// let sealed = cipher.seal(&Secret::new("the token"), "location:a:token");
/// assert_eq!(cipher.open(&sealed, "location:a:token", "content token")?.expose(), "the token");
/// let other = SecretCipher::from_key_bytes(&[8u8; 32])?;
/// assert!(other.open(&sealed, "location:a:token", "content token").is_err());
/// # Ok::<(), vppkit_store::StoreError>(())
/// ```
#[derive(Clone)]
pub struct SecretCipher {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Plaintext,
    Aes(Box<Aes256Gcm>),
}

impl SecretCipher {
    /// AES-256-GCM with the given 32-byte key.
    pub fn from_key_bytes(key: &[u8]) -> Result<Self> {
        if key.len() != 32 {
            return Err(StoreError::invalid(
                "secret key",
                format!("must be 32 bytes (256 bits), got {}", key.len()),
            ));
        }
        let aes = Aes256Gcm::new_from_slice(key)
            .map_err(|_| StoreError::invalid("secret key", "must be 32 bytes (256 bits)"))?;
        Ok(Self {
            inner: Inner::Aes(Box::new(aes)),
        })
    }

    /// AES-256-GCM with a key given in standard base64 (44 characters for 32 bytes).
    pub fn from_base64(key: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|_| StoreError::invalid("secret key", "not valid base64"))?,
        );
        Self::from_key_bytes(&bytes)
    }

    /// A fresh random 256-bit key, in standard base64, for [`SecretCipher::from_base64`].
    pub fn generate_key_base64() -> Secret {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Secret::new(base64::engine::general_purpose::STANDARD.encode(key.as_ref()))
    }

    /// Stores secrets in clear. Only for tests and for embedders whose disk
    /// encryption already covers the database; the choice is explicit on purpose.
    pub fn plaintext() -> Self {
        Self {
            inner: Inner::Plaintext,
        }
    }

    /// Whether values are encrypted.
    pub fn encrypts(&self) -> bool {
        matches!(self.inner, Inner::Aes(_))
    }

    /// Seals a secret for storage. `context` names the row and column the value
    /// is written to (for example `"location:<id>:token"`); the same context must
    /// be given to [`SecretCipher::open`].
    pub fn seal(&self, secret: &Secret, context: &str) -> Vec<u8> {
        match &self.inner {
            Inner::Plaintext => {
                let mut out = Vec::with_capacity(1 + secret.expose().len());
                out.push(SCHEME_PLAINTEXT);
                out.extend_from_slice(secret.expose().as_bytes());
                out
            }
            Inner::Aes(aes) => {
                let mut nonce = [0u8; NONCE_LEN];
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                let payload = Payload {
                    msg: secret.expose().as_bytes(),
                    aad: context.as_bytes(),
                };
                // Encryption with a valid key and nonce only fails past 64 GiB of plaintext.
                let ciphertext = aes
                    .encrypt(Nonce::from_slice(&nonce), payload)
                    .unwrap_or_default();
                let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
                out.push(SCHEME_AES256GCM);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ciphertext);
                out
            }
        }
    }

    /// Opens a value written by [`SecretCipher::seal`]. `what` names the secret in
    /// the error ("content token", "notification auth token").
    pub fn open(&self, sealed: &[u8], context: &str, what: &'static str) -> Result<Secret> {
        let Some((&scheme, rest)) = sealed.split_first() else {
            return Err(StoreError::Crypto {
                what,
                reason: "the stored value is empty",
            });
        };
        match (scheme, &self.inner) {
            (SCHEME_PLAINTEXT, Inner::Plaintext) => {
                let text = std::str::from_utf8(rest).map_err(|_| StoreError::Crypto {
                    what,
                    reason: "the stored value is not UTF-8",
                })?;
                Ok(Secret::new(text))
            }
            (SCHEME_PLAINTEXT, Inner::Aes(_)) => Err(StoreError::Crypto {
                what,
                reason: "the stored value is in clear but the store was opened with a key",
            }),
            (SCHEME_AES256GCM, Inner::Plaintext) => Err(StoreError::Crypto {
                what,
                reason: "the stored value is encrypted but the store was opened without a key",
            }),
            (SCHEME_AES256GCM, Inner::Aes(aes)) => {
                if rest.len() < NONCE_LEN + 16 {
                    return Err(StoreError::Crypto {
                        what,
                        reason: "the stored value is truncated",
                    });
                }
                let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
                let plain = Zeroizing::new(
                    aes.decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: context.as_bytes(),
                        },
                    )
                    .map_err(|_| StoreError::Crypto {
                        what,
                        reason: "wrong key, or the value was altered or moved from another row",
                    })?,
                );
                let text = std::str::from_utf8(&plain).map_err(|_| StoreError::Crypto {
                    what,
                    reason: "the decrypted value is not UTF-8",
                })?;
                Ok(Secret::new(text))
            }
            _ => Err(StoreError::Crypto {
                what,
                reason: "the stored value has an unknown format",
            }),
        }
    }
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner {
            Inner::Plaintext => f.write_str("SecretCipher(plaintext)"),
            Inner::Aes(_) => f.write_str("SecretCipher(aes-256-gcm, key redacted)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn round_trip_and_random_nonce() {
        let c = SecretCipher::from_key_bytes(&[1u8; 32]).unwrap();
        let s = Secret::new("tok-en");
        let a = c.seal(&s, "ctx");
        let b = c.seal(&s, "ctx");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.windows(6).any(|w| w == b"tok-en"));
        assert_eq!(c.open(&a, "ctx", "t").unwrap().expose(), "tok-en");
        assert_eq!(c.open(&b, "ctx", "t").unwrap().expose(), "tok-en");
    }

    #[test]
    fn wrong_key_context_or_mode_is_typed() {
        let c = SecretCipher::from_key_bytes(&[1u8; 32]).unwrap();
        let sealed = c.seal(&Secret::new("v"), "row-a");
        let wrong = SecretCipher::from_key_bytes(&[2u8; 32]).unwrap();
        let e = wrong.open(&sealed, "row-a", "content token").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Crypto);
        assert!(e.to_string().contains("content token"));
        assert_eq!(
            c.open(&sealed, "row-b", "t").unwrap_err().kind(),
            ErrorKind::Crypto
        );
        let plain = SecretCipher::plaintext();
        assert_eq!(
            plain.open(&sealed, "row-a", "t").unwrap_err().kind(),
            ErrorKind::Crypto
        );
        let clear = plain.seal(&Secret::new("v"), "row-a");
        assert_eq!(plain.open(&clear, "row-a", "t").unwrap().expose(), "v");
        assert_eq!(
            c.open(&clear, "row-a", "t").unwrap_err().kind(),
            ErrorKind::Crypto
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(c.open(&tampered, "row-a", "t").is_err());
        assert!(c.open(&[], "row-a", "t").is_err());
        assert!(c.open(&sealed[..5], "row-a", "t").is_err());
    }

    #[test]
    fn keys_from_base64() {
        let key = SecretCipher::generate_key_base64();
        let c = SecretCipher::from_base64(key.expose()).unwrap();
        assert!(c.encrypts());
        assert!(!format!("{c:?}").contains(key.expose()));
        assert_eq!(
            SecretCipher::from_base64("c2hvcnQ=").unwrap_err().kind(),
            ErrorKind::Invalid
        );
        assert!(SecretCipher::from_base64("not base64!").is_err());
        assert!(!SecretCipher::plaintext().encrypts());
    }
}
