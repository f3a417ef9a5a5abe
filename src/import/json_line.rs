//! One line of an import: a JSON object of a push's fields, named as WeChat names them,
//! read into the push's [`Fields`] and interpreted by the callback's own [`interpret`].
//!
//! Values are text or numbers (a number stands for its digits, as `CreateTime` is written
//! in the push's XML); `null` is a field left out. `MsgType` may be left out: the lines
//! are events, and without it every line would repeat `"MsgType": "event"`. A line that
//! gives it is read as given, so a `text` message is ignored, as the callback ignores it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::domain::AccountEvent;
use crate::wechat::push::{Fields, Push, interpret};

/// What a line means.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    Event(AccountEvent),
    /// A message or event that the callback acknowledges without storing: its type.
    Ignored(String),
    /// Why the line is not an event.
    Rejected(String),
}

pub fn read(line: &[u8]) -> Reading {
    let Ok(text) = std::str::from_utf8(line) else {
        return Reading::Rejected("not UTF-8 text".into());
    };
    let mut pairs = match serde_json::from_str::<PushObject>(text) {
        Ok(PushObject::Fields(pairs)) => pairs,
        Ok(PushObject::NotFlat(reason)) => return Reading::Rejected(reason),
        Err(e) => return Reading::Rejected(json_error(&e)),
    };
    if !pairs.iter().any(|(name, _)| name == "MsgType") {
        pairs.push(("MsgType".into(), "event".into()));
    }
    match interpret(&Fields::from_pairs(pairs)) {
        Ok(Push::Event(event)) => Reading::Event(event),
        Ok(Push::Ignored { msg_type }) => Reading::Ignored(msg_type),
        Err(e) => Reading::Rejected(e.to_string()),
    }
}

/// serde_json's message with the column, without "line 1" (every input is one line).
fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let location = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&location).unwrap_or(&message);
    format!(
        "not a JSON object of push fields: {message} (column {})",
        e.column()
    )
}

/// A line's object: its fields in order, or why it is not a flat object of text and
/// numbers.
enum PushObject {
    Fields(Vec<(String, String)>),
    NotFlat(String),
}

impl<'de> Deserialize<'de> for PushObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = PushObject;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PushObject, A::Error> {
        // The push fields are seven at most; room for them and the MsgType added.
        let mut pairs = Vec::with_capacity(8);
        let mut not_flat = None;
        while let Some(name) = map.next_key::<String>()? {
            match map.next_value::<FieldValue>()? {
                FieldValue::Text(value) => pairs.push((name, value)),
                FieldValue::Absent => {}
                FieldValue::Other(kind) => {
                    not_flat.get_or_insert_with(|| {
                        format!("{name} is {kind}; push fields are text or numbers")
                    });
                }
            }
        }
        Ok(match not_flat {
            Some(reason) => PushObject::NotFlat(reason),
            None => PushObject::Fields(pairs),
        })
    }
}

/// One field's value.
enum FieldValue {
    Text(String),
    /// `null`.
    Absent,
    /// A boolean, list or object: what it is.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = FieldValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text or a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
        Ok(FieldValue::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
        Ok(FieldValue::Text(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldValue, E> {
        Ok(FieldValue::Text(itoa::Buffer::new().format(v).to_owned()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldValue, E> {
        Ok(FieldValue::Text(itoa::Buffer::new().format(v).to_owned()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FieldValue, E> {
        // Debug keeps the fraction (`1389684286.0`), so a time with one is refused as
        // the same text in a push would be, not rounded into whole seconds.
        Ok(FieldValue::Text(format!("{v:?}")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
        Ok(FieldValue::Absent)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<FieldValue, E> {
        Ok(FieldValue::Other("true or false"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FieldValue::Other("a list"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FieldValue::Other("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventKind;

    const SUBSCRIBE: &str = r#"{"ToUserName": "gh_45072270791c", "FromUserName": "o7Lp5t6n59DeX3U0C7Kric9qEx-Q", "CreateTime": 1389684286, "Event": "subscribe", "EventKey": "qrscene_1000", "Ticket": "gQHi8DoAAAAAAAAAASxodHRw=="}"#;

    fn rejected(line: &str) -> String {
        match read(line.as_bytes()) {
            Reading::Rejected(reason) => reason,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn the_reference_subscribe_line_is_a_new_follower_from_scene_1000() {
        let Reading::Event(event) = read(SUBSCRIBE.as_bytes()) else {
            panic!("not an event");
        };

        assert_eq!(event.kind, EventKind::Subscribe);
        assert_eq!(event.scene.as_deref(), Some("1000"));
        assert_eq!(event.openid, "o7Lp5t6n59DeX3U0C7Kric9qEx-Q");
        assert_eq!(event.created_at, 1389684286);
        assert_eq!(event.ticket.as_deref(), Some("gQHi8DoAAAAAAAAAASxodHRw=="));
    }

    #[test]
    fn a_line_means_what_the_same_push_means() {
        let xml = crate::wechat::push::to_xml(&[
            ("ToUserName", "gh_45072270791c"),
            ("FromUserName", "o1"),
            ("CreateTime", "1389684286"),
            ("MsgType", "event"),
            ("Event", "SCAN"),
            ("EventKey", "qrscene_x"),
        ]);
        let pushed = crate::wechat::push::parse_fields(xml.as_bytes())
            .and_then(|fields| interpret(&fields))
            .unwrap();
        let line = r#"{"ToUserName":"gh_45072270791c","FromUserName":"o1","CreateTime":"1389684286","Event":"SCAN","EventKey":"qrscene_x"}"#;

        assert_eq!(
            Push::Event(match read(line.as_bytes()) {
                Reading::Event(event) => event,
                other => panic!("{other:?}"),
            }),
            pushed
        );
    }

    #[test]
    fn a_time_with_a_fraction_or_below_zero_is_refused() {
        for time in ["1389684286.0", "1.4e9", "-1", "18446744073709551615"] {
            let line =
                format!(r#"{{"FromUserName":"o1","CreateTime":{time},"Event":"unsubscribe"}}"#);
            assert_eq!(
                rejected(&line),
                "CreateTime is not valid: not Unix seconds",
                "{time}"
            );
        }
    }

    #[test]
    fn other_messages_and_events_are_ignored_as_the_callback_ignores_them() {
        assert_eq!(
            read(br#"{"FromUserName":"o1","CreateTime":1,"Event":"CLICK"}"#),
            Reading::Ignored("event/CLICK".into())
        );
        assert_eq!(
            read(br#"{"FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"hi"}"#),
            Reading::Ignored("text".into())
        );
    }

    #[test]
    fn what_is_wrong_with_a_line_is_said_plainly() {
        assert_eq!(
            rejected(r#"{"CreateTime":1,"Event":"SCAN","EventKey":"5"}"#),
            "the push has no FromUserName"
        );
        assert_eq!(
            rejected(r#"{"FromUserName":"o1","CreateTime":1,"Event":"SCAN","EventKey":["5"]}"#),
            "EventKey is a list; push fields are text or numbers"
        );
        assert_eq!(
            rejected(r#"{"FromUserName":"o1","CreateTime":1,"Event":"subscribe""#),
            "not a JSON object of push fields: EOF while parsing an object (column 55)"
        );
        assert_eq!(
            rejected("[1]"),
            "not a JSON object of push fields: invalid type: sequence, expected an object (column 0)"
        );
        assert_eq!(
            read(&[b'{', 0xff, b'}']),
            Reading::Rejected("not UTF-8 text".into())
        );
        let long = format!(
            r#"{{"FromUserName":"{}","CreateTime":1,"Event":"unsubscribe"}}"#,
            "o".repeat(129)
        );
        assert_eq!(
            rejected(&long),
            "FromUserName is not valid: longer than any openid"
        );
    }

    #[test]
    fn null_is_a_field_left_out() {
        let line =
            r#"{"FromUserName":"o1","CreateTime":1,"Event":"SCAN","EventKey":"7","Ticket":null}"#;
        let Reading::Event(event) = read(line.as_bytes()) else {
            panic!("not an event");
        };
        assert_eq!(event.ticket, None);
    }
}
