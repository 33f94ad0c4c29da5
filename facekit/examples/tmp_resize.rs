fn main() {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    });
    let t = std::time::Instant::now();
    for _ in 0..50 {
        std::hint::black_box(image::imageops::resize(
            &img,
            320,
            240,
            image::imageops::FilterType::Triangle,
        ));
    }
    println!("resize {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 50.0);
}
