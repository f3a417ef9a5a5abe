//! Safe-mode message crypto, as the reference describes it.
//!
//! AES key = base64-decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with the first 16
//! bytes of the key as IV; PKCS#7 padding to a 32-byte block. Plaintext = 16 random bytes,
//! the message length as 4 bytes big-endian, the message, the AppID.

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::alphabet::STANDARD as STANDARD_ALPHABET;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// WeChat pads to 32 bytes, not to the AES block size of 16.
const PAD_BLOCK: usize = 32;

/// Decodes the EncodingAESKey. Its 43rd character carries 2 bits that do not fit in 32
/// bytes; WeChat's keys do not keep them zero, so a strict decoder would refuse real keys.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD_ALPHABET,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

type Decryptor = cbc::Decryptor<Aes256>;
type Encryptor = cbc::Encryptor<Aes256>;

/// The 32-byte key derived from an EncodingAESKey. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("Encrypt is not valid base64")]
    Base64,
    #[error("Encrypt is not a whole number of AES blocks")]
    Length,
    #[error("Encrypt does not decrypt to a well-padded message")]
    Padding,
    #[error("the decrypted message is malformed")]
    Malformed,
    #[error("the message is for another AppID")]
    WrongAppId,
}

impl AesKey {
    /// Parses an EncodingAESKey: 43 characters of base64.
    pub fn from_encoding_aes_key(text: &str) -> Option<Self> {
        if text.len() != 43 {
            return None;
        }
        let bytes = KEY_BASE64.decode(format!("{text}=")).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The EncodingAESKey of this key, to check the round trip.
    #[cfg(test)]
    fn to_encoding_aes_key(&self) -> String {
        STANDARD.encode(self.0).trim_end_matches('=').to_string()
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }

    /// Decrypts the `Encrypt` field and returns the inner XML, if it is for `appid`.
    pub fn decrypt(&self, encrypted: &str, appid: &str) -> Result<String, CryptoError> {
        let mut buffer = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::Base64)?;
        if buffer.is_empty() || buffer.len() % 16 != 0 {
            return Err(CryptoError::Length);
        }
        let plain = Decryptor::new(&self.0.into(), &self.iv().into())
            .decrypt_padded_mut::<NoPadding>(&mut buffer)
            .map_err(|_| CryptoError::Length)?;
        let pad = usize::from(*plain.last().ok_or(CryptoError::Padding)?);
        if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
            return Err(CryptoError::Padding);
        }
        let (content, padding) = plain.split_at(plain.len() - pad);
        if padding.iter().any(|&b| usize::from(b) != pad) {
            return Err(CryptoError::Padding);
        }
        let rest = content.get(16..).ok_or(CryptoError::Malformed)?;
        let length_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(CryptoError::Malformed)?;
        let length = u32::from_be_bytes(length_bytes) as usize;
        let message = rest.get(4..4 + length).ok_or(CryptoError::Malformed)?;
        let their_appid = &rest[4 + length..];
        if their_appid != appid.as_bytes() {
            return Err(CryptoError::WrongAppId);
        }
        String::from_utf8(message.to_vec()).map_err(|_| CryptoError::Malformed)
    }

    /// Encrypts `message` for `appid` with the given 16 random bytes, as WeChat does.
    pub fn encrypt(&self, message: &str, appid: &str, random: [u8; 16]) -> String {
        let mut plain = Vec::with_capacity(16 + 4 + message.len() + appid.len() + PAD_BLOCK);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(appid.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let length = plain.len();
        let encrypted = Encryptor::new(&self.0.into(), &self.iv().into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, length)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        STANDARD.encode(encrypted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample EncodingAESKey of WeChat's documentation. Its last character carries
    /// non-zero spare bits.
    const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const SAMPLE_APPID: &str = "wxb11529c136998cb6";
    const SAMPLE_MESSAGE: &str = "<xml><ToUserName><![CDATA[gh_45072270791c]]></ToUserName><Event><![CDATA[SCAN]]></Event></xml>";
    /// Computed independently of this module, with Python's `cryptography` package:
    /// AES-256-CBC(key, iv=key[:16]) of b"0123456789abcdef" + len + message + appid,
    /// PKCS#7-padded to 32 bytes.
    const SAMPLE_ENCRYPTED: &str = "Q3stYC6hdFzMh9T8HCvyDGUHUwJY2LNTPNLYr3wfZkzuuJoH1PFd1Fzy5/GIDoTYNK7yUqoGKyWaVk6dTAXRmCSFj+wLZTcTu05U0ZR00Yf4fzpi9wQUSAspWNdGcU+lWZUi3TwiuXFkOZNtNsLssyQMHjlm7WMfBFxCWdr9mqqgQ0j4mPYrM6XrjgVn2MnNptdiWqVvDDoHUnuUfakWBg==";

    fn key() -> AesKey {
        AesKey::from_encoding_aes_key(SAMPLE_KEY).expect("the sample key parses")
    }

    #[test]
    fn an_independently_encrypted_message_decrypts() {
        assert_eq!(
            key().decrypt(SAMPLE_ENCRYPTED, SAMPLE_APPID).unwrap(),
            SAMPLE_MESSAGE
        );
    }

    #[test]
    fn encryption_matches_the_independent_vector() {
        assert_eq!(
            key().encrypt(SAMPLE_MESSAGE, SAMPLE_APPID, *b"0123456789abcdef"),
            SAMPLE_ENCRYPTED
        );
    }

    #[test]
    fn a_message_for_another_appid_is_refused() {
        assert_eq!(
            key().decrypt(SAMPLE_ENCRYPTED, "wx0000000000000000"),
            Err(CryptoError::WrongAppId)
        );
    }

    #[test]
    fn a_key_is_43_characters_of_base64() {
        assert!(AesKey::from_encoding_aes_key(&SAMPLE_KEY[1..]).is_none());
        assert!(AesKey::from_encoding_aes_key(&format!("{}!", &SAMPLE_KEY[1..])).is_none());
        assert_eq!(key().to_encoding_aes_key().len(), 43);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            "",
            "!!!",
            "AAAA",
            "AAAAAAAAAAAAAAAAAAAAAA==",
            &SAMPLE_ENCRYPTED[4..],
        ] {
            assert!(key().decrypt(input, SAMPLE_APPID).is_err(), "{input}");
        }
    }
}
