//! What a staff member asks for: one scene, temporary or permanent. Built only from valid
//! input ("parse, don't validate"), so everything past the edge can trust it.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;

use serde::Serialize;

use super::scene_key::{InvalidScene, SceneKey, scene_rule};

/// Largest `scene_id` WeChat accepts for a permanent code (`QR_LIMIT_SCENE`).
pub const MAX_PERMANENT_SCENE_ID: u32 = 100_000;

/// Lifetime of a temporary code in seconds: 60..=2592000 (30 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lifetime(u32);

impl Lifetime {
    pub const MIN: u32 = 60;
    pub const MAX: u32 = 2_592_000;
    /// The longest lifetime WeChat grants.
    pub const LONGEST: Lifetime = Lifetime(Self::MAX);

    pub fn new(seconds: u32) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&seconds)
            .then_some(Self(seconds))
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// The value a code carries back to us in the scan event: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scene {
    Id(NonZeroU32),
    Str(SceneStr),
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scene::Id(id) => write!(f, "{id}"),
            Scene::Str(s) => f.write_str(s.as_str()),
        }
    }
}

impl Serialize for Scene {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scene::Id(id) => serializer.serialize_u32(id.get()),
            Scene::Str(s) => serializer.serialize_str(s.as_str()),
        }
    }
}

/// A `scene_str`: its text is a [`SceneKey`] as it stands, so a code can only carry a scene
/// that statistics and labels accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SceneStr(SceneKey);

impl SceneStr {
    pub fn parse(raw: &str) -> Result<Self, InvalidRequest> {
        Ok(Self(SceneKey::parse(raw)?))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Temporary (with its lifetime) or permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Temporary(Lifetime),
    Permanent,
}

impl Kind {
    /// As pages show it and the inventory stores it.
    pub fn name(self) -> &'static str {
        StoredKind::from(self).as_str()
    }
}

/// One code: a scene and a kind. Two requests that differ in any part (including the
/// lifetime of a temporary code) are different codes and different cache keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeRequest {
    pub scene: Scene,
    pub kind: Kind,
}

impl CodeRequest {
    /// The WeChat `action_name` for this code.
    pub fn action_name(&self) -> &'static str {
        match (&self.scene, self.kind) {
            (Scene::Id(_), Kind::Temporary(_)) => "QR_SCENE",
            (Scene::Str(_), Kind::Temporary(_)) => "QR_STR_SCENE",
            (Scene::Id(_), Kind::Permanent) => "QR_LIMIT_SCENE",
            (Scene::Str(_), Kind::Permanent) => "QR_LIMIT_STR_SCENE",
        }
    }

    /// The permanent code of the same scene, for print; `None` when the scene is a number
    /// above what permanent codes take ([`MAX_PERMANENT_SCENE_ID`]).
    pub fn permanent(&self) -> Option<CodeRequest> {
        if let Scene::Id(id) = self.scene
            && id.get() > MAX_PERMANENT_SCENE_ID
        {
            return None;
        }
        Some(CodeRequest {
            scene: self.scene.clone(),
            kind: Kind::Permanent,
        })
    }

    /// Canonical query string of this code, for links between the page, the image and the JSON.
    pub fn query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        match &self.scene {
            Scene::Id(id) => query.append_pair("scene_id", &id.to_string()),
            Scene::Str(s) => query.append_pair("scene_str", s.as_str()),
        };
        match self.kind {
            Kind::Temporary(lifetime) => {
                query.append_pair("expire_seconds", &lifetime.seconds().to_string())
            }
            Kind::Permanent => query.append_pair("permanent", "true"),
        };
        query.finish()
    }

    /// Parses the query of `/qrcode`, `/api/qrcode`, `/qrcode.png` and `/qrcode.svg`.
    /// `default_lifetime` applies to temporary codes that do not name one.
    pub fn from_query(query: &str, default_lifetime: Lifetime) -> Result<Self, InvalidRequest> {
        Self::from_query_and(query, default_lifetime, |_, _| false)
    }

    /// [`CodeRequest::from_query`] for a route that takes parameters of its own beside the
    /// code's: `extra` is offered each parameter a code does not take, and says whether it
    /// took it; one it did not take is refused as unknown.
    pub fn from_query_and<'q>(
        query: &'q str,
        default_lifetime: Lifetime,
        extra: impl FnMut(&str, Cow<'q, str>) -> bool,
    ) -> Result<Self, InvalidRequest> {
        match plain_pairs(query) {
            Some(pairs) => Self::from_pairs(pairs, default_lifetime, extra),
            None => Self::from_pairs(
                form_urlencoded::parse(query.as_bytes()),
                default_lifetime,
                extra,
            ),
        }
    }

    fn from_pairs<'q>(
        pairs: impl Iterator<Item = (Cow<'q, str>, Cow<'q, str>)>,
        default_lifetime: Lifetime,
        mut extra: impl FnMut(&str, Cow<'q, str>) -> bool,
    ) -> Result<Self, InvalidRequest> {
        let mut scene_id = None;
        let mut scene_str = None;
        let mut permanent = None;
        let mut expire_seconds = None;
        for (name, value) in pairs {
            let slot = match name.as_ref() {
                "scene_id" => &mut scene_id,
                "scene_str" => &mut scene_str,
                "permanent" => &mut permanent,
                "expire_seconds" => &mut expire_seconds,
                _ => {
                    if extra(&name, value) {
                        continue;
                    }
                    return Err(InvalidRequest::UnknownParameter {
                        name: truncate(&name, 40),
                    });
                }
            };
            // Kept borrowed from the query where nothing was percent-decoded.
            if slot.replace(value).is_some() {
                return Err(InvalidRequest::Repeated {
                    name: name.into_owned(),
                });
            }
        }

        let permanent = match permanent.as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(InvalidRequest::BadPermanent {
                    value: truncate(other, 40),
                });
            }
        };

        let scene = match (scene_id, scene_str) {
            (Some(_), Some(_)) => return Err(InvalidRequest::BothScenes),
            (None, None) => return Err(InvalidRequest::NoScene),
            (Some(raw), None) => Scene::Id(parse_scene_id(&raw, permanent)?),
            (None, Some(raw)) => Scene::Str(SceneStr::parse(&raw)?),
        };

        let kind = match (permanent, expire_seconds) {
            (true, Some(_)) => return Err(InvalidRequest::LifetimeOnPermanent),
            (true, None) => Kind::Permanent,
            (false, None) => Kind::Temporary(default_lifetime),
            (false, Some(raw)) => {
                Kind::Temporary(raw.parse::<u32>().ok().and_then(Lifetime::new).ok_or_else(
                    || InvalidRequest::BadLifetime {
                        value: truncate(&raw, 40),
                    },
                )?)
            }
        };
        Ok(Self { scene, kind })
    }
}

/// A code as the inventory stores it: its columns, not yet trusted.
#[derive(Debug, Clone, Copy)]
pub struct StoredCode<'a> {
    pub scene_type: SceneType,
    pub scene: &'a str,
    pub kind: StoredKind,
    /// The lifetime, for temporary codes.
    pub expire_seconds: Option<i64>,
}

/// The inventory's `scene_type` column: whether a code's scene is a scene_id or a scene_str
/// (`7` may be either, and they are different codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneType {
    Id,
    Str,
}

impl SceneType {
    pub fn of(scene: &Scene) -> Self {
        match scene {
            Scene::Id(_) => SceneType::Id,
            Scene::Str(_) => SceneType::Str,
        }
    }

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SceneType::Id => "id",
            SceneType::Str => "str",
        }
    }
}

impl TryFrom<&str> for SceneType {
    type Error = UnknownStoredValue;

    fn try_from(stored: &str) -> Result<Self, UnknownStoredValue> {
        [SceneType::Id, SceneType::Str]
            .into_iter()
            .find(|t| t.as_str() == stored)
            .ok_or_else(|| UnknownStoredValue::new("scene_type", stored))
    }
}

/// The inventory's `kind` column: a code's [`Kind`] without its lifetime, which has a
/// column of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredKind {
    Temporary,
    Permanent,
}

impl StoredKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredKind::Temporary => "temporary",
            StoredKind::Permanent => "permanent",
        }
    }
}

impl From<Kind> for StoredKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Temporary(_) => StoredKind::Temporary,
            Kind::Permanent => StoredKind::Permanent,
        }
    }
}

impl TryFrom<&str> for StoredKind {
    type Error = UnknownStoredValue;

    fn try_from(stored: &str) -> Result<Self, UnknownStoredValue> {
        [StoredKind::Temporary, StoredKind::Permanent]
            .into_iter()
            .find(|k| k.as_str() == stored)
            .ok_or_else(|| UnknownStoredValue::new("kind", stored))
    }
}

/// A column of the inventory holds a value no code has (the file was edited).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored {column} {value:?} is not one this version knows")]
pub struct UnknownStoredValue {
    pub column: &'static str,
    pub value: String,
}

impl UnknownStoredValue {
    fn new(column: &'static str, value: &str) -> Self {
        Self {
            column,
            value: truncate(value, 40),
        }
    }
}

/// Rows are checked like any input: a row that no longer makes a valid code (a limit
/// changed, the file was edited) is refused, not trusted.
impl TryFrom<StoredCode<'_>> for CodeRequest {
    type Error = InvalidRequest;

    fn try_from(row: StoredCode<'_>) -> Result<Self, InvalidRequest> {
        let permanent = row.kind == StoredKind::Permanent;
        let scene = match row.scene_type {
            SceneType::Id => Scene::Id(parse_scene_id(row.scene, permanent)?),
            SceneType::Str => Scene::Str(SceneStr::parse(row.scene)?),
        };
        let kind = match row.kind {
            StoredKind::Permanent => Kind::Permanent,
            StoredKind::Temporary => {
                let lifetime = row
                    .expire_seconds
                    .and_then(|seconds| u32::try_from(seconds).ok())
                    .and_then(Lifetime::new)
                    .ok_or_else(|| InvalidRequest::BadLifetime {
                        value: format!("{:?}", row.expire_seconds),
                    })?;
                Kind::Temporary(lifetime)
            }
        };
        Ok(Self { scene, kind })
    }
}

/// The query's pairs split in place, when it has nothing to decode (no `%`, no `+`), as in
/// the usual `scene_id=1`: the same pairs as `form_urlencoded::parse`, which would scan
/// every name and value twice more to find nothing to decode, on every cached page (see
/// bench/README.md).
fn plain_pairs(query: &str) -> Option<impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)>> {
    if query.bytes().any(|b| b == b'%' || b == b'+') {
        return None;
    }
    Some(
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (Cow::Borrowed(name), Cow::Borrowed(value))
            }),
    )
}

pub(super) fn parse_scene_id(raw: &str, permanent: bool) -> Result<NonZeroU32, InvalidRequest> {
    let bad = || InvalidRequest::BadSceneId {
        value: truncate(raw, 40),
        permanent,
    };
    // Digits only: `u32::from_str` would also take a leading `+`.
    if raw.is_empty() || raw.len() > 10 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let id = raw
        .parse::<u32>()
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(bad)?;
    if permanent && id.get() > MAX_PERMANENT_SCENE_ID {
        return Err(bad());
    }
    Ok(id)
}

/// Keeps echoed input short, so an error page never repeats a megabyte of query string.
pub(super) fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut short: String = s.chars().take(max_chars).collect();
        short.push('…');
        short
    }
}

/// Why a code request was refused: said so that a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("give a scene: scene_id (a number) or scene_str (text)")]
    NoScene,
    #[error("give scene_id or scene_str, not both")]
    BothScenes,
    #[error("scene_id {value:?} is not valid: {}", if *permanent {
        "a permanent code takes a whole number from 1 to 100000"
    } else {
        "a temporary code takes a whole number from 1 to 4294967295"
    })]
    BadSceneId { value: String, permanent: bool },
    #[error("scene_str is empty: it takes {}", scene_rule!())]
    SceneStrEmpty,
    #[error(
        "scene_str has {chars} characters: it takes 1 to {}",
        SceneKey::MAX_CHARS
    )]
    SceneStrTooLong { chars: usize },
    #[error("scene_str contains a control character (such as a line break): use printable text")]
    SceneStrControl,
    #[error("permanent {value:?} is not valid: use true, 1, false or 0")]
    BadPermanent { value: String },
    #[error(
        "expire_seconds {value:?} is not valid: it takes whole seconds from 60 to 2592000 (30 days)"
    )]
    BadLifetime { value: String },
    #[error("expire_seconds applies to temporary codes only: permanent codes never expire")]
    LifetimeOnPermanent,
    #[error("{name} is given more than once")]
    Repeated { name: String },
    #[error("unknown parameter {name:?}")]
    UnknownParameter { name: String },
}

impl InvalidRequest {
    /// The rules, for the line under the error that says what is allowed.
    pub const ALLOWED: &'static str = concat!(
        "A code is asked for with one scene: scene_id, a whole number from 1 to 4294967295 \
        (1 to 100000 for a permanent code), or scene_str, text of ",
        scene_rule!(),
        ". Add permanent=true for a permanent code (one that never expires); a temporary \
        code may give its lifetime as expire_seconds, from 60 seconds to 2592000 (30 days)."
    );
}

/// The scene_str messages, in the words a code request uses.
impl From<InvalidScene> for InvalidRequest {
    fn from(invalid: InvalidScene) -> Self {
        match invalid {
            InvalidScene::Empty => InvalidRequest::SceneStrEmpty,
            InvalidScene::TooLong { chars } => InvalidRequest::SceneStrTooLong { chars },
            InvalidScene::Control => InvalidRequest::SceneStrControl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Lifetime = Lifetime(604_800);

    fn parse(q: &str) -> Result<CodeRequest, InvalidRequest> {
        CodeRequest::from_query(q, WEEK)
    }

    proptest::proptest! {
        #[test]
        fn a_query_split_in_place_has_the_pairs_form_urlencoded_reads(
            query in "([a-z_=&%+]|%[0-9A-Fa-f]{2}|[0-9]|é|=&|&&|==){0,24}"
        ) {
            let decoded: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
            match plain_pairs(&query) {
                Some(pairs) => proptest::prop_assert_eq!(pairs.collect::<Vec<_>>(), decoded),
                None => proptest::prop_assert!(query.contains(['%', '+'])),
            }
        }
    }

    #[test]
    fn a_plain_scene_id_is_a_temporary_code_with_the_default_lifetime() {
        let code = parse("scene_id=123").unwrap();
        assert_eq!(code.scene, Scene::Id(NonZeroU32::new(123).unwrap()));
        assert_eq!(code.kind, Kind::Temporary(WEEK));
        assert_eq!(code.action_name(), "QR_SCENE");
    }

    #[test]
    fn each_combination_maps_to_its_action_name() {
        assert_eq!(parse("scene_str=a").unwrap().action_name(), "QR_STR_SCENE");
        assert_eq!(
            parse("scene_id=1&permanent=1").unwrap().action_name(),
            "QR_LIMIT_SCENE"
        );
        assert_eq!(
            parse("scene_str=a&permanent=true").unwrap().action_name(),
            "QR_LIMIT_STR_SCENE"
        );
    }

    #[test]
    fn scene_id_limits_follow_the_api_reference() {
        assert!(parse("scene_id=4294967295").is_ok());
        assert!(parse("scene_id=4294967296").is_err());
        assert!(parse("scene_id=0").is_err());
        assert!(parse("scene_id=-1").is_err());
        assert!(parse("scene_id=+1").is_err());
        assert!(parse("scene_id=").is_err());
        assert!(parse("scene_id=1.5").is_err());
        assert!(parse("scene_id=100000&permanent=true").is_ok());
        assert!(parse("scene_id=100001&permanent=true").is_err());
    }

    #[test]
    fn scene_str_counts_characters_not_bytes() {
        let sixty_four_han = "码".repeat(64);
        assert!(parse(&format!("scene_str={sixty_four_han}")).is_ok());
        let err = parse(&format!("scene_str={}", "a".repeat(65))).unwrap_err();
        assert_eq!(err, InvalidRequest::SceneStrTooLong { chars: 65 });
    }

    #[test]
    fn lifetime_is_checked_and_refused_on_permanent_codes() {
        assert!(parse("scene_id=1&expire_seconds=60").is_ok());
        assert!(parse("scene_id=1&expire_seconds=59").is_err());
        assert!(parse("scene_id=1&expire_seconds=2592001").is_err());
        assert_eq!(
            parse("scene_id=1&permanent=true&expire_seconds=60").unwrap_err(),
            InvalidRequest::LifetimeOnPermanent
        );
    }

    #[test]
    fn both_neither_repeated_and_unknown_parameters_are_refused() {
        assert_eq!(
            parse("scene_id=1&scene_str=a").unwrap_err(),
            InvalidRequest::BothScenes
        );
        assert_eq!(parse("").unwrap_err(), InvalidRequest::NoScene);
        assert!(matches!(
            parse("scene_id=1&scene_id=2"),
            Err(InvalidRequest::Repeated { .. })
        ));
        assert!(matches!(
            parse("scene_id=1&foo=2"),
            Err(InvalidRequest::UnknownParameter { .. })
        ));
    }

    #[test]
    fn the_canonical_query_parses_back_to_the_same_code() {
        for q in [
            "scene_id=7",
            "scene_str=a%26b%3Dc+d&expire_seconds=60",
            "scene_str=x&permanent=true",
        ] {
            let code = parse(q).unwrap();
            assert_eq!(parse(&code.query_string()).unwrap(), code);
        }
    }

    #[test]
    fn the_permanent_twin_keeps_the_scene_if_a_permanent_code_can_carry_it() {
        let twin = |q: &str| parse(q).unwrap().permanent().map(|c| c.query_string());

        assert_eq!(
            twin("scene_id=7&expire_seconds=60").as_deref(),
            Some("scene_id=7&permanent=true")
        );
        assert_eq!(
            twin("scene_str=shop-1").as_deref(),
            Some("scene_str=shop-1&permanent=true")
        );
        assert_eq!(twin("scene_id=100001"), None);
    }

    #[test]
    fn a_stored_row_becomes_the_code_it_was_and_a_bad_one_is_refused() {
        // The code a row's columns make, if they make one.
        let code = |scene_type: &str, scene, kind: &str, expire_seconds| {
            let row = StoredCode {
                scene_type: SceneType::try_from(scene_type).ok()?,
                scene,
                kind: StoredKind::try_from(kind).ok()?,
                expire_seconds,
            };
            CodeRequest::try_from(row).ok()
        };
        let week = Lifetime::new(604_800).unwrap();

        let temporary = code("id", "7", "temporary", Some(604_800));
        let permanent = code("str", "shop-1", "permanent", None);

        assert_eq!(
            temporary.unwrap(),
            CodeRequest::from_query("scene_id=7&expire_seconds=604800", week).unwrap()
        );
        assert_eq!(
            permanent.unwrap(),
            CodeRequest::from_query("scene_str=shop-1&permanent=true", week).unwrap()
        );
        assert!(code("id", "0", "temporary", Some(604_800)).is_none());
        assert!(code("id", "7", "temporary", None).is_none());
        assert!(code("id", "200000", "permanent", None).is_none());
        assert!(code("id", "7", "forever", None).is_none());
        assert!(code("number", "7", "temporary", Some(604_800)).is_none());
    }

    #[test]
    fn the_stored_names_of_scene_types_and_kinds_read_back_as_themselves() {
        for scene_type in [SceneType::Id, SceneType::Str] {
            assert_eq!(SceneType::try_from(scene_type.as_str()), Ok(scene_type));
        }
        for kind in [StoredKind::Temporary, StoredKind::Permanent] {
            assert_eq!(StoredKind::try_from(kind.as_str()), Ok(kind));
        }
        assert_eq!(Kind::Permanent.name(), "permanent");
        assert_eq!(Kind::Temporary(WEEK).name(), "temporary");
    }
}
