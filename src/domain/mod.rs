//! Validated domain types: nothing untrusted gets past these constructors.

mod account_event;
mod batch;
mod code_request;
mod colour;
mod image_request;
mod scene_key;
mod scene_settings;
mod stats_query;
mod ticket;

pub use account_event::{AccountEvent, EventKind};
pub use batch::{
    BatchPreview, BatchRequest, BatchRow, Defaults, InvalidBatch, MAX_BATCH_ROWS, RowError,
};
pub use code_request::{
    CodeRequest, InvalidRequest, Kind, Lifetime, MAX_PERMANENT_SCENE_ID, Scene, SceneStr,
    SceneType, StoredCode, StoredKind, UnknownStoredValue,
};
pub use colour::Colour;
pub use image_request::{ImageFormat, ImageRequest, InvalidImageRequest, PngSize};
pub(crate) use scene_key::scene_rule;
pub use scene_key::{InvalidScene, SceneKey};
pub use scene_settings::{
    Change, GroupName, InvalidSetting, InvalidSettings, MAX_GROUP_CHARS, MAX_LABEL_CHARS,
    SceneLabel, SettingsChange,
};
pub use stats_query::{
    DEFAULT_DAYS, InvalidStatsQuery, MAX_DAYS, MAX_SEARCH_CHARS, PAGE_ROWS, SortKey, StatsQuery,
    TimeRange, View,
};
pub use ticket::{LAST_WEEK, LastWeek, Ticket};
