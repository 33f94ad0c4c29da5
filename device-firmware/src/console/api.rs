//! The routes. Reading: `GET /` (the console page), `/stream.mjpg`, `/api/frame.jpg`,
//! `/api/status`, `/metrics`, `/healthz`. Changing (operator only): `POST /api/login`,
//! `/api/logout`, `/api/mode`, `/api/bundles` (upload), `/api/bundles/<serial>/activate`,
//! `/api/rollback`, `/api/calibrate`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::auth::{self, Operator, Viewer};
use super::stream::{self, Watch};
use super::AppState;
use crate::button::Control;
use crate::calibration::CalibrationError;
use crate::config::Mode;
use crate::store::StoreError;
use crate::updates::UpdateError;

type Shared = State<Arc<AppState>>;

/// JSON bodies are a few fields; anything bigger is not from the console.
const JSON_LIMIT: usize = 64 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/stream.mjpg", get(live_view))
        .route("/api/frame.jpg", get(one_frame))
        .route("/api/status", get(status))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/mode", post(set_mode))
        .route(
            "/api/bundles",
            // The raw body is not limited by DefaultBodyLimit: `upload` counts the bytes itself.
            post(upload),
        )
        .route("/api/bundles/{serial}/activate", post(activate))
        .route("/api/rollback", post(rollback))
        .route("/api/calibrate", post(calibrate))
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(axum::middleware::from_fn(close_when_refused_with_a_body))
        .with_state(state)
}

/// A request turned away (no token, too big, not a bundle) may leave part of its body unread
/// on the connection, and hyper then closes that connection after the answer. Saying so with
/// `Connection: close` keeps a keep-alive client (ureq, `host-trainer deploy`, a browser) from
/// sending its next request down a connection that is going away ("peer disconnected").
async fn close_when_refused_with_a_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let mut response = next.run(request).await;
    if has_body && !response.status().is_success() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// An error as `{"error": "..."}` with its status.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        let code = match &e {
            UpdateError::Store(StoreError::Stale { .. } | StoreError::FailedBefore(_)) => {
                StatusCode::CONFLICT
            }
            UpdateError::Store(StoreError::NoPrevious) => StatusCode::CONFLICT,
            UpdateError::Store(StoreError::NotKept(_)) => StatusCode::NOT_FOUND,
            UpdateError::Store(StoreError::Refused(_) | StoreError::Archive(_))
            | UpdateError::Load { .. }
            | UpdateError::SelfTest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            UpdateError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        Html(include_str!("page.html")),
    )
}

async fn live_view(_: Viewer, State(state): Shared, watch: Option<Extension<Watch>>) -> Response {
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        // Closed after the answer: a crowd turned away must not keep connections open.
        let error = format!(
            "{} live views are open (console.max_stream_clients); close one",
            state.config.max_stream_clients
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONNECTION, "close")],
            Json(json!({ "error": error })),
        )
            .into_response();
    };
    stream::mjpeg(state.board.clone(), permit, watch.map(|Extension(w)| w))
}

/// One JPEG of the live view (waits up to 2 s for the encoder to start).
async fn one_frame(_: Viewer, State(state): Shared) -> Result<Response, ApiError> {
    state.board.want_frames();
    let mut frames = state.board.subscribe();
    let newest = frames.borrow_and_update().clone();
    let jpeg = match newest {
        Some(j) => j,
        None => {
            let next = tokio::time::timeout(Duration::from_secs(2), frames.changed()).await;
            match (next, frames.borrow().clone()) {
                (Ok(Ok(())), Some(j)) => j,
                _ => {
                    return Err(ApiError(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no frame yet (is the camera running?)".into(),
                    ))
                }
            }
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response())
}

#[derive(Serialize)]
struct BundleView {
    serial: u64,
    version: String,
    swaps_into: Option<String>,
    has_detector: bool,
    manifest: shared_proto::bundle::Manifest,
}

async fn status(_: Operator, State(state): Shared) -> Json<serde_json::Value> {
    let live = state.board.live();
    let bundle = state.models.current();
    let (threshold, source) = state
        .calibrator
        .threshold(state.fake_threshold, bundle.as_ref().map(|b| &b.manifest));
    let bundle = bundle.map(|b| BundleView {
        serial: b.manifest.serial,
        version: b.version.clone(),
        swaps_into: b.swap.as_ref().map(|(p, _)| p.clone()),
        has_detector: b.detector.is_some(),
        manifest: b.manifest.clone(),
    });
    let b = &state.board;
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": b.uptime().as_secs(),
        "input": state.input,
        "live": live,
        "threshold": { "value": threshold, "source": source },
        "calibration": state.calibrator.saved(),
        "calibrating": state.calibrator.recording(),
        "bundle": bundle,
        "serving": state.updates.record(),
        "trial": state.updates.trial(),
        "kept": state.updates.kept(),
        "console": {
            "connections": b.connections.load(Ordering::Relaxed),
            "refused_connections": b.refused_connections.load(Ordering::Relaxed),
            "stream_clients": b.stream_clients.load(Ordering::Relaxed),
        },
        "log": b.logs(),
    }))
}

async fn metrics(State(state): Shared) -> Result<Response, ApiError> {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Stage {
        stage: &'static str,
    }
    let live = state.board.live();
    let b = &state.board;
    let mut registry = Registry::with_prefix("doppel");
    let gauge = |registry: &mut Registry, name: &str, help: &str, v: f64| {
        let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        g.set(v);
        registry.register(name, help, g);
    };
    gauge(
        &mut registry,
        "fps",
        "Frames per second the booth shows",
        live.fps as f64,
    );
    gauge(
        &mut registry,
        "latency_ms",
        "Capture to display, milliseconds",
        live.latency_ms as f64,
    );
    gauge(
        &mut registry,
        "frames",
        "Frames processed since start",
        live.frames as f64,
    );
    gauge(
        &mut registry,
        "frame_errors",
        "Frames whose processing failed since start",
        live.errors as f64,
    );
    gauge(
        &mut registry,
        "camera_up",
        "1 while the camera delivers frames",
        (live.camera == super::board::CameraState::Ok) as u8 as f64,
    );
    gauge(
        &mut registry,
        "bundle_serial",
        "Serial of the bundle in service (0: none)",
        state.updates.record().current.unwrap_or(0) as f64,
    );
    gauge(
        &mut registry,
        "console_connections",
        "Open console connections",
        b.connections.load(Ordering::Relaxed) as f64,
    );
    gauge(
        &mut registry,
        "console_refused_connections",
        "Connections closed at once because the cap was reached",
        b.refused_connections.load(Ordering::Relaxed) as f64,
    );
    gauge(
        &mut registry,
        "stream_clients",
        "Open live views",
        b.stream_clients.load(Ordering::Relaxed) as f64,
    );
    let stages = Family::<Stage, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let s = live.stage_ms;
    for (stage, ms) in [
        ("decode", s.decode),
        ("detect", s.detect),
        ("align", s.align),
        ("swap", s.swap),
        ("blend", s.blend),
        ("score", s.score),
        ("draw", s.draw),
    ] {
        stages.get_or_create(&Stage { stage }).set(ms as f64);
    }
    registry.register(
        "stage_ms",
        "Milliseconds per frame in each stage (moving average)",
        stages,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(State(state): Shared, Json(body): Json<Login>) -> Result<Response, ApiError> {
    if !auth::token_matches(&state, &body.token) {
        tracing::warn!("console: a login with a wrong token");
        return Ok(auth::Unauthorised.into_response());
    }
    let id = state
        .sessions
        .open()
        .ok_or_else(|| internal("no randomness for a session"))?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!("{}={id}; Path=/; HttpOnly; SameSite=Strict", auth::COOKIE),
        )],
    )
        .into_response())
}

async fn logout(_: Operator, State(state): Shared, headers: HeaderMap) -> impl IntoResponse {
    for cookie in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for c in cookie.split(';') {
            if let Some((auth::COOKIE, id)) = c.trim().split_once('=') {
                state.sessions.close(id);
            }
        }
    }
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!(
                "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                auth::COOKIE
            ),
        )],
    )
}

#[derive(Deserialize)]
struct SetMode {
    mode: Mode,
}

async fn set_mode(
    _: Operator,
    State(state): Shared,
    Json(body): Json<SetMode>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .controls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(Control::SetMode(body.mode))
        .map_err(|_| internal("the booth loop has stopped"))?;
    state.board.mode(body.mode);
    tracing::info!("console: mode {}", body.mode.name());
    Ok(Json(json!({ "mode": body.mode })))
}

/// Receives a bundle archive (`host-trainer deploy` makes it; a tar of the bundle folder) into
/// a file under staging, within the size and time limits, then verifies and keeps it.
async fn upload(
    _: Operator,
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let limit = state.config.upload_limit_bytes();
    let too_big = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("bundle archives are limited to {limit} bytes (console.upload_limit_mb)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    let updates = state.updates.clone();
    let dir = tokio::task::spawn_blocking({
        let updates = updates.clone();
        move || updates.new_incoming()
    })
    .await
    .map_err(internal)??;
    let file = dir.join("upload.tar");
    let receive = async {
        let mut out = tokio::fs::File::create(&file).await.map_err(internal)?;
        let mut body = body.into_data_stream();
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}"))
            })?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(too_big());
            }
            out.write_all(&chunk).await.map_err(internal)?;
        }
        out.sync_all().await.map_err(internal)?;
        Ok(total)
    };
    let timeout = Duration::from_secs(state.config.upload_timeout_s.max(1));
    let received = match tokio::time::timeout(timeout, receive).await {
        Ok(r) => r,
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the upload took longer than {} s (console.upload_timeout_s)",
                timeout.as_secs()
            ),
        )),
    };
    let verdict = match received {
        Ok(bytes) => {
            let file = file.clone();
            tokio::task::spawn_blocking(move || {
                let archive = std::fs::File::open(&file)
                    .map_err(|e| internal(format!("{}: {e}", file.display())))?;
                updates
                    .receive(std::io::BufReader::new(archive))
                    .map(|serial| (serial, bytes))
                    .map_err(ApiError::from)
            })
            .await
            .map_err(internal)
            .and_then(|r| r)
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let (serial, bytes) = verdict.inspect_err(|e| tracing::warn!("upload refused: {}", e.1))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "serial": serial, "bytes": bytes, "kept": true })),
    ))
}

async fn activate(
    _: Operator,
    State(state): Shared,
    Path(serial): Path<u64>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let updates = state.updates.clone();
    tokio::task::spawn_blocking(move || updates.activate(serial))
        .await
        .map_err(internal)??;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "serial": serial, "trial": state.updates.trial() })),
    ))
}

async fn rollback(_: Operator, State(state): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    let updates = state.updates.clone();
    let now = tokio::task::spawn_blocking(move || updates.rollback())
        .await
        .map_err(internal)??;
    Ok(Json(json!({ "serving": now })))
}

#[derive(Deserialize)]
struct Calibrate {
    seconds: u64,
    false_alarm_rate: f32,
}

/// Records `seconds` of visitors in detect mode and answers with the new threshold.
async fn calibrate(
    _: Operator,
    State(state): Shared,
    Json(body): Json<Calibrate>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bundle = state.models.current();
    let rx = state
        .calibrator
        .start(
            body.seconds,
            body.false_alarm_rate,
            bundle.as_ref().map(|b| &b.manifest),
        )
        .map_err(|e| {
            let code = match e {
                CalibrationError::Busy => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError(code, e.to_string())
        })?;
    let wait = Duration::from_secs(body.seconds + 30);
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(Ok(c))) => Ok(Json(json!({ "calibration": c }))),
        Ok(Ok(Err(e))) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
        _ => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            CalibrationError::Interrupted.to_string(),
        )),
    }
}
