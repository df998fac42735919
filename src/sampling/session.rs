//! A sampling session: the target (attached by pid or launched), a sampler
//! thread per Python process, and — with `--subprocesses` — new descendants
//! picked up as they appear. Shared by `record` and `top`.

use crate::aggregate::FrameTable;
use crate::error::{Error, Result};
use crate::process::launch;
use crate::sampling::ending::ProgramEnd;
use crate::sampling::sampler::{self, Sampler};
use crate::sampling::{children, Event, SamplerConfig, SessionConfig, Target};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a launched program may take to start its interpreter.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often descendants are looked for with `--subprocesses`.
const SCAN_INTERVAL: Duration = Duration::from_millis(100);
/// Attempts to attach to a descendant before deciding it is not Python
/// (a freshly forked process may still be starting its interpreter).
const ATTACH_ATTEMPTS: u32 = 30;
/// Samples buffered between samplers and the aggregator.
const CHANNEL_CAPACITY: usize = 16_384;

pub struct Session {
    pub events: Receiver<Event>,
    pub frames: Arc<Mutex<FrameTable>>,
    pub start: Instant,
    /// The process given with --pid, or the launched one.
    pub root: i32,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
    config: SamplerConfig,
    child: Option<Child>,
    child_status: Option<ExitStatus>,
    subprocesses: bool,
    samplers: HashMap<i32, JoinHandle<()>>,
    attempts: HashMap<i32, u32>,
    last_scan: Instant,
}

impl Session {
    /// Attaches to the process or launches the program, and starts sampling.
    pub fn start(config: &SessionConfig) -> Result<Session> {
        let (tx, events) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        let frames = Arc::new(Mutex::new(FrameTable::default()));
        let (root, child) = match &config.target {
            Target::Pid(pid) => (*pid, None),
            Target::Launch { argv, streams } => {
                let child = launch::launch(argv, streams)?;
                (child.id() as i32, Some(child))
            }
        };
        let mut session = Session {
            events,
            frames,
            start: Instant::now(),
            root,
            tx,
            stop: Arc::new(AtomicBool::new(false)),
            config: config.sampler,
            child,
            child_status: None,
            subprocesses: config.subprocesses,
            samplers: HashMap::new(),
            attempts: HashMap::new(),
            last_scan: Instant::now(),
        };
        if session.child.is_some() {
            session.attach_launched()?;
        } else {
            // Attaching by pid: any problem is reported before sampling starts.
            let sampler = Sampler::attach(root, session.frames.clone());
            match sampler {
                Ok(mut s) => {
                    session.refuse_gil_filter_without_gil(&mut s)?;
                    session.spawn(s);
                }
                Err(Error::NotPython { .. }) if config.subprocesses => {}
                Err(e) => return Err(e),
            }
        }
        session.start = Instant::now();
        Ok(session)
    }

    /// Waits until the launched program's interpreter is up, then samples it.
    fn attach_launched(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error = None;
        while Instant::now() < deadline {
            if self.child_exited() {
                return Ok(()); // it ran and ended before we could look
            }
            match Sampler::attach(self.root, self.frames.clone()) {
                Ok(mut s) => {
                    if s.ready() {
                        if let Err(e) = self.refuse_gil_filter_without_gil(&mut s) {
                            self.kill_child();
                            return Err(e);
                        }
                        self.spawn(s);
                        return Ok(());
                    }
                }
                Err(e @ Error::PermissionDenied { .. }) => {
                    self.kill_child();
                    return Err(e);
                }
                Err(e) => last_error = Some(e),
            }
            if self.subprocesses {
                // The command may be a wrapper (a shell, a launcher) that
                // starts Python in a child: the scan will find it.
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill_child();
        Err(Error::NoInterpreterStarted {
            command: self.command_text(),
            seconds: START_TIMEOUT.as_secs(),
            detail: last_error
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no interpreter found".into()),
        })
    }

    /// `--gil` keeps the samples of the thread holding the GIL: on a
    /// free-threaded build running without one, that is none of them.
    fn refuse_gil_filter_without_gil(&self, sampler: &mut Sampler) -> Result<()> {
        if self.config.gil_only && !sampler.gil_enabled() {
            return Err(Error::GilDisabled {
                pid: sampler.process.pid,
                version: sampler.version().to_string(),
            });
        }
        Ok(())
    }

    fn spawn(&mut self, sampler: Sampler) {
        let pid = sampler.process.pid;
        let (config, start, tx, stop) =
            (self.config, self.start, self.tx.clone(), self.stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("sampler-{pid}"))
            .spawn(move || sampler::run(sampler, config, start, tx, stop));
        if let Ok(h) = handle {
            self.samplers.insert(pid, h);
        }
    }

    /// Looks for new Python subprocesses (when asked to) and notes a launched
    /// program's exit. Call it regularly from the aggregator loop.
    pub fn poll(&mut self) {
        self.child_exited();
        if !self.subprocesses || self.last_scan.elapsed() < SCAN_INTERVAL {
            return;
        }
        self.last_scan = Instant::now();
        let mut candidates = children::descendants(self.root);
        candidates.push(self.root);
        for pid in candidates {
            if self.samplers.contains_key(&pid) {
                continue;
            }
            let tries = self.attempts.entry(pid).or_insert(0);
            if *tries >= ATTACH_ATTEMPTS {
                continue;
            }
            *tries += 1;
            if let Ok(mut s) = Sampler::attach(pid, self.frames.clone()) {
                if s.ready() {
                    self.attempts.insert(pid, ATTACH_ATTEMPTS);
                    self.spawn(s);
                }
            }
        }
    }

    /// True when there is nothing left to sample.
    pub fn finished(&mut self) -> bool {
        let sampling = self.samplers.values().any(|h| !h.is_finished());
        if sampling {
            return false;
        }
        if !self.subprocesses {
            return true;
        }
        // With subprocesses, the session lasts as long as the root does.
        match &self.child {
            Some(_) => self.child_exited(),
            None => !crate::process::is_alive(self.root),
        }
    }

    /// Stops the samplers (each detaches from its process) and, for a
    /// launched program still running (the duration ended, Ctrl-C), asks it
    /// to stop with SIGINT, as a terminal's Ctrl-C would, and kills it if it
    /// is still running `grace` later. Says how the program ended (None when
    /// attached by pid).
    pub fn stop(mut self, grace: Duration) -> Option<ProgramEnd> {
        self.stop.store(true, Ordering::SeqCst);
        for (_, handle) in self.samplers.drain() {
            let _ = handle.join();
        }
        self.child.as_ref()?;
        // A program that has begun to exit on its own (the samplers end as
        // its address space goes) may not be reapable yet: the kernel tears
        // its memory down first. Wait for it rather than report an
        // interrupted program that was never interrupted.
        let deadline = Instant::now() + grace;
        while !self.child_exited()
            && crate::process::is_exiting(self.root)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.child_exited() {
            return self.child_status.map(ProgramEnd::Exited);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.root),
            nix::sys::signal::Signal::SIGINT,
        );
        let deadline = Instant::now() + grace;
        while !self.child_exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(status) = self.child_status {
            return Some(ProgramEnd::Interrupted(status));
        }
        self.kill_child();
        // It may have exited on its own between the deadline and the kill.
        match self.child_status {
            Some(status) if status.signal() != Some(libc::SIGKILL) => {
                Some(ProgramEnd::Interrupted(status))
            }
            _ => Some(ProgramEnd::Killed { waited: grace }),
        }
    }

    /// Whether the launched program has exited (reaping it when that is safe).
    fn child_exited(&mut self) -> bool {
        if self.child_status.is_some() {
            return true;
        }
        if self.child.is_none() {
            return false;
        }
        let traced = self
            .samplers
            .get(&self.root)
            .is_some_and(|h| !h.is_finished());
        if traced {
            // Its sampler thread is its ptrace tracer: a wait from here would
            // steal the ptrace stops that thread waits for. Look, don't reap.
            return !crate::process::is_alive(self.root);
        }
        let Some(child) = &mut self.child else {
            return false;
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child_status = Some(status);
                true
            }
            Ok(None) => false,
            // Reaped already, by a sampler's ptrace wait for its main thread
            // (pysampler is its parent): that wait kept the status.
            Err(_) => {
                let raw = crate::process::pause::take_reaped(self.root).unwrap_or(0);
                self.child_status = Some(std::os::unix::process::ExitStatusExt::from_raw(raw));
                true
            }
        }
    }

    fn kill_child(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.child_status = Some(status);
            }
        }
    }

    pub fn is_launched(&self) -> bool {
        self.child.is_some()
    }

    pub fn sampling_count(&self) -> usize {
        self.samplers.values().filter(|h| !h.is_finished()).count()
    }

    fn command_text(&self) -> String {
        crate::process::ProcessInfo::open(self.root)
            .map(|p| p.command_line())
            .unwrap_or_else(|_| format!("pid {}", self.root))
    }
}
