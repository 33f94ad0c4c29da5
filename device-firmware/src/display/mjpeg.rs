//! The booth's output as `multipart/x-mixed-replace` MJPEG over HTTP: open
//! `http://<booth>:<port>/` in a kiosk browser. Each client gets the newest frame; a slow client
//! skips frames rather than delaying the booth.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use image::RgbImage;

use super::{DisplayError, FrameSink};

const BOUNDARY: &str = "doppelframe";

#[derive(Default)]
struct Latest {
    jpeg: Arc<Vec<u8>>,
    sequence: u64,
}

pub struct MjpegServer {
    latest: Arc<(Mutex<Latest>, Condvar)>,
    pub address: SocketAddr,
    quality: u8,
}

impl MjpegServer {
    /// Listens on `address` ("0.0.0.0:8080"; port 0 picks a free one).
    pub fn bind(address: &str) -> Result<Self, DisplayError> {
        let listener = TcpListener::bind(address).map_err(|e| DisplayError::Io {
            path: address.to_owned(),
            detail: format!("{e}; choose another `http` address"),
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| DisplayError::Device(e.to_string()))?;
        let latest: Arc<(Mutex<Latest>, Condvar)> = Arc::default();
        let shared = latest.clone();
        std::thread::Builder::new()
            .name("mjpeg-accept".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("mjpeg-client".into())
                        .spawn(move || serve(stream, shared));
                }
            })
            .map_err(|e| DisplayError::Device(e.to_string()))?;
        tracing::info!("MJPEG stream on http://{local}/");
        Ok(Self {
            latest,
            address: local,
            quality: 80,
        })
    }
}

fn serve(mut stream: TcpStream, shared: Arc<(Mutex<Latest>, Condvar)>) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let header = format!(
        "HTTP/1.0 200 OK\r\nCache-Control: no-cache\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\r\n"
    );
    if stream.write_all(header.as_bytes()).is_err() {
        return;
    }
    let mut seen = 0;
    loop {
        let jpeg = {
            let (lock, cv) = &*shared;
            let mut l = lock.lock().unwrap_or_else(|e| e.into_inner());
            while l.sequence == seen {
                l = cv.wait(l).unwrap_or_else(|e| e.into_inner());
            }
            seen = l.sequence;
            l.jpeg.clone()
        };
        let part = format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        if stream.write_all(part.as_bytes()).is_err()
            || stream.write_all(&jpeg).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            return;
        }
    }
}

impl FrameSink for MjpegServer {
    fn show(&mut self, frame: &RgbImage) -> Result<(), DisplayError> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, self.quality)
            .encode_image(frame)
            .map_err(|e| DisplayError::Device(e.to_string()))?;
        let (lock, cv) = &*self.latest;
        let mut l = lock.lock().unwrap_or_else(|e| e.into_inner());
        l.jpeg = Arc::new(jpeg);
        l.sequence += 1;
        cv.notify_all();
        Ok(())
    }
}
