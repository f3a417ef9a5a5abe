//! What `/qrcode.png` and `/qrcode.svg` ask for: a code, and how to draw it beyond the
//! download every page links to (a PNG of a given size for print, an SVG with a caption).

use std::borrow::Cow;

use super::code_request::{CodeRequest, InvalidRequest, Lifetime, truncate};

/// The two image formats a code is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

/// Pixels on a side of a PNG asked for with `size`: whole pixels, or a print size at
/// [`PngSize::DPI`] in centimetres or millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PngSize(u32);

impl PngSize {
    /// Smaller is not worth printing; larger is a poster's size at 300 dpi (34 cm) and
    /// already 16 MB of pixels while drawn.
    pub const MIN: u32 = 128;
    pub const MAX: u32 = 4096;
    /// Resolution of print sizes: what print shops ask for.
    pub const DPI: f64 = 300.0;

    /// `600` (pixels), `8cm`, `8.5cm` or `85mm`; `None` for anything else or a size that
    /// comes to fewer than [`PngSize::MIN`] or more than [`PngSize::MAX`] pixels.
    pub fn parse(raw: &str) -> Option<Self> {
        // Short input only: nothing longer names a size in range.
        if raw.len() > 12 {
            return None;
        }
        let pixels = if let Some(number) = raw.strip_suffix("cm") {
            print_pixels(number, 2.54)?
        } else if let Some(number) = raw.strip_suffix("mm") {
            print_pixels(number, 25.4)?
        } else if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            raw.parse().ok()?
        } else {
            return None;
        };
        (Self::MIN..=Self::MAX)
            .contains(&pixels)
            .then_some(Self(pixels))
    }

    pub fn pixels(self) -> u32 {
        self.0
    }
}

/// Pixels at [`PngSize::DPI`] of `number` units, `per_inch` to the inch. Digits with at
/// most one decimal point: `f64::from_str` alone would also take `inf`, `1e3` or `-2`.
fn print_pixels(number: &str, per_inch: f64) -> Option<u32> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let pixels = (value / per_inch * PngSize::DPI).round();
    // In range of u32 here: at most 12 characters of centimetres.
    (pixels <= f64::from(u32::MAX)).then_some(pixels as u32)
}

/// An image request: the code, and the options of its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    pub code: CodeRequest,
    pub format: ImageFormat,
    /// PNG only: pixels on a side; `None` for the download the page links to.
    pub size: Option<PngSize>,
    /// SVG only: the scene's label and the scene written under the code.
    pub caption: bool,
}

impl ImageRequest {
    /// Parses the query of `/qrcode.png` or `/qrcode.svg`: a code's parameters (see
    /// [`CodeRequest::from_query`]) and the format's own.
    pub fn from_query(
        query: &str,
        default_lifetime: Lifetime,
        format: ImageFormat,
    ) -> Result<Self, InvalidImageRequest> {
        let mut size: Option<Cow<'_, str>> = None;
        let mut caption: Option<Cow<'_, str>> = None;
        let mut repeated = None;
        let code = CodeRequest::from_query_and(query, default_lifetime, |name, value| {
            let slot = match name {
                "size" => &mut size,
                "caption" => &mut caption,
                _ => return false,
            };
            if slot.replace(value).is_some() {
                repeated = Some(name.to_string());
            }
            true
        })?;
        if let Some(name) = repeated {
            return Err(InvalidRequest::Repeated { name }.into());
        }
        let size = match (size, format) {
            (None, _) => None,
            (Some(_), ImageFormat::Svg) => return Err(InvalidImageRequest::SizeOnSvg),
            (Some(raw), ImageFormat::Png) => {
                Some(
                    PngSize::parse(&raw).ok_or_else(|| InvalidImageRequest::BadSize {
                        value: truncate(&raw, 40),
                    })?,
                )
            }
        };
        let caption = match caption.as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") if format == ImageFormat::Svg => true,
            Some("1") | Some("true") => return Err(InvalidImageRequest::CaptionOnPng),
            Some(other) => {
                return Err(InvalidImageRequest::BadCaption {
                    value: truncate(other, 40),
                });
            }
        };
        Ok(Self {
            code,
            format,
            size,
            caption,
        })
    }

    /// Whether this is the download the page links to, kept with the code once drawn.
    pub fn is_plain(&self) -> bool {
        self.size.is_none() && !self.caption
    }
}

/// Why an image request was refused: said so that a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidImageRequest {
    #[error(transparent)]
    Code(#[from] InvalidRequest),
    #[error(
        "size {value:?} is not valid: it takes whole pixels from 128 to 4096 (size=600), or a \
         print size at 300 dpi in cm or mm that comes to as many (size=8cm, size=85mm: 1.1 cm \
         to 34.6 cm)"
    )]
    BadSize { value: String },
    #[error("size applies to /qrcode.png only: an SVG scales to any size without losing detail")]
    SizeOnSvg,
    #[error("caption {value:?} is not valid: use 1, true, 0 or false")]
    BadCaption { value: String },
    #[error(
        "caption applies to /qrcode.svg only: a PNG would need a font with every character a \
         label may hold"
    )]
    CaptionOnPng,
}

impl InvalidImageRequest {
    /// The rules of the image options, for the line under the error that says what is
    /// allowed (a code's own parameters are as on /qrcode).
    pub const ALLOWED: &'static str = "The code's parameters as on /qrcode; on /qrcode.png \
        optional size: whole pixels from 128 to 4096 (size=600) or a print size at 300 dpi \
        (size=8cm, size=85mm); on /qrcode.svg optional caption=1 to write the scene's label \
        and the scene under the code.";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(query: &str) -> Result<ImageRequest, InvalidImageRequest> {
        ImageRequest::from_query(query, Lifetime::new(604_800).unwrap(), ImageFormat::Png)
    }

    fn svg(query: &str) -> Result<ImageRequest, InvalidImageRequest> {
        ImageRequest::from_query(query, Lifetime::new(604_800).unwrap(), ImageFormat::Svg)
    }

    fn pixels(raw: &str) -> Option<u32> {
        PngSize::parse(raw).map(PngSize::pixels)
    }

    #[test]
    fn sizes_are_pixels_or_print_sizes_at_300_dpi_within_128_to_4096_pixels() {
        assert_eq!(pixels("300"), Some(300));
        assert_eq!(pixels("8cm"), Some(945));
        assert_eq!(pixels("85mm"), Some(1004));
        assert_eq!(pixels("8.5cm"), Some(1004));
        assert_eq!(pixels("128"), Some(128));
        assert_eq!(pixels("4096"), Some(4096));
        for bad in [
            "0", "127", "4097", "99999", "abc", "", "8 cm", "8in", "-8cm", "inf cm", "1e3mm",
            ".5cm", "8.cmx", "+300", "35cm",
        ] {
            assert_eq!(pixels(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_png_takes_a_size_and_an_svg_a_caption_each_beside_the_code() {
        let sized = png("scene_id=5&size=8cm").unwrap();
        let captioned = svg("scene_str=shop&caption=1&permanent=true").unwrap();

        assert_eq!(sized.size.map(PngSize::pixels), Some(945));
        assert!(!sized.caption && !sized.is_plain());
        assert!(captioned.caption && captioned.size.is_none());
        assert!(png("scene_id=5").unwrap().is_plain());
        assert!(svg("scene_id=5&caption=0").unwrap().is_plain());
    }

    #[test]
    fn options_of_the_other_format_repeated_or_malformed_are_refused() {
        assert_eq!(
            svg("scene_id=5&size=300").unwrap_err(),
            InvalidImageRequest::SizeOnSvg
        );
        assert_eq!(
            png("scene_id=5&caption=1").unwrap_err(),
            InvalidImageRequest::CaptionOnPng
        );
        assert!(matches!(
            png("scene_id=5&size=300&size=400"),
            Err(InvalidImageRequest::Code(InvalidRequest::Repeated { .. }))
        ));
        assert!(matches!(
            png("scene_id=5&size=abc"),
            Err(InvalidImageRequest::BadSize { .. })
        ));
        assert!(matches!(
            svg("scene_id=5&caption=yes"),
            Err(InvalidImageRequest::BadCaption { .. })
        ));
        assert!(matches!(
            png("scene_id=5&colour=red"),
            Err(InvalidImageRequest::Code(
                InvalidRequest::UnknownParameter { .. }
            ))
        ));
    }
}
