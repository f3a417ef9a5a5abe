//! The key a scene is counted, named and looked up by: the text its code carries back in a
//! scan (a scene_id's digits or a scene_str). One rule, WeChat's, wherever a scene comes in:
//! a code request, a label form, a statistics page or query, a push.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

/// The rule as text, for messages put together with `concat!`, which takes literals and
/// not constants; a test below keeps it in step with [`SceneKey::MAX_CHARS`].
macro_rules! scene_rule {
    () => {
        "1 to 64 characters"
    };
}
pub(crate) use scene_rule;

/// A scene's key: 1 to [`SceneKey::MAX_CHARS`] characters, none of them a control
/// character. Read-only once built, so it stays valid; it reads as the `str` it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SceneKey(String);

impl SceneKey {
    /// WeChat's limit for a scene_str, in characters; a scene_id's digits (at most 10) are
    /// always within it.
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidScene> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(InvalidScene::Empty);
        }
        if chars > Self::MAX_CHARS {
            return Err(InvalidScene::TooLong { chars });
        }
        if raw.chars().any(char::is_control) {
            return Err(InvalidScene::Control);
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for SceneKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SceneKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SceneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidScene {
    #[error("the scene is empty: a scene has {}", scene_rule!())]
    Empty,
    #[error("the scene has {chars} characters: a scene has {}", scene_rule!())]
    TooLong { chars: usize },
    #[error("the scene contains a control character (such as a line break): use printable text")]
    Control,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_characters_are_a_scene_and_sixty_five_are_not() {
        let sixty_four_han = "码".repeat(64);

        assert_eq!(
            SceneKey::parse(&sixty_four_han).unwrap().as_str(),
            sixty_four_han
        );
        assert_eq!(
            SceneKey::parse(&"a".repeat(65)),
            Err(InvalidScene::TooLong { chars: 65 })
        );
    }

    #[test]
    fn an_empty_text_is_not_a_scene() {
        assert_eq!(SceneKey::parse(""), Err(InvalidScene::Empty));
    }

    #[test]
    fn a_text_with_a_control_character_is_not_a_scene() {
        for raw in ["a\nb", "\t", "a\u{7f}", "a\u{85}"] {
            assert_eq!(SceneKey::parse(raw), Err(InvalidScene::Control), "{raw:?}");
        }
    }

    #[test]
    fn spaces_punctuation_and_the_largest_scene_id_are_scenes() {
        for raw in ["shop 12", " ", "a/b?c=d&e", "qrscene_7", "4294967295"] {
            assert_eq!(SceneKey::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn the_rule_as_text_names_the_limit() {
        assert_eq!(
            scene_rule!(),
            format!("1 to {} characters", SceneKey::MAX_CHARS)
        );
    }
}
