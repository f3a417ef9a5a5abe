//! Credentials that must never be shown: the AppSecret, the push Token.

use std::fmt;

/// A credential (the AppSecret, the push Token). It has no `Display`, and its `Debug`
/// prints nothing of the value, so it cannot end up in a log line or a page by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it to WeChat.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
