//! Local rendering of a code from the `url` it encodes, for downloads and for browsers that
//! cannot reach mp.weixin.qq.com. A code rendered from `url` scans exactly like WeChat's.

use std::fmt::Write;

use image::{GrayImage, ImageEncoder, Luma, codecs::png::PngEncoder};
use qrcode::QrCode;
use qrcode::render::svg;

use crate::domain::Colour;

mod branding;
pub use branding::{Branding, BrandingError};

/// Pixels per module of the PNG: about 10 cm at 300 dpi for a typical WeChat URL, large
/// enough to print a poster from.
const PNG_MODULE_PIXELS: u32 = 12;

/// Light modules around a code on every side, as the QR standard asks: scanners find a
/// code by its edge, and a poster's background pressed against it hides the edge.
const QUIET_ZONE_MODULES: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the code's url cannot be encoded as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("PNG encoding failed: {0}")]
    Png(#[from] image::ImageError),
    /// Not for a WeChat `url` (about 45 bytes, 37 modules at most) at 128 pixels or more.
    #[error("{pixels} pixels cannot hold {modules} modules and their quiet zone")]
    TooSmall { pixels: u32, modules: u32 },
}

pub fn png(url: &str) -> Result<Vec<u8>, RenderError> {
    let code = QrCode::new(url.as_bytes())?;
    let image = code
        .render::<Luma<u8>>()
        .module_dimensions(PNG_MODULE_PIXELS, PNG_MODULE_PIXELS)
        .build();
    let mut bytes = Vec::with_capacity(8 * 1024);
    PngEncoder::new(&mut bytes).write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        image::ExtendedColorType::L8,
    )?;
    Ok(bytes)
}

/// The code as a PNG of exactly `pixels` on a side, for print at a chosen size. Modules are
/// whole pixels, the largest that leave room for the quiet zone; the pixels that do not
/// make a whole module widen the quiet zone (by at most one module on each side, the odd
/// pixel to the right and bottom), so the code is as sharp as the size allows.
pub fn png_sized(url: &str, pixels: u32) -> Result<Vec<u8>, RenderError> {
    let code = QrCode::new(url.as_bytes())?;
    let layout = Layout::fitting(&code, pixels)?;
    let mut image = GrayImage::from_pixel(pixels, pixels, Luma([255]));
    layout.draw(&code, |x, y| image.put_pixel(x, y, Luma([0])));
    encode_png(&image, image::ExtendedColorType::L8)
}

/// Where the modules of a code go on a square image.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Pixels on a side of one module.
    module: u32,
    /// Pixels from the image's top and left edges to the code's first module.
    offset: u32,
}

impl Layout {
    /// The download's layout: [`PNG_MODULE_PIXELS`] a module, and the image's pixels on a
    /// side.
    fn download(code: &QrCode) -> (Self, u32) {
        let layout = Self {
            module: PNG_MODULE_PIXELS,
            offset: QUIET_ZONE_MODULES * PNG_MODULE_PIXELS,
        };
        let pixels = (modules(code) + 2 * QUIET_ZONE_MODULES) * PNG_MODULE_PIXELS;
        (layout, pixels)
    }

    /// The largest whole-pixel modules that fit `code` and its quiet zone in `pixels`.
    fn fitting(code: &QrCode, pixels: u32) -> Result<Self, RenderError> {
        let width = modules(code);
        let module = pixels / (width + 2 * QUIET_ZONE_MODULES);
        if module == 0 {
            return Err(RenderError::TooSmall {
                pixels,
                modules: width,
            });
        }
        Ok(Self {
            module,
            offset: (pixels - width * module) / 2,
        })
    }

    /// Calls `dark` for every pixel of a dark module.
    fn draw(self, code: &QrCode, mut dark: impl FnMut(u32, u32)) {
        let width = modules(code);
        for (i, colour) in code.to_colors().into_iter().enumerate() {
            if colour != qrcode::Color::Dark {
                continue;
            }
            // Below `width * width`, which is at most 177 squared.
            let (x, y) = (i as u32 % width, i as u32 / width);
            let (left, top) = (self.offset + x * self.module, self.offset + y * self.module);
            for py in top..top + self.module {
                for px in left..left + self.module {
                    dark(px, py);
                }
            }
        }
    }
}

/// Modules on a side of `code` (21 to 177).
fn modules(code: &QrCode) -> u32 {
    u32::try_from(code.width()).unwrap_or(u32::MAX)
}

fn encode_png<P: image::Pixel<Subpixel = u8>>(
    image: &image::ImageBuffer<P, Vec<u8>>,
    colour: image::ExtendedColorType,
) -> Result<Vec<u8>, RenderError> {
    let mut bytes = Vec::with_capacity(8 * 1024);
    PngEncoder::new(&mut bytes).write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        colour,
    )?;
    Ok(bytes)
}

/// What is written under a code in a captioned SVG.
#[derive(Debug, Clone, Copy)]
pub struct Caption<'a> {
    /// The scene's name among staff, if it has one.
    pub label: Option<&'a str>,
    pub scene: &'a str,
}

/// Units of the SVG's coordinates per module.
const SVG_MODULE_UNITS: u32 = 8;

/// The code as an SVG with `caption` written under it in `<text>` elements, so that a
/// printed code says what it is for. The text is left to the viewer's fonts (a label may
/// be Chinese); a long line is set smaller so that it stays within the code's width.
pub fn svg_captioned(url: &str, caption: Caption<'_>) -> Result<String, RenderError> {
    let code = QrCode::new(url.as_bytes())?;
    Ok(svg_document(
        &code,
        Some(caption),
        Colour::BLACK,
        Colour::WHITE,
    ))
}

/// `code` as an SVG document in `dark` on `light`, with `caption` under it if any.
fn svg_document(
    code: &QrCode,
    caption: Option<Caption<'_>>,
    dark: Colour,
    light: Colour,
) -> String {
    let width = (modules(code) + 2 * QUIET_ZONE_MODULES) * SVG_MODULE_UNITS;
    let lines = caption
        .map(|caption| caption_lines(caption, width))
        .unwrap_or_default();
    let line_heights: u32 = lines.iter().map(|(_, font, _)| font * 3 / 2).sum();
    // The text starts below the whole quiet zone, which scanners need clear, and ends two
    // modules above the edge.
    let height = if lines.is_empty() {
        width
    } else {
        width + line_heights + 2 * SVG_MODULE_UNITS
    };
    let mut svg = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    let _ = write!(
        svg,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}""#,
            r#" viewBox="0 0 {w} {h}">"#,
            r#"<rect x="0" y="0" width="{w}" height="{h}" fill="{light}"/>"#,
            r#"<path fill="{dark}" shape-rendering="crispEdges" d=""#,
        ),
        w = width,
        h = height,
        light = light,
        dark = dark,
    );
    svg_modules(code, &mut svg);
    svg.push_str(r#""/>"#);
    let mut baseline = width;
    for (text, font, weight) in lines {
        baseline += font;
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{baseline}" text-anchor="middle" font-family="sans-serif" font-size="{font}" font-weight="{weight}" fill="{dark}">{text}</text>"#,
            x = width / 2,
            text = xml_text(&text),
        );
        baseline += font / 2;
    }
    svg.push_str("</svg>");
    svg
}

/// The lines of `caption` with their font sizes and weights: the label in bold, if the
/// scene has one, then the scene.
fn caption_lines(caption: Caption<'_>, width: u32) -> Vec<(String, u32, &'static str)> {
    let base_font = width / 12;
    let scene_line = format!("Scene {}", caption.scene);
    let scene_font = fitting_font(&scene_line, base_font * 4 / 5, width);
    caption
        .label
        .filter(|label| !label.trim().is_empty())
        .map(|label| {
            (
                label.to_string(),
                fitting_font(label, base_font, width),
                "700",
            )
        })
        .into_iter()
        .chain([(scene_line, scene_font, "400")])
        .collect()
}

/// The dark modules of `code` as path data, one rectangle per run of dark modules in a row.
fn svg_modules(code: &QrCode, path: &mut String) {
    let colours = code.to_colors();
    let unit = SVG_MODULE_UNITS;
    for (y, row) in colours.chunks(code.width()).enumerate() {
        let mut x = 0;
        while x < row.len() {
            if row[x] != qrcode::Color::Dark {
                x += 1;
                continue;
            }
            let start = x;
            while x < row.len() && row[x] == qrcode::Color::Dark {
                x += 1;
            }
            // Within the code's width, at most 177.
            let (left, top) = (
                (start as u32 + QUIET_ZONE_MODULES) * unit,
                (y as u32 + QUIET_ZONE_MODULES) * unit,
            );
            let run = (x - start) as u32 * unit;
            let _ = write!(path, "M{left} {top}h{run}v{unit}h-{run}z");
        }
    }
}

/// A font size at which `text` fits in `width` units, at most `font`: a wide (CJK)
/// character is about one em, any other about three fifths of one.
fn fitting_font(text: &str, font: u32, width: u32) -> u32 {
    let ems_tenths: u32 = text
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 10 } else { 6 })
        .sum();
    let room = width * 9 / 10;
    if ems_tenths * font <= room * 10 {
        font
    } else {
        (room * 10 / ems_tenths.max(1)).max(4)
    }
}

/// `text` as XML character data: markup characters escaped, and the control characters
/// XML cannot carry at all left out (labels and scenes refuse them, but a caption must be
/// well-formed whatever it is given).
fn xml_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c if c.is_control() => {}
            c => escaped.push(c),
        }
    }
    escaped
}

pub fn svg(url: &str) -> Result<String, RenderError> {
    let code = QrCode::new(url.as_bytes())?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://weixin.qq.com/q/02abcDEF123ghiJKL456mno";

    /// What rqrr reads in `image`, if it finds exactly one code.
    fn decoded(image: GrayImage) -> Option<String> {
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        let [grid] = grids.as_slice() else {
            return None;
        };
        grid.decode().ok().map(|(_, content)| content)
    }

    #[test]
    fn a_sized_png_is_exactly_that_size_and_scans_to_the_url() {
        for pixels in [128, 300, 945] {
            let png = png_sized(URL, pixels).unwrap();
            let image = image::load_from_memory(&png).unwrap().to_luma8();

            assert_eq!(image.dimensions(), (pixels, pixels));
            assert_eq!(decoded(image).as_deref(), Some(URL), "{pixels}");
        }
    }

    #[test]
    fn the_quiet_zone_is_at_least_four_whole_modules_on_every_side() {
        let code = QrCode::new(URL.as_bytes()).unwrap();
        let pixels = 300;
        let layout = Layout::fitting(&code, pixels).unwrap();
        let image = image::load_from_memory(&png_sized(URL, pixels).unwrap())
            .unwrap()
            .to_luma8();
        let drawn = modules(&code) * layout.module;

        assert!(layout.offset >= QUIET_ZONE_MODULES * layout.module);
        assert!(pixels - layout.offset - drawn >= QUIET_ZONE_MODULES * layout.module);
        // The finder pattern's corner is dark exactly where the quiet zone ends.
        assert_eq!(image.get_pixel(layout.offset, layout.offset).0, [0]);
        assert_eq!(
            image.get_pixel(layout.offset - 1, layout.offset - 1).0,
            [255]
        );
    }

    #[test]
    fn a_caption_is_escaped_text_under_the_code_and_keeps_chinese() {
        let svg = svg_captioned(
            URL,
            Caption {
                label: Some("海报 <A> & \"B\""),
                scene: "shop-12",
            },
        )
        .unwrap();

        assert!(
            svg.contains(">海报 &lt;A&gt; &amp; &quot;B&quot;</text>"),
            "{svg}"
        );
        assert!(svg.contains(">Scene shop-12</text>"));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn a_long_caption_is_set_smaller_to_fit_the_code_s_width() {
        assert_eq!(fitting_font("Door", 24, 296), 24);
        assert!(fitting_font(&"门".repeat(50), 24, 296) * 50 <= 296);
    }
}
