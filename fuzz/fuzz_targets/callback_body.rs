//! Fuzzes what the callback does with a push body: the receiver the route calls (replay
//! check, XML, the event) on a correctly signed plaintext query, and in safe mode the
//! decryption of the `Encrypt` field and what it holds. Any input must end in a value or an
//! error, never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scene_qr::secret::Secret;
use scene_qr::wechat::crypto::AesKey;
use scene_qr::wechat::push::{PushConfig, PushReceiver, interpret, parse_fields};
use scene_qr::wechat::signature::sign;

const TOKEN: &str = "fuzztoken";
const APPID: &str = "wx0123456789abcdef";

/// With no replay window, so every input is read, not refused as a replay.
static RECEIVER: LazyLock<PushReceiver> = LazyLock::new(|| {
    PushReceiver::new(
        PushConfig {
            token: Secret::new(TOKEN),
            aes_key: Some(AesKey::from_bytes([7; 32])),
            appid: APPID.into(),
        },
        0,
    )
});

fuzz_target!(|body: &[u8]| {
    let query = format!("signature={}&timestamp=1&nonce=n", sign(&[TOKEN, "1", "n"]));
    if let Ok(signed) = RECEIVER.admit(&query, 1) {
        let _ = RECEIVER.open(&signed, body);
    }
    let Ok(fields) = parse_fields(body) else { return };
    if let Some(encrypted) = fields.get("Encrypt") {
        if let Ok(inner) = AesKey::from_bytes([7; 32]).decrypt(encrypted, APPID) {
            if let Ok(fields) = parse_fields(inner.as_bytes()) {
                let _ = interpret(&fields);
            }
        }
    }
});
