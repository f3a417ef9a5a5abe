//! Local rendering of a code from the `url` it encodes, for downloads and for browsers that
//! cannot reach mp.weixin.qq.com. A code rendered from `url` scans exactly like WeChat's.

use image::{ImageEncoder, Luma, codecs::png::PngEncoder};
use qrcode::QrCode;
use qrcode::render::svg;

/// Pixels per module of the PNG: about 10 cm at 300 dpi for a typical WeChat URL, large
/// enough to print a poster from.
const PNG_MODULE_PIXELS: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the code's url cannot be encoded as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("PNG encoding failed: {0}")]
    Png(#[from] image::ImageError),
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

pub fn svg(url: &str) -> Result<String, RenderError> {
    let code = QrCode::new(url.as_bytes())?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}
