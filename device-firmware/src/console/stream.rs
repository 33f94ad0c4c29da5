//! The live view: `multipart/x-mixed-replace` MJPEG, the newest frame to each client. A slow
//! client skips frames (the watch channel keeps only the newest); one that stops reading while
//! frames keep coming is dropped by its connection's [`Watch`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use super::board::Board;

const BOUNDARY: &str = "doppelframe";
/// A client that has taken no frame for this long while the booth published new ones is gone.
const STALL_AFTER: Duration = Duration::from_secs(15);

/// Per connection: when its live-view body last handed a frame to the socket, and how many
/// frames the board had published then.
#[derive(Clone, Default)]
pub struct Watch(Arc<WatchInner>);

#[derive(Default)]
pub struct WatchInner {
    streaming: std::sync::atomic::AtomicBool,
    /// Milliseconds since `epoch` of the last frame taken.
    last_ms: AtomicU64,
    published_then: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Watch {
    fn epoch(&self) -> Instant {
        *self.0.epoch.get_or_init(Instant::now)
    }

    fn touch(&self, board: &Board) {
        let ms = self.epoch().elapsed().as_millis() as u64;
        self.0.last_ms.store(ms, Ordering::Relaxed);
        self.0
            .published_then
            .store(board.published.load(Ordering::Relaxed), Ordering::Relaxed);
        self.0.streaming.store(true, Ordering::Relaxed);
    }

    /// Resolves once this connection streams to a client that stopped reading.
    pub async fn stalled(&self, board: &Board, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if !self.0.streaming.load(Ordering::Relaxed) {
                continue;
            }
            let idle = self.epoch().elapsed().saturating_sub(Duration::from_millis(
                self.0.last_ms.load(Ordering::Relaxed),
            ));
            let newer = board.published.load(Ordering::Relaxed)
                > self.0.published_then.load(Ordering::Relaxed) + 1;
            if idle > STALL_AFTER && newer {
                return;
            }
        }
    }
}

/// Holds a live-view place until the client goes.
struct Place {
    _permit: OwnedSemaphorePermit,
    board: Arc<Board>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.board.stream_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The MJPEG response for one client holding `permit`.
pub fn mjpeg(board: Arc<Board>, permit: OwnedSemaphorePermit, watch: Option<Watch>) -> Response {
    board.stream_clients.fetch_add(1, Ordering::Relaxed);
    let mut frames = board.subscribe();
    // The newest frame goes out at once, then every new one.
    frames.mark_changed();
    let place = Place {
        _permit: permit,
        board,
    };
    let parts = futures_util::stream::unfold(
        (frames, place, watch),
        |(mut frames, place, watch)| async move {
            loop {
                frames.changed().await.ok()?;
                let Some(jpeg) = frames.borrow_and_update().clone() else {
                    continue;
                };
                if let Some(w) = &watch {
                    w.touch(&place.board);
                }
                let head = format!(
                    "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    jpeg.len()
                );
                let mut part = Vec::with_capacity(head.len() + jpeg.len() + 2);
                part.extend_from_slice(head.as_bytes());
                part.extend_from_slice(&jpeg);
                part.extend_from_slice(b"\r\n");
                return Some((
                    Ok::<_, Infallible>(Bytes::from(part)),
                    (frames, place, watch),
                ));
            }
        },
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
            ),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
        Body::from_stream(parts),
    )
        .into_response()
}
