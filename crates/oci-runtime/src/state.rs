//! `state`: runc's state document.

use anyhow::Result;

use crate::record::Record;
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let rec = Record::load(&cli.root, &a.id)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&rec.state_json(&cli.root))?
    );
    Ok(())
}
