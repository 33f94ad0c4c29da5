//! The booth's frames on several cores. A frame is four tasks: decode, the face search, the
//! render (align, swap, blend, draw) and, every `full_every` frames, the whole-frame search.
//! Only the face searches form a chain (each starts from the last box); everything else can run
//! on whichever core is free. Each worker takes the most urgent task there is: the next search,
//! then a decode if none is waiting, the whole-frame search (run beside the track, its face
//! adopted a frame or two later: [`Locator::locate_deferring_full`]), the oldest render, a
//! further decode. At most `in_flight` frames are between decode and delivery, which bounds
//! memory and latency; frames are delivered in order.
//!
//! Against alternating whole frames between workers (each its own decode, search and render),
//! no worker waits for a slower frame of the other's, and the whole-frame search no longer
//! holds up the chain. `make bench-booth` compares both with one core and with two booths that
//! share nothing (the machine's own ceiling).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use facekit::Detection;
use image::RgbImage;

use crate::pipeline::{Located, Locator, WholeFrameSearch};
use crate::sync::lock;

/// How often a worker with nothing to do reports that it is still there ([`run`]'s
/// `progress`).
const IDLE_PING: Duration = Duration::from_millis(100);
/// A task running longer than this is taken for hung: the waiting workers stop reporting
/// progress, so a service manager's watchdog (the booth's is 15 s) restarts the program.
const STALL: Duration = Duration::from_secs(10);

/// One frame out of [`run`].
pub struct Delivered<Out> {
    /// Its place in the input order.
    pub index: usize,
    pub out: Out,
    /// From the moment its input arrived to the end of its render.
    pub latency: Duration,
}

enum Task<M> {
    /// Take the next input and decode it (one worker at a time, so inputs keep their order).
    Pull,
    Search(usize, (RgbImage, M), Option<Option<Detection>>),
    Whole(RgbImage, WholeFrameSearch),
    Render(usize, (RgbImage, M), Located),
}

/// The shared state; each frame travels with its caller's metadata `M`.
struct State<M, Out> {
    /// A worker is taking the next input (it may wait for a camera's next frame).
    pulling: bool,
    exhausted: bool,
    /// Inputs taken so far.
    claimed: usize,
    delivered: usize,
    /// When each input arrived; `None` for a frame its decode skipped.
    /// Kept only until delivery: a booth runs for days.
    started: BTreeMap<usize, Option<Instant>>,
    decoded: BTreeMap<usize, (RgbImage, M)>,
    searching: bool,
    next_search: usize,
    whole: Option<(RgbImage, WholeFrameSearch)>,
    /// What the last whole-frame search found, for the next search to adopt.
    found: Option<Option<Detection>>,
    located: BTreeMap<usize, ((RgbImage, M), Located)>,
    rendered: BTreeMap<usize, Out>,
    /// A worker panicked: the others stop instead of waiting for its task forever.
    abandoned: bool,
    /// When each worker's current task started.
    running: Vec<Option<Instant>>,
}

impl<M, Out> State<M, Out> {
    fn done(&self) -> bool {
        self.abandoned || (self.exhausted && !self.pulling && self.delivered == self.claimed)
    }

    /// The most urgent task there is, if any.
    fn take_task(&mut self, in_flight: usize) -> Option<Task<M>> {
        if !self.searching {
            if let Some(frame) = self.decoded.remove(&self.next_search) {
                self.searching = true;
                return Some(Task::Search(self.next_search, frame, self.found.take()));
            }
        }
        // A frame being pulled counts as in flight.
        let room = !self.exhausted && !self.pulling && self.claimed - self.delivered < in_flight;
        if room && self.decoded.is_empty() {
            self.pulling = true;
            return Some(Task::Pull);
        }
        if let Some((frame, search)) = self.whole.take() {
            return Some(Task::Whole(frame, search));
        }
        if let Some((i, (frame, located))) = self.located.pop_first() {
            return Some(Task::Render(i, frame, located));
        }
        if room {
            self.pulling = true;
            return Some(Task::Pull);
        }
        None
    }

    /// Moves the search on past frames that were skipped.
    fn advance_search(&mut self) {
        self.next_search += 1;
        while self.started.get(&self.next_search) == Some(&None) {
            self.next_search += 1;
        }
    }

    /// The rendered frames next in order, passing over skipped ones.
    fn take_ready(&mut self) -> Vec<Delivered<Out>> {
        let mut ready = Vec::new();
        loop {
            let i = self.delivered;
            match self.started.get(&i) {
                Some(None) => {}
                Some(Some(start)) => {
                    let latency = start.elapsed();
                    let Some(out) = self.rendered.remove(&i) else {
                        return ready;
                    };
                    ready.push(Delivered {
                        index: i,
                        out,
                        latency,
                    });
                }
                None => return ready,
            }
            self.started.remove(&i);
            self.delivered += 1;
        }
    }

    fn has_ready(&self) -> bool {
        match self.started.get(&self.delivered) {
            Some(None) => true,
            Some(Some(_)) => self.rendered.contains_key(&self.delivered),
            None => false,
        }
    }
}

/// Marks the run abandoned when its worker unwinds, so that the others do not wait for it.
struct Abandon<'a, M, Out> {
    state: &'a Mutex<State<M, Out>>,
    wake: &'a Condvar,
}

impl<M, Out> Drop for Abandon<'_, M, Out> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.state).abandoned = true;
            self.wake.notify_all();
        }
    }
}

/// Hands over, in order, whatever is ready, without holding the shared state while `deliver`
/// runs (it may wait for a display). One worker delivers at a time; another that finds it busy
/// leaves its frames to it, and the deliverer looks again before it stops.
fn deliver_ready<M, Out, D: FnMut(Delivered<Out>)>(
    state: &Mutex<State<M, Out>>,
    deliver: &Mutex<D>,
) {
    loop {
        {
            let Ok(mut deliver) = deliver.try_lock() else {
                return;
            };
            loop {
                let ready = lock(state).take_ready();
                if ready.is_empty() {
                    break;
                }
                ready.into_iter().for_each(&mut *deliver);
            }
        }
        // Frames rendered while this worker held `deliver` were left to it.
        if !lock(state).has_ready() {
            return;
        }
    }
}

/// Runs every input through `decode`, the face search (`locator`, `rate` for its smoother) and
/// `render` on `workers` threads, and hands each result to `deliver` in input order. Each worker
/// runs its tasks on one thread of its own (no pool underneath competes for the other cores).
/// `progress` is called after every task and every 100 ms a worker waits for one, unless a
/// task has run for over 10 s (a watchdog's sign of life that a hung task silences). `decode` returns the frame and whatever
/// the caller wants to travel with it to `render`
/// (`M`); `None` skips the frame (nothing is searched or delivered for it). Neither
/// `inputs` (which may wait for a camera) nor `deliver` (which may wait for a display) is called
/// with the workers' shared state locked: the other workers go on meanwhile.
#[allow(clippy::too_many_arguments)]
pub fn run<In: Send, M: Send, Out: Send>(
    workers: usize,
    in_flight: usize,
    locator: &mut Locator,
    rate: f32,
    inputs: impl Iterator<Item = In> + Send,
    decode: impl Fn(In) -> Option<(RgbImage, M)> + Sync,
    render: impl Fn(RgbImage, Located, M) -> Out + Sync,
    progress: impl Fn() + Sync,
    deliver: impl FnMut(Delivered<Out>) + Send,
) {
    let workers = workers.max(1);
    let state = Mutex::new(State {
        pulling: false,
        exhausted: false,
        claimed: 0,
        delivered: 0,
        started: BTreeMap::new(),
        decoded: BTreeMap::new(),
        searching: false,
        next_search: 0,
        whole: None,
        found: None,
        located: BTreeMap::new(),
        rendered: BTreeMap::new(),
        abandoned: false,
        running: vec![None; workers],
    });
    let wake = Condvar::new();
    let inputs = Mutex::new(inputs);
    let locator = Mutex::new(locator);
    let deliver = Mutex::new(deliver);
    let in_flight = in_flight.max(1);
    std::thread::scope(|s| {
        for k in 0..workers {
            let (state, wake, inputs, locator, deliver, decode, render, progress) = (
                &state, &wake, &inputs, &locator, &deliver, &decode, &render, &progress,
            );
            s.spawn(move || {
                let _abandon = Abandon { state, wake };
                let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build();
                let work = || loop {
                    let task = {
                        let mut s = lock(state);
                        s.running[k] = None;
                        loop {
                            if !s.abandoned {
                                if let Some(task) = s.take_task(in_flight) {
                                    s.running[k] = Some(Instant::now());
                                    break task;
                                }
                            }
                            if s.done() {
                                drop(s);
                                wake.notify_all();
                                return;
                            }
                            let (guard, waited) = wake
                                .wait_timeout(s, IDLE_PING)
                                .unwrap_or_else(|e| e.into_inner());
                            s = guard;
                            // Waiting on another worker's long task is turning too (a frame
                            // takes seconds under an emulator), but not on a task that hangs.
                            let stalled = s.running.iter().flatten().any(|t| t.elapsed() > STALL);
                            if waited.timed_out() && !stalled {
                                drop(s);
                                progress();
                                s = lock(state);
                            }
                        }
                    };
                    match task {
                        Task::Pull => {
                            let input = lock(inputs).next();
                            let i = {
                                let mut s = lock(state);
                                s.pulling = false;
                                match input {
                                    Some(_) => {
                                        let i = s.claimed;
                                        s.claimed += 1;
                                        s.started.insert(i, Some(Instant::now()));
                                        Some(i)
                                    }
                                    None => {
                                        s.exhausted = true;
                                        None
                                    }
                                }
                            };
                            // The next pull may start while this frame decodes.
                            wake.notify_all();
                            if let (Some(i), Some(input)) = (i, input) {
                                let frame = decode(input);
                                let mut s = lock(state);
                                match frame {
                                    Some(frame) => {
                                        s.decoded.insert(i, frame);
                                    }
                                    // Skipped: its search and delivery are passed over.
                                    None => {
                                        s.started.insert(i, None);
                                        if !s.searching && s.next_search == i {
                                            s.advance_search();
                                        }
                                        drop(s);
                                        deliver_ready(state, deliver);
                                    }
                                }
                            }
                        }
                        Task::Search(i, frame, found) => {
                            let (located, whole) = {
                                let mut locator = lock(locator);
                                if let Some(found) = found {
                                    locator.adopt_full(found);
                                }
                                locator.locate_deferring_full(&frame.0, rate)
                            };
                            let mut s = lock(state);
                            if let Some(search) = whole {
                                s.whole = Some((frame.0.clone(), search));
                            }
                            s.located.insert(i, (frame, located));
                            s.searching = false;
                            s.advance_search();
                        }
                        Task::Whole(frame, search) => {
                            let found = search.run(&frame);
                            lock(state).found = Some(found);
                        }
                        Task::Render(i, (frame, meta), located) => {
                            let out = render(frame, located, meta);
                            lock(state).rendered.insert(i, out);
                            deliver_ready(state, deliver);
                        }
                    }
                    wake.notify_all();
                    progress();
                };
                match pool {
                    Ok(pool) => pool.install(work),
                    Err(_) => work(),
                }
            });
        }
    });
}
