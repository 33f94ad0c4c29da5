//! SPI LCD (ST7789 or ILI9341, RGB565) through `mipidsi` over Linux spidev, with the DC and
//! reset lines on a GPIO character device. Frames are letterboxed to the panel and streamed as
//! one contiguous window per frame.

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use image::RgbImage;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};
use mipidsi::interface::SpiInterface;
use mipidsi::models::{ILI9341Rgb565, ST7789};
use mipidsi::Builder;

use super::{fit, DisplayError, FrameSink};
use crate::config::{DisplayConfig, LcdModel};

type Spi = SpiInterface<'static, SpidevDevice, CdevPin>;

enum Panel {
    St7789(mipidsi::Display<Spi, ST7789, CdevPin>),
    Ili9341(mipidsi::Display<Spi, ILI9341Rgb565, CdevPin>),
}

pub struct Lcd {
    panel: Panel,
    width: u32,
    height: u32,
}

fn dev(what: &str, e: impl std::fmt::Debug) -> DisplayError {
    DisplayError::Device(format!("LCD {what}: {e:?}"))
}

impl Lcd {
    pub fn open(cfg: &DisplayConfig) -> Result<Self, DisplayError> {
        let mut spi = SpidevDevice::open(&cfg.lcd_spi).map_err(|e| dev("spidev", e))?;
        let options = SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(cfg.lcd_spi_hz)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build();
        spi.0.configure(&options).map_err(|e| dev("spidev", e))?;
        let mut chip = Chip::new(&cfg.lcd_gpio_chip).map_err(|e| dev("gpio chip", e))?;
        let mut output = |line: u32, name: &str| {
            chip.get_line(line)
                .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, name))
                .map_err(|e| dev(name, e))
                .and_then(|h| CdevPin::new(h).map_err(|e| dev(name, e)))
        };
        let dc = output(cfg.lcd_dc_line, "doppel-lcd-dc")?;
        let rst = output(cfg.lcd_reset_line, "doppel-lcd-reset")?;
        // The interface keeps a transfer buffer for the panel's lifetime (the whole process).
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
        let di = SpiInterface::new(spi, dc, buffer);
        let (w, h) = (cfg.lcd_width, cfg.lcd_height);
        let mut delay = Delay;
        let panel = match cfg.lcd_model {
            LcdModel::St7789 => Panel::St7789(
                Builder::new(ST7789, di)
                    .display_size(w, h)
                    .reset_pin(rst)
                    .init(&mut delay)
                    .map_err(|e| dev("init", e))?,
            ),
            LcdModel::Ili9341 => Panel::Ili9341(
                Builder::new(ILI9341Rgb565, di)
                    .display_size(w, h)
                    .reset_pin(rst)
                    .init(&mut delay)
                    .map_err(|e| dev("init", e))?,
            ),
        };
        Ok(Self {
            panel,
            width: w as u32,
            height: h as u32,
        })
    }
}

impl FrameSink for Lcd {
    fn show(&mut self, frame: &RgbImage) -> Result<(), DisplayError> {
        let fitted = fit(frame, self.width, self.height);
        let area = Rectangle::new(Point::zero(), Size::new(self.width, self.height));
        let pixels = fitted
            .pixels()
            .map(|p| Rgb565::new(p.0[0] >> 3, p.0[1] >> 2, p.0[2] >> 3));
        match &mut self.panel {
            Panel::St7789(d) => d.fill_contiguous(&area, pixels).map_err(|e| dev("draw", e)),
            Panel::Ili9341(d) => d.fill_contiguous(&area, pixels).map_err(|e| dev("draw", e)),
        }
    }
}
