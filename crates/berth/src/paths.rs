//! Paths as the user typed them, made absolute against the user's working
//! directory before the engine sees them: the engine never resolves a path
//! against the directory of whatever process calls it.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, ContainerCommand, ImageCommand, RegistryCommand};

/// `p` against this process's working directory, with `.` and `..`
/// removed lexically (Go's `filepath.Abs`, which docker uses).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p)
        .with_context(|| format!("resolve {} against the working directory", p.display()))?;
    Ok(clean(&abs))
}

/// `.` and `..` removed lexically from an absolute path.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn absolute_in_place(p: &mut PathBuf) -> Result<()> {
    *p = absolute(p)?;
    Ok(())
}

/// Makes every path of the command line absolute (the state directories,
/// files the command reads or writes, a build context).
pub fn resolve(cli: &mut Cli) -> Result<()> {
    let g = &mut cli.global;
    absolute_in_place(&mut g.root)?;
    absolute_in_place(&mut g.runroot)?;
    if let Some(c) = &mut g.client_config {
        absolute_in_place(c)?;
    }
    let Some(command) = &mut cli.command else {
        return Ok(());
    };
    match command {
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            if let Some(o) = &mut a.output {
                absolute_in_place(o)?;
            }
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            if let Some(o) = &mut a.output {
                absolute_in_place(o)?;
            }
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            if let Some(i) = &mut a.input {
                absolute_in_place(i)?;
            }
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a))
            if a.file != "-" && !is_url(&a.file) =>
        {
            a.file = absolute(Path::new(&a.file))?.to_string_lossy().into_owned();
        }
        Command::Registry(RegistryCommand::GarbageCollect(a)) => {
            absolute_in_place(&mut a.root)?;
        }
        Command::Registry(RegistryCommand::Serve(a)) => {
            absolute_in_place(&mut a.root)?;
            for p in [&mut a.htpasswd, &mut a.tls_cert, &mut a.tls_key]
                .into_iter()
                .flatten()
            {
                absolute_in_place(p)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// A local path of `cp` (`-` is the archive on stdin or stdout).
pub fn local_path(p: &str) -> Result<PathBuf> {
    if p == "-" {
        return Ok(PathBuf::from(p));
    }
    let abs = absolute(Path::new(p))?;
    // `cp c:/f dir/` means into dir: keep the trailing slash.
    if p.ends_with('/') && abs != Path::new("/") {
        let mut s = abs.into_os_string();
        s.push("/");
        return Ok(PathBuf::from(s));
    }
    Ok(abs)
}

/// `-v ./data:/data`: a host part that starts with `.` is a path relative to
/// the working directory (docker 23+); anything else is left as typed.
pub fn volume_flag(spec: &str) -> Result<String> {
    match spec.split_once(':') {
        Some((host, rest)) if host.starts_with('.') => Ok(format!(
            "{}:{rest}",
            absolute(Path::new(host))?.to_string_lossy()
        )),
        _ => Ok(spec.to_string()),
    }
}

/// `--mount type=bind,src=./data,...`: a bind source that starts with `.`
/// is made absolute, as docker does.
pub fn mount_flag(spec: &str) -> Result<String> {
    let fields: Vec<&str> = spec.split(',').collect();
    let is_bind = fields
        .iter()
        .any(|f| f.trim() == "type=bind" || f.trim() == "type=\"bind\"");
    if !is_bind {
        return Ok(spec.to_string());
    }
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        match f.split_once('=') {
            Some((k @ ("source" | "src"), v)) if v.starts_with('.') => {
                out.push(format!("{k}={}", absolute(Path::new(v))?.to_string_lossy()));
            }
            _ => out.push(f.to_string()),
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_dots() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/../..")), PathBuf::from("/"));
        assert_eq!(clean(Path::new("/a/b/.")), PathBuf::from("/a/b"));
    }

    #[test]
    fn volume_and_mount_flags() {
        let cwd = std::env::current_dir().unwrap();
        let data = cwd.join("data").to_string_lossy().into_owned();
        assert_eq!(
            volume_flag("./data:/data:ro").unwrap(),
            format!("{data}:/data:ro")
        );
        assert_eq!(
            volume_flag(".:/app").unwrap(),
            format!("{}:/app", cwd.display())
        );
        assert_eq!(volume_flag("vol:/data").unwrap(), "vol:/data");
        assert_eq!(volume_flag("/abs:/data").unwrap(), "/abs:/data");
        assert_eq!(volume_flag("/anon").unwrap(), "/anon");
        assert_eq!(
            mount_flag("type=bind,src=./data,dst=/d").unwrap(),
            format!("type=bind,src={data},dst=/d")
        );
        assert_eq!(
            mount_flag("type=volume,src=.v,dst=/d").unwrap(),
            "type=volume,src=.v,dst=/d"
        );
    }
}
