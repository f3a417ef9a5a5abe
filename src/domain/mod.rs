//! Validated domain types: nothing untrusted gets past these constructors.

mod account_event;
mod code_request;
mod scene_key;
mod stats_query;
mod ticket;

pub use account_event::{AccountEvent, EventKind};
pub use code_request::{
    CodeRequest, InvalidRequest, Kind, Lifetime, MAX_PERMANENT_SCENE_ID, Scene, SceneStr,
    SceneType, StoredCode, StoredKind, UnknownStoredValue,
};
pub(crate) use scene_key::scene_rule;
pub use scene_key::{InvalidScene, SceneKey};
pub use stats_query::{DEFAULT_DAYS, InvalidStatsQuery, MAX_DAYS, SortKey, StatsQuery, TimeRange};
pub use ticket::Ticket;
