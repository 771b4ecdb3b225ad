//! `list`: the containers under --root, as runc's table or JSON.

use anyhow::Result;

use crate::record;
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Only the IDs
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let all = record::all(&cli.root);
    if a.quiet {
        for r in &all {
            println!("{}", r.id);
        }
        return Ok(());
    }
    if a.format == "json" {
        let docs: Vec<_> = all.iter().map(|r| r.state_json(&cli.root)).collect();
        println!("{}", serde_json::to_string(&docs)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<10} {:<40} {:<32} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for r in &all {
        let s = r.status(&cli.root);
        let pid = if s == record::Status::Stopped {
            0
        } else {
            r.pid
        };
        println!(
            "{:<12} {:<8} {:<10} {:<40} {:<32} root",
            r.id,
            pid,
            s.as_str(),
            r.bundle.display(),
            r.created
        );
    }
    Ok(())
}
