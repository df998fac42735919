//! When stdout is not a terminal: a plain-text snapshot of the header and the
//! table every `delay`, no escape codes, until the target exits or a signal.

use crate::process::signals::StopRequest;
use crate::sampling::session::Session;
use crate::top::keys::ViewState;
use crate::top::state::Top;
use crate::top::summary::{self, TITLES};
use crate::top::Outcome;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Rows in each snapshot; the rest are counted on one line.
pub const MAX_ROWS: usize = 30;
const TICK: Duration = Duration::from_millis(20);

pub fn run(
    session: &mut Session,
    top: &mut Top,
    stop: &StopRequest,
    delay: Duration,
    out: &mut impl Write,
) -> io::Result<Outcome> {
    let view = ViewState::default();
    let mut next_refresh = Instant::now() + delay;
    loop {
        if let Ok(event) = session.events.recv_timeout(TICK) {
            top.handle(event, &session.frames);
        }
        super::take_samples(session, top);
        session.poll();
        if stop.requested() {
            return Ok(Outcome::Interrupted);
        }
        if session.finished() {
            return Ok(Outcome::TargetEnded);
        }
        let now = Instant::now();
        if now >= next_refresh {
            top.roll(now);
            next_refresh = super::next_refresh(next_refresh, delay, now);
            let written = out
                .write_all(snapshot(top, &view).as_bytes())
                .and_then(|()| out.flush());
            match written {
                Ok(()) => {}
                // The reader went away (`| head`): nothing more to do.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Outcome::Quit),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The header lines, the column titles and the rows, then an empty line.
pub fn snapshot(top: &Top, view: &ViewState) -> String {
    let mut text = String::new();
    for line in summary::header(top, view) {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&line(TITLES.map(String::from)));
    let rows = summary::rows(top, view);
    let cells = summary::cells(top, view);
    for row in rows.iter().take(MAX_ROWS) {
        text.push_str(&line(cells.texts(row)));
    }
    if rows.len() > MAX_ROWS {
        text.push_str(&format!("({} more functions)\n", rows.len() - MAX_ROWS));
    }
    text.push('\n');
    text
}

fn line([own, total, own_time, total_time, function]: [String; 5]) -> String {
    format!("{own:>7} {total:>7} {own_time:>9} {total_time:>9}  {function}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{FrameInfo, FrameTable, ProcessSummary};
    use crate::sampling::{Event, ThreadSample};
    use parking_lot::Mutex;

    #[test]
    fn snapshot_is_plain_text_with_header_and_rows() {
        let table = Mutex::new(FrameTable::default());
        let frame = table.lock().intern(FrameInfo {
            name: "hot_loop".into(),
            filename: "/app/main.py".into(),
            line: 5,
            column: 0,
            first_line: 4,
        });
        let mut top = Top::new(42, 100.0, false, false);
        top.handle(
            Event::Started(ProcessSummary {
                pid: 42,
                command_line: "python main.py".into(),
                cwd: Some("/app".into()),
                python_version: "3.12.1".into(),
            }),
            &table,
        );
        let sample = ThreadSample {
            tid: Some(42),
            ident: 1,
            name: Some("MainThread".into()),
            active: true,
            owns_gil: true,
            frames: vec![frame],
            truncated: false,
        };
        top.handle(
            Event::Sample {
                pid: 42,
                at: Duration::ZERO,
                late: false,
                threads: vec![sample],
            },
            &table,
        );
        top.roll(Instant::now());
        let text = snapshot(&top, &ViewState::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "pysampler top - pid 42: python main.py");
        assert!(lines[1].starts_with("Python 3.12.1 | 100 Hz | samples 1 | errors 0 | threads 1 | active 100.0% | GIL 100.0%"), "{}", lines[1]);
        assert!(lines[3].contains("%Own") && lines[3].contains("Function (File:Line)"));
        assert_eq!(
            lines[4],
            " 100.0%  100.0%     0.01s     0.01s  hot_loop (main.py:4)"
        );
        assert!(!text.contains('\x1b'));
    }
}
