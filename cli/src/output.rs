//! Tables for people, JSON for scripts.

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;

/// A plain, borderless table (stable output: no terminal-width wrapping).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_string()));
    for r in rows {
        t.add_row(r.clone());
    }
    // comfy-table pads each line; trim the trailing spaces for clean diffs.
    t.to_string()
        .lines()
        .map(|l| l.trim_end())
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    println!("{}", table(headers, rows));
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A JSON value as table text: strings bare, null as `N/A`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "N/A".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    return format!("{}", f as i64);
                }
                return format!("{}", (f * 1000.0).round() / 1000.0);
            }
            n.to_string()
        }
        Some(Value::Bool(b)) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        Some(other) => other.to_string(),
    }
}

/// Shortens to `max` characters with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    let first_line = s.lines().next().unwrap_or("");
    if first_line.chars().count() <= max && !s.contains('\n') {
        first_line.to_string()
    } else {
        let mut t: String = first_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_plain() {
        let t = table(&["NAME", "VERSION"], &[vec!["hello".into(), "1.0".into()]]);
        insta::assert_snapshot!(t, @r"
        NAME   VERSION
        hello  1.0
        ");
    }

    #[test]
    fn cells() {
        assert_eq!(cell(Some(&json!(1.0))), "1");
        assert_eq!(cell(Some(&json!(0.25))), "0.25");
        assert_eq!(cell(None), "N/A");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("ab\ncd", 10), "ab…");
    }
}
