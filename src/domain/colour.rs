//! A colour of the branded codes, as operators write it: `#rrggbb`.

use std::fmt;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    pub red: u8,
    pub green: u8,
    pub blue: u8,
}

impl Colour {
    pub const BLACK: Colour = Colour::rgb(0, 0, 0);
    pub const WHITE: Colour = Colour::rgb(255, 255, 255);

    pub const fn rgb(red: u8, green: u8, blue: u8) -> Self {
        Self { red, green, blue }
    }

    /// `#rrggbb`, in either case; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16).ok();
        Some(Self::rgb(channel(0)?, channel(2)?, channel(4)?))
    }

    /// WCAG's relative luminance, 0 (black) to 1 (white).
    pub fn luminance(self) -> f64 {
        let linear = |channel: u8| {
            let c = f64::from(channel) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.red) + 0.7152 * linear(self.green) + 0.0722 * linear(self.blue)
    }

    /// WCAG's contrast ratio of this colour on `background`, 1 to 21; below 1 when this one
    /// is the lighter.
    pub fn contrast_on(self, background: Colour) -> f64 {
        (background.luminance() + 0.05) / (self.luminance() + 0.05)
    }
}

/// `#rrggbb`, as SVG takes it.
impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.red, self.green, self.blue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_hex_digits_after_a_hash_are_a_colour_and_print_back_the_same() {
        assert_eq!(
            Colour::parse("#1A3c8a"),
            Some(Colour::rgb(0x1a, 0x3c, 0x8a))
        );
        assert_eq!(Colour::rgb(0x1a, 0x3c, 0x8a).to_string(), "#1a3c8a");
        for bad in [
            "1a3c8a", "#1a3c8", "#1a3c8a0", "#gg0000", "", "#", "#+1a3c8",
        ] {
            assert_eq!(Colour::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn black_on_white_has_the_largest_contrast_and_a_colour_on_itself_none() {
        assert!((Colour::BLACK.contrast_on(Colour::WHITE) - 21.0).abs() < 1e-9);
        assert!((Colour::WHITE.contrast_on(Colour::WHITE) - 1.0).abs() < 1e-9);
        assert!(Colour::WHITE.contrast_on(Colour::BLACK) < 1.0);
    }
}
