//! A code WeChat created: its ticket, the text its image encodes, and its lifetime.

use std::time::Duration;

use time::OffsetDateTime;

/// A page must never show a code with less than this much of its life left.
const MIN_REMAINING: Duration = Duration::from_secs(60);

/// A temporary code this close to its end is not one to print: a poster stays up for
/// weeks, so its page warns against printing it.
pub const LAST_WEEK: Duration = Duration::from_secs(7 * 86_400);

/// A temporary code in its last week: it stops working within `days` days (1 to 7,
/// rounded up, so the warning never promises more time than is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastWeek {
    pub days: u32,
}

impl LastWeek {
    /// Whether a code expiring at `expires_at` is in its last week at `now`, and how many
    /// days it has left.
    pub fn at(expires_at: OffsetDateTime, now: OffsetDateTime) -> Option<Self> {
        let remaining = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
        if remaining >= LAST_WEEK {
            return None;
        }
        let days = remaining.as_secs().div_ceil(86_400).max(1);
        Some(Self {
            days: u32::try_from(days).unwrap_or(u32::MAX),
        })
    }
}

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

    /// Whether this code is in its last week at `now`; never for a permanent code.
    pub fn last_week(&self, now: OffsetDateTime) -> Option<LastWeek> {
        LastWeek::at(self.expires_at?, now)
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
    fn a_code_is_in_its_last_week_from_seven_days_before_its_end() {
        let t = ticket(10 * 86_400);
        let expires_at = t.expires_at.unwrap();
        let days_before = |days: i64| expires_at - time::Duration::days(days);

        assert_eq!(t.last_week(t.created_at), None);
        assert_eq!(t.last_week(days_before(7)), None);
        assert_eq!(
            t.last_week(days_before(7) + time::Duration::SECOND),
            Some(LastWeek { days: 7 })
        );
        assert_eq!(t.last_week(days_before(3)), Some(LastWeek { days: 3 }));
        assert_eq!(
            t.last_week(expires_at - time::Duration::minutes(5)),
            Some(LastWeek { days: 1 })
        );
    }

    #[test]
    fn a_permanent_code_has_no_last_week() {
        let t = Ticket {
            expire_seconds: None,
            expires_at: None,
            ..ticket(60)
        };
        assert_eq!(t.last_week(t.created_at), None);
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
