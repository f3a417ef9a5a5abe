//! A batch of codes as staff ask for it: rows of a CSV file (`scene,label,group`, with an
//! optional `kind` and `expire_seconds` per row), a JSON list of rows, or a pattern
//! (`shop-{001..200}`, `1..200`) with one kind for all. Every row is checked before
//! anything is created, and every invalid one is named (by its line in a file, by its
//! index in JSON), so that staff fix them all at once.

use std::collections::HashMap;
use std::num::NonZeroU32;

use serde::Deserialize;

use super::code_request::{InvalidRequest, parse_scene_id};
use super::{CodeRequest, GroupName, Kind, Lifetime, Scene, SceneLabel, SceneStr};

/// Most rows in one batch: a few days of WeChat's default daily quota of new codes would
/// be spent by forty, and a preview of more is no longer read by anyone.
pub const MAX_BATCH_ROWS: usize = 5_000;

/// Invalid rows named at most: past that, the input is not what it was meant to be.
const MAX_ROW_ERRORS: usize = 100;

/// What a batch would do, shown to staff before it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPreview {
    pub rows: usize,
    pub permanent: usize,
    pub temporary: usize,
    /// Rows whose code exists and will be reused, not created.
    pub reused: usize,
    /// Permanent codes the batch will create: slots of the account's 100,000 used for good.
    pub new_permanent: usize,
    /// Permanent codes recorded already.
    pub permanent_used: u64,
}

/// One code of a batch, and how staff name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub code: CodeRequest,
    pub label: Option<SceneLabel>,
    pub group: Option<GroupName>,
}

/// The rows of a valid batch: 1 to [`MAX_BATCH_ROWS`], no scene twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    rows: Vec<BatchRow>,
}

impl BatchRequest {
    pub fn rows(&self) -> &[BatchRow] {
        &self.rows
    }

    /// How many rows ask for a permanent code.
    pub fn permanent_rows(&self) -> usize {
        self.rows
            .iter()
            .filter(|row| row.code.kind == Kind::Permanent)
            .count()
    }

    /// A CSV file's rows: a header row naming the columns (`scene` required; `label`,
    /// `group`, `kind`, `expire_seconds` optional, in any order), UTF-8 with or without a
    /// byte order mark.
    pub fn from_csv(text: &str, defaults: Defaults) -> Result<Self, InvalidBatch> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns = Columns::of(reader.headers().map_err(|e| {
            InvalidBatch::Whole(format!("the first line is not a CSV header: {e}"))
        })?)?;
        let mut rows = Rows::new();
        for record in reader.records() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    let line = e.position().map_or(0, |p| line_at(text, p.byte()));
                    rows.refuse(line, None, format!("not readable as CSV: {e}"));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| line_at(text, p.byte()));
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() > columns.count {
                rows.refuse(
                    line,
                    None,
                    format!(
                        "{} fields where the header names {}",
                        record.len(),
                        columns.count
                    ),
                );
                continue;
            }
            let field = |index: Option<usize>| index.and_then(|i| record.get(i)).unwrap_or("");
            let raw = RawRow {
                scene: RawScene::Text(field(Some(columns.scene))),
                label: field(columns.label),
                group: field(columns.group),
                kind: Some(field(columns.kind)).filter(|k| !k.is_empty()),
                expire_seconds: Some(field(columns.expire_seconds)).filter(|s| !s.is_empty()),
            };
            rows.add(line, raw, defaults);
        }
        rows.finish()
    }

    /// A pattern's rows, all of `kind`: `prefix{first..last}suffix` gives text scenes
    /// (`shop-{001..200}`: shop-001 … shop-200, zero-padded as `first` is), and a bare
    /// range `first..last` (or `{first..last}`) without padding gives numbered scenes.
    pub fn from_pattern(pattern: &str, kind: Kind) -> Result<Self, InvalidBatch> {
        let pattern = pattern.trim();
        let (prefix, range, suffix) = match (pattern.find('{'), pattern.rfind('}')) {
            (Some(open), Some(close)) if open < close => (
                &pattern[..open],
                &pattern[open + 1..close],
                &pattern[close + 1..],
            ),
            (None, None) => ("", pattern, ""),
            _ => return Err(InvalidBatch::Whole(PATTERN_RULE.into())),
        };
        if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
            return Err(InvalidBatch::Whole(PATTERN_RULE.into()));
        }
        let Some((first, last)) = range.split_once("..") else {
            return Err(InvalidBatch::Whole(PATTERN_RULE.into()));
        };
        let number = |text: &str| {
            (!text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
        };
        let (Some(from), Some(to)) = (number(first), number(last)) else {
            return Err(InvalidBatch::Whole(PATTERN_RULE.into()));
        };
        if from > to {
            return Err(InvalidBatch::Whole(format!(
                "the range {first}..{last} runs backwards: give the smaller number first"
            )));
        }
        let count = to - from + 1;
        if count > MAX_BATCH_ROWS as u64 {
            return Err(too_many(count));
        }
        let padded = first.len() > 1 && first.starts_with('0');
        let numbered = prefix.is_empty() && suffix.is_empty() && !padded;
        let mut rows = Rows::new();
        for (index, n) in (from..=to).enumerate() {
            let text = if padded {
                format!("{prefix}{n:0width$}{suffix}", width = first.len())
            } else {
                format!("{prefix}{n}{suffix}")
            };
            let scene = if numbered {
                RawScene::Number(n)
            } else {
                RawScene::Text(&text)
            };
            let raw = RawRow {
                scene,
                label: "",
                group: "",
                kind: None,
                expire_seconds: None,
            };
            rows.add(index + 1, raw, Defaults::of(kind, Lifetime::LONGEST));
        }
        rows.finish()
    }

    /// The body of `POST /api/batches`: `{"rows": [...]}` or `{"pattern": ..., "kind": ...}`.
    /// A row without `kind` takes the body's `kind`, if it has one; a temporary code
    /// without `expire_seconds` lives `default_lifetime`.
    pub fn from_json(body: &[u8], default_lifetime: Lifetime) -> Result<Self, InvalidBatch> {
        let body: BatchBody = serde_json::from_slice(body)
            .map_err(|e| InvalidBatch::Whole(format!("the body is not a batch: {e}")))?;
        let default_kind = match (body.kind.as_deref(), body.expire_seconds) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(InvalidBatch::Whole(
                    "expire_seconds is the lifetime of the batch's temporary codes: give \
                     \"kind\": \"temporary\" with it"
                        .into(),
                ));
            }
            (Some(kind), seconds) => Some(
                kind_of(
                    kind,
                    seconds.map(|s| s.to_string()).as_deref(),
                    default_lifetime,
                )
                .map_err(InvalidBatch::Whole)?,
            ),
        };
        // Temporary rows without their own lifetime live as long as the batch's.
        let default_lifetime = match default_kind {
            Some(Kind::Temporary(lifetime)) => lifetime,
            _ => default_lifetime,
        };
        match (body.rows, body.pattern) {
            (Some(_), Some(_)) => Err(InvalidBatch::Whole(
                "give rows or a pattern, not both".into(),
            )),
            (None, None) => Err(InvalidBatch::Whole("give rows or a pattern".into())),
            (None, Some(pattern)) => {
                let kind = default_kind.ok_or_else(|| {
                    InvalidBatch::Whole("a pattern needs a kind: temporary or permanent".into())
                })?;
                Self::from_pattern(&pattern, kind)
            }
            (Some(json_rows), None) => {
                if json_rows.len() > MAX_BATCH_ROWS {
                    return Err(too_many(json_rows.len() as u64));
                }
                let defaults = Defaults {
                    kind: default_kind,
                    lifetime: default_lifetime,
                };
                let mut rows = Rows::new();
                for (index, row) in json_rows.iter().enumerate() {
                    let scene = match &row.scene {
                        JsonScene::Number(n) => RawScene::Number(*n),
                        JsonScene::Text(text) => RawScene::ForcedText(text),
                    };
                    let expire_seconds = row.expire_seconds.map(|s| s.to_string());
                    let raw = RawRow {
                        scene,
                        label: row.label.as_deref().unwrap_or(""),
                        group: row.group.as_deref().unwrap_or(""),
                        kind: row.kind.as_deref(),
                        expire_seconds: expire_seconds.as_deref(),
                    };
                    rows.add(index, raw, defaults);
                }
                rows.finish()
            }
        }
    }
}

/// What a row that does not say takes: the batch's kind (without one, a row must name
/// its own), and the lifetime of a temporary code.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub kind: Option<Kind>,
    pub lifetime: Lifetime,
}

impl Defaults {
    /// Every row of `kind` unless it says otherwise; temporary ones live as long as a
    /// temporary `kind` does, else `lifetime`.
    pub fn of(kind: Kind, lifetime: Lifetime) -> Self {
        let lifetime = match kind {
            Kind::Temporary(own) => own,
            Kind::Permanent => lifetime,
        };
        Self {
            kind: Some(kind),
            lifetime,
        }
    }
}

/// The line (from 1) of the record that starts at byte `offset` of `text`. Counted here:
/// the CSV reader's own count leaves out the blank lines it skips (and its offset is
/// before them), and staff look lines up in an editor.
fn line_at(text: &str, offset: u64) -> usize {
    let bytes = text.as_bytes();
    let mut start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    while bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        start += 1;
    }
    bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1
}

const PATTERN_RULE: &str = "a pattern is text with one range in braces, such as \
    shop-{001..200}, or a range of numbers such as 1..200";

fn too_many(count: u64) -> InvalidBatch {
    InvalidBatch::Whole(format!(
        "{count} codes: a batch makes at most {MAX_BATCH_ROWS}; split it"
    ))
}

/// Why a batch was refused: the input as a whole, or the rows named by their line (in a
/// file; the header is line 1) or index (in JSON, from 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBatch {
    #[error("{0}")]
    Whole(String),
    #[error("{} not valid; nothing was created", rows(.0.len()))]
    Rows(Vec<RowError>),
}

impl InvalidBatch {
    pub const ALLOWED: &'static str = "CSV with a header row: scene (required), label, group, \
        kind (temporary or permanent), expire_seconds (60 to 2592000, temporary codes only); \
        or a pattern such as shop-{001..200} or 1..200 with one kind for all. A scene of digits \
        (1 to 4294967295; 1 to 100000 when permanent) is a number, anything else is text of 1 \
        to 64 characters; no scene twice; at most 5000 rows. As JSON: {\"rows\": [{\"scene\": \
        \"shop-001\", \"label\": \"Shop 1\", \"group\": \"East\", \"kind\": \"permanent\"}]} or \
        {\"pattern\": \"shop-{001..200}\", \"kind\": \"permanent\"}.";
}

/// "1 row is", "3 rows are".
fn rows(count: usize) -> String {
    if count == 1 {
        "1 row is".into()
    } else {
        format!("{count} rows are")
    }
}

/// One invalid row: where it is, its scene if it had one, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// The line in a file (the header is line 1), the index in a JSON list (from 0), the
    /// position in a pattern's range (from 1).
    pub at: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    pub reason: String,
}

/// Where each column is, from the header.
struct Columns {
    count: usize,
    scene: usize,
    label: Option<usize>,
    group: Option<usize>,
    kind: Option<usize>,
    expire_seconds: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> Result<Self, InvalidBatch> {
        let mut found: HashMap<&'static str, usize> = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            let known = ["scene", "label", "group", "kind", "expire_seconds"]
                .into_iter()
                .find(|known| known.eq_ignore_ascii_case(name.trim()));
            let Some(known) = known else {
                return Err(InvalidBatch::Whole(format!(
                    "the header names a column {:?} that is not one of scene, label, group, \
                     kind, expire_seconds",
                    name.chars().take(40).collect::<String>()
                )));
            };
            if found.insert(known, index).is_some() {
                return Err(InvalidBatch::Whole(format!(
                    "the header names {known} twice"
                )));
            }
        }
        let scene = *found.get("scene").ok_or_else(|| {
            InvalidBatch::Whole(
                "the first line must be a header naming the columns, with scene among them: \
                 scene,label,group"
                    .into(),
            )
        })?;
        Ok(Self {
            count: header.len(),
            scene,
            label: found.get("label").copied(),
            group: found.get("group").copied(),
            kind: found.get("kind").copied(),
            expire_seconds: found.get("expire_seconds").copied(),
        })
    }
}

/// A scene as it came: text that is a number if it reads as one (CSV, patterns), text
/// that is text whatever it holds (a JSON string), or a number.
#[derive(Debug, Clone, Copy)]
enum RawScene<'a> {
    Text(&'a str),
    ForcedText(&'a str),
    Number(u64),
}

impl std::fmt::Display for RawScene<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawScene::Text(text) | RawScene::ForcedText(text) => f.write_str(text),
            RawScene::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One row's fields as given, before checking.
struct RawRow<'a> {
    scene: RawScene<'a>,
    label: &'a str,
    group: &'a str,
    kind: Option<&'a str>,
    expire_seconds: Option<&'a str>,
}

/// Rows checked so far, and the refusals.
struct Rows {
    rows: Vec<BatchRow>,
    errors: Vec<RowError>,
    /// Where each scene was first given.
    seen: HashMap<String, usize>,
    refused: usize,
}

impl Rows {
    fn new() -> Self {
        Self {
            rows: Vec::new(),
            errors: Vec::new(),
            seen: HashMap::new(),
            refused: 0,
        }
    }

    fn refuse(&mut self, at: usize, scene: Option<String>, reason: String) {
        self.refused += 1;
        if self.errors.len() < MAX_ROW_ERRORS {
            self.errors.push(RowError { at, scene, reason });
        }
    }

    fn add(&mut self, at: usize, raw: RawRow<'_>, defaults: Defaults) {
        let scene_text = raw.scene.to_string();
        match checked(&raw, defaults) {
            Ok(row) => {
                if let Some(first) = self.seen.get(&scene_text) {
                    let reason = format!("scene {scene_text} is given already at {first}");
                    self.refuse(at, Some(scene_text), reason);
                } else if self.rows.len() >= MAX_BATCH_ROWS {
                    self.refuse(
                        at,
                        Some(scene_text),
                        too_many(MAX_BATCH_ROWS as u64 + 1).to_string(),
                    );
                } else {
                    self.seen.insert(scene_text, at);
                    self.rows.push(row);
                }
            }
            Err(reason) => self.refuse(at, Some(scene_text).filter(|s| !s.is_empty()), reason),
        }
    }

    fn finish(mut self) -> Result<BatchRequest, InvalidBatch> {
        if self.refused > self.errors.len()
            && let Some(last) = self.errors.last_mut()
        {
            last.reason.push_str(&format!(
                " (and {} more rows not shown)",
                self.refused - MAX_ROW_ERRORS
            ));
        }
        if !self.errors.is_empty() {
            return Err(InvalidBatch::Rows(self.errors));
        }
        if self.rows.is_empty() {
            return Err(InvalidBatch::Whole("the batch has no rows".into()));
        }
        Ok(BatchRequest { rows: self.rows })
    }
}

/// A row, checked.
fn checked(raw: &RawRow<'_>, defaults: Defaults) -> Result<BatchRow, String> {
    let kind = match (raw.kind, defaults.kind) {
        (Some(kind), _) => kind_of(kind, raw.expire_seconds, defaults.lifetime)?,
        (None, None) => return Err("give a kind: temporary or permanent".into()),
        (None, Some(Kind::Permanent)) => match raw.expire_seconds {
            Some(_) => return Err(InvalidRequest::LifetimeOnPermanent.to_string()),
            None => Kind::Permanent,
        },
        (None, Some(Kind::Temporary(lifetime))) => Kind::Temporary(match raw.expire_seconds {
            Some(seconds) => lifetime_of(seconds)?,
            None => lifetime,
        }),
    };
    let permanent = kind == Kind::Permanent;
    let scene = match raw.scene {
        RawScene::Number(n) => {
            let text = n.to_string();
            Scene::Id(parse_scene_id(&text, permanent).map_err(|e| e.to_string())?)
        }
        RawScene::Text(text) if is_scene_number(text) => {
            Scene::Id(parse_scene_id(text, permanent).map_err(|e| {
                format!("{e} (a scene of digits is a number; for text, add a letter)")
            })?)
        }
        RawScene::Text(text) | RawScene::ForcedText(text) => {
            Scene::Str(SceneStr::parse(text).map_err(|e| e.to_string())?)
        }
    };
    Ok(BatchRow {
        code: CodeRequest { scene, kind },
        label: SceneLabel::parse(raw.label).map_err(|e| e.to_string())?,
        group: GroupName::parse(raw.group).map_err(|e| e.to_string())?,
    })
}

/// Digits with no leading zero, as a scene_id is written: `007` stays text, so that its
/// scene keeps the name it was given.
fn is_scene_number(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('0')
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u32>().ok().and_then(NonZeroU32::new).is_some()
}

fn lifetime_of(seconds: &str) -> Result<Lifetime, String> {
    seconds
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(Lifetime::new)
        .ok_or_else(|| {
            InvalidRequest::BadLifetime {
                value: seconds.chars().take(40).collect(),
            }
            .to_string()
        })
}

/// A kind as written (`temporary`, `permanent`, or the Chinese 临时 and 永久), with the
/// lifetime of a temporary one.
fn kind_of(
    kind: &str,
    expire_seconds: Option<&str>,
    default_lifetime: Lifetime,
) -> Result<Kind, String> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "permanent" | "永久" => match expire_seconds {
            Some(_) => Err(InvalidRequest::LifetimeOnPermanent.to_string()),
            None => Ok(Kind::Permanent),
        },
        "temporary" | "临时" => Ok(Kind::Temporary(match expire_seconds {
            Some(seconds) => lifetime_of(seconds)?,
            None => default_lifetime,
        })),
        other => Err(format!(
            "kind {:?} is not valid: use temporary or permanent",
            other.chars().take(40).collect::<String>()
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    rows: Option<Vec<JsonRow>>,
    pattern: Option<String>,
    kind: Option<String>,
    expire_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    scene: JsonScene,
    label: Option<String>,
    group: Option<String>,
    kind: Option<String>,
    expire_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonScene {
    Number(u64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week() -> Lifetime {
        Lifetime::new(604_800).unwrap()
    }

    fn temporary() -> Defaults {
        Defaults::of(Kind::Temporary(week()), week())
    }

    fn scenes(batch: &BatchRequest) -> Vec<String> {
        batch
            .rows()
            .iter()
            .map(|r| r.code.scene.to_string())
            .collect()
    }

    fn row_errors(invalid: InvalidBatch) -> Vec<(usize, String)> {
        match invalid {
            InvalidBatch::Rows(errors) => errors.into_iter().map(|e| (e.at, e.reason)).collect(),
            InvalidBatch::Whole(whole) => panic!("refused as a whole: {whole}"),
        }
    }

    #[test]
    fn a_csv_with_a_bom_and_columns_in_any_order_gives_its_rows() {
        let csv = "\u{feff}label,scene,group,kind\n上海店 海报,shop-001,华东,permanent\nShop 2,shop-002,,\n\n7,7,,temporary\n";

        let batch = BatchRequest::from_csv(csv, temporary()).unwrap();

        assert_eq!(scenes(&batch), ["shop-001", "shop-002", "7"]);
        let first = &batch.rows()[0];
        assert_eq!(first.code.kind, Kind::Permanent);
        assert_eq!(first.label.as_ref().unwrap().as_str(), "上海店 海报");
        assert_eq!(first.group.as_ref().unwrap().as_str(), "华东");
        assert_eq!(batch.rows()[1].code.kind, Kind::Temporary(week()));
        assert!(matches!(batch.rows()[2].code.scene, Scene::Id(_)));
        assert_eq!(batch.permanent_rows(), 1);
    }

    #[test]
    fn every_invalid_csv_row_is_named_by_its_line_and_nothing_is_taken() {
        let csv = "scene,kind,expire_seconds\nok-1,,\n,temporary,\n200000,permanent,\nok-1,,\n\nok-2,permanent,3600\nok-3,forever,\nok-4,temporary,30\n";

        let errors = row_errors(BatchRequest::from_csv(csv, temporary()).unwrap_err());

        let lines: Vec<usize> = errors.iter().map(|(line, _)| *line).collect();
        // Line 6 is blank, and counted.
        assert_eq!(lines, [3, 4, 5, 7, 8, 9], "{errors:?}");
        assert!(errors[0].1.contains("empty"), "{errors:?}");
        assert!(errors[1].1.contains("1 to 100000"), "{errors:?}");
        assert!(errors[2].1.contains("given already at 2"), "{errors:?}");
        assert!(errors[3].1.contains("temporary codes only"), "{errors:?}");
        assert!(errors[4].1.contains("temporary or permanent"), "{errors:?}");
        assert!(errors[5].1.contains("60 to 2592000"), "{errors:?}");
    }

    #[test]
    fn a_header_without_scene_or_with_an_unknown_column_is_refused_as_a_whole() {
        for csv in [
            "label,group\nx,y\n",
            "scene,colour\nx,red\n",
            "scene,scene\nx,y\n",
        ] {
            assert!(
                matches!(
                    BatchRequest::from_csv(csv, temporary()),
                    Err(InvalidBatch::Whole(_))
                ),
                "{csv}"
            );
        }
        assert!(matches!(
            BatchRequest::from_csv("scene\n", temporary()),
            Err(InvalidBatch::Whole(_))
        ));
    }

    #[test]
    fn patterns_give_padded_text_scenes_or_numbered_ones() {
        let padded = BatchRequest::from_pattern("shop-{001..200}", Kind::Permanent).unwrap();
        let numbered = BatchRequest::from_pattern("5..7", Kind::Permanent).unwrap();
        let braced = BatchRequest::from_pattern("{5..7}-a", Kind::Permanent).unwrap();

        assert_eq!(padded.rows().len(), 200);
        assert_eq!(scenes(&padded)[0], "shop-001");
        assert_eq!(scenes(&padded)[199], "shop-200");
        assert!(matches!(padded.rows()[0].code.scene, Scene::Str(_)));
        assert_eq!(scenes(&numbered), ["5", "6", "7"]);
        assert!(matches!(numbered.rows()[0].code.scene, Scene::Id(_)));
        assert_eq!(scenes(&braced), ["5-a", "6-a", "7-a"]);
    }

    #[test]
    fn bad_patterns_say_what_a_pattern_is() {
        for pattern in [
            "shop",
            "shop-{1..}",
            "{a..b}",
            "{1..2",
            "x{1..2}{3..4}",
            "9..1",
        ] {
            assert!(
                matches!(
                    BatchRequest::from_pattern(pattern, Kind::Permanent),
                    Err(InvalidBatch::Whole(_))
                ),
                "{pattern}"
            );
        }
        let too_many = BatchRequest::from_pattern("1..5001", Kind::Permanent).unwrap_err();
        assert!(too_many.to_string().contains("at most 5000"), "{too_many}");
        // Permanent numbered scenes stop at 100000.
        let errors =
            row_errors(BatchRequest::from_pattern("99999..100001", Kind::Permanent).unwrap_err());
        assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn json_rows_take_the_batch_kind_and_text_scenes_stay_text() {
        let body = br#"{"kind": "temporary", "expire_seconds": 3600, "rows": [
            {"scene": "7", "label": "Seven"},
            {"scene": 8, "kind": "permanent"}
        ]}"#;

        let batch = BatchRequest::from_json(body, week()).unwrap();

        assert!(matches!(batch.rows()[0].code.scene, Scene::Str(_)));
        assert_eq!(
            batch.rows()[0].code.kind,
            Kind::Temporary(Lifetime::new(3600).unwrap())
        );
        assert!(matches!(batch.rows()[1].code.scene, Scene::Id(_)));
        assert_eq!(batch.rows()[1].code.kind, Kind::Permanent);
    }

    #[test]
    fn json_rows_without_any_kind_are_refused_by_index() {
        let body = br#"{"rows": [{"scene": "a", "kind": "permanent"}, {"scene": "b"}]}"#;

        let errors = row_errors(BatchRequest::from_json(body, week()).unwrap_err());

        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 1);
        assert!(errors[0].1.contains("give a kind"));
    }

    #[test]
    fn json_that_is_not_a_batch_is_refused_as_a_whole() {
        for body in [
            &b"{}"[..],
            br#"{"rows": [], "pattern": "1..2", "kind": "permanent"}"#,
            br#"{"pattern": "1..2"}"#,
            br#"{"rows": [{"scene": "a", "colour": "red"}]}"#,
            b"not json",
        ] {
            assert!(
                matches!(
                    BatchRequest::from_json(body, week()),
                    Err(InvalidBatch::Whole(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn at_most_a_hundred_row_errors_are_named_and_the_rest_counted() {
        let mut csv = String::from("scene\n");
        for _ in 0..150 {
            csv.push_str(&"x".repeat(65));
            csv.push('\n');
        }

        let errors = row_errors(BatchRequest::from_csv(&csv, temporary()).unwrap_err());

        assert_eq!(errors.len(), 100);
        assert!(errors[99].1.contains("and 50 more"), "{}", errors[99].1);
    }
}
