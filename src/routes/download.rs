//! Names of downloaded files, Chinese kept: `Content-Disposition` with an ASCII `filename`
//! for old clients and the real name as `filename*` (RFC 6266, encoded as RFC 5987 says),
//! which every current browser prefers.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What RFC 5987's `attr-char` leaves unencoded: letters, digits and `!#$&+-.^_`|~`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The header value naming `name` (`attachment` or `inline` as `disposition`).
pub fn content_disposition(disposition: &str, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if fallback == name {
        return format!("{disposition}; filename=\"{name}\"");
    }
    format!(
        "{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_names_are_given_as_they_are() {
        assert_eq!(
            content_disposition("attachment", "scene-7.png"),
            "attachment; filename=\"scene-7.png\""
        );
    }

    #[test]
    fn other_names_get_an_ascii_fallback_and_their_utf8_form() {
        assert_eq!(
            content_disposition("inline", "上海店 海报.png"),
            "inline; filename=\"______.png\"; \
             filename*=UTF-8''%E4%B8%8A%E6%B5%B7%E5%BA%97%20%E6%B5%B7%E6%8A%A5.png"
        );
    }
}
