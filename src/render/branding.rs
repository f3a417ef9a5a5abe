//! Branded codes: the account's colours and logo on the code. They are drawn at error
//! correction level H, which reads a code with up to 30% of it lost, and every image is read
//! back before it is served: one that does not scan back to its `url` is replaced by the
//! plain code, because a poster that does not scan is worse than one without a logo.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, Rgb, RgbImage, RgbaImage};
use qrcode::{EcLevel, QrCode};

use super::{Caption, Layout, QUIET_ZONE_MODULES, RenderError, encode_png, modules, svg_document};
use crate::domain::Colour;

/// The light square under the logo, as a share of the code's width: 4% of its area, well
/// under what level H recovers, and clear of the finder patterns in the corners.
const LOGO_SHARE_PERCENT: u32 = 20;

/// The lowest contrast of the dark colour on the light one: WCAG's 3:1 for graphics.
/// Scanners read luminance alone, and a phone in shop light misses modules below it.
pub const MIN_CONTRAST: f64 = 3.0;

/// Pixels on a side a logo is kept at, at most: the logo of the largest image (4096
/// pixels) is smaller, and every image scales it from this copy.
const LOGO_KEPT_PIXELS: u32 = 1024;

/// A WeChat `url` of the usual length, for the sample code checked at start-up.
const SAMPLE_URL: &str = "http://weixin.qq.com/q/02kZgfwMTm72WWPkovabbI";

/// Modules of the raster an SVG's colours are checked on: the SVG has no logo, so only the
/// colours are read back.
const SVG_CHECK_MODULE_PIXELS: u32 = 4;

/// How the service's codes look when SCENE_QR_LOGO or the colours are set.
#[derive(Debug, Clone)]
pub struct Branding {
    dark: Colour,
    light: Colour,
    logo: Option<RgbaImage>,
    logo_share_percent: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrandingError {
    #[error("the dark colour {dark} is not darker than the light colour {light}")]
    Inverted { dark: Colour, light: Colour },
    #[error(
        "the dark colour {dark} on the light colour {light} has a contrast of {ratio:.1}:1; \
         scanners need at least 3:1"
    )]
    LowContrast {
        dark: Colour,
        light: Colour,
        ratio: f64,
    },
    #[error("a sample code drawn with the logo and colours does not scan")]
    Unscannable,
}

impl Branding {
    /// The branding of `dark` on `light` with `logo`, once a sample code drawn with it has
    /// been read back.
    pub fn new(
        dark: Colour,
        light: Colour,
        logo: Option<RgbaImage>,
    ) -> Result<Self, BrandingError> {
        Self::with_logo_share(dark, light, logo, LOGO_SHARE_PERCENT)
    }

    fn with_logo_share(
        dark: Colour,
        light: Colour,
        logo: Option<RgbaImage>,
        logo_share_percent: u32,
    ) -> Result<Self, BrandingError> {
        if dark.luminance() >= light.luminance() {
            return Err(BrandingError::Inverted { dark, light });
        }
        let ratio = dark.contrast_on(light);
        if ratio < MIN_CONTRAST {
            return Err(BrandingError::LowContrast { dark, light, ratio });
        }
        let logo = logo.map(|logo| {
            if logo.width().max(logo.height()) > LOGO_KEPT_PIXELS {
                let (width, height) = fitting(&logo, LOGO_KEPT_PIXELS);
                imageops::thumbnail(&logo, width, height)
            } else {
                logo
            }
        });
        let branding = Self {
            dark,
            light,
            logo,
            logo_share_percent,
        };
        // The download's size and the smallest a client may ask for, where the logo has
        // the fewest pixels.
        for pixels in [None, Some(128)] {
            let code = QrCode::with_error_correction_level(SAMPLE_URL, EcLevel::H)
                .map_err(|_| BrandingError::Unscannable)?;
            let (image, layout) = branding
                .draw(&code, pixels)
                .map_err(|_| BrandingError::Unscannable)?;
            if !scans_to(&image, layout.module, SAMPLE_URL) {
                return Err(BrandingError::Unscannable);
            }
        }
        Ok(branding)
    }

    /// The code of `url` as a branded PNG, `pixels` on a side (`None`: the download's
    /// size); the plain code if the branded one does not scan back to `url`.
    pub fn png(&self, url: &str, pixels: Option<u32>) -> Result<Vec<u8>, RenderError> {
        let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::H)?;
        let (image, layout) = self.draw(&code, pixels)?;
        if scans_to(&image, layout.module, url) {
            return encode_png(&image, image::ExtendedColorType::Rgb8);
        }
        warn_unscannable("PNG");
        match pixels {
            Some(pixels) => super::png_sized(url, pixels),
            None => super::png(url),
        }
    }

    /// The code of `url` as an SVG in the branding's colours (the logo is for PNGs), with
    /// `caption` if any; the plain code if the colours do not scan back to `url`.
    pub fn svg(&self, url: &str, caption: Option<Caption<'_>>) -> Result<String, RenderError> {
        let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::H)?;
        let pixels = (modules(&code) + 2 * QUIET_ZONE_MODULES) * SVG_CHECK_MODULE_PIXELS;
        let layout = Layout::fitting(&code, pixels)?;
        if scans_to(&self.modules(&code, layout, pixels), layout.module, url) {
            return Ok(svg_document(&code, caption, self.dark, self.light));
        }
        warn_unscannable("SVG");
        match caption {
            Some(caption) => super::svg_captioned(url, caption),
            None => super::svg(url),
        }
    }

    /// `code` drawn with the colours and the logo, and where its modules are.
    fn draw(&self, code: &QrCode, pixels: Option<u32>) -> Result<(RgbImage, Layout), RenderError> {
        let (layout, pixels) = match pixels {
            Some(pixels) => (Layout::fitting(code, pixels)?, pixels),
            None => Layout::download(code),
        };
        let mut image = self.modules(code, layout, pixels);
        if let Some(logo) = &self.logo {
            self.place_logo(&mut image, logo, layout, modules(code) * layout.module);
        }
        Ok((image, layout))
    }

    /// `code`'s modules in the colours, `pixels` on a side.
    fn modules(&self, code: &QrCode, layout: Layout, pixels: u32) -> RgbImage {
        let mut image = RgbImage::from_pixel(pixels, pixels, rgb(self.light));
        let dark = rgb(self.dark);
        layout.draw(code, |x, y| image.put_pixel(x, y, dark));
        image
    }

    /// The logo, scaled to fit a light square in the centre of the code, which is
    /// `code_pixels` wide from the layout's offset.
    fn place_logo(&self, image: &mut RgbImage, logo: &RgbaImage, layout: Layout, code_pixels: u32) {
        let square = code_pixels * self.logo_share_percent / 100;
        let margin = (square / 10).max(1);
        let room = square.saturating_sub(2 * margin);
        if room == 0 || logo.width() == 0 || logo.height() == 0 {
            return;
        }
        let (width, height) = fitting(logo, room);
        let scaled = imageops::resize(logo, width, height, FilterType::Triangle);
        let centre = layout.offset + code_pixels / 2;
        let left = centre - square / 2;
        let light = rgb(self.light);
        for y in left..left + square {
            for x in left..left + square {
                image.put_pixel(x, y, light);
            }
        }
        let (logo_left, logo_top) = (centre - width / 2, centre - height / 2);
        for (x, y, pixel) in scaled.enumerate_pixels() {
            let [red, green, blue, alpha] = pixel.0;
            let over = |top: u8, under: u8| {
                let (top, under, alpha) = (u32::from(top), u32::from(under), u32::from(alpha));
                // At most 255: a weighted mean of two bytes.
                ((top * alpha + under * (255 - alpha)) / 255) as u8
            };
            let Rgb([r, g, b]) = light;
            image.put_pixel(
                logo_left + x,
                logo_top + y,
                Rgb([over(red, r), over(green, g), over(blue, b)]),
            );
        }
    }
}

/// The size of `logo` scaled to fit a square of `side` pixels, its proportions kept.
fn fitting(logo: &RgbaImage, side: u32) -> (u32, u32) {
    let (width, height) = (u64::from(logo.width()), u64::from(logo.height()));
    let side64 = u64::from(side);
    // Each at most `side`: the longer edge is `side`, the other shorter.
    let scaled = |edge: u64, longer: u64| (side64 * edge / longer.max(1)).max(1) as u32;
    if width >= height {
        (side, scaled(height, width))
    } else {
        (scaled(width, height), side)
    }
}

fn rgb(colour: Colour) -> Rgb<u8> {
    Rgb([colour.red, colour.green, colour.blue])
}

/// Pixels a module is read back at, at most. Reading takes time in proportion to the
/// pixels: a 4096-pixel image read whole took seconds, read at this many pixels a module,
/// as a phone's camera sees a poster, a few milliseconds.
const READ_MODULE_PIXELS: u32 = 4;

/// Whether rqrr reads exactly one code in `image`, whose modules are `module` pixels, and
/// it holds `url`. A large image is read every few pixels (the middle of each block).
fn scans_to(image: &RgbImage, module: u32, url: &str) -> bool {
    let step = (module / READ_MODULE_PIXELS).max(1);
    let (width, height) = (image.width() / step, image.height() / step);
    // Luminance as a camera sees it (Rec. 601 weights).
    let grey = GrayImage::from_fn(width, height, |x, y| {
        let [r, g, b] = image.get_pixel(x * step + step / 2, y * step + step / 2).0;
        let luma = (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000;
        // At most 255: a weighted mean of three bytes.
        Luma([luma as u8])
    });
    let mut prepared = rqrr::PreparedImage::prepare(grey);
    let grids = prepared.detect_grids();
    match grids.as_slice() {
        [grid] => grid.decode().is_ok_and(|(_, content)| content == url),
        _ => false,
    }
}

/// When a branded image was last replaced by the plain code: that is said in the log at
/// most once an hour, not once per request.
static LAST_WARNED: Mutex<Option<Instant>> = Mutex::new(None);
const WARN_EVERY: Duration = Duration::from_secs(3600);

fn warn_unscannable(format: &str) {
    // Nothing can be left half-done under this lock: recover it after a panic.
    let mut last = LAST_WARNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
        return;
    }
    *last = Some(Instant::now());
    log::warn!(
        "a branded {format} did not scan back to its code's url, so the plain code was served \
         instead; check SCENE_QR_LOGO, SCENE_QR_DARK_COLOUR and SCENE_QR_LIGHT_COLOUR (said at \
         most once an hour)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://weixin.qq.com/q/02abcDEF123ghiJKL456mno";
    const NAVY: Colour = Colour::rgb(0x1a, 0x3c, 0x8a);

    /// A red disc on a transparent square, as logos are.
    fn logo(side: u32) -> RgbaImage {
        let r = side as i64 / 2;
        RgbaImage::from_fn(side, side, |x, y| {
            let (dx, dy) = (x as i64 - r, y as i64 - r);
            if dx * dx + dy * dy <= r * r {
                image::Rgba([220, 30, 40, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        })
    }

    fn decoded_png(png: &[u8]) -> RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    #[test]
    fn a_branded_png_is_in_colour_has_the_logo_and_scans() {
        let branding = Branding::new(NAVY, Colour::WHITE, Some(logo(64))).unwrap();

        let image = decoded_png(&branding.png(URL, Some(600)).unwrap());

        assert_eq!(image.dimensions(), (600, 600));
        assert!(scans_to(&image, 1, URL), "read back whole");
        assert_eq!(*image.get_pixel(300, 300), Rgb([220, 30, 40]), "the logo");
        assert!(image.pixels().any(|p| *p == rgb(NAVY)), "the dark colour");
    }

    #[test]
    fn a_print_sized_branded_png_is_read_back_every_few_pixels_and_served() {
        let branding = Branding::new(NAVY, Colour::WHITE, Some(logo(64))).unwrap();

        let image = decoded_png(&branding.png(URL, Some(2000)).unwrap());

        // Branded, so it scanned: the plain code has no navy.
        assert!(image.pixels().any(|p| *p == rgb(NAVY)));
    }

    #[test]
    fn a_logo_too_large_to_scan_gives_the_plain_code_and_is_refused_at_start_up() {
        let solid = RgbaImage::from_pixel(64, 64, image::Rgba([0, 0, 0, 255]));
        let oversized = Branding {
            dark: NAVY,
            light: Colour::WHITE,
            logo: Some(solid.clone()),
            logo_share_percent: 60,
        };

        let served = oversized.png(URL, Some(300)).unwrap();

        assert_eq!(served, super::super::png_sized(URL, 300).unwrap());
        assert_eq!(
            Branding::with_logo_share(NAVY, Colour::WHITE, Some(solid), 60).unwrap_err(),
            BrandingError::Unscannable
        );
    }

    #[test]
    fn colours_too_close_or_the_wrong_way_round_are_refused() {
        let grey = |v| Colour::rgb(v, v, v);

        assert!(matches!(
            Branding::new(grey(0x77), grey(0x99), None),
            Err(BrandingError::LowContrast { .. })
        ));
        assert!(matches!(
            Branding::new(Colour::WHITE, NAVY, None),
            Err(BrandingError::Inverted { .. })
        ));
        assert!(Branding::new(grey(0x55), Colour::WHITE, None).is_ok());
    }

    #[test]
    fn a_wide_logo_keeps_its_proportions() {
        let wide = RgbaImage::new(3000, 1000);

        assert_eq!(fitting(&wide, 1024), (1024, 341));
        assert_eq!(fitting(&RgbaImage::new(10, 40), 20), (5, 20));
    }

    #[test]
    fn a_branded_svg_is_in_the_colours() {
        let branding = Branding::new(NAVY, Colour::rgb(0xff, 0xf8, 0xe7), None).unwrap();

        let svg = branding.svg(URL, None).unwrap();

        assert!(svg.contains(r##"fill="#1a3c8a""##), "{svg}");
        assert!(svg.contains(r##"fill="#fff8e7""##));
    }
}
