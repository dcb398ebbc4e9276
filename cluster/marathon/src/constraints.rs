//! Placement constraints (`UNIQUE`, `CLUSTER`, `GROUP_BY`, `LIKE`, `UNLIKE`, `MAX_PER`, `IS`)
//! and the `label=` selector of `GET /v2/apps`.

use std::collections::{BTreeMap, HashMap};

use dcos_types::AttributeValue;
use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

/// A parsed constraint (validated apps only; invalid ones are skipped).
#[derive(Clone, Debug)]
pub struct Constraint {
    pub field: String,
    pub op: Operator,
    pub value: Option<String>,
    re: Option<Regex>,
}

impl Constraint {
    pub fn parse_all(raw: &[Vec<Value>]) -> Vec<Constraint> {
        raw.iter().filter_map(|c| Constraint::parse(c)).collect()
    }

    pub fn parse(c: &[Value]) -> Option<Constraint> {
        let field = c.first()?.as_str()?.to_string();
        let op = match c.get(1)?.as_str()? {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster,
            "GROUP_BY" => Operator::GroupBy,
            "LIKE" => Operator::Like,
            "UNLIKE" => Operator::Unlike,
            "MAX_PER" => Operator::MaxPer,
            "IS" | "EQ" => Operator::Is,
            _ => return None,
        };
        let value = c.get(2).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let re = match op {
            Operator::Like | Operator::Unlike => {
                Some(Regex::new(&format!("^(?:{})$", value.as_deref()?)).ok()?)
            }
            _ => None,
        };
        Some(Constraint {
            field,
            op,
            value,
            re,
        })
    }

    /// The text this constraint's field has on an agent (`None`: attribute missing).
    pub fn field_value(
        &self,
        hostname: &str,
        attributes: &BTreeMap<String, AttributeValue>,
    ) -> Option<String> {
        field_value(&self.field, hostname, attributes)
    }

    /// Can one more task go where the field has `value`, given the values of the tasks
    /// already placed (`placed`: value → count)?
    pub fn allows(&self, value: Option<&str>, placed: &HashMap<String, usize>) -> bool {
        match self.op {
            Operator::Unlike => match value {
                None => true,
                Some(v) => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
            },
            _ => {
                let Some(v) = value else { return false };
                match self.op {
                    Operator::Unique => placed.get(v).copied().unwrap_or(0) == 0,
                    Operator::Cluster => match &self.value {
                        Some(want) => v == want,
                        None => placed.is_empty() || placed.contains_key(v),
                    },
                    Operator::Like => self.re.as_ref().is_some_and(|r| r.is_match(v)),
                    Operator::MaxPer => {
                        let max: usize = self
                            .value
                            .as_deref()
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(usize::MAX);
                        placed.get(v).copied().unwrap_or(0) < max
                    }
                    Operator::Is => self.value.as_deref() == Some(v),
                    Operator::GroupBy => {
                        let expected: usize = self
                            .value
                            .as_deref()
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(0);
                        let mine = placed.get(v).copied().unwrap_or(0);
                        if mine == 0 {
                            return true;
                        }
                        let nonzero = placed.values().filter(|&&c| c > 0).count();
                        if expected > 0 && nonzero < expected {
                            // Values not yet used count as zero: only a new value is best.
                            return false;
                        }
                        let min = placed
                            .values()
                            .copied()
                            .filter(|&c| c > 0)
                            .min()
                            .unwrap_or(0);
                        mine <= min
                    }
                    Operator::Unlike => true,
                }
            }
        }
    }
}

pub fn field_value(
    field: &str,
    hostname: &str,
    attributes: &BTreeMap<String, AttributeValue>,
) -> Option<String> {
    match field {
        "hostname" | "@hostname" => Some(hostname.to_string()),
        f => {
            let key = f.trim_start_matches('@');
            attributes.get(key).map(|a| a.as_text())
        }
    }
}

/// One clause of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum Clause {
    Exists(String),
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// `label=` selector: comma = AND; `key`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSelector(Vec<Clause>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        // Split on commas outside parentheses, honouring backslash escapes.
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut depth = 0;
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    cur.push('\\');
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                '(' => {
                    depth += 1;
                    cur.push(c)
                }
                ')' => {
                    depth -= 1;
                    cur.push(c)
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        parts.push(cur);
        let mut clauses = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            clauses.push(parse_clause(p).ok_or_else(|| format!("Invalid label selector: '{p}'"))?);
        }
        Ok(LabelSelector(clauses))
    }

    pub fn matches(&self, labels: &IndexMap<String, String>) -> bool {
        self.0.iter().all(|c| match c {
            Clause::Exists(k) => labels.contains_key(k),
            Clause::Eq(k, v) => labels.get(k) == Some(v),
            Clause::Ne(k, v) => labels.get(k) != Some(v),
            Clause::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Clause::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
        })
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.trim().chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let s = s.trim();
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(unescape).collect())
}

fn parse_clause(p: &str) -> Option<Clause> {
    if let Some(i) = find_unescaped(p, "==") {
        return Some(Clause::Eq(unescape(&p[..i]), unescape(&p[i + 2..])));
    }
    if let Some(i) = find_unescaped(p, "!=") {
        return Some(Clause::Ne(unescape(&p[..i]), unescape(&p[i + 2..])));
    }
    if let Some(i) = find_unescaped(p, " notin ") {
        return Some(Clause::NotIn(unescape(&p[..i]), parse_set(&p[i + 7..])?));
    }
    if let Some(i) = find_unescaped(p, " in ") {
        return Some(Clause::In(unescape(&p[..i]), parse_set(&p[i + 4..])?));
    }
    if p.contains(' ') && !p.contains("\\ ") {
        return None;
    }
    Some(Clause::Exists(unescape(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(v: Value) -> Constraint {
        Constraint::parse(v.as_array().unwrap()).unwrap()
    }

    fn placed(xs: &[(&str, usize)]) -> HashMap<String, usize> {
        xs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn operators() {
        let u = c(json!(["hostname", "UNIQUE"]));
        assert!(u.allows(Some("a"), &placed(&[("b", 1)])));
        assert!(!u.allows(Some("a"), &placed(&[("a", 1)])));
        assert!(!u.allows(None, &placed(&[])));

        let cl = c(json!(["rack", "CLUSTER", "r1"]));
        assert!(cl.allows(Some("r1"), &placed(&[])));
        assert!(!cl.allows(Some("r2"), &placed(&[])));
        let cl = c(json!(["rack", "CLUSTER"]));
        assert!(cl.allows(Some("r2"), &placed(&[])));
        assert!(!cl.allows(Some("r2"), &placed(&[("r1", 1)])));

        let like = c(json!(["rack", "LIKE", "r[12]"]));
        assert!(like.allows(Some("r1"), &placed(&[])));
        assert!(!like.allows(Some("r3"), &placed(&[])));
        assert!(!like.allows(Some("xr1"), &placed(&[])));
        let unlike = c(json!(["rack", "UNLIKE", "r1"]));
        assert!(unlike.allows(None, &placed(&[])));
        assert!(!unlike.allows(Some("r1"), &placed(&[])));

        let mp = c(json!(["rack", "MAX_PER", "2"]));
        assert!(mp.allows(Some("r1"), &placed(&[("r1", 1)])));
        assert!(!mp.allows(Some("r1"), &placed(&[("r1", 2)])));

        let gb = c(json!(["rack", "GROUP_BY", "2"]));
        assert!(gb.allows(Some("r1"), &placed(&[])));
        assert!(!gb.allows(Some("r1"), &placed(&[("r1", 1)])));
        assert!(gb.allows(Some("r2"), &placed(&[("r1", 1)])));
        assert!(gb.allows(Some("r1"), &placed(&[("r1", 1), ("r2", 1)])));
        assert!(!gb.allows(Some("r1"), &placed(&[("r1", 2), ("r2", 1)])));

        let is = c(json!(["rack", "IS", "r1"]));
        assert!(is.allows(Some("r1"), &placed(&[])));
        assert!(!is.allows(Some("r2"), &placed(&[])));
    }

    #[test]
    fn field_values() {
        let mut attrs = BTreeMap::new();
        attrs.insert("rack".to_string(), AttributeValue::Text("r1".into()));
        attrs.insert("level".to_string(), AttributeValue::Scalar(2.0));
        assert_eq!(field_value("hostname", "h", &attrs).as_deref(), Some("h"));
        assert_eq!(field_value("@hostname", "h", &attrs).as_deref(), Some("h"));
        assert_eq!(field_value("rack", "h", &attrs).as_deref(), Some("r1"));
        assert_eq!(field_value("level", "h", &attrs).as_deref(), Some("2"));
        assert_eq!(field_value("zone", "h", &attrs), None);
    }

    #[test]
    fn label_selectors() {
        let mut l = IndexMap::new();
        l.insert("DCOS_PACKAGE_NAME".to_string(), "spark".to_string());
        l.insert("tier".to_string(), "web app".to_string());
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(m("DCOS_PACKAGE_NAME"));
        assert!(m("DCOS_PACKAGE_NAME==spark"));
        assert!(!m("DCOS_PACKAGE_NAME==kafka"));
        assert!(m("DCOS_PACKAGE_NAME!=kafka"));
        assert!(m("DCOS_PACKAGE_NAME in (kafka, spark)"));
        assert!(!m("DCOS_PACKAGE_NAME notin (kafka,spark)"));
        assert!(m("DCOS_PACKAGE_NAME,tier==web\\ app"));
        assert!(!m("missing"));
        assert!(m("missing notin (a)"));
        assert!(LabelSelector::parse("a b c").is_err());
    }
}
