//! The full-screen loop: read keys and samples, refresh every `delay`.

use crate::process::signals::StopRequest;
use crate::sampling::session::Session;
use crate::top::input::{Input, Ready};
use crate::top::keys::{self, Action, ViewState};
use crate::top::state::Top;
use crate::top::terminal::Screen;
use crate::top::{view, Outcome};
use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use std::io;
use std::time::{Duration, Instant};

/// Longest wait for a key before samples are taken in and the clock checked.
const TICK: Duration = Duration::from_millis(20);

pub fn run(
    session: &mut Session,
    top: &mut Top,
    stop: &StopRequest,
    delay: Duration,
) -> io::Result<Outcome> {
    let input = Input::open()?;
    let mut screen = Screen::enter()?;
    let mut view = ViewState::default();
    let mut next_refresh = Instant::now() + delay;
    let mut drawn_size = None;
    let mut redraw = true;
    loop {
        // Checked here rather than through crossterm's resize events, which
        // arrive only through the reader `input` keeps us from relying on.
        let size = screen.terminal.size()?;
        if redraw || drawn_size != Some(size) {
            screen
                .terminal
                .draw(|frame| view::draw(frame, top, &mut view))?;
            drawn_size = Some(size);
            redraw = false;
        }
        match input.wait(TICK)? {
            Ready::HungUp => return Ok(Outcome::Interrupted),
            Ready::Timeout => {}
            Ready::Input => {
                while event::poll(Duration::ZERO)? {
                    if let TermEvent::Key(key) = event::read()? {
                        match keys::action(key).filter(|_| key.kind != KeyEventKind::Release) {
                            Some(Action::Quit) => return Ok(Outcome::Quit),
                            Some(action) => {
                                view.apply(action, &top.thread_order());
                                redraw = true;
                            }
                            None => {}
                        }
                    }
                }
            }
        }
        super::take_samples(session, top);
        session.poll();
        if stop.requested() {
            return Ok(Outcome::Interrupted);
        }
        if session.finished() {
            super::take_samples(session, top);
            return Ok(Outcome::TargetEnded);
        }
        let now = Instant::now();
        if now >= next_refresh {
            top.roll(now);
            next_refresh = super::next_refresh(next_refresh, delay, now);
            redraw = true;
        }
    }
}
