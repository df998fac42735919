//! Keys, and what they change in the view.

use crate::top::stats::ThreadId;
use crate::top::table::{Column, Sort};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Sort(Column),
    Reverse,
    ToggleCumulative,
    NextThread,
    /// Rows to move: negative is up.
    Scroll(isize),
    /// Pages to move.
    Page(isize),
    Top,
    Bottom,
}

pub fn action(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        // Raw mode turns Ctrl-C into a key instead of a SIGINT.
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char(d @ '1'..='4') => Action::Sort(Column::from_digit(d)?),
        KeyCode::Char('r' | 'R') => Action::Reverse,
        KeyCode::Char('c' | 'C') => Action::ToggleCumulative,
        KeyCode::Char('t' | 'T') => Action::NextThread,
        KeyCode::Up | KeyCode::Char('k') => Action::Scroll(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Scroll(1),
        KeyCode::PageUp => Action::Page(-1),
        KeyCode::PageDown | KeyCode::Char(' ') => Action::Page(1),
        KeyCode::Home => Action::Top,
        KeyCode::End => Action::Bottom,
        _ => return None,
    })
}

/// What the user chose to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewState {
    pub sort: Sort,
    /// Percentages since start instead of over the last interval.
    pub cumulative: bool,
    /// Only this thread; `None` for all.
    pub thread: Option<ThreadId>,
    /// First row shown.
    pub scroll: usize,
    /// Rows that fit on the screen, as last drawn.
    pub page: usize,
}

impl ViewState {
    /// Applies a key's action; `threads` lists the known threads in the
    /// order `t` goes through them.
    pub fn apply(&mut self, action: Action, threads: &[ThreadId]) {
        match action {
            Action::Quit => {}
            Action::Sort(column) => {
                self.sort = Sort {
                    column,
                    reverse: false,
                };
                self.scroll = 0;
            }
            Action::Reverse => self.sort.reverse = !self.sort.reverse,
            Action::ToggleCumulative => self.cumulative = !self.cumulative,
            Action::NextThread => {
                // all -> each thread in turn -> all
                let next = match self.thread {
                    None => 0,
                    Some(t) => threads
                        .iter()
                        .position(|&x| x == t)
                        .map_or(usize::MAX, |i| i + 1),
                };
                self.thread = threads.get(next).copied();
                self.scroll = 0;
            }
            Action::Scroll(rows) => self.scroll = self.scroll.saturating_add_signed(rows),
            Action::Page(pages) => {
                let rows = pages.saturating_mul(self.page.max(1) as isize);
                self.scroll = self.scroll.saturating_add_signed(rows);
            }
            Action::Top => self.scroll = 0,
            // Clamped to the last full page when drawn.
            Action::Bottom => self.scroll = usize::MAX,
        }
    }

    /// The first row to show, given how many there are.
    pub fn clamp_scroll(&mut self, rows: usize) -> usize {
        self.scroll = self.scroll.min(rows.saturating_sub(self.page));
        self.scroll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    fn key(code: KeyCode) -> Option<Action> {
        action(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(key(KeyCode::Char('q')), Some(Action::Quit));
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(key(KeyCode::Char('c')), Some(Action::ToggleCumulative));
        assert_eq!(
            key(KeyCode::Char('2')),
            Some(Action::Sort(Column::TotalPercent))
        );
        assert_eq!(key(KeyCode::Char('5')), None);
        assert_eq!(key(KeyCode::PageDown), Some(Action::Page(1)));
    }

    #[test]
    fn thread_filter_cycles_through_all_threads_then_all() {
        let mut v = ViewState::default();
        let seen: Vec<_> = (0..4)
            .map(|_| {
                v.apply(Action::NextThread, &[2, 0, 1]);
                v.thread
            })
            .collect();
        assert_eq!(seen, vec![Some(2), Some(0), Some(1), None]);
        v.apply(Action::NextThread, &[]);
        assert_eq!(v.thread, None);
    }

    #[test]
    fn scrolling_stays_in_range() {
        let mut v = ViewState {
            page: 10,
            ..ViewState::default()
        };
        v.apply(Action::Scroll(-1), &[]);
        assert_eq!(v.scroll, 0);
        v.apply(Action::Page(1), &[]);
        assert_eq!(v.scroll, 10);
        assert_eq!(v.clamp_scroll(15), 5);
        v.apply(Action::Bottom, &[]);
        assert_eq!(v.clamp_scroll(25), 15);
        assert_eq!(v.clamp_scroll(3), 0);
    }
}
