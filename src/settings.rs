//! Configuration: one typed struct, read from flags and environment variables.
//!
//! Every field is both a `--flag` and an environment variable; the `///` text on each
//! field is what `scene-qr --help` prints. A bad value refuses start-up with one line
//! that names the environment variable, because that is what operators set.

use std::net::SocketAddr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, ValueEnum};

use time::UtcOffset;

use actix_web::http::header::HeaderName;

use crate::auth::{Access, Networks, load_users};
use crate::codes::NewCodeAllowance;
use crate::domain::{Colour, Lifetime};
use crate::render::{Branding, BrandingError};
use crate::secret::Secret;
use crate::wechat::TokenEndpoint;
use crate::wechat::crypto::AesKey;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "scene-qr",
    version,
    about = "Parametric WeChat Official Account QR codes, one page per scene.",
    long_about = "Parametric WeChat Official Account QR codes, one page per scene.\n\n\
        With WECHAT_APPID and WECHAT_APPSECRET it talks to the real WeChat API. With neither, \
        it runs in sandbox mode against an embedded WeChat emulator, so it works out of the box."
)]
pub struct Settings {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to serve on.
    #[arg(long, env = "SCENE_QR_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// AppID of the Official Account. Set together with WECHAT_APPSECRET for live mode;
    /// leave both unset for sandbox mode.
    #[arg(long, env = "WECHAT_APPID", value_parser = parse_appid)]
    pub appid: Option<String>,

    /// AppSecret of the Official Account (never printed, logged or shown).
    #[arg(long, env = "WECHAT_APPSECRET", hide_env_values = true, value_parser = parse_secret)]
    pub appsecret: Option<Secret>,

    /// Base URL of the WeChat API (`/cgi-bin/token`, `/cgi-bin/stable_token`, `/cgi-bin/qrcode/create`).
    #[arg(long, env = "WECHAT_API_BASE", default_value = "https://api.weixin.qq.com", value_parser = parse_base_url)]
    pub api_base: String,

    /// Base URL of the `showqrcode` image link put in pages.
    #[arg(long, env = "WECHAT_MP_BASE", default_value = "https://mp.weixin.qq.com", value_parser = parse_base_url)]
    pub mp_base: String,

    /// How access tokens are obtained: `stable` (POST /cgi-bin/stable_token, safe when other
    /// systems share the AppID) or `classic` (GET /cgi-bin/token, which invalidates their tokens).
    #[arg(
        long,
        env = "WECHAT_TOKEN_ENDPOINT",
        value_enum,
        default_value = "stable"
    )]
    pub token_endpoint: TokenEndpoint,

    /// Default lifetime in seconds of temporary codes (60..=2592000).
    #[arg(long, env = "SCENE_QR_EXPIRE_SECONDS", default_value = "604800", value_parser = parse_lifetime)]
    pub expire_seconds: Lifetime,

    /// Time limit in milliseconds for each call to WeChat (100..=60000).
    #[arg(long, env = "SCENE_QR_UPSTREAM_TIMEOUT_MS", default_value = "5000", value_parser = parse_timeout_ms)]
    pub upstream_timeout_ms: u64,

    /// Number of HTTP worker threads (1..=64; default: one per CPU core).
    #[arg(long, env = "SCENE_QR_WORKERS", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,

    /// Token of the account's server configuration: it signs WeChat's pushes to
    /// /wechat/callback (3 to 32 letters and digits). Unset in live mode: the callback is off.
    #[arg(long = "wechat-token", env = "WECHAT_TOKEN", hide_env_values = true, value_parser = parse_push_token)]
    pub push_token: Option<Secret>,

    /// EncodingAESKey of the server configuration (43 characters), for safe-mode pushes.
    #[arg(long = "encoding-aes-key", env = "WECHAT_ENCODING_AES_KEY", hide_env_values = true, value_parser = parse_aes_key)]
    pub encoding_aes_key: Option<AesKey>,

    /// The database: `sqlite://PATH` (created and migrated at start-up when missing), or
    /// `postgres://USER:PASSWORD@HOST/DATABASE` for replicas sharing one PostgreSQL database.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://scene-qr.db", value_parser = parse_database_url)]
    pub database_url: String,

    /// Offset from UTC of the days that statistics count in, e.g. +08:00 (Beijing time).
    #[arg(long, env = "SCENE_QR_UTC_OFFSET", default_value = "+08:00", value_parser = parse_utc_offset)]
    pub utc_offset: UtcOffset,

    /// Staff access control for every page except the callback, /healthz and /static:
    /// `none`, `basic` (users from SCENE_QR_USERS_FILE) or `header` (a user header set by an
    /// SSO proxy, see SCENE_QR_AUTH_HEADER).
    #[arg(long, env = "SCENE_QR_AUTH", value_enum, default_value = "none")]
    pub auth: AuthMode,

    /// For `basic`: a file of `name:hash` lines (argon2 or bcrypt hashes; make one with
    /// `scene-qr hash-password NAME`).
    #[arg(long, env = "SCENE_QR_USERS_FILE")]
    pub users_file: Option<std::path::PathBuf>,

    /// For `header`: the header the SSO proxy puts the user name in, e.g. X-Forwarded-User.
    #[arg(long, env = "SCENE_QR_AUTH_HEADER", value_parser = parse_header_name)]
    pub auth_header: Option<String>,

    /// For `header`: the proxies trusted to set that header, as comma-separated IP addresses
    /// or networks, e.g. 127.0.0.1,10.0.0.0/8.
    #[arg(long, env = "SCENE_QR_TRUSTED_PROXIES", value_parser = parse_networks)]
    pub trusted_proxies: Option<Networks>,

    /// Whether permanent codes (100,000 per account, never returned) may be created: `allow`
    /// or `deny`. Default: allow with access control or in sandbox mode, deny otherwise.
    #[arg(long, env = "SCENE_QR_PERMANENT", value_enum)]
    pub permanent: Option<Permission>,

    /// New codes each client may create per minute (the burst allowance is the same
    /// number; cached codes never count). 0 turns the limit off.
    #[arg(long, env = "SCENE_QR_NEW_CODES_PER_MINUTE", default_value = "120", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub new_codes_per_minute: u32,

    /// New codes the whole service may create per minute, whoever asks (the burst
    /// allowance is the same number): many clients together must not spend the account's
    /// daily quota of 100,000 creates. 0 turns the limit off.
    #[arg(long, env = "SCENE_QR_NEW_CODES_PER_MINUTE_TOTAL", default_value = "600", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub new_codes_per_minute_total: u32,

    /// Pushes to /wechat/callback are refused when their signed timestamp is further than
    /// this many seconds from this server's clock, and a signed query is accepted again
    /// only with the body it first came with (plaintext pushes sign only the query). 0
    /// turns both checks off.
    #[arg(long, env = "SCENE_QR_PUSH_WINDOW_SECONDS", default_value = "300", value_parser = clap::value_parser!(u32).range(0..=86_400))]
    pub push_window_seconds: u32,

    /// Who may embed the pages in a frame: the `frame-ancestors` sources of the
    /// Content-Security-Policy, e.g. `'self' https://tools.example.com`.
    #[arg(long, env = "SCENE_QR_FRAME_ANCESTORS", default_value = "'self'", value_parser = parse_frame_ancestors)]
    pub frame_ancestors: String,

    /// A PNG logo for the middle of every PNG code, scaled to a fifth of the code's width on
    /// a light square; branded codes use error correction level H. Refused at start-up if a
    /// sample code with it does not scan.
    #[arg(long, env = "SCENE_QR_LOGO")]
    pub logo: Option<std::path::PathBuf>,

    /// Colour of the dark modules of PNG and SVG codes, #rrggbb (default #000000): at least
    /// 3:1 contrast on SCENE_QR_LIGHT_COLOUR, and darker than it.
    #[arg(long = "dark-colour", env = "SCENE_QR_DARK_COLOUR", value_parser = parse_colour)]
    pub dark_colour: Option<Colour>,

    /// Colour of the light modules and the quiet zone of PNG and SVG codes, #rrggbb
    /// (default #ffffff).
    #[arg(long = "light-colour", env = "SCENE_QR_LIGHT_COLOUR", value_parser = parse_colour)]
    pub light_colour: Option<Colour>,

    /// Log filter in env_logger syntax, e.g. `info` or `scene_qr=debug`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Reads a password from standard input and prints the `NAME:HASH` line to add to
    /// SCENE_QR_USERS_FILE.
    HashPassword {
        /// The user's name (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
    },
    /// Stores follow, scan and unfollow events from JSON lines in DATABASE_URL, as the
    /// callback would store the same pushes; the server may keep running.
    ///
    /// One push's fields per line: `{"FromUserName": "…", "CreateTime": 1389684286,
    /// "Event": "subscribe", "EventKey": "qrscene_1000"}`. Rejected lines are reported on
    /// standard error, the summary on standard output. Exit code 1: some lines rejected
    /// (the others stored); 2: a bad argument; 3: stopped before the end of the input.
    ImportEvents {
        /// The file to read; `-` or none: standard input.
        file: Option<std::path::PathBuf>,
        /// No server is running on the database: write in larger transactions, without
        /// leaving the write lock free between them (faster on a large database; a running
        /// server's pushes would fail, and WeChat would retry them).
        #[arg(long)]
        server_stopped: bool,
    },
    /// Statistics maintenance.
    Stats {
        #[command(subcommand)]
        action: StatsCommand,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum StatsCommand {
    /// Computes every statistics aggregate again from the stored events, in days of
    /// SCENE_QR_UTC_OFFSET. Other writes (the server's pushes, on the same database) wait
    /// until it is done.
    Rebuild,
}

/// The settings, checked and turned into what the service runs with.
pub struct Config {
    pub listen: SocketAddr,
    pub mode: Mode,
    pub access: Access,
    /// SCENE_QR_PERMANENT, resolved.
    pub permanent_allowed: bool,
    pub api_base: String,
    pub mp_base: String,
    pub token_endpoint: TokenEndpoint,
    pub upstream_timeout: Duration,
    /// Lifetime of temporary codes that do not ask for one.
    pub default_lifetime: Lifetime,
    pub workers: Option<u16>,
    pub push_token: Option<Secret>,
    pub encoding_aes_key: Option<AesKey>,
    pub push_window_seconds: u32,
    pub database_url: String,
    pub utc_offset: UtcOffset,
    pub new_codes: NewCodeAllowance,
    pub frame_ancestors: String,
    /// SCENE_QR_LOGO and the colours, checked: `None` when none is set.
    pub branding: Option<Branding>,
}

/// Where scene-qr gets its codes from, derived from the credentials given.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Real WeChat (or whatever `WECHAT_API_BASE` points at) with these credentials.
    Live { appid: String, secret: Secret },
    /// No credentials: the embedded emulator stands in for WeChat.
    Sandbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    None,
    Basic,
    Header,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Permission {
    Allow,
    Deny,
}

/// Start-up refused: one line for the operator, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Reads flags and environment. `Ok(None)` means `--help` or `--version` was printed.
    /// What fields say together is checked by [`Settings::config`].
    pub fn from_args() -> Result<Option<Self>, ConfigError> {
        match Self::try_parse() {
            // A subcommand does not serve: the serving settings need not be complete.
            Ok(settings) if settings.command.is_some() => Ok(Some(settings)),
            Ok(settings) => Ok(Some(settings)),
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                ) =>
            {
                let _ = err.print();
                Ok(None)
            }
            Err(err) => Err(ConfigError(describe_clap_error(&err))),
        }
    }

    /// Turns the settings into the service's [`Config`]: checks what a single field cannot
    /// check on its own, and reads the users file, once, before anything listens.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Ok(Config {
            listen: self.listen,
            mode: self.mode()?,
            access: self.access()?,
            permanent_allowed: self.permanent_allowed(),
            api_base: self.api_base.clone(),
            mp_base: self.mp_base.clone(),
            token_endpoint: self.token_endpoint,
            upstream_timeout: Duration::from_millis(self.upstream_timeout_ms),
            default_lifetime: self.expire_seconds,
            workers: self.workers,
            push_token: self.push_token.clone(),
            encoding_aes_key: self.encoding_aes_key.clone(),
            push_window_seconds: self.push_window_seconds,
            database_url: self.database_url.clone(),
            utc_offset: self.utc_offset,
            new_codes: NewCodeAllowance {
                per_client: self.new_codes_per_minute,
                in_total: self.new_codes_per_minute_total,
            },
            frame_ancestors: self.frame_ancestors.clone(),
            branding: self.branding()?,
        })
    }

    /// The logo and colours of the codes, once the logo has loaded and a sample code drawn
    /// with them scans: a setting that would make unreadable posters refuses start-up.
    fn branding(&self) -> Result<Option<Branding>, ConfigError> {
        if self.logo.is_none() && self.dark_colour.is_none() && self.light_colour.is_none() {
            return Ok(None);
        }
        let logo = self.logo.as_deref().map(load_logo).transpose()?;
        let dark = self.dark_colour.unwrap_or(Colour::BLACK);
        let light = self.light_colour.unwrap_or(Colour::WHITE);
        let branding = Branding::new(dark, light, logo).map_err(|e| match (&e, &self.logo) {
            (BrandingError::Unscannable, Some(path)) => ConfigError(format!(
                "SCENE_QR_LOGO={}: {e}; use a smaller or simpler logo, or more contrast between \
                 SCENE_QR_DARK_COLOUR and SCENE_QR_LIGHT_COLOUR",
                path.display()
            )),
            _ => ConfigError(format!(
                "SCENE_QR_DARK_COLOUR and SCENE_QR_LIGHT_COLOUR: {e}"
            )),
        })?;
        Ok(Some(branding))
    }

    /// Access control as one value: open, Basic with its users, or a header from trusted
    /// proxies.
    fn access(&self) -> Result<Access, ConfigError> {
        Ok(match self.auth {
            AuthMode::None => Access::Open,
            AuthMode::Basic => {
                let path = self.users_file.as_deref().ok_or_else(|| {
                    ConfigError(
                        "SCENE_QR_AUTH=basic needs SCENE_QR_USERS_FILE: a file of name:hash lines (see scene-qr hash-password)".into(),
                    )
                })?;
                Access::basic(load_users(path).map_err(ConfigError)?)
            }
            AuthMode::Header => match (&self.auth_header, &self.trusted_proxies) {
                (Some(header), Some(proxies)) => Access::Header {
                    header: HeaderName::try_from(header.as_str())
                        .map_err(|e| ConfigError(format!("SCENE_QR_AUTH_HEADER: {e}")))?,
                    proxies: proxies.clone(),
                },
                _ => {
                    return Err(ConfigError(
                        "SCENE_QR_AUTH=header needs SCENE_QR_AUTH_HEADER (e.g. X-Forwarded-User) and SCENE_QR_TRUSTED_PROXIES (e.g. 127.0.0.1)".into(),
                    ));
                }
            },
        })
    }

    /// Whether permanent codes may be created: as configured, else only where someone is
    /// accountable for them (access control on) or nothing real is spent (sandbox).
    pub fn permanent_allowed(&self) -> bool {
        match self.permanent {
            Some(permission) => permission == Permission::Allow,
            None => self.auth != AuthMode::None || matches!(self.mode(), Ok(Mode::Sandbox)),
        }
    }

    /// Live or sandbox, from the credentials. Exactly one of the two is an error: half a
    /// configuration most likely means a typo, and silently running in sandbox would hide it.
    pub fn mode(&self) -> Result<Mode, ConfigError> {
        match (&self.appid, &self.appsecret) {
            (Some(appid), Some(secret)) => Ok(Mode::Live {
                appid: appid.clone(),
                secret: secret.clone(),
            }),
            (None, None) => Ok(Mode::Sandbox),
            (Some(_), None) => Err(ConfigError(
                "WECHAT_APPSECRET is not set but WECHAT_APPID is: set both for live mode, or neither for sandbox mode".into(),
            )),
            (None, Some(_)) => Err(ConfigError(
                "WECHAT_APPID is not set but WECHAT_APPSECRET is: set both for live mode, or neither for sandbox mode".into(),
            )),
        }
    }
}

/// Turns clap's multi-line error into one line naming the environment variable as well as
/// the flag, with what is allowed.
fn describe_clap_error(err: &clap::Error) -> String {
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let Some(flag) = flag else {
        return first_line(&err.to_string());
    };
    let long = flag
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or_default()
        .to_string();
    let env = Settings::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    let name = match env {
        Some(env) => format!("{env} (--{long})"),
        None => format!("--{long}"),
    };
    let reason = match err.kind() {
        ErrorKind::InvalidValue => {
            let allowed = match err.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(v)) => v.join(", "),
                _ => String::new(),
            };
            format!("allowed: {allowed}")
        }
        _ => std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_else(|| first_line(&err.to_string())),
    };
    match value {
        // Credentials are never echoed, not even mistyped ones.
        Some(value)
            if !["APPSECRET", "WECHAT_TOKEN", "AES_KEY"]
                .iter()
                .any(|c| name.contains(c)) =>
        {
            format!("invalid {name} value {value:?}: {reason}")
        }
        _ => format!("invalid {name}: {reason}"),
    }
}

/// A logo file larger than this is not a logo: refused before it is read.
const MAX_LOGO_BYTES: u64 = 8 * 1024 * 1024;

/// The logo at `path`, which must be a PNG image.
fn load_logo(path: &std::path::Path) -> Result<image::RgbaImage, ConfigError> {
    let refused = |why: String| ConfigError(format!("SCENE_QR_LOGO={}: {why}", path.display()));
    let bytes = std::fs::metadata(path)
        .map_err(|e| refused(format!("cannot be read: {e}")))?
        .len();
    if bytes > MAX_LOGO_BYTES {
        return Err(refused(format!(
            "is {bytes} bytes; a logo takes at most 8 MB"
        )));
    }
    let file = std::fs::read(path).map_err(|e| refused(format!("cannot be read: {e}")))?;
    let logo = image::load_from_memory_with_format(&file, image::ImageFormat::Png)
        .map_err(|e| refused(format!("is not a PNG image: {e}")))?;
    Ok(logo.to_rgba8())
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080".to_string())
}

fn parse_appid(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(s.to_string())
    } else {
        Err("expected the account's AppID, letters and digits such as wx1234567890abcdef".into())
    }
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    if !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic()) {
        Ok(Secret::new(s))
    } else {
        Err("expected the account's AppSecret, printable ASCII without spaces".into())
    }
}

fn parse_base_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {
            Ok(s.trim_end_matches('/').to_string())
        }
        _ => Err(
            "expected an http:// or https:// URL without query, e.g. https://api.weixin.qq.com"
                .into(),
        ),
    }
}

fn parse_push_token(s: &str) -> Result<Secret, String> {
    if (3..=32).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(Secret::new(s))
    } else {
        Err("expected the server configuration's Token: 3 to 32 letters and digits".into())
    }
}

fn parse_aes_key(s: &str) -> Result<AesKey, String> {
    AesKey::from_encoding_aes_key(s)
        .ok_or_else(|| "expected the EncodingAESKey: 43 characters of letters and digits".into())
}

fn parse_database_url(s: &str) -> Result<String, String> {
    let named = |rest: &str| !rest.trim_start_matches('/').is_empty();
    match (s.strip_prefix("sqlite:"), crate::store::is_postgres(s)) {
        (Some(rest), _) if named(rest) => Ok(s.to_string()),
        (None, true) => Ok(s.to_string()),
        _ => Err("expected sqlite://PATH (e.g. sqlite://scene-qr.db) or \
                  postgres://USER:PASSWORD@HOST/DATABASE"
            .into()),
    }
}

fn parse_utc_offset(s: &str) -> Result<UtcOffset, String> {
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(s, &format).map_err(|_| "expected an offset such as +08:00 or -05:00".into())
}

fn parse_header_name(s: &str) -> Result<String, String> {
    match actix_web::http::header::HeaderName::try_from(s) {
        Ok(name) => Ok(name.as_str().to_string()),
        Err(_) => Err("expected an HTTP header name such as X-Forwarded-User".into()),
    }
}

fn parse_networks(s: &str) -> Result<Networks, String> {
    let bad = || {
        "expected comma-separated IP addresses or networks, e.g. 127.0.0.1,10.0.0.0/8".to_string()
    };
    let networks = s
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| bad())
        })
        .collect::<Result<Vec<_>, _>>()?;
    if networks.is_empty() {
        return Err(bad());
    }
    Ok(Networks(networks))
}

fn parse_frame_ancestors(s: &str) -> Result<String, String> {
    // One CSP directive's sources: no `;` or `,` that would end it and start another.
    if !s.trim().is_empty() && !s.contains([';', ',', '\n', '\r']) {
        Ok(s.trim().to_string())
    } else {
        Err("expected CSP sources such as 'self' or 'none' or https://tools.example.com".into())
    }
}

fn parse_colour(s: &str) -> Result<Colour, String> {
    Colour::parse(s).ok_or_else(|| "expected a colour as #rrggbb, e.g. #1a3c8a".into())
}

fn parse_lifetime(s: &str) -> Result<Lifetime, String> {
    s.parse::<u32>()
        .ok()
        .and_then(Lifetime::new)
        .ok_or_else(|| {
            format!(
                "expected whole seconds from {} to {}",
                Lifetime::MIN,
                Lifetime::MAX
            )
        })
}

fn parse_timeout_ms(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(ms) if (100..=60_000).contains(&ms) => Ok(ms),
        _ => Err("expected whole milliseconds from 100 to 60000".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["scene-qr"];
        argv.extend_from_slice(args);
        Settings::try_parse_from(argv).map_err(|e| describe_clap_error(&e))
    }

    #[test]
    fn a_bad_listen_address_names_the_environment_variable_and_the_form() {
        let err = parse(&["--listen", "localhost"]).unwrap_err();
        assert!(err.contains("SCENE_QR_LISTEN (--listen)"), "{err}");
        assert!(err.contains("IP:PORT"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_lifetime_outside_the_wechat_range_is_refused() {
        let err = parse(&["--expire-seconds", "59"]).unwrap_err();
        assert!(err.contains("SCENE_QR_EXPIRE_SECONDS"), "{err}");
        assert!(err.contains("60 to 2592000"), "{err}");
    }

    #[test]
    fn an_unknown_token_endpoint_lists_the_allowed_ones() {
        let err = parse(&["--token-endpoint", "fast"]).unwrap_err();
        assert!(err.contains("WECHAT_TOKEN_ENDPOINT"), "{err}");
        assert!(err.contains("stable, classic"), "{err}");
    }

    #[test]
    fn only_one_credential_is_refused_naming_the_missing_one() {
        let settings = parse(&["--appid", "wx123"]).unwrap();
        let err = settings.mode().unwrap_err().to_string();
        assert!(err.starts_with("WECHAT_APPSECRET is not set"), "{err}");
    }

    #[test]
    fn a_colour_that_is_not_rrggbb_names_the_setting_and_the_form() {
        let err = parse(&["--dark-colour", "navy"]).unwrap_err();
        assert!(err.contains("SCENE_QR_DARK_COLOUR"), "{err}");
        assert!(err.contains("#rrggbb"), "{err}");
    }

    #[test]
    fn colours_of_too_little_contrast_refuse_start_up_naming_both_settings() {
        let settings = parse(&["--dark-colour", "#777777", "--light-colour", "#999999"]).unwrap();
        let err = settings.config().err().unwrap().to_string();
        assert!(
            err.starts_with("SCENE_QR_DARK_COLOUR and SCENE_QR_LIGHT_COLOUR"),
            "{err}"
        );
        assert!(err.contains("at least 3:1"), "{err}");
    }

    #[test]
    fn a_logo_that_is_missing_or_not_a_png_refuses_start_up_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        let text = dir.path().join("logo.png");
        std::fs::write(&text, "not an image").unwrap();

        for (path, why) in [(&missing, "cannot be read"), (&text, "is not a PNG image")] {
            let settings = parse(&["--logo", path.to_str().unwrap()]).unwrap();
            let err = settings.config().err().unwrap().to_string();
            assert!(
                err.starts_with(&format!("SCENE_QR_LOGO={}: {why}", path.display())),
                "{err}"
            );
        }
    }

    #[test]
    fn the_secret_does_not_show_in_debug_output() {
        let settings = parse(&["--appid", "wx123", "--appsecret", "s3cr3t-value"]).unwrap();
        assert!(!format!("{settings:?}").contains("s3cr3t-value"));
    }
}
