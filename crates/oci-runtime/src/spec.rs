//! `spec`: a default config.json for a bundle (busybox-style `sh`, the
//! namespaces, mounts and capabilities runc's template has).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::Spec;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle to write config.json in (default: the working directory)
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
}

pub fn run(a: &Args) -> Result<()> {
    let dir = crate::create::bundle_dir(&a.bundle)?;
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec = Spec::default();
    spec.set_hostname(Some("berth".into()));
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
