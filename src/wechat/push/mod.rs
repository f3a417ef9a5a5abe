//! WeChat's pushes to the callback: [`PushReceiver`] checks a push as the protocol asks
//! (the query's signature and timestamp before the body, then replays, safe mode's
//! signature and decryption) and reads its meaning; below it, the XML envelope and the
//! events inside it, and [`freshness`], the replay check.
//!
//! The parser reads only the flat `<xml><Field>value</Field>…</xml>` shape WeChat sends. It
//! refuses a DOCTYPE and any entity other than XML's five and character references, so no
//! document can expand itself or reach for outside resources.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::domain::{AccountEvent, EventKind, SceneKey};

pub mod freshness;
mod receiver;

pub use receiver::{PushConfig, PushReceiver, Refusal, SignedQuery};

/// Largest push accepted: real ones are under 2 KiB.
pub const MAX_PUSH_BYTES: usize = 64 * 1024;

/// The top-level fields of a push, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Fields read from elsewhere than a push body (an import's JSON line), in their order.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Fields(pairs)
    }

    fn require(&self, name: &'static str) -> Result<&str, PushError> {
        match self.get(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(PushError::MissingField(name)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the body has a DOCTYPE, which pushes never carry")]
    Doctype,
    #[error("the body uses an entity (&{0};) other than XML's predefined ones")]
    Entity(String),
    #[error("the root element is not <xml>")]
    NotXmlRoot,
    #[error("the push has no {0}")]
    MissingField(&'static str),
    #[error("{field} is not valid: {reason}")]
    BadField {
        field: &'static str,
        reason: &'static str,
    },
}

/// Parses a push body into its top-level fields.
pub fn parse_fields(body: &[u8]) -> Result<Fields, PushError> {
    let text = std::str::from_utf8(body).map_err(|_| PushError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let mut fields = Vec::new();
    let mut depth = 0usize;
    let mut root_seen = false;
    // The field being read (a direct child of the root) and its value so far.
    let mut current: Option<(String, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| PushError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(PushError::Doctype),
            Event::Start(start) => {
                depth += 1;
                match depth {
                    1 if start.name().as_ref() == b"xml" && !root_seen => root_seen = true,
                    1 => return Err(PushError::NotXmlRoot),
                    2 => current = Some((name_of(&start)?, String::new())),
                    _ => {}
                }
            }
            Event::Empty(start) => match depth {
                0 => return Err(PushError::NotXmlRoot),
                1 => fields.push((name_of(&start)?, String::new())),
                _ => {}
            },
            Event::End(_) => {
                if depth == 2
                    && let Some(field) = current.take()
                {
                    fields.push(field);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(text) if depth == 2 => {
                let decoded = text
                    .decode()
                    .map_err(|e| PushError::Malformed(e.to_string()))?;
                push_value(&mut current, &decoded);
            }
            Event::CData(data) if depth == 2 => {
                let decoded = data
                    .decode()
                    .map_err(|e| PushError::Malformed(e.to_string()))?;
                push_value(&mut current, &decoded);
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                if depth == 2 {
                    push_value(&mut current, &resolved);
                }
            }
            Event::Text(text) if depth == 0 && !text.iter().all(u8::is_ascii_whitespace) => {
                return Err(PushError::NotXmlRoot);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || depth != 0 {
        return Err(PushError::NotXmlRoot);
    }
    Ok(Fields(fields))
}

fn name_of(start: &quick_xml::events::BytesStart<'_>) -> Result<String, PushError> {
    String::from_utf8(start.name().as_ref().to_vec()).map_err(|_| PushError::NotUtf8)
}

fn push_value(current: &mut Option<(String, String)>, text: &str) {
    if let Some((_, value)) = current {
        value.push_str(text);
    }
}

fn resolve_reference(
    reference: &quick_xml::events::BytesRef<'_>,
) -> Result<Cow<'static, str>, PushError> {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return Ok(Cow::Owned(c.to_string()));
    }
    let name = reference
        .decode()
        .map_err(|e| PushError::Malformed(e.to_string()))?;
    Ok(Cow::Borrowed(match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => return Err(PushError::Entity(other.chars().take(32).collect())),
    }))
}

/// What a push means to scene-qr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// A follow, unfollow or scan: stored.
    Event(AccountEvent),
    /// Any other message or event: acknowledged, not stored.
    Ignored { msg_type: String },
}

/// Reads the meaning of a (decrypted) push.
pub fn interpret(fields: &Fields) -> Result<Push, PushError> {
    let msg_type = fields.require("MsgType")?;
    if msg_type != "event" {
        return Ok(Push::Ignored {
            msg_type: msg_type.chars().take(32).collect(),
        });
    }
    let kind = match fields.require("Event")? {
        "subscribe" => EventKind::Subscribe,
        "SCAN" => EventKind::Scan,
        "unsubscribe" => EventKind::Unsubscribe,
        other => {
            return Ok(Push::Ignored {
                msg_type: format!("event/{}", other.chars().take(32).collect::<String>()),
            });
        }
    };
    let openid = fields.require("FromUserName")?;
    if openid.chars().count() > 128 {
        return Err(PushError::BadField {
            field: "FromUserName",
            reason: "longer than any openid",
        });
    }
    let created_at = fields
        .require("CreateTime")?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or(PushError::BadField {
            field: "CreateTime",
            reason: "not Unix seconds",
        })?;
    let event_key = fields.get("EventKey").unwrap_or_default();
    let scene_text = match kind {
        // Strip the prefix once, and only here: a scene_str may itself contain `qrscene_`,
        // and a plain follow may carry an unrelated key.
        EventKind::Subscribe => event_key.strip_prefix("qrscene_").filter(|s| !s.is_empty()),
        EventKind::Scan => Some(fields.require("EventKey")?),
        EventKind::Unsubscribe => None,
    };
    let scene = scene_text.and_then(|text| scene_of(kind, text));
    Ok(Push::Event(AccountEvent {
        kind,
        openid: openid.to_string(),
        created_at,
        event_key: event_key.to_string(),
        scene,
        ticket: fields
            .get("Ticket")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    }))
}

/// The scene a key names, when it is one. WeChat issues no scene that breaks [`SceneKey`]'s
/// rule (too long, or with a control character), but a code made elsewhere (or a change
/// upstream) could bring one.
/// Such a push is still a real follow or scan: refusing it would make WeChat retry it and
/// then drop it, and with it a follow the totals should count. Cutting the key to a valid
/// length could merge it with another scene, and keeping it as it is would make a scene no
/// page, label or query can name. So the event is stored, with its whole `event_key` (the
/// callback's body limit bounds it), and with no scene: a follow counts with the follows
/// not from a code, a scan in no scene's numbers, and the key stays there to be counted
/// again if it ever matters.
fn scene_of(kind: EventKind, text: &str) -> Option<SceneKey> {
    match SceneKey::parse(text) {
        Ok(scene) => Some(scene),
        Err(invalid) => {
            log::warn!(
                "a {} push's EventKey names no scene ({invalid}): the event keeps none",
                kind.as_str()
            );
            None
        }
    }
}

/// Builds a push body (for the emulator and the tests): `fields` as CDATA or numbers.
pub fn to_xml(fields: &[(&str, &str)]) -> String {
    let mut xml = String::from("<xml>");
    for (name, value) in fields {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && *name == "CreateTime" {
            xml.push_str(&format!("<{name}>{value}</{name}>"));
        } else {
            // `]]>` cannot stand inside CDATA: split it across two sections.
            let safe = value.replace("]]>", "]]]]><![CDATA[>");
            xml.push_str(&format!("<{name}><![CDATA[{safe}]]></{name}>"));
        }
    }
    xml.push_str("</xml>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBSCRIBE: &str = "<xml>\n<ToUserName><![CDATA[gh_45072270791c]]></ToUserName>\n\
        <FromUserName><![CDATA[o7Lp5t6n59DeX3U0C7Kric9qEx-Q]]></FromUserName>\n\
        <CreateTime>1389684286</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n\
        <Event><![CDATA[subscribe]]></Event>\n<EventKey><![CDATA[qrscene_1000]]></EventKey>\n\
        <Ticket><![CDATA[gQHi8DoAAAAAAAAAASxodHRw==]]></Ticket>\n</xml>";

    fn event(xml: &str) -> AccountEvent {
        match interpret(&parse_fields(xml.as_bytes()).unwrap()).unwrap() {
            Push::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn the_reference_subscribe_push_is_a_new_follower_from_scene_1000() {
        let e = event(SUBSCRIBE);
        assert_eq!(e.kind, EventKind::Subscribe);
        assert_eq!(e.scene.as_deref(), Some("1000"));
        assert_eq!(e.openid, "o7Lp5t6n59DeX3U0C7Kric9qEx-Q");
        assert_eq!(e.created_at, 1389684286);
        assert_eq!(e.ticket.as_deref(), Some("gQHi8DoAAAAAAAAAASxodHRw=="));
        assert!(e.is_new_follower());
    }

    #[test]
    fn a_scan_keeps_its_key_whole_even_when_it_looks_prefixed() {
        let xml = to_xml(&[
            ("FromUserName", "o1"),
            ("CreateTime", "1"),
            ("MsgType", "event"),
            ("Event", "SCAN"),
            ("EventKey", "qrscene_x"),
        ]);
        assert_eq!(event(&xml).scene.as_deref(), Some("qrscene_x"));
    }

    #[test]
    fn the_prefix_is_stripped_once_only() {
        let xml = to_xml(&[
            ("FromUserName", "o1"),
            ("CreateTime", "1"),
            ("MsgType", "event"),
            ("Event", "subscribe"),
            ("EventKey", "qrscene_qrscene_7"),
        ]);
        assert_eq!(event(&xml).scene.as_deref(), Some("qrscene_7"));
    }

    #[test]
    fn a_plain_follow_and_an_unfollow_have_no_scene() {
        for (name, key) in [
            ("subscribe", ""),
            ("subscribe", "last_trade_no_4"),
            ("unsubscribe", ""),
        ] {
            let xml = to_xml(&[
                ("FromUserName", "o1"),
                ("CreateTime", "1"),
                ("MsgType", "event"),
                ("Event", name),
                ("EventKey", key),
            ]);
            let e = event(&xml);
            assert_eq!(e.scene, None, "{name} {key}");
            assert!(!e.is_new_follower());
        }
    }

    #[test]
    fn a_key_that_is_no_scene_is_kept_whole_on_an_event_with_no_scene() {
        let over_64 = "a".repeat(65);
        let over_128 = "b".repeat(200);
        for (name, key) in [
            ("SCAN", over_64.clone()),
            ("SCAN", "line\nbreak".to_string()),
            ("subscribe", format!("qrscene_{over_64}")),
            ("subscribe", format!("qrscene_{over_128}")),
        ] {
            let xml = to_xml(&[
                ("FromUserName", "o1"),
                ("CreateTime", "1"),
                ("MsgType", "event"),
                ("Event", name),
                ("EventKey", &key),
            ]);

            let e = event(&xml);

            assert_eq!(e.scene, None, "{name} {key}");
            assert_eq!(e.event_key, key);
            assert!(!e.is_new_follower());
        }
    }

    #[test]
    fn a_key_of_64_characters_is_a_scene() {
        let sixty_four = "码".repeat(64);
        let xml = to_xml(&[
            ("FromUserName", "o1"),
            ("CreateTime", "1"),
            ("MsgType", "event"),
            ("Event", "subscribe"),
            ("EventKey", &format!("qrscene_{sixty_four}")),
        ]);

        let e = event(&xml);

        assert_eq!(e.scene.as_deref(), Some(sixty_four.as_str()));
        assert!(e.is_new_follower());
    }

    #[test]
    fn other_messages_are_ignored() {
        let text = to_xml(&[
            ("FromUserName", "o1"),
            ("CreateTime", "1"),
            ("MsgType", "text"),
            ("Content", "hi"),
        ]);
        let click = to_xml(&[
            ("FromUserName", "o1"),
            ("CreateTime", "1"),
            ("MsgType", "event"),
            ("Event", "CLICK"),
        ]);
        for xml in [text, click] {
            assert!(matches!(
                interpret(&parse_fields(xml.as_bytes()).unwrap()),
                Ok(Push::Ignored { .. })
            ));
        }
    }

    #[test]
    fn missing_fields_are_named() {
        let xml = to_xml(&[
            ("CreateTime", "1"),
            ("MsgType", "event"),
            ("Event", "SCAN"),
            ("EventKey", "5"),
        ]);
        assert_eq!(
            interpret(&parse_fields(xml.as_bytes()).unwrap()),
            Err(PushError::MissingField("FromUserName"))
        );
    }

    #[test]
    fn doctypes_and_custom_entities_are_refused() {
        let doctype = r#"<!DOCTYPE xml [<!ENTITY x "boom">]><xml><MsgType>&x;</MsgType></xml>"#;
        assert_eq!(parse_fields(doctype.as_bytes()), Err(PushError::Doctype));
        let entity = "<xml><MsgType>&x;</MsgType></xml>";
        assert_eq!(
            parse_fields(entity.as_bytes()),
            Err(PushError::Entity("x".into()))
        );
        let predefined = "<xml><MsgType>a&amp;b&#65;</MsgType></xml>";
        assert_eq!(
            parse_fields(predefined.as_bytes()).unwrap().get("MsgType"),
            Some("a&bA")
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for body in [
            "",
            "not xml",
            "<xml>",
            "<xml><a></b></xml>",
            "<root><a>1</a></root>",
            "<xml/><xml/>",
        ] {
            assert!(parse_fields(body.as_bytes()).is_err(), "{body}");
        }
        assert!(parse_fields(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn cdata_survives_a_round_trip_even_with_its_terminator_inside() {
        let xml = to_xml(&[("EventKey", "a]]>b<c>&")]);
        assert_eq!(
            parse_fields(xml.as_bytes()).unwrap().get("EventKey"),
            Some("a]]>b<c>&")
        );
    }
}
