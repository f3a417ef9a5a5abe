//! Naming scenes and putting them in groups: `POST /labels` from the forms on the code,
//! home and statistics pages.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::{self, FORM_BODY_WITHIN, MAX_FORM_BYTES};
use super::{AppState, refuse_cross_site_form};
use crate::domain::{Change, GroupName, SceneKey, SceneLabel, SettingsChange, scene_rule};
use crate::error::AppError;
use crate::pages::scene_stats_path;

const ALLOWED: &str = concat!(
    "scene: ",
    scene_rule!(),
    "; label: up to 100 characters of text without line breaks (empty removes the name); \
     group, where the form has it: up to 50 characters without line breaks (empty takes the \
     scene out of its group)."
);

/// The notice a page shows after a save (an element of base.html).
const NAME_SAVED: &str = "name-saved";

/// Where a form may send staff back to: the pages of this service that have the form.
const BACK_TO: [&str; 4] = ["/qrcode", "/stats", "/open", "/"];

/// Saves a scene's label, and its group when the form has a `group` field (only the scene's
/// statistics page does: the other forms leave the group as it is).
pub async fn save(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    refuse_cross_site_form(&req)?;
    let body = body::read(&req, payload, MAX_FORM_BYTES, FORM_BODY_WITHIN).await?;
    let mut scene = String::new();
    let mut label = String::new();
    let mut group = None;
    let mut back = String::new();
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "scene" => scene = value.trim().to_string(),
            "label" => label = value.into_owned(),
            "group" => group = Some(value.into_owned()),
            "back" => back = value.into_owned(),
            _ => {}
        }
    }
    let invalid = |message: String| AppError::BadRequest {
        message,
        allowed: ALLOWED,
    };
    let scene = SceneKey::parse(&scene).map_err(|e| invalid(e.to_string()))?;
    let label = SceneLabel::parse(&label).map_err(|e| invalid(e.to_string()))?;
    let group = match group {
        None => Change::Keep,
        Some(text) => Change::to(GroupName::parse(&text).map_err(|e| invalid(e.to_string()))?),
    };
    let change = SettingsChange {
        label: Change::to(label),
        group,
    };
    state.store.save_scene_settings(&scene, change).await?;
    let page = if is_own_page(&back) {
        back.split('#').next().unwrap_or_default().to_string()
    } else {
        scene_stats_path(&scene)
    };
    // The page shows its "Name saved" notice when it is the fragment's target (base.html).
    let location = format!("{page}#{NAME_SAVED}");
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish())
}

/// Whether `back` is one of this service's pages, so that a form cannot send staff
/// elsewhere. Browsers drop tabs and line breaks from a URL and read `\` as `/`, so
/// `/\t/evil.example` is `//evil.example`, another site: only the known pages, followed by
/// nothing, a query or a path of printable characters, pass.
fn is_own_page(back: &str) -> bool {
    if back
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    BACK_TO.iter().any(|page| match back.strip_prefix(page) {
        Some(rest) => {
            rest.is_empty()
                || rest.starts_with('?')
                || (*page != "/" && rest.starts_with('/') && !rest.starts_with("//"))
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::is_own_page;

    #[test]
    fn the_pages_with_the_form_are_accepted_as_the_way_back() {
        for back in [
            "/",
            "/qrcode?scene_id=1",
            "/stats",
            "/stats/shop-1",
            "/stats?from=2026-01-01",
            "/open",
        ] {
            assert!(is_own_page(back), "{back}");
        }
    }

    #[test]
    fn anything_a_browser_could_read_as_another_site_is_not() {
        for back in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/stats//evil.example",
            "https://evil.example/",
            "/evil",
            "/qrcodes",
            "",
        ] {
            assert!(!is_own_page(back), "{back:?}");
        }
    }
}
