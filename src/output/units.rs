//! Shares and times as the terminal tables (`top`, `report`, `diff`) print them.

/// "33.3%": `part` of `whole`, 0.0% of nothing.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

/// "0.25s", "12.3s", "1234s".
pub fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 1000.0 {
        format!("{s:.1}s")
    } else {
        format!("{s:.0}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_times() {
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 0), "0.0%");
        assert_eq!(seconds(0.256), "0.26s");
        assert_eq!(seconds(12.34), "12.3s");
        assert_eq!(seconds(1234.4), "1234s");
    }
}
