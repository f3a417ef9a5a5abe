//! A cached code: its ticket and the answers rendered from it, within a budget of bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::rendering::AnswerKind;
use crate::domain::Ticket;

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

/// A cached code: its ticket, and the answers rendered from it, so that a cached code is
/// served without rendering a template, JSON or an image again, in one cache look-up.
pub struct CodeEntry {
    pub ticket: Ticket,
    /// The page, with the label generation it was rendered under: a label change anywhere
    /// renders pages again (labels change rarely, pages are read constantly).
    page: ArcSwapOption<(u64, Bytes)>,
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

    /// The answer of `kind` if it was kept; a page only if it was rendered under label
    /// generation `generation`.
    pub fn answer(&self, kind: AnswerKind, generation: u64) -> Option<Bytes> {
        let kept = |slot: &ArcSwapOption<Bytes>| slot.load().as_deref().cloned();
        match kind {
            AnswerKind::Page => {
                let page = self.page.load();
                page.as_ref()
                    .filter(|page| page.0 == generation)
                    .map(|page| page.1.clone())
            }
            AnswerKind::Json => kept(&self.json),
            AnswerKind::Png => kept(&self.png),
            AnswerKind::Svg => kept(&self.svg),
        }
    }

    /// Keeps a rendered answer, if the budget has room.
    pub fn keep(&self, kind: AnswerKind, generation: u64, body: &Bytes) {
        if !self.reserve(body.len()) {
            return;
        }
        let swap = |slot: &ArcSwapOption<Bytes>| {
            slot.swap(Some(Arc::new(body.clone()))).map(|old| old.len())
        };
        let replaced = match kind {
            AnswerKind::Page => self
                .page
                .swap(Some(Arc::new((generation, body.clone()))))
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

    #[test]
    fn answers_are_kept_within_the_budget_and_given_back_when_dropped() {
        let budget = Arc::new(RenderedBudget::new(10));
        let entry = CodeEntry::new(Ticket::created_now(604_800), budget.clone());

        entry.keep(AnswerKind::Json, 0, &Bytes::from_static(b"123456"));
        entry.keep(AnswerKind::Png, 0, &Bytes::from_static(b"123456"));

        assert_eq!(
            entry.answer(AnswerKind::Json, 0).as_deref(),
            Some(&b"123456"[..])
        );
        assert_eq!(entry.answer(AnswerKind::Png, 0), None, "over the budget");
        assert_eq!(budget.used(), 6);
        drop(entry);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_page_is_served_under_the_label_generation_it_was_rendered_in() {
        let budget = Arc::new(RenderedBudget::new(100));
        let entry = CodeEntry::new(Ticket::created_now(604_800), budget.clone());

        entry.keep(AnswerKind::Page, 3, &Bytes::from_static(b"page"));
        entry.keep(AnswerKind::Page, 4, &Bytes::from_static(b"newer"));

        assert_eq!(entry.answer(AnswerKind::Page, 3), None);
        assert_eq!(
            entry.answer(AnswerKind::Page, 4).as_deref(),
            Some(&b"newer"[..])
        );
        assert_eq!(budget.used(), 5, "the replaced page was given back");
        assert_eq!(entry.answer(AnswerKind::Svg, 4), None);
    }
}
