//! Fuzzes what the callback does with a push body: parse the XML, read the event, and
//! in safe mode decrypt the `Encrypt` field and parse what it holds. Any input must end
//! in a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scene_qr::wechat::crypto::AesKey;
use scene_qr::wechat::push::{interpret, parse_fields};

fuzz_target!(|body: &[u8]| {
    let Ok(fields) = parse_fields(body) else { return };
    let _ = interpret(&fields);
    if let Some(encrypted) = fields.get("Encrypt") {
        let key = AesKey::from_bytes([7; 32]);
        if let Ok(inner) = key.decrypt(encrypted, "wx0123456789abcdef") {
            if let Ok(fields) = parse_fields(inner.as_bytes()) {
                let _ = interpret(&fields);
            }
        }
    }
});
