//! Where an error meets its reader: the one place that logs an [`AppError`] and chooses
//! its rendering, by route. `/api/…` is for tools and answers JSON; every other address is
//! one people open (pages, downloads, forms) and answers an HTML page.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::Error;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use pin_project_lite::pin_project;

use super::AppError;
use crate::pages::Layout;

/// The prefix of the routes that answer tools.
const API_PREFIX: &str = "/api/";

/// Renders every [`AppError`] answer, from a handler, access control or the router.
#[derive(Clone, Copy)]
pub struct ErrorAnswers {
    layout: Layout,
}

impl ErrorAnswers {
    pub fn new(layout: Layout) -> Self {
        Self { layout }
    }
}

impl<S, B> Transform<S, ServiceRequest> for ErrorAnswers
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = Error;
    type Transform = ErrorAnswersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ErrorAnswersService {
            service,
            layout: self.layout,
        }))
    }
}

pub struct ErrorAnswersService<S> {
    service: S,
    layout: Layout,
}

impl<S, B> Service<ServiceRequest> for ErrorAnswersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = Error;
    type Future = Answering<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Answering {
            inner: self.service.call(req),
            layout: self.layout,
        }
    }
}

pin_project! {
    /// An answer being prepared; an error gets its rendering when it is ready.
    pub struct Answering<F> {
        #[pin]
        inner: F,
        layout: Layout,
    }
}

impl<F, B> Future for Answering<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<EitherBody<B, BoxBody>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let Some(error) = response
            .response()
            .error()
            .and_then(|e| e.as_error::<AppError>())
        else {
            return Poll::Ready(Ok(response.map_into_left_body()));
        };
        error.log();
        // Answered as JSON already (`AppError::error_response`).
        if response.request().path().starts_with(API_PREFIX) {
            return Poll::Ready(Ok(response.map_into_left_body()));
        }
        let page = error.page(*this.layout);
        Poll::Ready(Ok(response.into_response(page).map_into_right_body()))
    }
}
