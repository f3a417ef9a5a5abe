//! What staff set on a scene: a label naming it ("Shop 12 counter poster") and the group it
//! belongs to, a channel of several scenes counted together ("East region"). Both come in
//! through the forms and `PUT /api/scenes/{scene}`, and are checked here once.

use serde::Deserialize;

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Longest group name, in characters: it heads a table row and fills a select box.
pub const MAX_GROUP_CHARS: usize = 50;

/// A scene's label: trimmed, 1 to [`MAX_LABEL_CHARS`] characters, no control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneLabel(String);

impl SceneLabel {
    /// Reads a label as staff typed it; `None` for text that is empty once trimmed, which
    /// removes the label.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidSetting> {
        one_line("label", raw, MAX_LABEL_CHARS).map(|text| text.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's name: trimmed, 1 to [`MAX_GROUP_CHARS`] characters, no control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    /// Reads a group name as staff typed it; `None` for text that is empty once trimmed
    /// (no group).
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidSetting> {
        one_line("group", raw, MAX_GROUP_CHARS).map(|text| text.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for GroupName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// `raw` trimmed, if it is one line of at most `max` characters; `None` when empty.
fn one_line(field: &'static str, raw: &str, max: usize) -> Result<Option<String>, InvalidSetting> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars > max {
        return Err(InvalidSetting::TooLong { field, chars, max });
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidSetting::Control { field });
    }
    Ok((chars > 0).then(|| text.to_string()))
}

/// Why a label or group name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSetting {
    #[error("the {field} has {chars} characters: at most {max}")]
    TooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("the {field} contains a control character (a line break, say): use one line of text")]
    Control { field: &'static str },
}

/// What a save does to one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Leaves it as it is.
    Keep,
    Remove,
    Set(T),
}

impl<T> Change<T> {
    /// `Set` for a value, `Remove` for none.
    pub fn to(value: Option<T>) -> Self {
        value.map_or(Change::Remove, Change::Set)
    }
}

/// A change to a scene's settings, from a form or `PUT /api/scenes/{scene}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsChange {
    pub label: Change<SceneLabel>,
    pub group: Change<GroupName>,
}

/// Why a settings body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSettings {
    #[error("the body is not a settings object: {0}")]
    NotJson(String),
    #[error("the body names neither label nor group: nothing to change")]
    Nothing,
    #[error("{0}")]
    Setting(#[from] InvalidSetting),
}

impl InvalidSettings {
    pub const ALLOWED: &'static str = "A JSON object with label, group or both, each a string \
        or null: {\"label\": \"Shop 12 counter poster\", \"group\": \"East region\"}. A label \
        has up to 100 characters, a group name 1 to 50, both one line of text, trimmed; null or \
        an empty string removes it, and a field left out stays as it is. No other fields.";
}

/// The body of `PUT /api/scenes/{scene}`. A field left out is `None`; a field given as
/// `null` is `Some(None)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default, deserialize_with = "given")]
    label: Option<Option<String>>,
    #[serde(default, deserialize_with = "given")]
    group: Option<Option<String>>,
}

/// Tells a field given as `null` from one left out (which `default` makes `None`).
fn given<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

impl SettingsChange {
    /// Reads the JSON body of `PUT /api/scenes/{scene}`.
    pub fn from_json(body: &[u8]) -> Result<Self, InvalidSettings> {
        let body: SettingsBody =
            serde_json::from_slice(body).map_err(|e| InvalidSettings::NotJson(e.to_string()))?;
        if body.label.is_none() && body.group.is_none() {
            return Err(InvalidSettings::Nothing);
        }
        let label = match body.label {
            None => Change::Keep,
            Some(text) => Change::to(SceneLabel::parse(text.as_deref().unwrap_or_default())?),
        };
        let group = match body.group {
            None => Change::Keep,
            Some(text) => Change::to(GroupName::parse(text.as_deref().unwrap_or_default())?),
        };
        Ok(Self { label, group })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_name_is_trimmed_and_has_one_to_fifty_characters() {
        let fifty = "东".repeat(50);

        assert_eq!(
            GroupName::parse("  East region ")
                .unwrap()
                .unwrap()
                .as_str(),
            "East region"
        );
        assert_eq!(GroupName::parse(&fifty).unwrap().unwrap().as_str(), fifty);
        assert_eq!(
            GroupName::parse(&"a".repeat(51)),
            Err(InvalidSetting::TooLong {
                field: "group",
                chars: 51,
                max: 50
            })
        );
    }

    #[test]
    fn an_empty_or_blank_name_is_no_name() {
        assert_eq!(GroupName::parse(""), Ok(None));
        assert_eq!(GroupName::parse("   "), Ok(None));
        assert_eq!(SceneLabel::parse(" "), Ok(None));
    }

    #[test]
    fn a_line_break_inside_a_name_is_refused() {
        assert_eq!(
            GroupName::parse("East\nregion"),
            Err(InvalidSetting::Control { field: "group" })
        );
        assert_eq!(
            SceneLabel::parse("a\u{7}b"),
            Err(InvalidSetting::Control { field: "label" })
        );
    }

    #[test]
    fn a_label_has_up_to_a_hundred_characters() {
        assert!(SceneLabel::parse(&"x".repeat(100)).unwrap().is_some());
        assert!(SceneLabel::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn a_field_left_out_is_kept_and_a_null_one_removed() {
        let change = SettingsChange::from_json(br#"{"group": null}"#).unwrap();

        assert_eq!(change.label, Change::Keep);
        assert_eq!(change.group, Change::Remove);
    }

    #[test]
    fn both_fields_set_both() {
        let change =
            SettingsChange::from_json(br#"{"label": " Door ", "group": "East region"}"#).unwrap();

        assert_eq!(
            change.label,
            Change::Set(SceneLabel("Door".into())),
            "trimmed"
        );
        assert_eq!(change.group, Change::Set(GroupName("East region".into())));
    }

    #[test]
    fn a_body_with_nothing_to_change_or_another_field_is_refused() {
        assert_eq!(
            SettingsChange::from_json(b"{}"),
            Err(InvalidSettings::Nothing)
        );
        assert!(matches!(
            SettingsChange::from_json(br#"{"label": "x", "colour": "red"}"#),
            Err(InvalidSettings::NotJson(message)) if message.contains("colour")
        ));
        assert!(matches!(
            SettingsChange::from_json(br#"{"group": 5}"#),
            Err(InvalidSettings::NotJson(_))
        ));
        assert!(matches!(
            SettingsChange::from_json(b"label=x"),
            Err(InvalidSettings::NotJson(_))
        ));
    }
}
