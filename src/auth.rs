//! Staff access control: none, HTTP Basic against a users file, or a user header set by a
//! trusted SSO proxy. The WeChat callback (signed by WeChat), `/healthz` and `/static` are
//! always open.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderName};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

use crate::error::AppError;

/// IP networks, for the trusted proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(pub Vec<ipnet::IpNet>);

impl Networks {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Who is making a request, once access control has let it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUser(pub String);

pub enum Access {
    Open,
    Basic {
        users: HashMap<String, String>,
        /// Credentials already verified: a password hash takes tens of milliseconds by
        /// design, which must not be paid on every page. Keyed by a digest of the header,
        /// never the password itself; entries expire so a removed user is locked out soon.
        verified: moka::sync::Cache<[u8; 20], String>,
    },
    Header {
        header: HeaderName,
        proxies: Networks,
    },
}

impl Access {
    pub fn basic(users: HashMap<String, String>) -> Self {
        Access::Basic {
            users,
            verified: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, Access::Open)
    }
}

/// Paths that never ask for staff credentials.
fn is_exempt(path: &str) -> bool {
    path == "/wechat/callback" || path == "/healthz" || path.starts_with("/static/")
}

/// Reads a users file: one `name:hash` per line (argon2 or bcrypt), `#` comments allowed.
pub fn load_users(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read SCENE_QR_USERS_FILE {}: {e}", path.display()))?;
    let mut users = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("SCENE_QR_USERS_FILE line {}: {why}", number + 1);
        let (name, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected name:hash"))?;
        if !valid_name(name) {
            return Err(bad(
                "the name may hold letters, digits, '.', '_', '-' and '@'",
            ));
        }
        let known = hash.starts_with("$argon2")
            || ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
        if !known || (hash.starts_with("$argon2") && PasswordHash::new(hash).is_err()) {
            return Err(bad(
                "the hash is not an argon2 or bcrypt hash (make one with scene-qr hash-password)",
            ));
        }
        users.insert(name.to_string(), hash.to_string());
    }
    if users.is_empty() {
        return Err(format!(
            "SCENE_QR_USERS_FILE {} names no user",
            path.display()
        ));
    }
    Ok(users)
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// An argon2id hash of `password` in PHC format, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(hash: &str, password: &str) -> bool {
    if hash.starts_with("$argon2") {
        PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    } else {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

/// The middleware: lets a request through with its [`StaffUser`], or answers 401/403.
pub async fn require_staff(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let access = req.app_data::<web::Data<Access>>().cloned();
    let user = match access.as_ref().map(|a| a.get_ref()) {
        None | Some(Access::Open) => None,
        Some(_) if is_exempt(req.path()) => None,
        Some(access) => match identify(access, &req).await {
            Ok(user) => Some(user),
            Err(refusal) => return Ok(req.error_response(refusal).map_into_right_body()),
        },
    };
    if let Some(user) = user {
        req.extensions_mut().insert(user);
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn identify(access: &Access, req: &ServiceRequest) -> Result<StaffUser, AppError> {
    match access {
        Access::Open => Err(AppError::Internal(
            "access control asked to identify a user while access is open".into(),
        )),
        Access::Basic { users, verified } => {
            let challenge = || AppError::SignInRequired;
            let header = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .ok_or_else(challenge)?;
            let key: [u8; 20] = Sha1::digest(header.as_bytes()).into();
            if let Some(name) = verified.get(&key) {
                return Ok(StaffUser(name));
            }
            let (name, password) = header
                .strip_prefix("Basic ")
                .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|pair| {
                    pair.split_once(':')
                        .map(|(n, p)| (n.to_string(), p.to_string()))
                })
                .ok_or_else(challenge)?;
            let Some(hash) = users.get(&name).cloned() else {
                return Err(challenge());
            };
            // Hashing is deliberately slow: off the worker's event loop.
            let ok = web::block(move || verify_password(&hash, &password))
                .await
                .unwrap_or(false);
            if !ok {
                log::info!("refused a sign-in for user {name}: wrong password");
                return Err(challenge());
            }
            verified.insert(key, name.clone());
            Ok(StaffUser(name))
        }
        Access::Header { header, proxies } => {
            let peer = req.peer_addr().map(|a| a.ip());
            if !peer.is_some_and(|ip| proxies.contains(ip)) {
                return Err(AppError::Forbidden(
                    "scene-qr is reached through the sign-in proxy only",
                ));
            }
            let name = req
                .headers()
                .get(header)
                .and_then(|h| h.to_str().ok())
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.len() <= 256);
            match name {
                Some(name) => Ok(StaffUser(name.to_string())),
                None => Err(AppError::UnnamedUser),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "battery staple"));
    }

    #[test]
    fn bcrypt_hashes_are_accepted_too() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        assert!(verify_password(&hash, "pw"));
        assert!(!verify_password(&hash, "px"));
    }
}
