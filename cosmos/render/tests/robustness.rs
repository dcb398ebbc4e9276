//! A deterministic mini-fuzz run in CI (the real fuzz targets live in cosmos/fuzz and need
//! cargo-fuzz): random templates and option documents never make the renderer or the option
//! merge panic.

use cosmos_render::mustache::Template;
use cosmos_render::{options, render_app};
use serde_json::{json, Value};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() as usize) % xs.len()]
    }
}

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{{{",
    "}}}",
    "#",
    "^",
    "/",
    "!",
    "&",
    "=",
    ">",
    ".",
    "s",
    "n",
    "l",
    "o",
    "o.p",
    "l.isEmpty",
    "l.size",
    "asJson",
    "x",
    "\"",
    ":",
    ",",
    "{",
    "}",
    "[",
    "]",
    " ",
    "\n",
    "é",
    "{{#l}}",
    "{{/l}}",
    "{{^e}}",
    "{{/e}}",
    "{{s}}",
    "{{.}}",
    "{{#asJson}}j{{/asJson}}",
    "{{=<% %>=}}",
    "<%s%>",
    "{{#o}}{{p.q}}{{/o}}",
    "\"a\": ",
    "1",
    "null",
    "true",
];

fn context() -> Value {
    json!({
        "s": "a\"b\\c\n", "n": 1.5, "i": 0, "big": 10737418240u64, "t": true, "f": false,
        "z": null, "l": ["x", 1, [2, 3], {"k": "v"}], "e": [], "o": {"p": {"q": "r"}},
        "j": "{{#asJson}}j{{/asJson}}", "resource": {"assets": {"uris": {"u": "http://x"}}}
    })
}

#[test]
fn random_templates_never_panic() {
    let mut rng = Lcg(42);
    let ctx = context();
    let mut parsed = 0;
    for _ in 0..20_000 {
        let len = 1 + rng.next() % 24;
        let text: String = (0..len).map(|_| rng.pick(TOKENS)).collect();
        if let Ok(t) = Template::parse(&text) {
            parsed += 1;
            let out = t.render(&ctx);
            assert_eq!(out, t.render(&ctx));
            let _ = cosmos_render::parse_rendered(out);
        }
        let _ = render_app(&text, None, None, None);
    }
    assert!(
        parsed > 1000,
        "the generator should produce valid templates too ({parsed})"
    );
}

fn random_json(rng: &mut Lcg, depth: u32) -> Value {
    match (rng.next() % if depth > 4 { 5 } else { 7 }, depth) {
        (0, _) => Value::Null,
        (1, _) => json!(rng.next() & 1 == 0),
        (2, _) => json!(rng.next() as i64 - (1 << 30)),
        (3, _) => json!((rng.next() as f64) / 7.0),
        (4, _) => json!(rng.pick(&["", "a", "\"", "default", "properties", "type"])),
        (5, d) => Value::Array(
            (0..rng.next() % 4)
                .map(|_| random_json(rng, d + 1))
                .collect(),
        ),
        (_, d) => {
            let keys = [
                "properties",
                "default",
                "type",
                "a",
                "b",
                "required",
                "minimum",
                "items",
            ];
            Value::Object(
                (0..rng.next() % 5)
                    .map(|_| (rng.pick(&keys).to_string(), random_json(rng, d + 1)))
                    .collect(),
            )
        }
    }
}

#[test]
fn random_options_and_schemas_never_panic() {
    let mut rng = Lcg(7);
    for _ in 0..5_000 {
        let schema = random_json(&mut rng, 0);
        let user = random_json(&mut rng, 0);
        let d = options::defaults(&schema);
        assert!(d.is_object());
        let merged = options::merge(&d, &user);
        if user.is_object() {
            assert_eq!(options::merge(&merged, &json!({})), merged);
        } else {
            assert_eq!(merged, user);
        }
        let _ = options::validate(&schema, &merged);
        let _ = render_app("{\"a\": 1}", Some(&schema), None, Some(&user));
    }
}
