//! Any bytes as a camera buffer: MJPEG (with the Huffman-table repair) and YUYV at a size and
//! line stride taken from the input. A frame decodes or is refused; nothing panics.
#![no_main]

use device_firmware::source::formats::{
    decode_lines, with_standard_huffman_tables, FrameDecoder, PixelFormat,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = with_standard_huffman_tables(data);
    let _ = decode_lines(PixelFormat::Mjpeg, 64, 48, 0, data);
    if data.len() >= 4 {
        let (w, h) = (u32::from(data[0] % 64) + 1, u32::from(data[1] % 48) + 1);
        let stride = u32::from(data[2]);
        let mut d = FrameDecoder::new(PixelFormat::Yuyv, w, h, stride);
        let _ = d.frame(&data[3..]);
    }
});
