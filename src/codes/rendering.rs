//! The four answers a code is served as (its page, JSON for tools, PNG and SVG for
//! download), each rendered from the ticket once and then kept with it.

use std::sync::Arc;

use askama::Template;
use bytes::Bytes;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::domain::{CodeRequest, ImageFormat, Kind, LastWeek, PngSize, Scene, Ticket};
use crate::pages::{
    EmbedPage, LastWeekWarning, Layout, QrCodePage, human_duration, offset_label, scene_stats_path,
};
use crate::render::{self, Branding};

/// What a code is asked for as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Page,
    Json,
    Png,
    Svg,
}

impl AnswerKind {
    pub fn content_type(self) -> &'static str {
        match self {
            AnswerKind::Page => "text/html; charset=utf-8",
            AnswerKind::Json => "application/json",
            AnswerKind::Png => "image/png",
            AnswerKind::Svg => "image/svg+xml",
        }
    }

    /// The file name extension of a download of this kind.
    pub fn extension(self) -> &'static str {
        match self {
            AnswerKind::Page => "html",
            AnswerKind::Json => "json",
            AnswerKind::Png => "png",
            AnswerKind::Svg => "svg",
        }
    }

    fn name(self) -> &'static str {
        match self {
            AnswerKind::Page => "page",
            AnswerKind::Json => "JSON",
            AnswerKind::Png => "PNG",
            AnswerKind::Svg => "SVG",
        }
    }
}

impl From<ImageFormat> for AnswerKind {
    fn from(format: ImageFormat) -> Self {
        match format {
            ImageFormat::Png => AnswerKind::Png,
            ImageFormat::Svg => AnswerKind::Svg,
        }
    }
}

/// What the answers show beyond the code and its ticket.
#[derive(Debug, Clone)]
pub struct Presentation {
    /// Base of the `showqrcode` image URL, without a trailing slash.
    pub mp_base: String,
    pub layout: Layout,
    /// SCENE_QR_PERMANENT, resolved: whether a page may offer the permanent code of its
    /// scene.
    pub permanent_allowed: bool,
    /// SCENE_QR_LOGO and the colours: when set, the images are drawn with them.
    pub branding: Option<Arc<Branding>>,
    /// SCENE_QR_UTC_OFFSET: pages show times in it, as the statistics count days in it.
    pub utc_offset: time::UtcOffset,
}

/// Why an answer could not be rendered: a fault of scene-qr (or of its database, for the
/// label a page shows), never of the request.
#[derive(Debug, thiserror::Error)]
#[error("the code's {} could not be rendered: {cause}", .kind.name())]
pub struct RenderFailure {
    kind: AnswerKind,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl RenderFailure {
    pub fn new(
        kind: AnswerKind,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            cause: cause.into(),
        }
    }
}

impl Presentation {
    /// The answer of `kind` for `code` showing `ticket`; `label` is the scene's name among
    /// staff and `last_week` whether the code is in its last week, which only the page
    /// shows.
    pub fn render(
        &self,
        kind: AnswerKind,
        code: &CodeRequest,
        ticket: &Ticket,
        label: Option<String>,
        last_week: Option<LastWeek>,
    ) -> Result<Bytes, RenderFailure> {
        let failed =
            |cause: Box<dyn std::error::Error + Send + Sync>| RenderFailure { kind, cause };
        match kind {
            AnswerKind::Page => self
                .page(code, ticket, label, last_week)
                .render()
                .map(Bytes::from)
                .map_err(|e| failed(e.into())),
            AnswerKind::Json => Ok(self.json(code, ticket)),
            AnswerKind::Png => self
                .png(&ticket.url)
                .map(Bytes::from)
                .map_err(|e| failed(e.into())),
            AnswerKind::Svg => self
                .svg(&ticket.url)
                .map(Bytes::from)
                .map_err(|e| failed(e.into())),
        }
    }

    /// The PNG of a code encoding `url`, branded when branding is set: the download, and
    /// what a batch's archive holds.
    pub fn png(&self, url: &str) -> Result<Vec<u8>, render::RenderError> {
        match &self.branding {
            Some(branding) => branding.png(url, None),
            None => render::png(url),
        }
    }

    /// The SVG of a code encoding `url`, branded when branding is set.
    pub fn svg(&self, url: &str) -> Result<String, render::RenderError> {
        match &self.branding {
            Some(branding) => branding.svg(url, None),
            None => render::svg(url),
        }
    }

    /// The drawing of a PNG of `size` showing `ticket`, as a job to run away from the
    /// worker's thread: a large one takes a core for a moment.
    pub fn sized_png(
        &self,
        ticket: &Ticket,
        size: PngSize,
    ) -> impl FnOnce() -> Result<Bytes, RenderFailure> + Send + 'static {
        let url = ticket.url.clone();
        let branding = self.branding.clone();
        move || {
            match branding {
                Some(branding) => branding.png(&url, Some(size.pixels())),
                None => render::png_sized(&url, size.pixels()),
            }
            .map(Bytes::from)
            .map_err(|e| RenderFailure::new(AnswerKind::Png, e))
        }
    }

    /// The SVG of `ticket` with the scene and its `label` written under the code.
    pub fn captioned_svg(
        &self,
        code: &CodeRequest,
        ticket: &Ticket,
        label: Option<&str>,
    ) -> Result<Bytes, RenderFailure> {
        let scene = code.scene.to_string();
        let caption = render::Caption {
            label,
            scene: &scene,
        };
        match &self.branding {
            Some(branding) => branding.svg(&ticket.url, Some(caption)),
            None => render::svg_captioned(&ticket.url, caption),
        }
        .map(Bytes::from)
        .map_err(|e| RenderFailure::new(AnswerKind::Svg, e))
    }

    /// The embed view of `code`: the code, its scene and label, and its expiry, nothing
    /// else, for a frame in another tool.
    pub fn embed(
        &self,
        code: &CodeRequest,
        ticket: &Ticket,
        label: Option<String>,
    ) -> Result<Bytes, RenderFailure> {
        EmbedPage {
            scene: code.scene.to_string(),
            label: label.unwrap_or_default(),
            image_url: image_url(&self.mp_base, &ticket.ticket),
            expires_at: ticket
                .expires_at
                .and_then(|t| local_time(t, self.utc_offset)),
        }
        .render()
        .map(Bytes::from)
        .map_err(|e| RenderFailure::new(AnswerKind::Page, e))
    }

    fn page(
        &self,
        code: &CodeRequest,
        ticket: &Ticket,
        label: Option<String>,
        last_week: Option<LastWeek>,
    ) -> QrCodePage {
        let scene = code.scene.to_string();
        let expires_at = ticket.expires_at;
        QrCodePage {
            layout: self.layout,
            label: label.unwrap_or_default(),
            back: format!("/qrcode?{}", code.query_string()),
            stats_href: scene_stats_path(&scene),
            ticket: ticket.ticket.clone(),
            scene,
            is_string_scene: matches!(code.scene, Scene::Str(_)),
            kind: code.kind.name(),
            action_name: code.action_name(),
            image_url: image_url(&self.mp_base, &ticket.ticket),
            url: ticket.url.clone(),
            lifetime: ticket.expire_seconds.map(human_duration),
            expires_at: expires_at.and_then(|t| local_time(t, self.utc_offset)),
            expires_at_rfc3339: expires_at.and_then(|t| t.format(&Rfc3339).ok()),
            query: code.query_string(),
            file_stem: file_stem(code),
            last_week: last_week.map(|last_week| self.last_week_warning(code, last_week)),
        }
    }

    /// The warning against printing a code in its last week, with the way to a code for
    /// print: the scene's permanent code, where this server makes one and the scene can
    /// have one.
    fn last_week_warning(&self, code: &CodeRequest, last_week: LastWeek) -> LastWeekWarning {
        let within = match last_week.days {
            1 => "1 day".to_string(),
            days => format!("{days} days"),
        };
        let twin = code.permanent().filter(|_| self.permanent_allowed);
        let no_permanent = match (&twin, self.permanent_allowed) {
            (Some(_), _) => "",
            (None, false) => {
                "this server makes no permanent codes (SCENE_QR_PERMANENT), so ask its \
                 administrator for one"
            }
            (None, true) => {
                "permanent codes take scene numbers from 1 to 100000, so make one for another \
                 scene"
            }
        };
        LastWeekWarning {
            within,
            permanent_href: twin.map(|twin| format!("/qrcode?{}", twin.query_string())),
            no_permanent,
        }
    }

    fn json(&self, code: &CodeRequest, ticket: &Ticket) -> Bytes {
        let json = CodeJson {
            scene: &code.scene,
            kind: code.kind.name(),
            action_name: code.action_name(),
            ticket: &ticket.ticket,
            url: &ticket.url,
            image_url: image_url(&self.mp_base, &ticket.ticket),
            expire_seconds: ticket.expire_seconds,
            expires_at: ticket.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
        };
        // Serializing strings and numbers cannot fail.
        Bytes::from(serde_json::to_vec(&json).unwrap_or_default())
    }
}

/// The code as JSON, for internal tools.
#[derive(Serialize)]
struct CodeJson<'a> {
    scene: &'a Scene,
    kind: &'static str,
    action_name: &'static str,
    ticket: &'a str,
    url: &'a str,
    image_url: String,
    expire_seconds: Option<u32>,
    expires_at: Option<String>,
}

/// `t` as pages show times: in the statistics' offset, which is named ("2026-12-04 14:42
/// UTC+08:00"), so that a code's page and its scene's statistics agree.
fn local_time(t: time::OffsetDateTime, offset: time::UtcOffset) -> Option<String> {
    let shown = t
        .to_offset(offset)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .ok()?;
    Some(format!("{shown} {}", offset_label(offset)))
}

/// The `showqrcode` address of a ticket. Tickets hold `+`, `/` and `=`, so the ticket is
/// percent-encoded: unencoded, `+` would arrive as a space and WeChat would answer 404.
pub fn image_url(mp_base: &str, ticket: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
    format!("{mp_base}/cgi-bin/showqrcode?ticket={encoded}")
}

/// A file name for downloads: `scene-123`, `scene-shop-12-permanent`, `scene-上海店-海报`.
/// Letters of every script are kept (the header carries them as `filename*`); what a file
/// system or a header refuses becomes `_` ([`safe_file_name`]).
pub fn file_stem(code: &CodeRequest) -> String {
    let scene = safe_file_name(&code.scene.to_string());
    match code.kind {
        Kind::Temporary(_) => format!("scene-{scene}"),
        Kind::Permanent => format!("scene-{scene}-permanent"),
    }
}

/// `name` with every character that a file system (Windows' being the strictest) or a
/// header refuses, and white space, replaced by `_`, and no leading dot (a hidden file).
pub fn safe_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            let refused = c.is_control()
                || c.is_whitespace()
                || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|');
            if refused { '_' } else { c }
        })
        .collect();
    safe.trim_start_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_chinese_and_lose_what_file_systems_refuse() {
        assert_eq!(safe_file_name("上海店-海报"), "上海店-海报");
        assert_eq!(safe_file_name("shop/12 a:b*"), "shop_12_a_b_");
        assert_eq!(safe_file_name("..hidden"), "hidden");
    }

    #[test]
    fn the_ticket_is_percent_encoded_in_the_image_url() {
        assert_eq!(
            image_url("https://mp.weixin.qq.com", "gQH+47/jo=="),
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH%2B47%2Fjo%3D%3D"
        );
    }
}
