//! What WeChat tells the account about its users: follows, scans and unfollows.

use super::scene_key::SceneKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Subscribe,
    Scan,
    Unsubscribe,
}

impl EventKind {
    /// As WeChat spells it, and as it is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Subscribe => "subscribe",
            EventKind::Scan => "SCAN",
            EventKind::Unsubscribe => "unsubscribe",
        }
    }
}

/// Something a user did to the account, as stored: a follow (from a code or not), a
/// scan by a follower, an unfollow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub kind: EventKind,
    /// The user (personal data: stored, never shown).
    pub openid: String,
    /// WeChat's `CreateTime`, Unix seconds.
    pub created_at: i64,
    /// `EventKey` as received; part of the identity of a push.
    pub event_key: String,
    /// The scene, for scans and follows that came from a code; `None` too when the key
    /// names no valid scene, which `event_key` still holds whole.
    pub scene: Option<SceneKey>,
    pub ticket: Option<String>,
}

impl AccountEvent {
    /// What identifies a push, which WeChat's retries repeat: the user, time, event and
    /// key, in the order of the database's unique index.
    pub fn identity(&self) -> (&str, i64, &str, &str) {
        (
            &self.openid,
            self.created_at,
            self.kind.as_str(),
            &self.event_key,
        )
    }

    /// A follow that came from scanning a code: the number channel analysis is about.
    pub fn is_new_follower(&self) -> bool {
        self.kind == EventKind::Subscribe && self.scene.is_some()
    }
}
