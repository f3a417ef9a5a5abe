//! `spawn_app()`: the real server on `127.0.0.1:0`, in live mode against the emulator on
//! loopback, plus request helpers. No test ever talks to a real WeChat host.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use scene_qr::domain::Lifetime;
use scene_qr::emulator::{self, Emulator, EmulatorConfig, PushTarget, sign_push_now};
use scene_qr::secret::Secret;
use scene_qr::settings::{AuthMode, Permission, Settings};
use scene_qr::startup::Application;
use scene_qr::wechat::TokenEndpoint;
use tempfile::TempDir;

pub const APPID: &str = "wxtest0123456789";

pub struct TestApp {
    /// `http://127.0.0.1:PORT` of scene-qr.
    pub address: String,
    /// The settings it was started with.
    pub settings: Settings,
    /// Holds the database; removed when the test ends.
    pub db_dir: Arc<TempDir>,
    handle: ServerHandle,
    /// `http://127.0.0.1:PORT` of the emulator standing in for WeChat.
    pub emulator_url: String,
    pub emulator: Arc<Emulator>,
    pub secret: String,
    client: awc::Client,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Starts the emulator on loopback with fresh credentials.
pub fn start_emulator() -> (Arc<Emulator>, String) {
    let emulator = Arc::new(Emulator::new(EmulatorConfig {
        appid: APPID.into(),
        secret: format!("secret-{}", rand_suffix()),
        token_expires_in: 7200,
    }));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind emulator");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("emulator address")
    );
    let server = emulator::start(listener, emulator.clone()).expect("start emulator");
    actix_web::rt::spawn(server);
    (emulator, url)
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:09}x{}", std::process::id())
}

/// The XML of a follow, unfollow or scan push, as WeChat writes it.
pub fn event_xml(openid: &str, at: i64, event: &str, key: &str) -> String {
    scene_qr::wechat::push::to_xml(&[
        ("ToUserName", "gh_45072270791c"),
        ("FromUserName", openid),
        ("CreateTime", &at.to_string()),
        ("MsgType", "event"),
        ("Event", event),
        ("EventKey", key),
    ])
}

/// The Token test apps verify pushes with.
pub const PUSH_TOKEN: &str = "testtoken123";

/// The database of a test app: a SQLite file in `db_dir`, or, with
/// `SCENE_QR_TEST_BACKEND=postgres`, a new database of its own on the server named by
/// `SCENE_QR_TEST_POSTGRES` (CI runs this suite once more that way).
pub fn test_database_url(db_dir: &TempDir) -> String {
    match std::env::var("SCENE_QR_TEST_BACKEND").as_deref() {
        Ok("postgres") => fresh_postgres_database(),
        _ => format!("sqlite://{}", db_dir.path().join("test.db").display()),
    }
}

/// A new PostgreSQL database for `test`, or `None` (after saying so on the terminal, which
/// the harness does not capture) when `SCENE_QR_TEST_POSTGRES` names no server; with
/// `SCENE_QR_REQUIRE_POSTGRES` set (CI) a missing server fails the test instead.
pub fn postgres_database_or_skip(test: &str) -> Option<String> {
    use std::io::Write;

    if std::env::var_os("SCENE_QR_TEST_POSTGRES").is_none() {
        assert!(
            std::env::var_os("SCENE_QR_REQUIRE_POSTGRES").is_none(),
            "{test}: SCENE_QR_REQUIRE_POSTGRES is set but SCENE_QR_TEST_POSTGRES is not"
        );
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped (no SCENE_QR_TEST_POSTGRES)"
        );
        return None;
    }
    Some(fresh_postgres_database())
}

/// A new, empty database on `SCENE_QR_TEST_POSTGRES`, created from a thread of its own
/// (callers may be inside a runtime already).
pub fn fresh_postgres_database() -> String {
    use sqlx::{ConnectOptions, Connection, Executor};

    let server = std::env::var("SCENE_QR_TEST_POSTGRES")
        .expect("SCENE_QR_TEST_BACKEND=postgres needs SCENE_QR_TEST_POSTGRES");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let options: sqlx::postgres::PgConnectOptions =
                server.parse().expect("SCENE_QR_TEST_POSTGRES");
            let mut admin = options.connect().await.expect("connect to PostgreSQL");
            let name = format!("scene_qr_{}", rand::random::<u64>());
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("CREATE DATABASE");
            admin.close().await.ok();
            options.database(&name).to_url_lossy().to_string()
        })
    })
    .join()
    .expect("creating a PostgreSQL database")
}

/// Settings of a test app in live mode against `emulator_url`.
pub fn test_settings(emulator_url: &str, secret: &str, db_dir: &TempDir) -> Settings {
    Settings {
        command: None,
        auth: AuthMode::None,
        users_file: None,
        auth_header: None,
        trusted_proxies: None,
        // Most tests create permanent codes; the default (deny) has its own tests.
        permanent: Some(Permission::Allow),
        // Tests create many codes quickly; the limit has its own tests.
        new_codes_per_minute: 0,
        new_codes_per_minute_total: 0,
        push_window_seconds: 300,
        frame_ancestors: "'self'".into(),
        logo: None,
        dark_colour: None,
        light_colour: None,
        push_token: Some(Secret::new(PUSH_TOKEN)),
        encoding_aes_key: None,
        database_url: test_database_url(db_dir),
        utc_offset: time::UtcOffset::UTC,
        listen: "127.0.0.1:0".parse().expect("address"),
        appid: Some(APPID.into()),
        appsecret: Some(Secret::new(secret)),
        api_base: emulator_url.into(),
        mp_base: emulator_url.into(),
        token_endpoint: TokenEndpoint::Stable,
        expire_seconds: Lifetime::new(604_800).expect("lifetime"),
        upstream_timeout_ms: 2_000,
        workers: Some(2),
        log_filter: "warn".into(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings adjusted first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db_dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
    let (emulator, emulator_url) = start_emulator();
    let secret = emulator.config.secret.clone();
    let mut settings = test_settings(&emulator_url, &secret, &db_dir);
    adjust(&mut settings);
    start(settings, emulator, emulator_url, db_dir).await
}

async fn start(
    settings: Settings,
    emulator: Arc<Emulator>,
    emulator_url: String,
    db_dir: Arc<TempDir>,
) -> TestApp {
    let secret = emulator.config.secret.clone();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind app");
    let config = settings.config().expect("the test's settings are valid");
    let app = Application::build(config, listener)
        .await
        .expect("build app");
    let address = format!("http://{}", app.address());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .disable_redirects()
        .connector(awc::Connector::new().limit(256))
        .finish();
    TestApp {
        address,
        settings,
        db_dir,
        handle,
        emulator_url,
        emulator,
        secret,
        client,
    }
}

impl TestApp {
    /// Stops the server and starts a new one on the same database and emulator.
    pub async fn restart(self) -> TestApp {
        self.handle.stop(true).await;
        self.replica().await
    }

    /// Another server on the same database and emulator, as a replica behind a load
    /// balancer would be (only a shared database makes that meaningful: PostgreSQL).
    pub async fn replica(&self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("address");
        start(
            settings,
            self.emulator.clone(),
            self.emulator_url.clone(),
            self.db_dir.clone(),
        )
        .await
    }

    /// Where the emulator pushes: this app's callback, with its Token and key.
    pub fn push_target(&self) -> PushTarget {
        PushTarget {
            url: format!("{}/wechat/callback", self.address),
            token: PUSH_TOKEN.into(),
            aes_key: self.settings.encoding_aes_key.clone(),
            appid: APPID.into(),
        }
    }

    /// Pushes `xml` to the callback, signed (and encrypted in safe mode) as WeChat does.
    pub async fn push(&self, xml: &str) -> Response {
        let push = sign_push_now(&self.push_target(), xml);
        self.post(
            &format!("/wechat/callback?{}", push.query),
            push.body.into_bytes(),
        )
        .await
    }

    /// POST `body` to `path_and_query` on scene-qr.
    pub async fn post(&self, path_and_query: &str, body: Vec<u8>) -> Response {
        let url = format!("{}{path_and_query}", self.address);
        read(&url, self.client.post(&url).send_body(body)).await
    }

    /// POST `body` to `path` on scene-qr as JSON, as an internal tool does.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        let url = format!("{}{path}", self.address);
        let request = self
            .client
            .post(&url)
            .insert_header(("Content-Type", "application/json"));
        read(&url, request.send_body(body.to_string())).await
    }

    /// PUT `body` to `path` on scene-qr, with `headers` (an `Origin`, say).
    pub async fn put(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
        let url = format!("{}{path}", self.address);
        let mut request = self
            .client
            .put(&url)
            .insert_header(("Content-Type", "application/json"));
        for header in headers {
            request = request.insert_header(*header);
        }
        read(&url, request.send_body(body.to_string())).await
    }

    /// POST a form, as a browser on scene-qr's own page would.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post(path, body.into_bytes()).await
    }

    /// GET `path_and_query` on scene-qr.
    pub async fn get(&self, path_and_query: &str) -> Response {
        self.get_url(&format!("{}{path_and_query}", self.address))
            .await
    }

    /// [`TestApp::get`] for a path built on the spot.
    pub async fn get_owned(&self, path_and_query: String) -> Response {
        self.get(&path_and_query).await
    }

    /// GET an absolute URL (on loopback: scene-qr or the emulator).
    pub async fn get_url(&self, url: &str) -> Response {
        read(url, self.client.get(url).send()).await
    }
}

/// Reads a whole answer; a request to anything but loopback is a bug in the test.
async fn read<S>(
    url: &str,
    send: impl std::future::Future<
        Output = Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
    >,
) -> Response
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "tests stay on loopback: {url}"
    );
    let mut response = send.await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let body = response
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .expect("response body");
    Response {
        status: response.status(),
        headers: response.headers().clone(),
        body: body.to_vec(),
    }
}

/// Refuses (`false`) or allows again every new connection to `database`, and ends those
/// open when refusing: the database is gone for the service until it is allowed again.
pub async fn cut_off_database(database_url: &str, cut: bool) {
    let path = database_url.rsplit('/').next().expect("a database name");
    let name = path.split('?').next().unwrap_or(path);
    let server = std::env::var("SCENE_QR_TEST_POSTGRES").expect("a server");
    let admin = sqlx::PgPool::connect(&server)
        .await
        .expect("admin connection");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {}", !cut))
        .execute(&admin)
        .await
        .expect("ALTER DATABASE");
    if cut {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&admin)
        .await
        .expect("terminate");
    }
    admin.close().await;
}

/// The scene-qr binary as a child process, with a clean environment plus `env`, its
/// standard error collected line by line.
pub struct ChildApp {
    child: Child,
    /// Where its database goes, unless the test names one.
    _db_dir: TempDir,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl ChildApp {
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        let db_dir = tempfile::tempdir().expect("temporary directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_scene-qr"));
        command
            .env_clear()
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", db_dir.path().join("child.db").display()),
            )
            .env("SCENE_QR_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn scene-qr");
        let (sender, lines) = mpsc::channel();
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            _db_dir: db_dir,
            lines,
            seen: Vec::new(),
        }
    }

    /// Sends a signal (`TERM`, `INT`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (at most `limit`) for a line containing `needle`, and returns it.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The address from the "listening on http://…" line.
    pub fn wait_for_address(&mut self) -> String {
        let line = self
            .wait_for_line("listening on http://", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("scene-qr did not start; it said: {:?}", self.seen));
        let start = line.find("http://").expect("address in line");
        line[start..].trim().to_string()
    }

    /// Waits (at most `limit`) for the process to exit on its own; its exit code and output.
    pub fn wait_for_exit(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + limit;
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code(),
                _ if std::time::Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    break None;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        (code, self.drain(Duration::from_secs(2)))
    }

    /// Stops the process as an operator would (SIGTERM), so that it writes out its last
    /// log lines, and returns everything it printed.
    pub fn stop(self) -> String {
        self.signal("TERM");
        let (_, output) = self.wait_for_exit(Duration::from_secs(20));
        output
    }

    fn drain(&mut self, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for ChildApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
