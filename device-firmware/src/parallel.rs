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
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use facekit::Detection;
use image::RgbImage;

use crate::pipeline::{Located, Locator, WholeFrameSearch};

/// One frame out of [`run`].
pub struct Delivered<Out> {
    /// Its place in the input order.
    pub index: usize,
    pub out: Out,
    /// From the start of its decode to the end of its render.
    pub latency: Duration,
}

enum Task<In> {
    Decode(usize, In),
    Search(usize, RgbImage, Option<Option<Detection>>),
    Whole(RgbImage, WholeFrameSearch),
    Render(usize, RgbImage, Located),
}

struct State<I, Out> {
    inputs: I,
    exhausted: bool,
    /// Frames taken from `inputs` so far.
    claimed: usize,
    delivered: usize,
    /// When each frame's decode started; `None` for a frame its decode skipped.
    started: Vec<Option<Instant>>,
    decoded: BTreeMap<usize, RgbImage>,
    searching: bool,
    next_search: usize,
    whole: Option<(RgbImage, WholeFrameSearch)>,
    /// What the last whole-frame search found, for the next search to adopt.
    found: Option<Option<Detection>>,
    located: BTreeMap<usize, (RgbImage, Located)>,
    rendered: BTreeMap<usize, Out>,
    /// A worker panicked: the others stop instead of waiting for its task forever.
    abandoned: bool,
}

impl<I: Iterator, Out> State<I, Out> {
    fn done(&self) -> bool {
        self.abandoned || (self.exhausted && self.delivered == self.claimed)
    }

    /// The most urgent task there is, if any.
    fn take_task(&mut self, in_flight: usize) -> Option<Task<I::Item>> {
        if !self.searching {
            if let Some(frame) = self.decoded.remove(&self.next_search) {
                self.searching = true;
                return Some(Task::Search(self.next_search, frame, self.found.take()));
            }
        }
        let room = !self.exhausted && self.claimed - self.delivered < in_flight;
        if room && self.decoded.is_empty() {
            return self.claim();
        }
        if let Some((frame, search)) = self.whole.take() {
            return Some(Task::Whole(frame, search));
        }
        if let Some((i, (frame, located))) = self.located.pop_first() {
            return Some(Task::Render(i, frame, located));
        }
        if room {
            return self.claim();
        }
        None
    }

    fn claim(&mut self) -> Option<Task<I::Item>> {
        match self.inputs.next() {
            Some(input) => {
                let i = self.claimed;
                self.claimed += 1;
                self.started.push(Some(Instant::now()));
                Some(Task::Decode(i, input))
            }
            None => {
                self.exhausted = true;
                None
            }
        }
    }
}

/// Marks the run abandoned when its worker unwinds, so that the others do not wait for it.
struct Abandon<'a, I, Out> {
    state: &'a Mutex<State<I, Out>>,
    wake: &'a Condvar,
}

impl<I, Out> Drop for Abandon<'_, I, Out> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.state).abandoned = true;
            self.wake.notify_all();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs every input through `decode`, the face search (`locator`, `rate` for its smoother) and
/// `render` on `workers` threads, and hands each result to `deliver` in input order. Each worker
/// runs its tasks on one thread of its own (no pool underneath competes for the other cores).
/// `decode` returning `None` skips the frame (nothing is searched or delivered for it).
/// `inputs` is pulled while the workers' shared state is locked: hand it frames already
/// captured (a camera read that blocks belongs on its own thread, feeding a queue).
#[allow(clippy::too_many_arguments)]
pub fn run<In: Send, Out: Send>(
    workers: usize,
    in_flight: usize,
    locator: &mut Locator,
    rate: f32,
    inputs: impl Iterator<Item = In> + Send,
    decode: impl Fn(In) -> Option<RgbImage> + Sync,
    render: impl Fn(RgbImage, Located) -> Out + Sync,
    mut deliver: impl FnMut(Delivered<Out>) + Send,
) {
    let state = Mutex::new(State {
        inputs,
        exhausted: false,
        claimed: 0,
        delivered: 0,
        started: Vec::new(),
        decoded: BTreeMap::new(),
        searching: false,
        next_search: 0,
        whole: None,
        found: None,
        located: BTreeMap::new(),
        rendered: BTreeMap::new(),
        abandoned: false,
    });
    let wake = Condvar::new();
    let locator = Mutex::new(locator);
    let deliver = Mutex::new(&mut deliver);
    let in_flight = in_flight.max(1);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            let (state, wake, locator, deliver, decode, render) =
                (&state, &wake, &locator, &deliver, &decode, &render);
            s.spawn(move || {
                let _abandon = Abandon { state, wake };
                let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build();
                let work = || loop {
                    let task = {
                        let mut s = lock(state);
                        loop {
                            if !s.abandoned {
                                if let Some(task) = s.take_task(in_flight) {
                                    break task;
                                }
                            }
                            if s.done() {
                                drop(s);
                                wake.notify_all();
                                return;
                            }
                            s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    match task {
                        Task::Decode(i, input) => {
                            let frame = decode(input);
                            let mut s = lock(state);
                            match frame {
                                Some(frame) => {
                                    s.decoded.insert(i, frame);
                                }
                                // Skipped: its search and delivery are passed over.
                                None => {
                                    s.started[i] = None;
                                    if !s.searching && s.next_search == i {
                                        advance_search(&mut s);
                                    }
                                    deliver_ready(&mut s, &mut **lock(deliver));
                                }
                            }
                        }
                        Task::Search(i, frame, found) => {
                            let (located, whole) = {
                                let mut locator = lock(locator);
                                if let Some(found) = found {
                                    locator.adopt_full(found);
                                }
                                locator.locate_deferring_full(&frame, rate)
                            };
                            let mut s = lock(state);
                            if let Some(search) = whole {
                                s.whole = Some((frame.clone(), search));
                            }
                            s.located.insert(i, (frame, located));
                            s.searching = false;
                            advance_search(&mut s);
                        }
                        Task::Whole(frame, search) => {
                            let found = search.run(&frame);
                            lock(state).found = Some(found);
                        }
                        Task::Render(i, frame, located) => {
                            let out = render(frame, located);
                            let mut s = lock(state);
                            s.rendered.insert(i, out);
                            deliver_ready(&mut s, &mut **lock(deliver));
                        }
                    }
                    wake.notify_all();
                };
                match pool {
                    Ok(pool) => pool.install(work),
                    Err(_) => work(),
                }
            });
        }
    });
}

/// Moves the search on past frames that were skipped.
fn advance_search<I, Out>(s: &mut State<I, Out>) {
    s.next_search += 1;
    while s.started.get(s.next_search).is_some_and(Option::is_none) {
        s.next_search += 1;
    }
}

/// Hands over the rendered frames that are next in order, passing over skipped ones.
fn deliver_ready<I, Out>(s: &mut State<I, Out>, deliver: &mut dyn FnMut(Delivered<Out>)) {
    loop {
        let i = s.delivered;
        match s.started.get(i) {
            Some(None) => {}
            Some(Some(start)) => {
                let Some(out) = s.rendered.remove(&i) else {
                    return;
                };
                deliver(Delivered {
                    index: i,
                    out,
                    latency: start.elapsed(),
                });
            }
            None => return,
        }
        s.delivered += 1;
    }
}
