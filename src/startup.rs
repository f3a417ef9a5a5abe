//! Wiring: builds the app from [`Settings`] on a listener it is given (it never binds the
//! service's own address, so tests pass `127.0.0.1:0`), and in sandbox mode starts the
//! embedded WeChat emulator and points the app at it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::emulator::{self, Emulator, EmulatorConfig};
use crate::pages::{ErrorPage, Layout, render};
use crate::routes::{self, AppState};
use crate::settings::{AppSecret, ConfigError, Mode, Settings};
use crate::wechat::{CodeService, UpstreamConfig, WechatClient};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// A built, not yet running, service.
pub struct Application {
    server: Server,
    address: SocketAddr,
    sandbox: Option<Sandbox>,
}

/// The embedded emulator of sandbox mode, running beside the service.
pub struct Sandbox {
    server: Server,
    pub emulator: Arc<Emulator>,
    pub base_url: String,
}

impl Application {
    /// Builds the service on `listener`. Call inside an actix system.
    pub fn build(settings: &Settings, listener: TcpListener) -> Result<Self, StartError> {
        // awc's rustls connector needs a process-wide crypto provider; installing twice
        // (several apps in one test process) is harmless, so the error is ignored.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let address = listener.local_addr()?;
        let (upstream, mp_base, sandbox) = match settings.mode()? {
            Mode::Live { appid, secret } => (
                UpstreamConfig {
                    api_base: settings.api_base.clone(),
                    appid,
                    secret,
                    token_endpoint: settings.token_endpoint,
                    timeout: settings.upstream_timeout(),
                },
                settings.mp_base.clone(),
                None,
            ),
            Mode::Sandbox => {
                let sandbox = Sandbox::start()?;
                log::info!(
                    "sandbox mode: WECHAT_APPID and WECHAT_APPSECRET are not set, so codes come from \
                     the embedded WeChat emulator at {} and will not scan into a real account",
                    sandbox.base_url
                );
                let config = &sandbox.emulator.config;
                (
                    UpstreamConfig {
                        api_base: sandbox.base_url.clone(),
                        appid: config.appid.clone(),
                        secret: AppSecret::new(config.secret.clone()),
                        token_endpoint: settings.token_endpoint,
                        timeout: settings.upstream_timeout(),
                    },
                    sandbox.base_url.clone(),
                    Some(sandbox),
                )
            }
        };

        let layout = Layout {
            sandbox: sandbox.is_some(),
        };
        // Caches are built once and shared: one token and one ticket cache per process.
        let state = web::Data::new(AppState {
            codes: CodeService::new(),
            default_lifetime: settings.expire_seconds,
            mp_base,
            layout,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                // One line per request: the path only, never the query string.
                .wrap(
                    Logger::new(r#"%a "%{method}xi %U" %s %b %Dms"#)
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .app_data(state.clone())
                // Built per worker: awc's client is not `Send` (see wechat/client.rs).
                .app_data(web::Data::new(WechatClient::new(upstream.clone())))
                .configure(routes::configure)
                .default_service(web::to(move || async move { not_found(layout) }))
        });
        if let Some(workers) = settings.workers {
            server = server.workers(workers.into());
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            server,
            address,
            sandbox,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The embedded emulator, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Serves until the server is stopped (a signal, or its handle), then stops the emulator.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server, sandbox, ..
        } = self;
        match sandbox {
            Some(sandbox) => {
                let emulator_handle = sandbox.server.handle();
                actix_web::rt::spawn(sandbox.server);
                let result = server.await;
                emulator_handle.stop(true).await;
                result
            }
            None => server.await,
        }
    }
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

fn not_found(layout: Layout) -> HttpResponse {
    render(
        actix_web::http::StatusCode::NOT_FOUND,
        &ErrorPage {
            layout,
            status: 404,
            title: "There is no page here",
            message: "Codes live at /qrcode?scene_id=… or /qrcode?scene_str=…".into(),
            hint: None,
            errcode: None,
            errmsg: String::new(),
        },
    )
}
