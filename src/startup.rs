//! Wiring: builds the app from a [`Config`] on a listener it is given (it never binds the
//! service's own address, so tests pass `127.0.0.1:0`), and in sandbox mode starts the
//! embedded WeChat emulator and points the app at it.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use crate::auth;
use crate::batches::Batches;
use crate::codes::{CodeService, Presentation, WorkerCodes};
use crate::emulator::{self, Emulator, EmulatorConfig, PushTarget};
use crate::error::ErrorAnswers;
use crate::pages::Layout;
use crate::routes::callback::Callback;
use crate::routes::{self, AppState};
use crate::secret::Secret;
use crate::security_headers::{SecurityHeaders, content_security_policy};
use crate::settings::{Config, ConfigError, Mode};
use crate::store::{self, Store, StoreError, WriterTask};
use crate::telemetry::{self, ObserveRequests};
use crate::wechat::crypto::AesKey;
use crate::wechat::push::{PushConfig, PushReceiver};
use crate::wechat::{UpstreamConfig, WechatClient};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the HTTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot open the database DATABASE_URL={url}: {source}")]
    OpenStore { url: String, source: StoreError },
    #[error("database error at start-up (DATABASE_URL): {0}")]
    Store(#[from] StoreError),
}

/// A built, not yet running, service.
pub struct Application {
    server: Server,
    address: SocketAddr,
    sandbox: Option<Sandbox>,
    store: Store,
    writer_task: WriterTask,
    /// Makes the rows of batches; stopped with the server (a row in progress is made
    /// again at the next start, reusing its code if it was recorded).
    batch_runner: actix_web::rt::task::JoinHandle<()>,
}

/// The embedded emulator of sandbox mode, running beside the service.
struct Sandbox {
    server: Server,
    emulator: Arc<Emulator>,
    base_url: String,
}

impl Application {
    /// Builds the service on `listener`. Call inside an actix system.
    pub async fn build(config: Config, listener: TcpListener) -> Result<Self, StartError> {
        // awc's rustls connector needs a process-wide crypto provider; installing twice
        // (several apps in one test process) is harmless, so the error is ignored.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let address = listener.local_addr()?;
        let (upstream, mp_base, sandbox) = match config.mode.clone() {
            Mode::Live { appid, secret } => (
                UpstreamConfig {
                    api_base: config.api_base.clone(),
                    appid,
                    secret,
                    token_endpoint: config.token_endpoint,
                    timeout: config.upstream_timeout,
                },
                config.mp_base.clone(),
                None,
            ),
            Mode::Sandbox => {
                let sandbox = Sandbox::start()?;
                log::info!(
                    "sandbox mode: WECHAT_APPID and WECHAT_APPSECRET are not set, so codes come from \
                     the embedded WeChat emulator at {} and will not scan into a real account",
                    sandbox.base_url
                );
                let emulator = &sandbox.emulator.config;
                (
                    UpstreamConfig {
                        api_base: sandbox.base_url.clone(),
                        appid: emulator.appid.clone(),
                        secret: Secret::new(emulator.secret.clone()),
                        token_endpoint: config.token_endpoint,
                        timeout: config.upstream_timeout,
                    },
                    // Images from the service's own address (routes/sandbox.rs): the
                    // emulator listens on loopback only, out of reach of other machines.
                    String::new(),
                    Some(sandbox),
                )
            }
        };

        let access = web::Data::new(config.access);
        let auth_on = access.is_on();
        if !auth_on && !address.ip().is_loopback() {
            log::warn!(
                "listening on {address} with SCENE_QR_AUTH=none: anyone who can reach it can create \
                 codes and read statistics; set SCENE_QR_AUTH=basic or header"
            );
        }
        // The app frames itself at most; other sites may frame the embed views only.
        let policy = content_security_policy(&mp_base, "'self'")?;
        let embed_policy = content_security_policy(&mp_base, &config.frame_ancestors)?;
        // Installed before the first request, so that /metrics is complete from the start.
        let _ = telemetry::metrics_handle();
        let (store, writer_task) = Store::open(&config.database_url, config.utc_offset)
            .await
            .map_err(|source| StartError::OpenStore {
                url: store::redacted_url(&config.database_url),
                source,
            })?;
        let callback = web::Data::new(Callback {
            receiver: push_config(
                config.push_token.as_ref(),
                config.encoding_aes_key.as_ref(),
                &upstream,
                sandbox.as_ref(),
                address,
            )
            .map(|push| PushReceiver::new(push, config.push_window_seconds)),
            store: store.clone(),
        });
        let layout = Layout {
            sandbox: sandbox.is_some(),
        };
        // Caches are built once and shared: one token and one ticket cache per process.
        let presentation = Presentation {
            mp_base,
            layout,
            permanent_allowed: config.permanent_allowed,
            branding: config.branding.map(Arc::new),
            utc_offset: config.utc_offset,
        };
        let codes = Arc::new(CodeService::new(
            store.clone(),
            &upstream.appid,
            config.new_codes,
            presentation,
        ));
        let loaded = codes.load_live_codes().await?;
        log::info!("{loaded} live codes loaded from the database");
        let batches = Batches::new(store.clone(), codes.clone());
        // Batches left unfinished by the last run (or another replica) go on from here.
        let batch_runner =
            actix_web::rt::spawn(batches.runner(WechatClient::new(upstream.clone())).run());
        let state = AppState {
            codes: codes.clone(),
            batches,
            store: store.clone(),
            permanent_allowed: config.permanent_allowed,
            default_lifetime: config.default_lifetime,
            utc_offset: config.utc_offset,
            layout,
        };
        let sandbox_emulator = sandbox.as_ref().map(|s| web::Data::new(s.emulator.clone()));
        let mut server = HttpServer::new(move || {
            // The last `wrap` is the outermost: the log sees every answer, security
            // headers reach the refusals of access control too.
            let mut app = App::new()
                // Left out when access is open: a middleware made with `from_fn` costs two
                // boxed futures on every request.
                .wrap(Condition::new(auth_on, from_fn(auth::require_staff)))
                // Errors of the routes and of access control, as a page or as JSON.
                .wrap(ErrorAnswers::new(layout))
                .wrap(SecurityHeaders::new(policy.clone(), embed_policy.clone()))
                // One log line per request (the path only, never the query string) and
                // its metrics.
                .wrap(ObserveRequests)
                .app_data(access.clone())
                .app_data(web::Data::new(state.clone()))
                .app_data(callback.clone())
                // Per worker: awc's client is not `Send` (see wechat/client.rs), and hot
                // codes are served from the worker's own copy without touching shared
                // memory.
                .app_data(web::Data::new(WorkerCodes::new(
                    codes.clone(),
                    WechatClient::new(upstream.clone()),
                )));
            if let Some(emulator) = &sandbox_emulator {
                app = app
                    .app_data(emulator.clone())
                    .app_data(web::Data::new(awc::Client::default()));
            }
            app.configure(|cfg| routes::configure(cfg, layout.sandbox))
                .default_service(web::to(routes::not_found))
        });
        let workers = config.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        );
        // Idle connections and slow request heads are closed after actix's 5 s client
        // request timeout, bodies after the handlers' own limits (routes/body.rs).
        server = server
            .workers(workers)
            .max_connections(connections_per_worker(workers));
        // Signals are handled in `run_until_stopped`: actix-server would stop at once on
        // SIGINT, dropping requests in flight.
        let server = server.disable_signals().listen(listener)?.run();
        Ok(Self {
            server,
            address,
            sandbox,
            store,
            writer_task,
            batch_runner,
        })
    }

    /// Stops the server from outside (tests, signals handled elsewhere).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGTERM or SIGINT (or the handle) stops the server, then finishes: no new
    /// connections, requests in flight completed (a push is answered only after its event is
    /// committed, so every acknowledged event is on disk), the database closed cleanly.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            sandbox,
            store,
            writer_task,
            batch_runner,
            ..
        } = self;
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            if let Some(signal) = shutdown_signal().await {
                log::info!("{signal}: finishing requests in flight, then stopping");
                handle.stop(true).await;
            }
        });
        let emulator = sandbox.map(|sandbox| {
            let handle = sandbox.server.handle();
            actix_web::rt::spawn(sandbox.server);
            handle
        });
        let result = server.await;
        batch_runner.abort();
        if let Err(e) = store.release_held_work().await {
            log::warn!(
                "batches and codes this process was making wait for their lease to run out: {e}"
            );
        }
        if let Some(emulator) = emulator {
            emulator.stop(true).await;
        }
        // The workers are gone, and with them every sender: what is queued gets written.
        writer_task.finish(Duration::from_secs(10)).await;
        store.close().await;
        log::info!("stopped");
        result
    }
}

/// File descriptors kept back from client connections: the database (its writer, four
/// readers, the WAL and shared-memory files), connections to WeChat, the log, and the
/// emulator in sandbox mode.
const RESERVED_FILES: u64 = 256;
/// actix's own default, kept as the ceiling where the open-file limit is high.
const MAX_CONNECTIONS_PER_WORKER: u64 = 25_000;

/// Raises the open-file limit to its hard maximum, and returns how many connections each
/// worker may hold so that together they never take the descriptors the service needs
/// for anything else. Past that count a worker stops accepting until connections close,
/// instead of failing every `accept` with "too many open files" and starving the database
/// of descriptors.
fn connections_per_worker(workers: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let (soft, _) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
            log::warn!("cannot raise the open-file limit ({e}); it stays at {soft}");
            soft
        }
    };
    let per_worker = (limit.saturating_sub(RESERVED_FILES) / workers.max(1) as u64)
        .clamp(16, MAX_CONNECTIONS_PER_WORKER);
    log::info!(
        "open-file limit {limit}: at most {per_worker} connections on each of {workers} workers"
    );
    usize::try_from(per_worker).unwrap_or(usize::MAX)
}

/// How pushes to `/wechat/callback` are verified. Sandbox mode makes up a Token and an
/// EncodingAESKey (unless given) and tells the emulator, whose pushes then use safe mode.
fn push_config(
    token: Option<&Secret>,
    aes_key: Option<&AesKey>,
    upstream: &UpstreamConfig,
    sandbox: Option<&Sandbox>,
    address: SocketAddr,
) -> Option<PushConfig> {
    let config = match sandbox {
        None => {
            let Some(token) = token.cloned() else {
                log::warn!(
                    "WECHAT_TOKEN is not set: /wechat/callback is off and scans are not recorded"
                );
                return None;
            };
            if aes_key.is_none() {
                log::warn!(
                    "WECHAT_ENCODING_AES_KEY is not set, so pushes come in plaintext mode, where \
                     WeChat signs the query but not the event. Safe mode (the account's \
                     EncodingAESKey in WECHAT_ENCODING_AES_KEY, and safe mode chosen in its server \
                     configuration) signs and encrypts each event"
                );
            }
            PushConfig {
                token,
                aes_key: aes_key.cloned(),
                appid: upstream.appid.clone(),
            }
        }
        Some(sandbox) => {
            let config = PushConfig {
                token: token
                    .cloned()
                    .unwrap_or_else(|| Secret::new(random_text(32))),
                aes_key: aes_key
                    .cloned()
                    .or_else(|| Some(AesKey::from_bytes(rand::random()))),
                appid: upstream.appid.clone(),
            };
            let host = match address.ip() {
                ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_string(),
                ip if ip.is_unspecified() => "127.0.0.1".to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            };
            sandbox.emulator.set_push_target(PushTarget {
                url: format!("http://{host}:{}/wechat/callback", address.port()),
                token: config.token.expose().to_string(),
                aes_key: config.aes_key.clone(),
                appid: config.appid.clone(),
            });
            config
        }
    };
    Some(config)
}

fn random_text(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Sandbox {
    fn start() -> std::io::Result<Self> {
        let emulator = Arc::new(Emulator::new(EmulatorConfig::random()));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let server = emulator::start(listener, emulator.clone())?;
        Ok(Self {
            server,
            emulator,
            base_url,
        })
    }
}

/// Waits for SIGTERM or SIGINT and names it; `None` if signals cannot be watched.
async fn shutdown_signal() -> Option<&'static str> {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).ok()?;
    let mut interrupt = signal(SignalKind::interrupt()).ok()?;
    tokio::select! {
        _ = terminate.recv() => Some("SIGTERM"),
        _ = interrupt.recv() => Some("SIGINT"),
    }
}
