//! Validated domain types: nothing untrusted gets past these constructors.

mod code_request;

pub use code_request::{
    CodeRequest, InvalidRequest, Kind, Lifetime, MAX_PERMANENT_SCENE_ID, MAX_SCENE_STR_CHARS,
    Scene, SceneStr,
};
