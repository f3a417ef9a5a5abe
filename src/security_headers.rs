//! The headers every answer carries: a content security policy that allows no script,
//! no guessing of content types, and no referrer sent to other sites.

use std::future::{Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{
    CONTENT_SECURITY_POLICY, HeaderName, HeaderValue, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use pin_project_lite::pin_project;

use crate::settings::ConfigError;

/// The policy allows no script at all, styles and images from this service only (plus
/// the WeChat image host `mp_base`), forms posted back here only, and framing only by
/// `frame_ancestors`: `'self'` for the app, SCENE_QR_FRAME_ANCESTORS for the embed views.
pub fn content_security_policy(
    mp_base: &str,
    frame_ancestors: &str,
) -> Result<HeaderValue, ConfigError> {
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data: {mp_base}; \
         form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    );
    HeaderValue::try_from(policy).map_err(|_| {
        ConfigError(
            "SCENE_QR_FRAME_ANCESTORS and WECHAT_MP_BASE go into the Content-Security-Policy \
             header, which cannot carry control characters"
                .into(),
        )
    })
}

/// Sets the security headers on every answer, the refusals of access control included.
///
/// They replace any value a handler set. Not actix's `DefaultHeaders`, which first looks
/// each header up in the answer to keep a value the handler chose: no handler sets these,
/// and the look-ups showed in a cached page's profile (bench/README.md). Built per worker
/// (it holds an `Rc`).
#[derive(Clone)]
pub struct SecurityHeaders {
    headers: Rc<Headers>,
}

/// The headers of the app's answers, and of the embed view's (`/embed/…`), which only
/// differ in who may frame them.
struct Headers {
    app: [(HeaderName, HeaderValue); 3],
    embed: [(HeaderName, HeaderValue); 3],
}

/// Where the embed views live: the only answers other sites may frame.
const EMBED_PREFIX: &str = "/embed/";

impl SecurityHeaders {
    /// `policy` for every answer but the embed views, which get `embed_policy`.
    pub fn new(policy: HeaderValue, embed_policy: HeaderValue) -> Self {
        let with = |policy| {
            [
                (CONTENT_SECURITY_POLICY, policy),
                (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            ]
        };
        Self {
            headers: Rc::new(Headers {
                app: with(policy),
                embed: with(embed_policy),
            }),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SecurityHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = SecurityHeadersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecurityHeadersService {
            service,
            headers: self.headers.clone(),
        }))
    }
}

pub struct SecurityHeadersService<S> {
    service: S,
    headers: Rc<Headers>,
}

impl<S, B> Service<ServiceRequest> for SecurityHeadersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = WithSecurityHeaders<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let embed = req.path().starts_with(EMBED_PREFIX);
        WithSecurityHeaders {
            inner: self.service.call(req),
            headers: self.headers.clone(),
            embed,
        }
    }
}

pin_project! {
    /// An answer being prepared; it gets the headers when it is ready.
    pub struct WithSecurityHeaders<F> {
        #[pin]
        inner: F,
        headers: Rc<Headers>,
        embed: bool,
    }
}

impl<F, B> Future for WithSecurityHeaders<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        let chosen = if *this.embed {
            &this.headers.embed
        } else {
            &this.headers.app
        };
        let headers = response.headers_mut();
        for (name, value) in chosen.iter() {
            headers.insert(name.clone(), value.clone());
        }
        Poll::Ready(Ok(response))
    }
}
