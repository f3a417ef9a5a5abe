//! Property tests: the parsers that face untrusted input answer every input with a value
//! or an error, never a panic, and what they accept is what the rules allow.

use proptest::prelude::*;
use scene_qr::domain::{CodeRequest, Kind, Lifetime, Scene};
use scene_qr::wechat::crypto::AesKey;
use scene_qr::wechat::push::{Push, interpret, parse_fields, to_xml};

fn default_lifetime() -> Lifetime {
    Lifetime::new(604_800).unwrap()
}

/// Query strings built from the names and kinds of values the routes see, and noise.
fn query_strategy() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("scene_id".to_string()),
        Just("scene_str".to_string()),
        Just("permanent".to_string()),
        Just("expire_seconds".to_string()),
        "[a-z_%&=+]{0,12}",
    ];
    let value = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("true".to_string()),
        Just("0".to_string()),
        ".{0,80}",
        "(%[0-9A-Fa-f]{2}|[a-z+]){0,30}",
    ];
    prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn any_query_is_a_valid_code_or_an_error(query in query_strategy()) {
        if let Ok(code) = CodeRequest::from_query(&query, default_lifetime()) {
            match (&code.scene, code.kind) {
                (Scene::Id(id), Kind::Permanent) => prop_assert!(id.get() <= 100_000),
                (Scene::Str(s), _) => {
                    let chars = s.as_str().chars().count();
                    prop_assert!((1..=64).contains(&chars));
                }
                (Scene::Id(_), Kind::Temporary(lifetime)) => {
                    prop_assert!((60..=2_592_000).contains(&lifetime.seconds()));
                }
            }
            // The canonical form of a valid code parses back to itself.
            prop_assert_eq!(CodeRequest::from_query(&code.query_string(), default_lifetime()), Ok(code));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_query_parser(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = CodeRequest::from_query(&String::from_utf8_lossy(&bytes), default_lifetime());
    }

    #[test]
    fn arbitrary_bytes_are_an_error_or_fields_for_the_push_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(fields) = parse_fields(&bytes) {
            let _ = interpret(&fields);
        }
    }

    #[test]
    fn xml_like_text_never_panics_the_push_parser(body in "(<[a-zA-Z/!?\\[]{0,8}|[a-zA-Z0-9 ]{0,8}|&[a-z#0-9]{0,6};?|>|\\]\\]>|<!\\[CDATA\\[){0,40}") {
        if let Ok(fields) = parse_fields(body.as_bytes()) {
            let _ = interpret(&fields);
        }
    }

    #[test]
    fn any_scan_written_as_xml_reads_back_as_the_same_event(
        openid in "[a-zA-Z0-9_-]{1,40}",
        scene in "[^\\p{Cc} ][^\\p{Cc}]{0,63}",
        created in 0i64..4_000_000_000,
        new_follower in any::<bool>(),
    ) {
        let (event, key) = if new_follower { ("subscribe", format!("qrscene_{scene}")) } else { ("SCAN", scene.clone()) };
        let created_text = created.to_string();
        let xml = to_xml(&[("FromUserName", &openid), ("CreateTime", &created_text), ("MsgType", "event"), ("Event", event), ("EventKey", &key)]);
        let fields = parse_fields(xml.as_bytes()).unwrap();
        match interpret(&fields).unwrap() {
            Push::Event(e) => {
                prop_assert_eq!(e.scene.as_deref(), Some(scene.as_str()));
                prop_assert_eq!(&e.openid, &openid);
                prop_assert_eq!(e.created_at, created);
                prop_assert_eq!(e.is_new_follower(), new_follower);
            }
            other => prop_assert!(false, "not an event: {:?}", other),
        }
    }

    #[test]
    fn a_scan_whose_key_is_no_scene_reads_back_whole_with_no_scene(
        key in prop_oneof!["[^\\p{Cc}]{65,300}", "[a-z]{0,10}\\p{Cc}[a-z]{0,10}"]
            .prop_filter("SCAN requires a key that is not blank", |k| !k.trim().is_empty()),
    ) {
        let xml = to_xml(&[("FromUserName", "o1"), ("CreateTime", "1"), ("MsgType", "event"), ("Event", "SCAN"), ("EventKey", &key)]);
        let fields = parse_fields(xml.as_bytes()).unwrap();
        match interpret(&fields).unwrap() {
            Push::Event(e) => {
                prop_assert_eq!(e.scene, None);
                prop_assert_eq!(e.event_key, key);
            }
            other => prop_assert!(false, "not an event: {:?}", other),
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_decryptor(key in any::<[u8; 32]>(), text in ".{0,300}", bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let key = AesKey::from_bytes(key);
        let _ = key.decrypt(&text, "wx0123456789abcdef");
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = key.decrypt(&encoded, "wx0123456789abcdef");
    }

    #[test]
    fn encryption_round_trips(key in any::<[u8; 32]>(), message in ".{0,500}", appid in "wx[0-9a-f]{16}", random in any::<[u8; 16]>()) {
        let key = AesKey::from_bytes(key);
        let encrypted = key.encrypt(&message, &appid, random);
        prop_assert_eq!(key.decrypt(&encrypted, &appid), Ok(message));
        prop_assert!(key.decrypt(&encrypted, "wx0000000000000000").is_err() || appid == "wx0000000000000000");
    }

    #[test]
    fn any_encoding_aes_key_of_43_base64_characters_is_a_key(text in "[A-Za-z0-9+/]{43}") {
        let key = AesKey::from_encoding_aes_key(&text);
        prop_assert!(key.is_some());
    }
}
