//! Codes, and every copy kept of them. One entry point, [`WorkerCodes::answer`], takes a
//! parsed [`CodeRequest`] and the kind of answer wanted (page, JSON, PNG, SVG) and returns
//! its bytes from the cheapest source first:
//!
//! 1. the worker's own copy of the answers of the codes it served last
//!    ([`WorkerAnswers`]), under the current label generation;
//! 2. the shared cache ([`ticket_cache`]), whose entries keep the answers rendered from
//!    their ticket within a budget of bytes ([`entry`]);
//! 3. for permanent codes, the inventory in the database (a live temporary code is loaded
//!    at start-up, so a temporary code missing from the cache is new);
//! 4. WeChat, within each client's and the service's allowance of new codes
//!    ([`allowance`]). A new code is shown only once the inventory has recorded it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::domain::{CodeRequest, ImageRequest, Ticket};
use crate::store::codes::{CLAIM_LEASE, Claim};
use crate::store::{Store, StoreError};
use crate::telemetry;
use crate::telemetry::metric_names::TICKET_CACHE;
use crate::wechat::{
    Quota, SharedTokens, TokenCache, TokenError, UpstreamError, WechatClient, create_code,
};

mod allowance;
mod entry;
mod rendering;
mod shared_tokens;
mod ticket_cache;
mod worker_answers;

use allowance::Allowance;
pub use allowance::NewCodeAllowance;
use entry::{CodeEntry, PageStamp, RENDERED_BUDGET_BYTES, RenderedBudget};
pub use rendering::{AnswerKind, Presentation, RenderFailure, file_stem, safe_file_name};
use ticket_cache::TicketCache;
use worker_answers::WorkerAnswers;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CodeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client has used its allowance of new codes; it may try again after this.
    #[error("too many new codes: try again in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The service as a whole has used its allowance of new codes per minute.
    #[error("too many new codes on this server: try again in {} s", .retry_after.as_secs())]
    ServerBusy { retry_after: Duration },
    /// WeChat created the code, but the inventory could not record it, so it is not shown
    /// (a page is a promise that the code is remembered). The ticket is kept in memory and
    /// recorded on the next request, not created again.
    #[error("the new code could not be saved: {0}")]
    NotRecorded(String),
    /// Whether the scene already has a permanent code could not be read; none is created
    /// while that is unknown.
    #[error("earlier codes could not be read: {0}")]
    Unknown(String),
    /// The access token the replicas share could not be read or saved; no code was
    /// created.
    #[error("{0}")]
    TokenUnshared(String),
    /// The code exists, but an answer could not be rendered from it.
    #[error(transparent)]
    Unrendered(Arc<RenderFailure>),
}

impl From<TokenError> for CodeError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Upstream(e) => CodeError::Upstream(e),
            unshared @ TokenError::Unshared(_) => CodeError::TokenUnshared(unshared.to_string()),
        }
    }
}

// Handles registered once per worker: a cache hit is the hot path, and looking a labelled
// counter up in the registry would cost more than the hit itself.
thread_local! {
    static TICKET_HITS: metrics::Counter = ticket_counter("hit");
    static TICKET_MISSES: metrics::Counter = ticket_counter("miss");
}

/// Counts a ticket cache hit, the shared cache's or a worker's copy's.
fn count_ticket_hit() {
    TICKET_HITS.with(|hits| hits.increment(1));
}

fn ticket_counter(result: &'static str) -> metrics::Counter {
    metrics::counter!(
        TICKET_CACHE,
        "result" => result,
        "worker" => telemetry::worker()
    )
}

/// Whether a ticket may still be shown (permanent ones always).
fn servable(ticket: &Ticket) -> bool {
    ticket
        .servable_for(time::OffsetDateTime::now_utc())
        .is_none_or(|left| !left.is_zero())
}

/// Codes created on WeChat that the inventory has not recorded yet, at most this many: a
/// bound on what an outage of the database can hold in memory.
const MAX_UNRECORDED: usize = 10_000;

/// How long WeChat's count of today's creates is shown before it is read again: staff
/// looking at the status page see it move within a minute, and a page left open costs
/// WeChat one call a minute, not one per view.
const QUOTA_FRESH_FOR: Duration = Duration::from_secs(60);

/// How often a process waiting for another's new code looks for it.
const CLAIM_POLL: Duration = Duration::from_millis(100);

/// At most this many images of a chosen size are drawn at once, whoever asks: a 4096-pixel
/// one holds 16 MB of pixels while it is drawn (three times that in colour) and keeps a core
/// busy, so clients asking for many at once wait their turn instead of taking the memory.
const DRAWN_AT_ONCE: usize = 2;

/// The caches and allowances of codes, shared by every worker.
pub struct CodeService {
    tokens: TokenCache,
    /// Today's `qrcode/create` quota as WeChat last said ([`QUOTA_FRESH_FOR`]).
    quota: moka::future::Cache<(), Quota>,
    tickets: TicketCache<CodeEntry>,
    store: Store,
    allowance: Allowance,
    /// Created, not yet recorded (the database was failing): used again, not created again.
    unrecorded: Mutex<HashMap<CodeRequest, Ticket>>,
    /// Bytes of answers the cached entries keep.
    rendered_budget: Arc<RenderedBudget>,
    presentation: Presentation,
    /// Permits to draw an image of a chosen size ([`DRAWN_AT_ONCE`]).
    drawing: tokio::sync::Semaphore,
}

impl CodeService {
    /// The codes of AppID `appid`, whose access token is shared through `store` with the
    /// other replicas on its database (kept by this process alone on SQLite).
    pub fn new(
        store: Store,
        appid: &str,
        allowance: NewCodeAllowance,
        presentation: Presentation,
    ) -> Self {
        let shared = store
            .token_share(appid)
            .map(|share| Arc::new(share) as Arc<dyn SharedTokens>);
        Self {
            tokens: TokenCache::new(shared),
            quota: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(QUOTA_FRESH_FOR)
                .build(),
            tickets: TicketCache::new(),
            store,
            allowance: Allowance::new(allowance),
            unrecorded: Mutex::new(HashMap::new()),
            rendered_budget: Arc::new(RenderedBudget::new(RENDERED_BUDGET_BYTES)),
            presentation,
            drawing: tokio::sync::Semaphore::new(DRAWN_AT_ONCE),
        }
    }

    fn entry_of(&self, ticket: Ticket) -> Arc<CodeEntry> {
        Arc::new(CodeEntry::new(ticket, self.rendered_budget.clone()))
    }

    /// The cached entry of `code`, asked for by `client` (a user name or an address, worked
    /// out only on a miss). Concurrent misses for one code make one database look-up and at
    /// most one WeChat call.
    async fn entry(
        &self,
        wechat: &WechatClient,
        code: &CodeRequest,
        client: impl FnOnce() -> String,
    ) -> Result<Arc<CodeEntry>, CodeError> {
        if let Some(entry) = self.tickets.get(code).await {
            count_ticket_hit();
            return Ok(entry);
        }
        TICKET_MISSES.with(|misses| misses.increment(1));
        // Boxed: the miss path holds the WeChat call's future, about 15 KB, which would
        // otherwise be part of every request's future, allocated and copied on every hit.
        Box::pin(self.fetch(wechat, code, client)).await
    }

    /// The miss path of [`Self::entry`].
    async fn fetch(
        &self,
        wechat: &WechatClient,
        code: &CodeRequest,
        client: impl FnOnce() -> String,
    ) -> Result<Arc<CodeEntry>, CodeError> {
        // A code created earlier that the inventory could not record costs WeChat nothing
        // more: it is recorded now, not charged again.
        if !self.has_unrecorded(code) {
            self.allowance.spend(client)?;
        }
        self.tickets
            .get_with(code, self.recorded_or_created(wechat, code, None))
            .await
    }

    /// The code `code` for a row of a batch, and whether it existed already (a live code
    /// is reused, never created again). No client's allowance is spent: a batch's runner
    /// keeps WeChat's pace itself. The code goes into the cache the pages are served from.
    pub async fn batch_code(
        &self,
        wechat: &WechatClient,
        code: &CodeRequest,
    ) -> Result<(Ticket, bool), CodeError> {
        if let Some(entry) = self.tickets.get(code).await {
            return Ok((entry.ticket.clone(), true));
        }
        let created = AtomicBool::new(false);
        let entry = self
            .tickets
            .get_with(code, self.recorded_or_created(wechat, code, Some(&created)))
            .await?;
        Ok((entry.ticket.clone(), !created.load(Ordering::Relaxed)))
    }

    /// Whether `code` has a live code already (in the cache, or recorded by any process).
    pub async fn has_live_code(&self, code: &CodeRequest) -> Result<bool, StoreError> {
        if self.tickets.get(code).await.is_some() {
            return Ok(true);
        }
        Ok(self.store.recorded_code(code).await?.is_some())
    }

    /// The entry of `code` missing from the cache: recorded already, or created on WeChat
    /// and recorded (then `created` is set).
    async fn recorded_or_created(
        &self,
        wechat: &WechatClient,
        code: &CodeRequest,
        created: Option<&AtomicBool>,
    ) -> Result<Arc<CodeEntry>, CodeError> {
        // A code recorded earlier (a permanent one, or one another replica made) is
        // served, and the claim keeps replicas sharing the database from creating the
        // same code twice: a second permanent code for a scene would waste one of the
        // account's 100,000 for good. Unknown is not "none": a failed look-up must not
        // create a second one.
        if let Some(ticket) = self.claim(code).await? {
            return Ok(self.entry_of(ticket));
        }
        let ticket = match self.unrecorded_ticket(code) {
            Some(ticket) => ticket,
            None => match create_code(wechat, &self.tokens, code).await {
                Ok(ticket) => {
                    // Kept until recorded: a request that goes away before the record is
                    // committed does not lose the code.
                    self.keep_unrecorded(code, &ticket);
                    if let Some(created) = created {
                        created.store(true, Ordering::Relaxed);
                    }
                    ticket
                }
                Err(e) => {
                    // Another replica may try at once, not after the lease.
                    if let Err(release) = self.store.release_claim(code).await {
                        log::debug!("a failed code's claim stays to its lease: {release}");
                    }
                    return Err(e.into());
                }
            },
        };
        self.store
            .record_code(code, &ticket)
            .await
            .map_err(|e| CodeError::NotRecorded(e.to_string()))?;
        self.unrecorded_tickets().remove(code);
        Ok(self.entry_of(ticket))
    }

    /// The recorded code to serve for `code`, or `None` once this process holds the claim
    /// to create it; while another process holds it, looks again every
    /// [`CLAIM_POLL`] until that code is recorded or the claim's lease runs out.
    async fn claim(&self, code: &CodeRequest) -> Result<Option<Ticket>, CodeError> {
        let give_up = std::time::Instant::now() + CLAIM_LEASE + CLAIM_POLL;
        loop {
            let claim = self
                .store
                .claim_code(code)
                .await
                .map_err(|e| CodeError::Unknown(e.to_string()))?;
            match claim {
                Claim::Recorded(ticket) => return Ok(Some(ticket)),
                Claim::Ours => return Ok(None),
                Claim::HeldElsewhere if std::time::Instant::now() < give_up => {
                    actix_web::rt::time::sleep(CLAIM_POLL).await;
                }
                Claim::HeldElsewhere => {
                    return Err(CodeError::Unknown(
                        "another replica has been creating this code for too long".into(),
                    ));
                }
            }
        }
    }

    /// The answer of `kind` kept in `entry`, or rendered now and kept, with the stamp it
    /// was rendered under.
    async fn rendered(
        &self,
        entry: &CodeEntry,
        code: &CodeRequest,
        kind: AnswerKind,
        generation: u64,
    ) -> Result<(Bytes, PageStamp), CodeError> {
        // One clock reading decides both which kept page may be served and which warning a
        // new one shows, so a page is never kept under a stamp it was not rendered with.
        let stamp = entry.stamp(kind, generation);
        if let Some(body) = entry.answer(kind, stamp) {
            return Ok((body, stamp));
        }
        let unrendered = |failure| CodeError::Unrendered(Arc::new(failure));
        let label = match kind {
            AnswerKind::Page => self
                .store
                .label(&code.scene.to_string())
                .await
                .map_err(|e| unrendered(RenderFailure::new(kind, e)))?,
            _ => None,
        };
        let body = self
            .presentation
            .render(kind, code, &entry.ticket, label, stamp.last_week)
            .map_err(unrendered)?;
        entry.keep(kind, stamp, &body);
        Ok((body, stamp))
    }

    /// The image `request` asks for beyond the kept download, drawn for this request alone:
    /// kept, every size a client names would be a new entry to hold.
    async fn drawn(&self, entry: &CodeEntry, request: &ImageRequest) -> Result<Bytes, CodeError> {
        let kind = AnswerKind::from(request.format);
        let unrendered = |failure| CodeError::Unrendered(Arc::new(failure));
        if let Some(size) = request.size {
            let job = self.presentation.sized_png(&entry.ticket, size);
            let _permit = self
                .drawing
                .acquire()
                .await
                .map_err(|e| unrendered(RenderFailure::new(kind, e)))?;
            return actix_web::rt::task::spawn_blocking(job)
                .await
                .map_err(|e| unrendered(RenderFailure::new(kind, e)))?
                .map_err(unrendered);
        }
        let label = self
            .store
            .label(&request.code.scene.to_string())
            .await
            .map_err(|e| unrendered(RenderFailure::new(kind, e)))?;
        self.presentation
            .captioned_svg(&request.code, &entry.ticket, label.as_deref())
            .map_err(unrendered)
    }

    fn has_unrecorded(&self, code: &CodeRequest) -> bool {
        self.unrecorded_tickets().contains_key(code)
    }

    /// A ticket created earlier that the inventory has not recorded, if still servable.
    fn unrecorded_ticket(&self, code: &CodeRequest) -> Option<Ticket> {
        let mut unrecorded = self.unrecorded_tickets();
        let ticket = unrecorded.get(code)?.clone();
        if servable(&ticket) {
            Some(ticket)
        } else {
            unrecorded.remove(code);
            None
        }
    }

    /// Keeps `ticket` until it is recorded; when full, after dropping those no longer
    /// servable.
    fn keep_unrecorded(&self, code: &CodeRequest, ticket: &Ticket) {
        let mut unrecorded = self.unrecorded_tickets();
        if unrecorded.len() >= MAX_UNRECORDED {
            unrecorded.retain(|_, ticket| servable(ticket));
        }
        if unrecorded.len() < MAX_UNRECORDED {
            unrecorded.insert(code.clone(), ticket.clone());
        }
    }

    fn unrecorded_tickets(&self) -> std::sync::MutexGuard<'_, HashMap<CodeRequest, Ticket>> {
        // Nothing can be left half-done under this lock: recover it after a panic.
        self.unrecorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fills the cache with the live codes of the database, so that a restart creates
    /// nothing that still exists. Returns how many were loaded.
    pub async fn load_live_codes(&self) -> Result<usize, StoreError> {
        let live = self.store.live_codes().await?;
        let count = live.len();
        for (code, ticket) in live {
            self.tickets.insert(code, self.entry_of(ticket)).await;
        }
        Ok(count)
    }

    /// Today's `qrcode/create` quota, read from WeChat at most once a [`QUOTA_FRESH_FOR`]
    /// (concurrent readers share the call; a failure is not kept).
    async fn create_quota(&self, wechat: &WechatClient) -> Result<Quota, CodeError> {
        self.quota
            .try_get_with((), async {
                self.tokens
                    .with_token(
                        wechat,
                        |token| async move { wechat.create_quota(&token).await },
                    )
                    .await
            })
            .await
            .map_err(|e| CodeError::from((*e).clone()))
    }

    /// How many times WeChat rejected this process's access token within `window`.
    pub fn token_rejections_within(&self, window: Duration) -> usize {
        self.tokens.rejections_within(window)
    }

    /// The forced refreshes of the access token spent today, by every replica.
    pub async fn forced_refreshes_today(&self) -> Result<u32, CodeError> {
        Ok(self.tokens.forced_refreshes_today().await?)
    }

    /// How codes are drawn and shown (with the branding, when set).
    pub fn presentation(&self) -> &Presentation {
        &self.presentation
    }

    /// Number of tickets held in the cache.
    pub async fn cached_tickets(&self) -> u64 {
        self.tickets.count().await
    }
}

/// One worker's door to the codes: the shared service, this worker's WeChat client, and
/// its own copy of the answers it served last. Built once per worker thread.
pub struct WorkerCodes {
    shared: Arc<CodeService>,
    wechat: WechatClient,
    own: WorkerAnswers,
}

impl WorkerCodes {
    pub fn new(shared: Arc<CodeService>, wechat: WechatClient) -> Self {
        Self {
            shared,
            wechat,
            own: WorkerAnswers::default(),
        }
    }

    /// Today's `qrcode/create` quota, as WeChat counts it (cached for a minute).
    pub async fn create_quota(&self) -> Result<Quota, CodeError> {
        self.shared.create_quota(&self.wechat).await
    }

    /// `code` answered as `kind`, for `client` (worked out only when a new code is created).
    pub async fn answer(
        &self,
        code: &CodeRequest,
        kind: AnswerKind,
        client: impl FnOnce() -> String,
    ) -> Result<Bytes, CodeError> {
        // Read before the label: a label saved meanwhile makes the next request render again.
        let generation = self.shared.store.label_generation();
        if let Some(body) = self.own.answer(code, kind, generation) {
            return Ok(body);
        }
        // Boxed: only a code this worker has not served lately comes here.
        Box::pin(self.answer_from_shared(code, kind, generation, client)).await
    }

    /// The image `request` asks for, for `client`: the download the page links to comes from
    /// the caches as any answer does; one of a chosen size or with a caption is drawn for
    /// this request alone.
    pub async fn image(
        &self,
        request: &ImageRequest,
        client: impl FnOnce() -> String,
    ) -> Result<Bytes, CodeError> {
        if request.is_plain() {
            return self
                .answer(&request.code, request.format.into(), client)
                .await;
        }
        let entry = self
            .shared
            .entry(&self.wechat, &request.code, client)
            .await?;
        self.shared.drawn(&entry, request).await
    }

    /// The embed view of `code`, rendered from the cached entry (not kept: embeds are
    /// few next to pages, and a view rendered per request is never stale).
    pub async fn embed(
        &self,
        code: &CodeRequest,
        client: impl FnOnce() -> String,
    ) -> Result<Bytes, CodeError> {
        let entry = self.shared.entry(&self.wechat, code, client).await?;
        let unrendered = |failure| CodeError::Unrendered(Arc::new(failure));
        let label = self
            .shared
            .store
            .label(&code.scene.to_string())
            .await
            .map_err(|e| unrendered(RenderFailure::new(AnswerKind::Page, e)))?;
        self.shared
            .presentation
            .embed(code, &entry.ticket, label)
            .map_err(unrendered)
    }

    async fn answer_from_shared(
        &self,
        code: &CodeRequest,
        kind: AnswerKind,
        generation: u64,
        client: impl FnOnce() -> String,
    ) -> Result<Bytes, CodeError> {
        let entry = self.shared.entry(&self.wechat, code, client).await?;
        let (body, stamp) = self.shared.rendered(&entry, code, kind, generation).await?;
        self.own.keep(code, &entry.ticket, kind, stamp, &body);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Lifetime;
    use crate::pages::Layout;

    fn service(store: Store) -> CodeService {
        let presentation = Presentation {
            mp_base: "https://mp.weixin.qq.com".into(),
            layout: Layout { sandbox: false },
            permanent_allowed: true,
            branding: None,
            utc_offset: time::UtcOffset::UTC,
        };
        let allowance = NewCodeAllowance {
            per_client: 0,
            in_total: 0,
        };
        CodeService::new(store, "wxtest", allowance, presentation)
    }

    fn code_one() -> CodeRequest {
        CodeRequest::from_query("scene_id=1", Lifetime::new(604_800).unwrap()).unwrap()
    }

    #[actix_web::test]
    async fn two_services_in_one_process_keep_their_own_budget() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("codes.db").display());
        let (store, _writer) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
        let (one, two) = (service(store.clone()), service(store));
        let entry = one.entry_of(Ticket::created_now(604_800));

        let (json, _) = one
            .rendered(&entry, &code_one(), AnswerKind::Json, 0)
            .await
            .unwrap();

        assert_eq!(one.rendered_budget.used(), json.len() as u64);
        assert_eq!(two.rendered_budget.used(), 0);
    }

    #[actix_web::test]
    async fn images_are_rendered_once_per_ticket_and_then_served_as_kept() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("codes.db").display());
        let (store, _writer) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
        let codes = service(store);
        let entry = codes.entry_of(Ticket::created_now(604_800));

        for kind in [AnswerKind::Png, AnswerKind::Svg] {
            let (first, _) = codes.rendered(&entry, &code_one(), kind, 0).await.unwrap();
            let (again, _) = codes.rendered(&entry, &code_one(), kind, 0).await.unwrap();

            assert!(!first.is_empty());
            // The same bytes, not an equal rendering: the second answer was not rendered.
            assert_eq!(first.as_ptr(), again.as_ptr(), "{kind:?}");
        }
    }
}
