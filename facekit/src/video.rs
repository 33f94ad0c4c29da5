//! Video frames as RGB images, decoded by an `ffmpeg` subprocess.
//!
//! A subprocess keeps libav* out of the build (and out of the aarch64 cross build) while still
//! reading every container/codec a kiosk operator is likely to hand us.

use std::io::{BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use image::RgbImage;

use crate::{FacekitError, Result};

/// Anything that yields RGB frames in order (video file, image folder, camera).
pub trait FrameSource {
    /// Frame width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// The next frame, `None` at the end of the stream.
    fn next_frame(&mut self) -> Result<Option<RgbImage>>;
}

/// Decodes a video file through `ffmpeg -f rawvideo -pix_fmt rgb24`.
///
/// ffmpeg runs in its own process group, so a Ctrl-C in the terminal reaches only us (we stop
/// cleanly, then end ffmpeg), and its stderr is drained on a thread as it comes: a file full of
/// decode errors must not fill the pipe and stall both processes.
pub struct VideoReader {
    path: PathBuf,
    width: u32,
    height: u32,
    child: Child,
    stdout: BufReader<ChildStdout>,
    frames_read: u64,
    stderr: StderrTail,
}

/// Child processes of ours (ffmpeg, ffprobe) get their own process group, so a terminal's Ctrl-C
/// reaches only us, and are killed when the thread that started them ends with the process, so
/// none outlives a booth that had to leave it stuck on a device.
fn ours(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// How long a probe of a file may take: a FIFO or a stalled network mount must not block the
/// caller forever.
const PROBE_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs `cmd` (an ffprobe) to completion within [`PROBE_WITHIN`], or kills it.
fn probe_output(cmd: &mut Command, path: &Path) -> Result<std::process::Output> {
    let mut child = ours(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| FacekitError::FfmpegMissing)?;
    let started = std::time::Instant::now();
    let io = |source| FacekitError::Io {
        path: path.display().to_string(),
        source,
    };
    // ffprobe prints a few hundred bytes: the pipes cannot fill while we wait.
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            break status;
        }
        if started.elapsed() > PROBE_WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FacekitError::UnreadableVideo {
                path: path.display().to_string(),
                detail: format!("ffprobe gave no answer within {PROBE_WITHIN:?}"),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

/// The first line ffmpeg wrote to stderr (the one that names the problem), kept while the rest
/// is read and dropped.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<Option<String>>>);

impl StderrTail {
    fn drain(child: &mut Child) -> Self {
        let tail = Self::default();
        if let Some(mut err) = child.stderr.take() {
            let keep = tail.clone();
            let spawned = std::thread::Builder::new()
                .name("ffmpeg-stderr".into())
                .spawn(move || {
                    let mut buf = [0u8; 8192];
                    let mut first = Vec::new();
                    while let Ok(n) = err.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if first.len() < 1024 {
                            first.extend_from_slice(&buf[..n.min(1024)]);
                            let text = String::from_utf8_lossy(&first).into_owned();
                            if let (Some(line), Ok(mut slot)) = (first_line(&text), keep.0.lock()) {
                                *slot = Some(line.to_owned());
                            }
                        }
                    }
                });
            if spawned.is_err() {
                tracing::warn!("cannot start the ffmpeg stderr reader; errors go unread");
            }
        }
        tail
    }

    fn first_line(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

impl VideoReader {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(FacekitError::NotFound {
                path: shown,
                hint: "; pass an existing video file (run `make setup` for the sample media)",
            });
        }
        let (width, height) = probe_size(&path)?;
        let mut child = ours(&mut Command::new("ffmpeg"))
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(&path)
            .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|_| FacekitError::FfmpegMissing)?;
        let stderr = StderrTail::drain(&mut child);
        let Some(stdout) = child.stdout.take() else {
            return Err(FacekitError::FfmpegMissing);
        };
        let stdout = BufReader::with_capacity((width * height * 3) as usize, stdout);
        Ok(Self {
            path,
            width,
            height,
            child,
            stdout,
            frames_read: 0,
            stderr,
        })
    }

    fn decode_error(&mut self) -> FacekitError {
        let _ = self.child.wait();
        FacekitError::UnreadableVideo {
            path: self.path.display().to_string(),
            detail: self
                .stderr
                .first_line()
                .unwrap_or_else(|| "ffmpeg stopped early".to_owned()),
        }
    }
}

impl FrameSource for VideoReader {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let mut buf = vec![0u8; (self.width * self.height * 3) as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match self.stdout.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(FacekitError::Io {
                        path: self.path.display().to_string(),
                        source,
                    })
                }
            }
        }
        if filled == 0 {
            let status = self.child.wait().map_err(|source| FacekitError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
            // A stream that decodes nothing at all is a broken file, not an empty video.
            if !status.success() || self.frames_read == 0 {
                return Err(self.decode_error());
            }
            return Ok(None);
        }
        if filled < buf.len() {
            return Err(self.decode_error());
        }
        self.frames_read += 1;
        // `buf` was sized for exactly one frame above.
        Ok(RgbImage::from_raw(self.width, self.height, buf))
    }
}

impl Iterator for VideoReader {
    type Item = Result<RgbImage>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

impl Drop for VideoReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The frame size ffmpeg will deliver: the coded size, turned by the display matrix (phone
/// videos are stored sideways with a rotation that ffmpeg applies when decoding).
fn probe_size(path: &Path) -> Result<(u32, u32)> {
    let out = probe_output(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=width,height:stream_side_data=rotation",
                "-of",
                "json",
            ])
            .arg(path),
        path,
    )?;
    let parsed = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|json| {
            let stream = json["streams"].get(0)?;
            let (w, h) = (stream["width"].as_u64()?, stream["height"].as_u64()?);
            let rotation = stream["side_data_list"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|d| d["rotation"].as_i64())
                .unwrap_or(0);
            let sideways = rotation.rem_euclid(180) == 90;
            let (w, h) = if sideways { (h, w) } else { (w, h) };
            Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
        });
    // 16384² RGB is 768 MiB a frame: anything larger is a broken or hostile header.
    let sane = |v: u32| (1..=16384).contains(&v);
    match parsed {
        Some((w, h)) if out.status.success() && sane(w) && sane(h) => Ok((w, h)),
        _ => Err(FacekitError::UnreadableVideo {
            path: path.display().to_string(),
            detail: first_line(&String::from_utf8_lossy(&out.stderr))
                .unwrap_or("no video stream")
                .to_owned(),
        }),
    }
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

/// A folder of still images (PNG/JPEG), read in file-name order: frames dumped by ffmpeg,
/// photo sets, or recordings from another machine.
pub struct ImageFolder {
    files: Vec<PathBuf>,
    next: usize,
    size: (u32, u32),
}

impl ImageFolder {
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let io = |source| FacekitError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                })
            })
            .collect();
        files.sort();
        let first = files.first().ok_or_else(|| FacekitError::NotFound {
            path: dir.display().to_string(),
            hint: " (no .png/.jpg images in this folder)",
        })?;
        let size = image::image_dimensions(first).map_err(|e| FacekitError::UnreadableVideo {
            path: first.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            files,
            next: 0,
            size,
        })
    }
}

impl FrameSource for ImageFolder {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let img = image::open(path).map_err(|e| FacekitError::UnreadableVideo {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Some(img.into_rgb8()))
    }
}

/// Opens a video file or an image folder, whichever `path` is.
pub fn open_source(path: impl AsRef<Path>) -> Result<Box<dyn FrameSource + Send>> {
    let path = path.as_ref();
    if path.is_dir() {
        Ok(Box::new(ImageFolder::open(path)?))
    } else {
        Ok(Box::new(VideoReader::open(path)?))
    }
}

/// One field of the first video stream as ffprobe prints it, `None` when unavailable.
fn probe_stream_entry(path: &Path, entry: &str) -> Option<String> {
    let out = probe_output(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .arg(format!("stream={entry}"))
            .args(["-of", "csv=p=0"])
            .arg(path),
        path,
    )
    .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Frame count from the container header (no decoding); `None` when the container does not say.
pub fn frame_count_hint(path: impl AsRef<Path>) -> Option<u64> {
    probe_stream_entry(path.as_ref(), "nb_frames")?.parse().ok()
}

/// Frame rate from the container (`r_frame_rate`), `None` when unknown.
pub fn frame_rate(path: impl AsRef<Path>) -> Option<f64> {
    let text = probe_stream_entry(path.as_ref(), "r_frame_rate")?;
    let (n, d) = text.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

/// Encodes RGB frames to a video file (H.264 in MP4/MKV, by extension) with an `ffmpeg` subprocess
/// (its own process group and a drained stderr, as [`VideoReader`]).
pub struct VideoWriter {
    path: PathBuf,
    size: (u32, u32),
    child: Child,
    stderr: StderrTail,
}

impl VideoWriter {
    pub fn create(path: impl AsRef<Path>, width: u32, height: u32, fps: f64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut child = ours(&mut Command::new("ffmpeg"))
            .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args([
                "-s",
                &format!("{width}x{height}"),
                "-r",
                &format!("{fps:.5}"),
                "-i",
                "-",
            ])
            // Even dimensions for yuv420p; high quality so the label and the face survive.
            .args([
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v",
                "libx264",
                "-crf",
                "16",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|_| FacekitError::FfmpegMissing)?;
        let stderr = StderrTail::drain(&mut child);
        Ok(Self {
            path,
            size: (width, height),
            child,
            stderr,
        })
    }

    pub fn write(&mut self, frame: &RgbImage) -> Result<()> {
        use std::io::Write;
        let io = |source| FacekitError::Io {
            path: self.path.display().to_string(),
            source,
        };
        if frame.dimensions() != self.size {
            return Err(io(std::io::Error::other(format!(
                "frame is {:?}, the video {:?}",
                frame.dimensions(),
                self.size
            ))));
        }
        let Some(stdin) = self.child.stdin.as_mut() else {
            return Err(io(std::io::ErrorKind::BrokenPipe.into()));
        };
        stdin.write_all(frame.as_raw()).map_err(io)
    }

    /// Flushes and waits for the encoder; the file is complete only after this.
    pub fn finish(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait().map_err(|source| FacekitError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(FacekitError::Io {
                path: self.path.display().to_string(),
                source: std::io::Error::other(
                    self.stderr
                        .first_line()
                        .unwrap_or_else(|| "ffmpeg failed".to_owned()),
                ),
            })
        }
    }
}
