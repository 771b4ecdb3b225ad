//! docker's `--format`: Go templates (gtmpl) over the JSON documents berth
//! prints, with docker's extra functions. One engine for every `--format`.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use gtmpl::{Context, Func, FuncError, Template, Value};
use gtmpl_value::Number;

fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Number(Number::from(i)),
            (_, Some(u), _) => Value::Number(Number::from(u)),
            (_, _, Some(f)) => Value::Number(Number::from(f)),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => n
            .as_i64()
            .map(serde_json::Value::from)
            .or_else(|| n.as_u64().map(serde_json::Value::from))
            .or_else(|| n.as_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            let sorted: std::collections::BTreeMap<_, _> =
                o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
    }
}

fn arg<'a>(args: &'a [Value], i: usize, name: &str) -> Result<&'a Value, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::Generic(format!("{name}: missing argument")))
}

fn string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(to_json(arg(args, 0, "json")?).to_string()))
}

fn join_fn(args: &[Value]) -> Result<Value, FuncError> {
    let sep = string(arg(args, 1, "join")?);
    match arg(args, 0, "join")? {
        Value::Array(a) => Ok(Value::String(
            a.iter().map(string).collect::<Vec<_>>().join(&sep),
        )),
        Value::Nil | Value::NoValue => Ok(Value::String(String::new())),
        other => Ok(Value::String(string(other))),
    }
}

fn upper_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string(arg(args, 0, "upper")?).to_uppercase()))
}

fn lower_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string(arg(args, 0, "lower")?).to_lowercase()))
}

fn title_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = string(arg(args, 0, "title")?);
    let mut c = s.chars();
    Ok(Value::String(
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default(),
    ))
}

fn split_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = string(arg(args, 0, "split")?);
    let sep = string(arg(args, 1, "split")?);
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    ))
}

fn truncate_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = string(arg(args, 0, "truncate")?);
    let n = match arg(args, 1, "truncate")? {
        Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
        other => string(other).parse().unwrap_or(0),
    };
    Ok(Value::String(s.chars().take(n).collect()))
}

/// Go's `%v`: `[a b]` for lists, `map[k:v]` with sorted keys, `<nil>`.
fn go_string(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) | Value::Map(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_string(&o[*k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

fn print_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        args.last().map(go_string).unwrap_or_default(),
    ))
}

/// docker's `.Label "key"` on list rows: the value of one label, from the
/// row's `Labels` (docker's `k=v,k2=v2` text, or an object); empty if absent.
fn label_fn(args: &[Value]) -> Result<Value, FuncError> {
    let key = string(arg(args, 1, "Label")?);
    let found = match arg(args, 0, "Label")? {
        Value::Object(o) | Value::Map(o) => o.get(&key).map(string),
        Value::String(text) => text.split(',').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| v.to_string())
        }),
        _ => None,
    };
    Ok(Value::String(found.unwrap_or_default()))
}

/// The name `.Label "key"` is rewritten to call.
const LABEL: &str = "__berth_label";

/// `.Label "k"` (a method call on the row in docker's templates) becomes
/// `__berth_label .Labels "k"`; `.Labels` itself is left alone.
fn route_label_calls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(".Label") {
        let after = &rest[at + ".Label".len()..];
        let before_ok = at == 0
            || !rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if before_ok && after.starts_with([' ', '\t']) {
            out.push_str(&rest[..at]);
            out.push_str(&format!("{LABEL} .Labels"));
        } else {
            out.push_str(&rest[..at + ".Label".len()]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The name under which printing actions are routed through [`go_string`].
const PRINT: &str = "__berth_print";

/// Routes every printing action (`{{.Config.Cmd}}`) through Go's formatting:
/// `{{ pipeline }}` becomes `{{ pipeline | __berth_print }}`. Control actions,
/// comments and variable declarations are left as they are.
fn route_prints(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let body_start = start + 2;
        // Find the closing braces outside of quoted strings.
        let bytes = rest.as_bytes();
        let mut i = body_start;
        let mut quote: Option<u8> = None;
        let mut end = None;
        while i + 1 < bytes.len() {
            let c = bytes[i];
            match quote {
                Some(q) if c == b'\\' && q == b'"' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'`' || c == b'\'' => quote = Some(c),
                None if c == b'}' && bytes[i + 1] == b'}' => {
                    end = Some(i);
                    break;
                }
                None => {}
            }
            i += 1;
        }
        let Some(end) = end else {
            out.push_str(&rest[start..]);
            return out;
        };
        let body = &rest[body_start..end];
        let (ltrim, inner) = match body.strip_prefix("- ") {
            Some(b) => ("- ", b),
            None => ("", body),
        };
        let (inner, rtrim) = match inner.strip_suffix(" -") {
            Some(b) => (b, " -"),
            None => (inner, ""),
        };
        let word = inner.split_whitespace().next().unwrap_or("");
        let control = matches!(
            word,
            "if" | "else"
                | "end"
                | "range"
                | "with"
                | "define"
                | "template"
                | "block"
                | "break"
                | "continue"
        ) || inner.trim_start().starts_with("/*")
            || inner.contains(":=")
            || inner.trim().is_empty();
        if control {
            out.push_str(&rest[start..end + 2]);
        } else {
            out.push_str(&format!("{{{{{ltrim}{inner} | {PRINT}{rtrim}}}}}"));
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

const FUNCS: [(&str, Func); 9] = [
    (PRINT, print_fn),
    (LABEL, label_fn),
    ("json", json_fn),
    ("join", join_fn),
    ("upper", upper_fn),
    ("lower", lower_fn),
    ("title", title_fn),
    ("split", split_fn),
    ("truncate", truncate_fn),
];

/// A parsed `--format` template, and its text (for docker's error words).
pub struct Format(Template, String);

/// docker's (Go's) words for a template that does not parse:
/// `template: :1: unclosed action`, `template: :1: function "x" not defined`.
fn parse_error(text: &str, said: &str) -> String {
    let line = 1 + text.matches('\n').count();
    if let Some(name) = said
        .split("function ")
        .nth(1)
        .and_then(|r| r.strip_suffix(" not defined"))
    {
        return format!("template: :{line}: function \"{name}\" not defined");
    }
    if text.matches("{{").count() > text.matches("}}").count() {
        return format!("template: :{line}: unclosed action");
    }
    format!(
        "template: :{line}: {}",
        said.trim_start_matches("template: ")
    )
}

/// docker's (Go's) words for a template that fails on its data:
/// `template: :1:2: executing "" at <.Missing>: map has no entry for key "Missing"`.
fn exec_error(text: &str, said: &str) -> String {
    let Some(field) = said
        .strip_prefix("no field ")
        .and_then(|r| r.split(" for ").next())
    else {
        return format!("template: :1: executing \"\": {said}");
    };
    let dotted = format!(".{field}");
    let Some(at) = text.find(&dotted) else {
        return format!(
            "template: :1: executing \"\" at <{dotted}>: map has no entry for key \"{field}\""
        );
    };
    // The whole field chain the field ends (`.Config.Nope`), and where it starts.
    let start = text[..at]
        .rfind(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
        .map_or(0, |i| i + 1);
    let path = &text[start..at + dotted.len()];
    let line = 1 + text[..start].matches('\n').count();
    let col = start - text[..start].rfind('\n').map_or(0, |n| n + 1);
    format!(
        "template: :{line}:{col}: executing \"\" at <{path}>: map has no entry for key \"{field}\""
    )
}

impl Format {
    pub fn parse(text: &str) -> Result<Format> {
        let mut t = Template::default();
        t.add_funcs(&FUNCS);
        t.parse(route_prints(&route_label_calls(text)))
            .map_err(|e| {
                anyhow!(
                    "template parsing error: {}",
                    parse_error(text, &e.to_string())
                )
            })?;
        Ok(Format(t, text.to_string()))
    }

    /// Whether the format is the word `json` (inspect's JSON output).
    pub fn is_json(&self) -> bool {
        self.1.trim() == "json"
    }

    pub fn render(&self, data: &serde_json::Value) -> Result<String> {
        if self.is_json() {
            return Ok(data.to_string());
        }
        self.0
            .render(&Context::from(to_value(data)))
            .map_err(|e| anyhow!("{}", exec_error(&self.1, &e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: serde_json::Value) -> String {
        Format::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn docker_style_templates() {
        let v = json!({"Id": "sha256:abc", "Config": {"Cmd": ["cat", "/etc/motd"], "Env": ["A=1"], "Labels": {"k": "v"}}, "Size": 42, "State": {"Running": true}});
        assert_eq!(
            render("{{.Id}} {{.Config.Cmd}}", v.clone()),
            "sha256:abc [cat /etc/motd]"
        );
        assert_eq!(
            render("{{json .Config.Cmd}}", v.clone()),
            r#"["cat","/etc/motd"]"#
        );
        assert_eq!(
            render("{{join .Config.Cmd \",\"}}", v.clone()),
            "cat,/etc/motd"
        );
        assert_eq!(
            render("{{index .Config.Labels \"k\"}} {{.Size}}", v.clone()),
            "v 42"
        );
        assert_eq!(
            render("{{if .State.Running}}up{{else}}down{{end}}", v.clone()),
            "up"
        );
        assert_eq!(
            render("{{range .Config.Env}}[{{.}}]{{end}}", v.clone()),
            "[A=1]"
        );
        assert_eq!(
            render(
                "{{upper \"x\"}} {{len .Config.Cmd}} {{printf \"%s-%d\" \"a\" 3}}",
                v.clone()
            ),
            "X 2 a-3"
        );
        assert_eq!(render("{{- .Size -}}", v.clone()), "42");
        assert_eq!(render("{{.Config.Labels}}", v.clone()), "map[k:v]");
        assert!(Format::parse("{{.Missing}}").unwrap().render(&v).is_err());
        assert_eq!(
            render("{{$c := .Config}}{{$c.Env}} {{\"}}\"}}", v),
            "[A=1] }}"
        );
    }

    #[test]
    fn errors_are_reported_in_docker_s_words() {
        let e = |t: &str| {
            Format::parse(t)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            e("{{.Id"),
            "template parsing error: template: :1: unclosed action"
        );
        assert_eq!(
            e("{{nofunc .Id}}"),
            "template parsing error: template: :1: function \"nofunc\" not defined"
        );
        let v = json!({"Id": "x", "Config": {"Env": []}});
        let r = |t: &str| {
            Format::parse(t)
                .unwrap()
                .render(&v)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            r("{{.Missing}}"),
            "template: :1:2: executing \"\" at <.Missing>: map has no entry for key \"Missing\""
        );
        assert_eq!(
            r("id {{.Config.Nope}}"),
            "template: :1:5: executing \"\" at <.Config.Nope>: map has no entry for key \"Nope\""
        );
    }

    #[test]
    fn label_method_of_list_rows() {
        let row = json!({"Labels": "a=1,tier=web", "Names": "c"});
        assert_eq!(
            render("{{.Label \"tier\"}}|{{.Labels}}", row.clone()),
            "web|a=1,tier=web"
        );
        assert_eq!(render("{{.Label \"nope\"}}", row), "");
        let obj = json!({"Labels": {"tier": "db"}});
        assert_eq!(render("{{.Label \"tier\"}}", obj), "db");
    }
}
