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

const FUNCS: [(&str, Func); 8] = [
    (PRINT, print_fn),
    ("json", json_fn),
    ("join", join_fn),
    ("upper", upper_fn),
    ("lower", lower_fn),
    ("title", title_fn),
    ("split", split_fn),
    ("truncate", truncate_fn),
];

/// A parsed `--format` template.
pub struct Format(Template);

impl Format {
    pub fn parse(text: &str) -> Result<Format> {
        let mut t = Template::default();
        t.add_funcs(&FUNCS);
        t.parse(route_prints(text))
            .map_err(|e| anyhow!("template parsing error: {e}"))?;
        Ok(Format(t))
    }

    pub fn render(&self, data: &serde_json::Value) -> Result<String> {
        self.0
            .render(&Context::from(to_value(data)))
            .map_err(|e| anyhow!("template: {e}"))
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
    fn errors_are_reported() {
        assert!(Format::parse("{{.Id").is_err());
    }
}
