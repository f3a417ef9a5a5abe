//! Each worker's own copy of the answers it served last, in front of the shared cache.
//!
//! Reading the shared ticket cache writes to memory the other workers also write: moka
//! notes every read (the entry's access time, its read log) and hands out a counted
//! reference to the entry, and the stored page's bytes carry a count of their own. With
//! one hot code served by two workers, each of those writes takes a cache line from the
//! other core, on every request, and none of it shows in an instruction count. Served from
//! the worker's own copy, a hot code touches only that worker's memory, which raised the
//! cached page's and the JSON's share of the bare handler's throughput in `bench/run.sh`
//! (the figures are in bench/README.md).
//!
//! The copy never outlives the ticket: it expires when the ticket stops being servable, as
//! the shared cache's entry does, and a page is kept with the stamp it was rendered under
//! (label generation and last-week warning, see [`PageStamp`]). It holds at most
//! [`MAX_CODES`] codes, outside the shared cache's budget for rendered answers: about 1 MB
//! per worker.
//!
//! Hits here are not seen by the shared cache's eviction policy. That matters only when
//! it is full (a million temporary codes): a hot code it evicted is created again by the
//! next worker that misses, while the others serve the old ticket, still valid, until it
//! expires.

use std::cell::RefCell;
use std::time::Instant;

use bytes::Bytes;
use foldhash::HashMap;
use time::OffsetDateTime;

use super::AnswerKind;
use super::entry::PageStamp;
use crate::domain::{CodeRequest, Ticket};

/// Codes kept per worker: room for the hot ones (a page and its JSON are about 3 KB). A
/// worker that serves more distinct codes than this is not serving a few hot ones, and
/// its copy starts over.
pub const MAX_CODES: usize = 256;

/// The answers one worker served last, by code. Not shared: one per worker thread.
#[derive(Default)]
pub struct WorkerAnswers {
    codes: RefCell<HashMap<CodeRequest, Answers>>,
}

struct Answers {
    /// The ticket these answers show: answers of two tickets are never mixed.
    ticket: String,
    /// When the ticket stops being servable; `None` for a permanent code.
    until: Option<Instant>,
    /// When the code stops working, which decides its page's last-week warning.
    expires_at: Option<OffsetDateTime>,
    /// The page, with the stamp it was rendered under.
    page: Option<(PageStamp, Bytes)>,
    json: Option<Bytes>,
}

impl Answers {
    fn servable(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

impl WorkerAnswers {
    /// The answer of `kind` for `code`, if this worker kept it. Only pages and JSON are
    /// kept: they are what tools and browsers ask for in bursts; images are downloads,
    /// served from the shared entry.
    pub fn answer(&self, code: &CodeRequest, kind: AnswerKind, generation: u64) -> Option<Bytes> {
        match kind {
            AnswerKind::Page => self.page(code, generation),
            AnswerKind::Json => self.json(code),
            AnswerKind::Png | AnswerKind::Svg => None,
        }
    }

    /// Keeps a copy of `code`'s answer of `kind`, showing `ticket`, if it is one kept here.
    pub fn keep(
        &self,
        code: &CodeRequest,
        ticket: &Ticket,
        kind: AnswerKind,
        stamp: PageStamp,
        body: &Bytes,
    ) {
        match kind {
            AnswerKind::Page => self.keep_page(code, ticket, stamp, body),
            AnswerKind::Json => self.keep_json(code, ticket, body),
            AnswerKind::Png | AnswerKind::Svg => {}
        }
    }

    /// The page of `code`, if this worker kept it under the stamp it has now (label
    /// generation `generation`, and the same last-week warning) and its ticket is still
    /// servable.
    fn page(&self, code: &CodeRequest, generation: u64) -> Option<Bytes> {
        self.served(code, |answers| {
            let (kept_under, page) = answers.page.as_ref()?;
            (*kept_under == PageStamp::now(generation, answers.expires_at)).then(|| page.clone())
        })
    }

    /// The JSON of `code`, if this worker kept it and its ticket is still servable.
    fn json(&self, code: &CodeRequest) -> Option<Bytes> {
        self.served(code, |answers| answers.json.clone())
    }

    /// `pick` from the answers of `code` while its ticket is servable; a hit counts as a
    /// ticket cache hit.
    fn served(
        &self,
        code: &CodeRequest,
        pick: impl FnOnce(&Answers) -> Option<Bytes>,
    ) -> Option<Bytes> {
        let codes = self.codes.borrow();
        let answers = codes.get(code).filter(|a| a.servable(Instant::now()))?;
        let answer = pick(answers)?;
        super::count_ticket_hit();
        Some(answer)
    }

    /// Keeps a copy of the page of `code` showing `ticket`.
    fn keep_page(&self, code: &CodeRequest, ticket: &Ticket, stamp: PageStamp, page: &Bytes) {
        // A copy, not a shared reference: the point is that no other core touches it.
        self.update(code, ticket, |answers| {
            answers.page = Some((stamp, Bytes::copy_from_slice(page)));
        });
    }

    /// Keeps a copy of the JSON of `code` showing `ticket`.
    fn keep_json(&self, code: &CodeRequest, ticket: &Ticket, json: &Bytes) {
        self.update(code, ticket, |answers| {
            answers.json = Some(Bytes::copy_from_slice(json));
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.codes.borrow().len()
    }

    fn update(&self, code: &CodeRequest, ticket: &Ticket, set: impl FnOnce(&mut Answers)) {
        let now = Instant::now();
        // As the shared cache reckons it (see `TicketExpiry`): a ticket with no servable
        // life left is not kept at all.
        let until = match ticket.servable_for(OffsetDateTime::now_utc()) {
            None => None,
            Some(left) if left.is_zero() => return,
            Some(left) => Some(now + left),
        };
        let mut codes = self.codes.borrow_mut();
        if codes.len() >= MAX_CODES && !codes.contains_key(code) {
            codes.retain(|_, answers| answers.servable(now));
            if codes.len() >= MAX_CODES {
                codes.clear();
            }
        }
        let fresh = || Answers {
            ticket: ticket.ticket.clone(),
            until,
            expires_at: ticket.expires_at,
            page: None,
            json: None,
        };
        let answers = codes.entry(code.clone()).or_insert_with(fresh);
        if answers.ticket != ticket.ticket {
            *answers = fresh();
        }
        set(answers);
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::domain::Lifetime;

    fn code(query: &str) -> CodeRequest {
        CodeRequest::from_query(query, Lifetime::new(604_800).unwrap()).unwrap()
    }

    /// A temporary ticket with `left` of its `lifetime` seconds still to live.
    fn ticket(name: &str, lifetime: u32, left: Duration) -> Ticket {
        let now = OffsetDateTime::now_utc();
        Ticket {
            ticket: name.into(),
            url: format!("http://weixin.qq.com/q/{name}"),
            expire_seconds: Some(lifetime),
            created_at: now - Duration::seconds(lifetime.into()) + left,
            expires_at: Some(now + left),
        }
    }

    /// The stamp of a page under label generation `generation`, of a code not in its
    /// last week.
    fn stamp(generation: u64) -> PageStamp {
        PageStamp::not_a_page(generation)
    }

    fn permanent(name: &str) -> Ticket {
        Ticket {
            expire_seconds: None,
            expires_at: None,
            ..ticket(name, 60, Duration::ZERO)
        }
    }

    #[test]
    fn a_kept_page_is_served_under_its_label_generation_only() {
        let answers = WorkerAnswers::default();
        let one = code("scene_id=1");
        answers.keep_page(
            &one,
            &ticket("t1", 2_592_000, Duration::days(20)),
            stamp(3),
            &"page".into(),
        );

        assert_eq!(answers.page(&one, 3).as_deref(), Some(&b"page"[..]));
        assert_eq!(answers.page(&one, 4), None);
        assert_eq!(answers.page(&code("scene_id=2"), 3), None);
        assert_eq!(answers.json(&one), None);
    }

    #[test]
    fn a_kept_page_is_a_miss_once_its_code_enters_its_last_week() {
        let answers = WorkerAnswers::default();
        let one = code("scene_id=1&expire_seconds=864000");
        // A week and a second and a half left (a margin for a busy machine): kept without the warning.
        let live = ticket(
            "t1",
            864_000,
            Duration::days(7) + Duration::milliseconds(1_500),
        );
        answers.keep_page(&one, &live, stamp(0), &"no warning".into());
        assert!(answers.page(&one, 0).is_some());

        std::thread::sleep(std::time::Duration::from_millis(1_700));

        assert_eq!(answers.page(&one, 0), None);
    }

    #[test]
    fn the_copy_is_the_worker_s_own_bytes() {
        let answers = WorkerAnswers::default();
        let one = code("scene_id=1");
        let shared = Bytes::from(vec![b'x'; 2048]);
        answers.keep_json(&one, &ticket("t1", 604_800, Duration::days(7)), &shared);

        let served = answers.json(&one).unwrap();
        assert_eq!(served, shared);
        assert_ne!(served.as_ptr(), shared.as_ptr());
    }

    #[test]
    fn a_ticket_with_no_servable_life_left_is_not_kept() {
        let answers = WorkerAnswers::default();
        let one = code("scene_id=1&expire_seconds=120");
        // 120 s codes keep a minute in hand: 59 s left is not servable.
        answers.keep_page(
            &one,
            &ticket("t1", 120, Duration::seconds(59)),
            stamp(0),
            &"p".into(),
        );

        assert_eq!(answers.page(&one, 0), None);
        assert_eq!(answers.len(), 0);
    }

    #[test]
    fn a_kept_answer_expires_with_its_ticket() {
        let answers = WorkerAnswers::default();
        let one = code("scene_id=1&expire_seconds=61");
        // Servable for a quarter of a second more.
        let short = ticket(
            "t1",
            61,
            Duration::seconds(60) + Duration::milliseconds(250),
        );
        answers.keep_json(&one, &short, &"j".into());
        assert!(answers.json(&one).is_some());

        std::thread::sleep(std::time::Duration::from_millis(1_700));
        assert_eq!(answers.json(&one), None);
    }

    #[test]
    fn a_permanent_code_s_answers_do_not_expire() {
        let answers = WorkerAnswers::default();
        let door = code("scene_str=door&permanent=1");
        answers.keep_json(&door, &permanent("p1"), &"j".into());

        assert!(answers.json(&door).is_some());
    }

    #[test]
    fn answers_of_a_new_ticket_replace_the_old_ticket_s() {
        let answers = WorkerAnswers::default();
        let one = code("scene_id=1");
        answers.keep_page(
            &one,
            &ticket("old", 604_800, Duration::days(1)),
            stamp(0),
            &"old page".into(),
        );
        answers.keep_json(
            &one,
            &ticket("new", 604_800, Duration::days(7)),
            &"new json".into(),
        );

        assert_eq!(answers.page(&one, 0), None, "the old ticket's page is gone");
        assert_eq!(answers.json(&one).as_deref(), Some(&b"new json"[..]));
    }

    #[test]
    fn the_copy_holds_at_most_max_codes() {
        let answers = WorkerAnswers::default();
        let live = ticket("t", 604_800, Duration::days(7));
        for scene in 1..=MAX_CODES + 10 {
            answers.keep_json(&code(&format!("scene_id={scene}")), &live, &"j".into());
            assert!(answers.len() <= MAX_CODES);
        }
        // Started over when full: the newest code is kept.
        assert!(
            answers
                .json(&code(&format!("scene_id={}", MAX_CODES + 10)))
                .is_some()
        );
    }
}
