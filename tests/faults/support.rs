//! What the fault tests share beyond the api helpers: signed pushes sent to a service by
//! address, with the outcome of each, and the events a database file holds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use scene_qr::emulator::{PushTarget, sign_push_now};
use scene_qr::wechat::push::to_xml;

/// The Token the child services are started with (`WECHAT_TOKEN`).
pub const TOKEN: &str = "faultstoken";

/// CreateTime of every push: 2000-01-02, inside the range the statistics are asked for.
const CREATED_AT: &str = "946771200";

/// `DATABASE_URL` of a database file in `dir`.
pub fn database_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("events.db").display())
}

/// A client of limited patience: every request and its body within `timeout`.
pub fn client(timeout: Duration, connections: usize) -> awc::Client {
    awc::Client::builder()
        .timeout(timeout)
        .disable_redirects()
        .connector(awc::Connector::new().timeout(timeout).limit(connections))
        .finish()
}

/// What became of one push.
#[derive(Debug, Clone)]
pub struct Answer {
    pub openid: String,
    /// `None`: no answer (connection refused or reset, or the client gave up).
    pub status: Option<u16>,
    /// Answered 200 `success`: WeChat would not send it again.
    pub acknowledged: bool,
    pub sent: Instant,
    pub answered: Instant,
}

impl Answer {
    pub fn took(&self) -> Duration {
        self.answered - self.sent
    }
}

/// Sends signed SCAN pushes to the `/wechat/callback` of the service at `address`.
#[derive(Clone)]
pub struct Pusher {
    target: PushTarget,
    client: awc::Client,
    timeout: Duration,
}

impl Pusher {
    /// `address` is `http://127.0.0.1:PORT`; each push gets an answer within `timeout`
    /// or counts as unanswered.
    pub fn new(address: &str, timeout: Duration, connections: usize) -> Self {
        assert!(
            address.starts_with("http://127.0.0.1:"),
            "tests stay on loopback: {address}"
        );
        Self {
            target: PushTarget {
                url: format!("{address}/wechat/callback"),
                token: TOKEN.into(),
                aes_key: None,
                appid: String::new(),
            },
            client: client(timeout, connections),
            timeout,
        }
    }

    /// A SCAN of scene `fault` by `openid`, signed now with a fresh nonce.
    pub async fn push(&self, openid: String) -> Answer {
        let xml = to_xml(&[
            ("ToUserName", "gh_45072270791c"),
            ("FromUserName", &openid),
            ("CreateTime", CREATED_AT),
            ("MsgType", "event"),
            ("Event", "SCAN"),
            ("EventKey", "fault"),
        ]);
        let signed = sign_push_now(&self.target, &xml);
        let request = self
            .client
            .post(format!("{}?{}", self.target.url, signed.query))
            .send_body(signed.body);
        let sent = Instant::now();
        let answer = actix_web::rt::time::timeout(self.timeout, async {
            let mut response = request.await.ok()?;
            let body = response.body().await.ok()?;
            Some((response.status().as_u16(), body))
        })
        .await
        .ok()
        .flatten();
        let answered = Instant::now();
        Answer {
            acknowledged: answer
                .as_ref()
                .is_some_and(|(status, body)| *status == 200 && body.as_ref() == b"success"),
            status: answer.map(|(status, _)| status),
            openid,
            sent,
            answered,
        }
    }
}

/// The openids of the events stored in the database at `url`, read on a connection of
/// the test's own.
pub async fn stored_openids(url: &str) -> HashSet<String> {
    let pool = sqlx::SqlitePool::connect(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    let stored = sqlx::query_scalar("SELECT openid FROM scan_events")
        .fetch_all(&pool)
        .await
        .expect("read scan_events")
        .into_iter()
        .collect();
    pool.close().await;
    stored
}

/// The acknowledged openids the database does not hold, sorted.
pub fn acknowledged_but_missing(answers: &[Answer], stored: &HashSet<String>) -> Vec<String> {
    let mut missing: Vec<String> = answers
        .iter()
        .filter(|a| a.acknowledged && !stored.contains(&a.openid))
        .map(|a| a.openid.clone())
        .collect();
    missing.sort();
    missing
}

/// GET `url` with a fresh connection; the status (`None` without an answer in `limit`)
/// and how long it took.
pub async fn timed_get(url: &str, limit: Duration) -> (Option<u16>, Duration) {
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "tests stay on loopback: {url}"
    );
    let client = client(limit, 1);
    let started = Instant::now();
    let status = actix_web::rt::time::timeout(limit, async {
        let mut response = client.get(url).send().await.ok()?;
        response.body().await.ok()?;
        Some(response.status().as_u16())
    })
    .await
    .ok()
    .flatten();
    (status, started.elapsed())
}

/// GET `url`: the status (`None` without an answer) and the body as text.
pub async fn get_text(client: &awc::Client, url: &str) -> (Option<u16>, String) {
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "tests stay on loopback: {url}"
    );
    match client.get(url).send().await {
        Ok(mut response) => {
            let body = response.body().await.unwrap_or_default();
            (
                Some(response.status().as_u16()),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
        Err(e) => (None, e.to_string()),
    }
}

/// A burst of `pushes` pushes by users `{prefix}0`, `{prefix}1`, ..., spread over `pushers`
/// in turn, running beside the caller, which learns how many are acknowledged so far.
pub struct Burst {
    pub acknowledged_so_far: std::rc::Rc<std::cell::Cell<usize>>,
    task: actix_web::rt::task::JoinHandle<Vec<Answer>>,
}

impl Burst {
    pub fn start(pushers: &[Pusher], prefix: &str, pushes: usize) -> Self {
        let acknowledged_so_far = std::rc::Rc::new(std::cell::Cell::new(0_usize));
        let sends = (0..pushes).map(|i| {
            let pusher = pushers[i % pushers.len()].clone();
            let count = acknowledged_so_far.clone();
            let openid = format!("{prefix}{i}");
            async move {
                let answer = pusher.push(openid).await;
                if answer.acknowledged {
                    count.set(count.get() + 1);
                }
                answer
            }
        });
        let task = actix_web::rt::spawn(futures_util::future::join_all(sends));
        Self {
            acknowledged_so_far,
            task,
        }
    }

    /// Waits until `count` pushes are acknowledged, or `limit` has passed.
    pub async fn wait_for_acknowledged(&self, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.acknowledged_so_far.get() < count && Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Every push's outcome, once each has its answer or has given up (within `limit`).
    pub async fn answers(self, limit: Duration) -> Vec<Answer> {
        actix_web::rt::time::timeout(limit, self.task)
            .await
            .expect("every push ends within its timeout")
            .expect("burst task")
    }
}
