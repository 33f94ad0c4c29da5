//! The operator console and update API over HTTP: axum routes on a current-thread tokio
//! runtime that lives on one thread, `console`, next to the booth's capture, inference and
//! display threads. Every connection is a task on that thread, so a crowd of clients costs
//! memory, never threads; blocking work (unpacking and verifying an upload, loading models) runs
//! on a pool of at most two threads.
//!
//! Limits, all from `[console]` in the booth config: connections (over the cap the booth closes
//! new ones at once and counts them), live-view clients (503 beyond), request headers within a
//! few seconds, small JSON bodies, uploads within a size and a time, and a live-view client that
//! stops reading is dropped.
//!
//! Why axum over tiny_http: tiny_http spawns a thread per connection (the leak the old MJPEG
//! server had); axum on tokio serves every connection from one thread and has body limits,
//! typed extractors and streaming bodies built in.

pub mod api;
pub mod auth;
pub mod board;
pub mod stream;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::button::Control;
use crate::calibration::Calibrator;
use crate::config::ConsoleConfig;
use crate::models::ModelSlot;
use crate::updates::Updates;
pub use board::{Board, ConsoleSink, LogLayer};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "cannot listen on {address}: {source}; choose another `console.listen` address (or --http)"
    )]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot start the console thread: {0}")]
    Thread(std::io::Error),
}

/// Everything the routes reach.
pub struct AppState {
    pub board: Arc<Board>,
    pub updates: Arc<Updates>,
    pub calibrator: Arc<Calibrator>,
    pub models: ModelSlot,
    pub config: ConsoleConfig,
    /// The config's fixed threshold, if any (for the status page's threshold line).
    pub fake_threshold: Option<f32>,
    pub input: String,
    pub controls: std::sync::Mutex<Sender<Control>>,
    pub sessions: auth::Sessions,
    pub streams: Arc<Semaphore>,
}

/// A started console: where it listens.
pub struct Console {
    pub address: SocketAddr,
}

/// Binds `config.listen` now (so a taken port is an error at start-up, not a log line later)
/// and serves on its own thread until the process ends.
pub fn start(state: AppState) -> Result<Console, ConsoleError> {
    let address = state.config.listen.clone();
    let bind = |source| ConsoleError::Bind {
        address: address.clone(),
        source,
    };
    let listener = std::net::TcpListener::bind(&address).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let state = Arc::new(state);
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(2)
                .thread_name("console-work")
                .build();
            let runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("console: cannot start its runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, state).await,
                    Err(e) => tracing::error!("console: {e}"),
                }
            });
        })
        .map_err(ConsoleError::Thread)?;
    Ok(Console { address: local })
}

/// How often a connection checks that its live-view client still reads.
const STALL_CHECK: Duration = Duration::from_secs(2);

async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) {
    let app = api::router(state.clone());
    let connections = Arc::new(Semaphore::new(state.config.max_connections.max(1)));
    let header_timeout = Duration::from_secs(state.config.header_timeout_s.max(1));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("console: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            state
                .board
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let board = state.board.clone();
        tokio::spawn(async move {
            let _permit = permit;
            board.connections.fetch_add(1, Ordering::Relaxed);
            let watch = stream::Watch::default();
            let service = {
                let watch = watch.clone();
                hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.extensions_mut().insert(watch.clone());
                    let mut app = app.clone();
                    async move {
                        use tower_service::Service;
                        app.call(req).await
                    }
                })
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = connection => {}
                _ = watch.stalled(&board, STALL_CHECK) => {
                    tracing::info!("console: live-view client {peer} stopped reading; dropped");
                }
            }
            board.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
