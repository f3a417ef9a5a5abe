//! Three scene-qr processes on one PostgreSQL database and one WeChat emulator, as replicas
//! behind a load balancer. The emulator runs in this test process, not in any replica (a
//! sandbox replica's own emulator would count its own calls only), so its counts are the
//! calls of all three together.
//!
//! Each test needs `SCENE_QR_TEST_POSTGRES` (CI starts a server); without it it says so and
//! passes, unless `SCENE_QR_REQUIRE_POSTGRES` is set.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use scene_qr::emulator::{self, Api, Emulator, EmulatorConfig, PushTarget, sign_push_now};
use serde_json::Value;
use sqlx::PgPool;

use helpers::{
    APPID, ChildApp, PUSH_TOKEN, cut_off_database, event_xml, postgres_database_or_skip,
};

const SECRET: &str = "replicas-secret-0123456789abcdef";

/// Three replica processes sharing a database and an emulator.
struct Replicas {
    emulator: Arc<Emulator>,
    database: String,
    addresses: Vec<String>,
    client: awc::Client,
    processes: Vec<ChildApp>,
}

/// What one request to a replica got.
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

impl Replicas {
    /// Starts the emulator and three replicas in live mode against it, on a new database;
    /// `None` (after saying so) without a PostgreSQL server.
    async fn start(test: &str, env: &[(&str, &str)]) -> Option<Self> {
        let database = postgres_database_or_skip(test)?;
        let emulator = Arc::new(Emulator::new(EmulatorConfig {
            appid: APPID.into(),
            secret: SECRET.into(),
            token_expires_in: 7200,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind emulator");
        let api_base = format!("http://{}", listener.local_addr().expect("address"));
        actix_web::rt::spawn(emulator::start(listener, emulator.clone()).expect("emulator"));

        let mut settings = vec![
            ("DATABASE_URL", database.as_str()),
            ("WECHAT_APPID", APPID),
            ("WECHAT_APPSECRET", SECRET),
            ("WECHAT_API_BASE", api_base.as_str()),
            // The allowances of new codes are not what these tests count.
            ("SCENE_QR_NEW_CODES_PER_MINUTE", "0"),
            ("SCENE_QR_NEW_CODES_PER_MINUTE_TOTAL", "0"),
            ("WECHAT_TOKEN", PUSH_TOKEN),
            ("RUST_LOG", "info"),
        ];
        settings.extend_from_slice(env);
        let mut processes: Vec<ChildApp> = (0..3).map(|_| ChildApp::spawn(&settings)).collect();
        let addresses = processes
            .iter_mut()
            .map(ChildApp::wait_for_address)
            .collect();
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .connector(awc::Connector::new().limit(512))
            .finish();
        Some(Self {
            emulator,
            database,
            addresses,
            client,
            processes,
        })
    }

    /// `GET path` on replica `replica`.
    async fn get(&self, replica: usize, path: String) -> Answer {
        let url = format!("{}{path}", self.addresses[replica]);
        let request = self.client.get(&url);
        Self::answer(&url, request.send()).await
    }

    /// `PUT path` with a JSON `body` on replica `replica`.
    async fn put(&self, replica: usize, path: &str, body: &str) -> Answer {
        let url = format!("{}{path}", self.addresses[replica]);
        let request = self
            .client
            .put(&url)
            .insert_header(("content-type", "application/json"));
        Self::answer(&url, request.send_body(body.to_string())).await
    }

    /// A signed SCAN push of scene 5 by `openid` to replica `replica`.
    async fn push(&self, replica: usize, openid: &str) -> Answer {
        let target = PushTarget {
            url: format!("{}/wechat/callback", self.addresses[replica]),
            token: PUSH_TOKEN.into(),
            aes_key: None,
            appid: String::new(),
        };
        let signed = sign_push_now(&target, &event_xml(openid, 1_700_000_000, "SCAN", "5"));
        let url = format!("{}?{}", target.url, signed.query);
        let request = self.client.post(&url);
        Self::answer(&url, request.send_body(signed.body)).await
    }

    async fn answer(url: &str, sent: awc::SendClientRequest) -> Answer {
        let mut response = sent.await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let body = response.body().await.expect("body");
        Answer {
            status: response.status().as_u16(),
            text: String::from_utf8_lossy(&body).into_owned(),
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    }

    /// Each of `paths` asked of every replica at once; the answers by path, in replica order.
    async fn everywhere(&self, paths: &[String]) -> Vec<Vec<Answer>> {
        let requests = paths.iter().map(|path| {
            join_all((0..self.addresses.len()).map(|replica| self.get(replica, path.clone())))
        });
        join_all(requests).await
    }

    /// A new code on each replica at once (scene ids from `first`); their statuses.
    async fn one_new_code_each(&self, first: u32) -> Vec<u16> {
        let requests = (0..self.addresses.len()).map(|replica| {
            let scene = first + replica as u32;
            self.get(replica, format!("/api/qrcode?scene_id={scene}"))
        });
        join_all(requests)
            .await
            .into_iter()
            .map(|answer| answer.status)
            .collect()
    }

    /// The `force_refresh` flag of each `stable_token` call so far.
    fn forced_refreshes(&self) -> usize {
        self.emulator
            .requests(Api::StableToken)
            .iter()
            .filter(|call| {
                call.body
                    .as_ref()
                    .is_some_and(|body| body["force_refresh"] == true)
            })
            .count()
    }
}

fn temporary_codes(first: u32, count: u32) -> Vec<String> {
    (first..first + count)
        .map(|scene| format!("/api/qrcode?scene_id={scene}&expire_seconds=86400"))
        .collect()
}

/// Every answer a 200 with one ticket for all replicas; the number of distinct tickets.
fn one_ticket_per_code(answers: &[Vec<Answer>]) -> usize {
    for per_replica in answers {
        let tickets: Vec<&Value> = per_replica
            .iter()
            .map(|answer| {
                assert_eq!(answer.status, 200, "{}", answer.json);
                &answer.json["ticket"]
            })
            .collect();
        assert!(tickets.iter().all(|t| *t == tickets[0]), "{tickets:?}");
    }
    answers.len()
}

#[actix_web::test]
async fn a_cold_start_on_three_replicas_makes_one_create_per_code_and_one_token_call() {
    let Some(replicas) = Replicas::start("cold start on three replicas", &[]).await else {
        return;
    };
    // A slow WeChat, so that the three replicas' first requests overlap.
    replicas
        .emulator
        .set_delay(Api::StableToken, Duration::from_millis(300));
    replicas
        .emulator
        .set_delay(Api::QrcodeCreate, Duration::from_millis(100));

    let answers = replicas.everywhere(&temporary_codes(1, 40)).await;

    let codes = one_ticket_per_code(&answers);
    assert_eq!(replicas.emulator.calls(Api::QrcodeCreate), codes);
    assert_eq!(replicas.emulator.token_calls(), 1);
}

#[actix_web::test]
async fn with_the_classic_endpoint_one_replica_fetches_and_no_token_is_ended_by_another() {
    let endpoint = [("WECHAT_TOKEN_ENDPOINT", "classic")];
    let Some(replicas) = Replicas::start("classic endpoint on three replicas", &endpoint).await
    else {
        return;
    };
    replicas
        .emulator
        .set_delay(Api::Token, Duration::from_millis(300));

    let answers = replicas.everywhere(&temporary_codes(1, 30)).await;

    let codes = one_ticket_per_code(&answers);
    assert_eq!(replicas.emulator.calls(Api::Token), 1);
    assert_eq!(replicas.emulator.calls(Api::StableToken), 0);
    // No create was made with a token another replica's fetch had replaced.
    assert_eq!(replicas.emulator.calls(Api::QrcodeCreate), codes);
}

#[actix_web::test]
async fn a_token_revoked_under_three_replicas_is_replaced_once_for_all() {
    let Some(replicas) = Replicas::start("revoked token on three replicas", &[]).await else {
        return;
    };
    // Every replica holds the token.
    assert_eq!(replicas.one_new_code_each(1).await, [200, 200, 200]);
    assert_eq!(replicas.emulator.token_calls(), 1);
    // Another system forced a refresh: the token all three hold is dead.
    replicas.emulator.revoke_tokens(true);

    let statuses = replicas.one_new_code_each(11).await;

    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(replicas.emulator.token_calls(), 2);
    assert_eq!(replicas.forced_refreshes(), 0);
    // Three before; three refused with the dead token and three again with the new one.
    assert_eq!(replicas.emulator.calls(Api::QrcodeCreate), 9);
}

#[actix_web::test]
async fn forced_refreshes_keep_wechats_limits_across_replicas() {
    let Some(replicas) = Replicas::start("forced refreshes on three replicas", &[]).await else {
        return;
    };
    assert_eq!(replicas.one_new_code_each(1).await, [200, 200, 200]);
    // WeChat went on handing back the dead token: only a forced refresh replaces it.
    replicas.emulator.revoke_tokens(false);

    let first = replicas.one_new_code_each(11).await;

    assert_eq!(first, [200, 200, 200]);
    assert_eq!(replicas.forced_refreshes(), 1);

    // Again within 30 s of that refresh: whichever replica asks, none may force another.
    replicas.emulator.revoke_tokens(false);
    let again = replicas.one_new_code_each(21).await;
    assert!(again.iter().all(|status| *status == 502), "{again:?}");
    assert_eq!(replicas.forced_refreshes(), 1);

    // Twenty forced today already (by any replica, long enough ago): none more today.
    let database = PgPool::connect(&replicas.database).await.expect("database");
    let wechat_day = (time::OffsetDateTime::now_utc().unix_timestamp() + 8 * 3600) / 86_400;
    sqlx::query("UPDATE access_tokens SET forced_at = 0, forced_day = $1, forced_today = 20")
        .bind(wechat_day)
        .execute(&database)
        .await
        .expect("update");
    let spent = replicas.one_new_code_each(31).await;
    assert!(spent.iter().all(|status| *status == 502), "{spent:?}");
    assert_eq!(replicas.forced_refreshes(), 1);
}

/// The lines of `output` logged at WARN or ERROR (env_logger's `[time LEVEL target] text`)
/// about the database.
fn database_warnings(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .filter(|line| line.contains("database"))
        .collect()
}

#[actix_web::test]
async fn a_lost_database_is_one_line_in_each_replicas_log_however_many_requests_it_refuses() {
    let Some(mut replicas) = Replicas::start("lost database, logged once", &[]).await else {
        return;
    };
    assert_eq!(replicas.one_new_code_each(1).await, [200, 200, 200]);
    // Scene 1's code, in every replica's cache.
    one_ticket_per_code(
        &replicas
            .everywhere(&["/api/qrcode?scene_id=1".into()])
            .await,
    );

    cut_off_database(&replicas.database, true).await;
    let mut during = Vec::new();
    for round in 0..10 {
        for replica in 0..3 {
            let openid = format!("o-during-{round}-{replica}");
            during.push(("push", replicas.push(replica, &openid).await));
            let label = format!("{{\"label\": \"poster {round}\"}}");
            during.push((
                "label",
                replicas.put(replica, "/api/scenes/5", &label).await,
            ));
            let new_code = format!("/api/qrcode?scene_id={}", 100 + round * 3 + replica);
            during.push(("new code", replicas.get(replica, new_code).await));
            during.push(("stats", replicas.get(replica, "/api/stats".into()).await));
            during.push((
                "cached",
                replicas.get(replica, "/api/qrcode?scene_id=1".into()).await,
            ));
        }
    }
    // Long enough for every replica's once-a-second watch to notice.
    actix_web::rt::time::sleep(Duration::from_millis(1_500)).await;
    let health = replicas.get(0, "/healthz".into()).await;
    cut_off_database(&replicas.database, false).await;
    // Back by themselves: a push is stored again within a few seconds, on every replica.
    for replica in 0..3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while replicas
            .push(replica, &format!("o-after-{replica}"))
            .await
            .text
            != "success"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "replica {replica} did not come back"
            );
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }
    actix_web::rt::time::sleep(Duration::from_millis(1_500)).await;

    for (what, answer) in &during {
        match *what {
            "cached" => assert_eq!(answer.status, 200, "a cached code: {}", answer.text),
            _ => assert_eq!(answer.status, 503, "{what}: {}", answer.text),
        }
        assert_ne!(answer.text, "success");
    }
    assert_eq!(health.status, 503, "{}", health.text);
    assert!(
        health.text.contains("not currently accepting connections"),
        "{}",
        health.text
    );
    for (replica, process) in replicas.processes.drain(..).enumerate() {
        let output = process.stop();
        let logged = database_warnings(&output);
        // At most: the connection watch's line and the writes' line when the outage began,
        // and the same two when it ended; the 150 refused requests add none.
        assert!(
            (2..=4).contains(&logged.len()),
            "replica {replica} logged {} warnings: {logged:#?}",
            logged.len()
        );
    }
}
