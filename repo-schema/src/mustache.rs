//! A syntax check of mustache templates (what upstream's `pystache.parse` catches, plus
//! unterminated tags, which mustache.java rejects): balanced sections, matching close tags,
//! set-delimiter tags, triple mustaches.

/// A syntax error with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Checks the template's tag structure. Returns the first error (later errors usually follow
/// from it).
pub fn check(template: &str) -> Result<(), SyntaxError> {
    let err = |offset: usize, message: String| {
        let (line, column) = position(template, offset);
        Err(SyntaxError {
            line,
            column,
            message,
        })
    };
    let mut open = String::from("{{");
    let mut close = String::from("}}");
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while let Some(found) = template[i..].find(open.as_str()) {
        let start = i + found;
        let body_start = start + open.len();
        let rest = &template[body_start..];
        // Triple mustache `{{{name}}}` (only with the default delimiters).
        if open == "{{" && rest.starts_with('{') {
            let Some(end) = rest.find("}}}") else {
                return err(start, "unterminated triple mustache `{{{`".into());
            };
            i = body_start + end + 3;
            continue;
        }
        let Some(end) = rest.find(close.as_str()) else {
            return err(
                start,
                format!("unterminated tag: no `{close}` after `{open}`"),
            );
        };
        let body = &rest[..end];
        i = body_start + end + close.len();
        let trimmed = body.trim();
        let sigil = trimmed.chars().next().unwrap_or(' ');
        let name = match sigil {
            '#' | '^' | '/' | '!' | '>' | '&' | '=' => trimmed[1..].trim(),
            _ => trimmed,
        };
        match sigil {
            '#' | '^' => {
                if name.is_empty() {
                    return err(start, "section tag without a name".into());
                }
                stack.push((name.to_string(), start));
            }
            '/' => match stack.pop() {
                Some((opened, _)) if opened == name => {}
                Some((opened, _)) => {
                    return err(
                        start,
                        format!("section end tag mismatch: `{name}` closes section `{opened}`"),
                    )
                }
                None => return err(start, format!("end tag `{name}` without an open section")),
            },
            '=' => {
                let inner = name.strip_suffix('=').unwrap_or(name).trim();
                let mut parts = inner.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(o), Some(c), None) => {
                        open = o.to_string();
                        close = c.to_string();
                    }
                    _ => return err(start, format!("invalid set-delimiter tag `{body}`")),
                }
            }
            '!' => {}
            _ => {
                if name.is_empty() {
                    return err(start, "empty tag".into());
                }
            }
        }
    }
    if let Some((name, offset)) = stack.pop() {
        return err(offset, format!("section `{name}` is never closed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_templates() {
        for t in [
            "",
            "plain",
            r#"{"id":"{{service.name}}","a":{{{x}}},{{#s}}{{.}}{{/s}}{{^t}}n{{/t}}{{! c }}{{& u}}}"#,
            "{{=<% %>=}}<%#a%>x<%/a%>",
            "{{ # spaced }}x{{ / spaced }}",
            "{{#a.isEmpty}}{{/a.isEmpty}}",
        ] {
            assert_eq!(check(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn bad_templates() {
        let cases = [
            ("{{#a}}x", "never closed"),
            ("{{#a}}x{{/b}}", "mismatch"),
            ("x{{/b}}", "without an open section"),
            ("{\n  \"a\": {{x", "unterminated tag"),
            ("{{{x}}", "unterminated triple"),
            ("{{=<%=}}", "set-delimiter"),
            ("{{}}", "empty tag"),
        ];
        for (t, want) in cases {
            let e = check(t).unwrap_err();
            assert!(e.message.contains(want), "{t}: {e}");
        }
        assert_eq!(check("{\n  \"a\": {{x").unwrap_err().line, 2);
    }
}
