//! A code WeChat created: its ticket, the text its image encodes, and its lifetime.

use std::time::Duration;

use time::OffsetDateTime;

/// A page must never show a code with less than this much of its life left.
const MIN_REMAINING: Duration = Duration::from_secs(60);

/// A created code, as the pages and the JSON show it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub ticket: String,
    /// The text the QR image encodes.
    pub url: String,
    /// Lifetime granted by WeChat (temporary codes).
    pub expire_seconds: Option<u32>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl Ticket {
    /// Life a code must have left to be shown: a tenth of its lifetime, and at least a
    /// minute, so that someone who prints or scans the page still has a working code.
    pub fn min_remaining(lifetime_seconds: u32) -> Duration {
        (Duration::from_secs(lifetime_seconds.into()) / 10).max(MIN_REMAINING)
    }

    /// How long this ticket may still be served: its remaining life less
    /// [`Ticket::min_remaining`]. `None` for permanent codes, zero for codes too
    /// short-lived to cache at all.
    pub fn servable_for(&self, now: OffsetDateTime) -> Option<Duration> {
        let (expires_at, lifetime) = (self.expires_at?, self.expire_seconds?);
        let remaining = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
        Some(remaining.saturating_sub(Self::min_remaining(lifetime)))
    }
}

impl AsRef<Ticket> for Ticket {
    fn as_ref(&self) -> &Ticket {
        self
    }
}

#[cfg(test)]
impl Ticket {
    /// A temporary ticket of `lifetime` seconds, created now (for tests).
    pub(crate) fn created_now(lifetime: u32) -> Self {
        let created_at = OffsetDateTime::now_utc();
        Ticket {
            ticket: "t".into(),
            url: "u".into(),
            expire_seconds: Some(lifetime),
            created_at,
            expires_at: Some(created_at + time::Duration::seconds(lifetime.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(lifetime: u32) -> Ticket {
        Ticket::created_now(lifetime)
    }

    fn servable(lifetime: u32) -> Duration {
        let t = ticket(lifetime);
        t.servable_for(t.created_at).unwrap()
    }

    #[test]
    fn a_week_long_code_is_served_for_nine_tenths_of_its_life() {
        assert_eq!(servable(604_800), Duration::from_secs(544_320));
    }

    #[test]
    fn a_short_code_keeps_at_least_a_minute_in_hand() {
        assert_eq!(servable(120), Duration::from_secs(60));
        assert_eq!(servable(61), Duration::from_secs(1));
    }

    #[test]
    fn a_one_minute_code_is_never_served_from_the_cache() {
        assert_eq!(servable(60), Duration::ZERO);
    }

    #[test]
    fn a_code_half_way_through_its_life_is_served_for_what_is_left_less_the_margin() {
        let t = ticket(7_200);
        let later = t.created_at + time::Duration::seconds(3_600);
        assert_eq!(
            t.servable_for(later),
            Some(Duration::from_secs(3_600 - 720))
        );
    }
}
