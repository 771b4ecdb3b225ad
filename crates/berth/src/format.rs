//! Docker's human-readable sizes and durations, and its tables.

use std::io::Write;

/// Go's `units.HumanSize`: decimal units, three significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(v), UNITS[i])
}

/// Go's `units.BytesSize` (`stats`' memory): binary units, four significant
/// digits (`262KiB`, `23.56GiB`).
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", sig(v, 4), UNITS[i])
}

/// `%.3g` without trailing zeros.
fn sig3(v: f64) -> String {
    sig(v, 3)
}

/// `%.{n}g` without trailing zeros (for values below 10^n).
fn sig(v: f64, n: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (n - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub use berth_engine::units::ago;

/// Prints rows the way docker's tables look (Go tabwriter: min width 10, padding 3; this tabwriter adds the padding to the minimum).
pub fn table(rows: &[Vec<String>]) -> std::io::Result<()> {
    table_min(rows, 10)
}

/// A table whose columns are at least `min` wide, padding included (Go
/// tabwriter's minwidth: docker's `top` uses 20).
pub fn table_min(rows: &[Vec<String>], min: usize) -> std::io::Result<()> {
    let mut tw = tabwriter::TabWriter::new(Vec::new())
        .minwidth(min.saturating_sub(3))
        .padding(3);
    for row in rows {
        writeln!(tw, "{}", row.join("\t"))?;
    }
    tw.flush()?;
    let out = tw
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::io::stdout().write_all(&out)
}

/// Splits a `--format` value: whether it is a table (`table ...` or no
/// format), and the row template if there is one. As docker's formatter
/// does, a typed `\t` or `\n` is a tab or a newline, and `json` is one JSON
/// object per row.
pub fn split_table(format: Option<&str>) -> (bool, Option<String>) {
    let Some(format) = format else {
        return (true, None);
    };
    let (table, rest) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let template = rest
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    match (table, template.as_str()) {
        (_, "") => (true, None),
        (false, "json") => (false, Some("{{json .}}".to_string())),
        _ => (table, Some(template)),
    }
}

/// Prints a list command's rows as `--format` says: docker's table of the
/// `header` columns, a `table` template with a header row made from its
/// fields (`title` names each), a template per row, or JSON per row. Each row
/// is its default columns and the document templates see.
pub fn print_list(
    format: Option<&str>,
    header: &[&str],
    title: impl Fn(&str) -> &str,
    rows: &[(Vec<String>, serde_json::Value)],
) -> anyhow::Result<()> {
    let (table_mode, template) = split_table(format);
    let Some(template) = template else {
        let mut out = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        out.extend(rows.iter().map(|(cols, _)| cols.clone()));
        return Ok(table(&out)?);
    };
    let fmt = crate::template::Format::parse(&template)?;
    let mut out = Vec::new();
    if table_mode {
        out.push(header_row(&template, title));
    }
    for (_, doc) in rows {
        let line = fmt.render(doc)?;
        if table_mode {
            out.push(line.split('\t').map(String::from).collect());
        } else {
            println!("{line}");
        }
    }
    if table_mode {
        table(&out)?;
    }
    Ok(())
}

/// The header row of a `table` template: each `{{.Field}}` becomes its title.
pub fn header_row(template: &str, title: impl Fn(&str) -> &str) -> Vec<String> {
    let mut header = template.to_string();
    while let Some(start) = header.find("{{") {
        let Some(len) = header[start..].find("}}") else {
            break;
        };
        let inner = header[start + 2..start + len]
            .trim()
            .trim_start_matches('.')
            .to_string();
        header.replace_range(start..start + len + 2, title(&inner));
    }
    header.split('\t').map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_like_docker_s_stats() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(268_288), "262KiB");
        assert_eq!(binary_size(25_297_000_000), "23.56GiB");
        assert_eq!(binary_size(1536 * 1024), "1.5MiB");
        assert_eq!(binary_size(1023), "1023B");
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_982_256), "1.98MB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
    }

    #[test]
    fn formats_like_docker() {
        let t = |f: &str| split_table(Some(f));
        assert_eq!(split_table(None), (true, None));
        assert_eq!(t("table"), (true, None));
        assert_eq!(t("json"), (false, Some("{{json .}}".into())));
        assert_eq!(
            t("{{.ID}}\\t{{.Names}}"),
            (false, Some("{{.ID}}\t{{.Names}}".into()))
        );
        assert_eq!(
            t("table {{.ID}}\\t{{.Names}}"),
            (true, Some("{{.ID}}\t{{.Names}}".into()))
        );
        assert_eq!(t("{{.ID}}\\n"), (false, Some("{{.ID}}\n".into())));
        assert_eq!(t("  {{.ID}} "), (false, Some("{{.ID}}".into())));
    }
}
