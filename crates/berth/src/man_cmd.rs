//! `berth man-pages DIR` (hidden): a man page per command, from the same
//! clap definitions the parser and the completions use (clap_mangen):
//! `berth.1`, `berth-run.1`, `berth-container-run.1`, ... `scripts/quickstart.sh`
//! installs them beside the completions.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes the page of `cmd` (named by `path`, e.g. ["berth", "run"]) and
/// of every subcommand under it; returns how many were written.
fn write_pages(cmd: &mut clap::Command, path: &mut Vec<String>, dir: &Path) -> Result<usize> {
    cmd.build();
    let name = path.join("-");
    let page = cmd.clone().display_name(&name).bin_name(path.join(" "));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .title(name.to_uppercase())
        .section("1")
        .source(format!("Berth {}", env!("CARGO_PKG_VERSION")))
        .manual("Berth Manual")
        .render(&mut out)
        .with_context(|| format!("render the man page of {name}"))?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, out).with_context(|| format!("write {}", file.display()))?;
    let mut written = 1;
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in subs {
        path.push(sub.clone());
        if let Some(s) = cmd.find_subcommand_mut(&sub) {
            written += write_pages(s, path, dir)?;
        }
        path.pop();
    }
    Ok(written)
}

pub fn man_pages(dir: &Path) -> Result<i32> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut cmd = crate::cli::Cli::command();
    let n = write_pages(&mut cmd, &mut vec!["berth".to_string()], dir)?;
    eprintln!("{n} man pages in {}", dir.display());
    Ok(0)
}
