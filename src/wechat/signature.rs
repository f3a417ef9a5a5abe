//! Signatures of WeChat's pushes: `hex(sha1(concat(sort(parts))))`.
//!
//! The handshake and plaintext pushes sign `[Token, timestamp, nonce]`; safe-mode pushes
//! sign `[Token, timestamp, nonce, Encrypt]` as `msg_signature`.

use sha1::{Digest, Sha1};

/// The signature of `parts`, as WeChat computes it.
pub fn sign(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether `signature` (hex, any case) signs `parts`. Compares in constant time, so the
/// answer's timing says nothing about how much of a forged signature was right.
pub fn verify(signature: &str, parts: &[&str]) -> bool {
    let expected = sign(parts);
    let given = signature.to_ascii_lowercase();
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_sha1_of_the_sorted_parts() {
        // Computed independently: `printf %s 1409304348xxxxxxxxxxxxxx | sha1sum`.
        assert_eq!(
            sign(&["xxxxxx", "1409304348", "xxxxxxxx"]),
            "7f3d94ab7d618ef1e310f465483726d155c697d0"
        );
    }

    #[test]
    fn verification_accepts_any_case_and_refuses_any_change() {
        let signature = "7F3D94AB7D618EF1E310F465483726D155C697D0";
        assert!(verify(signature, &["1409304348", "xxxxxx", "xxxxxxxx"]));
        assert!(!verify(signature, &["1409304349", "xxxxxx", "xxxxxxxx"]));
        assert!(!verify("", &["a"]));
    }
}
