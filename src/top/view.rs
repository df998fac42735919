//! Drawing the full-screen view: header, table, key help. Everything is laid
//! out from the frame's current size, so resizes only need a redraw.

use crate::top::keys::ViewState;
use crate::top::state::Top;
use crate::top::summary::{self, TITLES};
use crate::top::table::Column;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

const HELP: &str = "1-4 sort  r reverse  c cumulative  t thread  Up/Down PgUp/PgDn scroll  q quit";
const NUMBER_WIDTHS: [u16; 4] = [7, 7, 9, 9];

pub fn draw(frame: &mut Frame, top: &Top, view: &mut ViewState) {
    let [header, _, table, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let lines: Vec<Line> = summary::header(top, view)
        .into_iter()
        .enumerate()
        .map(|(i, text)| match i {
            0 => styled(text, Modifier::BOLD),
            _ => Line::raw(text),
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), header);
    let status = draw_table(frame, table, top, view);
    let help = styled(format!("{HELP}  {status}"), Modifier::DIM);
    frame.render_widget(Paragraph::new(help), footer);
}

/// Draws the rows that fit; returns which rows are shown ("rows 1-30 of 80").
fn draw_table(frame: &mut Frame, area: Rect, top: &Top, view: &mut ViewState) -> String {
    let rows = summary::rows(top, view);
    view.page = usize::from(area.height.saturating_sub(1)).max(1);
    let first = view.clamp_scroll(rows.len());
    let cells = summary::cells(top, view);
    let shown: Vec<Row> = rows
        .iter()
        .skip(first)
        .take(view.page)
        .map(|row| {
            let [own, total, own_time, total_time, function] = cells.texts(row);
            Row::new([
                number(own),
                number(total),
                number(own_time),
                number(total_time),
                Cell::from(function),
            ])
        })
        .collect();
    let titles = TITLES.iter().enumerate().map(|(i, title)| {
        let sorted = Column::ALL.get(i) == Some(&view.sort.column);
        let title = if sorted {
            styled(*title, Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            styled(*title, Modifier::BOLD)
        };
        match i {
            4 => Cell::from(title),
            _ => Cell::from(title.alignment(Alignment::Right)),
        }
    });
    let widths = NUMBER_WIDTHS
        .map(Constraint::Length)
        .into_iter()
        .chain([Constraint::Fill(1)]);
    let shown_count = shown.len();
    let table = Table::new(shown, widths).header(Row::new(titles));
    frame.render_widget(table, area);
    if rows.is_empty() {
        let note = if top.samples == 0 {
            "waiting for samples..."
        } else {
            "no thread was running (--idle also shows idle threads)"
        };
        let below_header = Rect {
            y: area.y.saturating_add(1),
            height: area.height.saturating_sub(1),
            ..area
        };
        frame.render_widget(Paragraph::new(note), below_header);
        return String::new();
    }
    format!(
        "rows {}-{} of {}",
        first + 1,
        first + shown_count,
        rows.len()
    )
}

/// Text with a style on its characters only: a style on a whole line or row
/// would also fill the blank cells up to the right edge, and tmux (3.3) then
/// leaves such a line behind on the normal screen after a resize.
fn styled<'a>(text: impl Into<std::borrow::Cow<'a, str>>, modifier: Modifier) -> Line<'a> {
    Line::from(Span::styled(text, Style::new().add_modifier(modifier)))
}

fn number(text: String) -> Cell<'static> {
    Cell::from(Line::raw(text).alignment(Alignment::Right))
}
