//! A cached code: its ticket and the answers rendered from it, within a budget of bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use time::OffsetDateTime;

use super::rendering::AnswerKind;
use crate::domain::{LastWeek, Ticket};

/// Bytes of rendered answers the shared cache keeps: pages of hot codes are served as
/// stored bytes, but 100,000 cached tickets must not also mean 100,000 stored pages and
/// images. (Each worker's own copy of hot answers has its own bound,
/// [`super::worker_answers::MAX_CODES`].)
pub const RENDERED_BUDGET_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes of rendered answers held by the entries of one [`super::CodeService`]. A field of
/// the service, not a process-wide count: two services in one process (tests, or an
/// embedding program) do not spend each other's budget.
#[derive(Debug)]
pub struct RenderedBudget {
    limit: u64,
    used: AtomicU64,
}

impl RenderedBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
        }
    }

    fn reserve(&self, bytes: u64) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// What a page was rendered under beyond its ticket, and is served under only: the label
/// generation (a label change anywhere renders pages again: labels change rarely, pages are
/// read constantly) and the last-week warning it shows, so that a page rendered before its
/// code entered its last week is not served after, nor one saying "within 5 days" once 4
/// are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageStamp {
    pub generation: u64,
    pub last_week: Option<LastWeek>,
}

impl PageStamp {
    /// The stamp a page of a code expiring at `expires_at` has now. Reads the clock for a
    /// temporary code only: a permanent code has no last week.
    pub fn now(generation: u64, expires_at: Option<OffsetDateTime>) -> Self {
        Self {
            generation,
            last_week: expires_at
                .and_then(|expires_at| LastWeek::at(expires_at, OffsetDateTime::now_utc())),
        }
    }

    /// The stamp of an answer that is not a page (which nothing makes stale but its ticket).
    pub fn not_a_page(generation: u64) -> Self {
        Self {
            generation,
            last_week: None,
        }
    }
}

/// A cached code: its ticket, and the answers rendered from it, so that a cached code is
/// served without rendering a template, JSON or an image again, in one cache look-up.
pub struct CodeEntry {
    pub ticket: Ticket,
    /// The page, with the stamp it was rendered under.
    page: ArcSwapOption<(PageStamp, Bytes)>,
    json: ArcSwapOption<Bytes>,
    png: ArcSwapOption<Bytes>,
    svg: ArcSwapOption<Bytes>,
    budget: Arc<RenderedBudget>,
    /// Bytes this entry holds against the budget, given back when it is dropped.
    held: AtomicU64,
}

impl AsRef<Ticket> for CodeEntry {
    fn as_ref(&self) -> &Ticket {
        &self.ticket
    }
}

impl Drop for CodeEntry {
    fn drop(&mut self) {
        self.budget.release(*self.held.get_mut());
    }
}

impl CodeEntry {
    pub fn new(ticket: Ticket, budget: Arc<RenderedBudget>) -> Self {
        Self {
            ticket,
            page: ArcSwapOption::empty(),
            json: ArcSwapOption::empty(),
            png: ArcSwapOption::empty(),
            svg: ArcSwapOption::empty(),
            budget,
            held: AtomicU64::new(0),
        }
    }

    /// The stamp an answer of `kind` of this code has now.
    pub fn stamp(&self, kind: AnswerKind, generation: u64) -> PageStamp {
        match kind {
            AnswerKind::Page => PageStamp::now(generation, self.ticket.expires_at),
            _ => PageStamp::not_a_page(generation),
        }
    }

    /// The answer of `kind` if it was kept; a page only if it was rendered under `stamp`.
    pub fn answer(&self, kind: AnswerKind, stamp: PageStamp) -> Option<Bytes> {
        let kept = |slot: &ArcSwapOption<Bytes>| slot.load().as_deref().cloned();
        match kind {
            AnswerKind::Page => {
                let page = self.page.load();
                page.as_ref()
                    .filter(|page| page.0 == stamp)
                    .map(|page| page.1.clone())
            }
            AnswerKind::Json => kept(&self.json),
            AnswerKind::Png => kept(&self.png),
            AnswerKind::Svg => kept(&self.svg),
        }
    }

    /// Keeps a rendered answer, if the budget has room; a page with the stamp it was
    /// rendered under.
    pub fn keep(&self, kind: AnswerKind, stamp: PageStamp, body: &Bytes) {
        if !self.reserve(body.len()) {
            return;
        }
        let swap = |slot: &ArcSwapOption<Bytes>| {
            slot.swap(Some(Arc::new(body.clone()))).map(|old| old.len())
        };
        let replaced = match kind {
            AnswerKind::Page => self
                .page
                .swap(Some(Arc::new((stamp, body.clone()))))
                .map(|old| old.1.len()),
            AnswerKind::Json => swap(&self.json),
            AnswerKind::Png => swap(&self.png),
            AnswerKind::Svg => swap(&self.svg),
        };
        if let Some(bytes) = replaced {
            self.release(bytes);
        }
    }

    fn reserve(&self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let reserved = self.budget.reserve(bytes);
        if reserved {
            self.held.fetch_add(bytes, Ordering::Relaxed);
        }
        reserved
    }

    fn release(&self, bytes: usize) {
        self.budget.release(bytes as u64);
        self.held.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stamp of a page under label generation `generation`, for a code not in its
    /// last week.
    fn stamp(generation: u64) -> PageStamp {
        PageStamp::not_a_page(generation)
    }

    #[test]
    fn answers_are_kept_within_the_budget_and_given_back_when_dropped() {
        let budget = Arc::new(RenderedBudget::new(10));
        let entry = CodeEntry::new(Ticket::created_now(604_800), budget.clone());

        entry.keep(AnswerKind::Json, stamp(0), &Bytes::from_static(b"123456"));
        entry.keep(AnswerKind::Png, stamp(0), &Bytes::from_static(b"123456"));

        assert_eq!(
            entry.answer(AnswerKind::Json, stamp(0)).as_deref(),
            Some(&b"123456"[..])
        );
        assert_eq!(
            entry.answer(AnswerKind::Png, stamp(0)),
            None,
            "over the budget"
        );
        assert_eq!(budget.used(), 6);
        drop(entry);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_page_is_served_under_the_label_generation_it_was_rendered_in() {
        let budget = Arc::new(RenderedBudget::new(100));
        let entry = CodeEntry::new(Ticket::created_now(604_800), budget.clone());

        entry.keep(AnswerKind::Page, stamp(3), &Bytes::from_static(b"page"));
        entry.keep(AnswerKind::Page, stamp(4), &Bytes::from_static(b"newer"));

        assert_eq!(entry.answer(AnswerKind::Page, stamp(3)), None);
        assert_eq!(
            entry.answer(AnswerKind::Page, stamp(4)).as_deref(),
            Some(&b"newer"[..])
        );
        assert_eq!(budget.used(), 5, "the replaced page was given back");
        assert_eq!(entry.answer(AnswerKind::Svg, stamp(4)), None);
    }

    #[test]
    fn a_page_kept_before_its_code_s_last_week_is_a_miss_once_it_began() {
        // A 10-day code with a week and a second and a half left: its page is rendered
        // without the warning, and the week runs out while it is kept.
        let now = OffsetDateTime::now_utc();
        let expires_at = now + time::Duration::days(7) + time::Duration::milliseconds(1_500);
        let ticket = Ticket {
            expires_at: Some(expires_at),
            created_at: expires_at - time::Duration::days(10),
            ..Ticket::created_now(864_000)
        };
        let entry = CodeEntry::new(ticket, Arc::new(RenderedBudget::new(100)));
        let before = entry.stamp(AnswerKind::Page, 0);
        assert_eq!(before.last_week, None);
        entry.keep(AnswerKind::Page, before, &Bytes::from_static(b"no warning"));
        assert!(entry.answer(AnswerKind::Page, before).is_some());

        std::thread::sleep(std::time::Duration::from_millis(1_700));
        let after = entry.stamp(AnswerKind::Page, 0);

        assert_eq!(after.last_week, Some(LastWeek { days: 7 }));
        assert_eq!(entry.answer(AnswerKind::Page, after), None);
    }
}
