//! `run`: create and start; in the foreground, wait for the container and
//! exit with its code (then delete it, as runc does).

use anyhow::Result;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: crate::create::CreateArgs,
    /// Do not wait for the container
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

pub fn run(cli: &Cli, a: &RunArgs) -> Result<i32> {
    let signals = crate::signals::block()?;
    let (rec, container, master) = crate::create::create(cli, &a.create, !a.detach)?;
    if let Err(e) = crate::start::start(cli, &rec.id) {
        let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = container.wait();
        crate::delete::remove(cli, &rec)?;
        return Err(e);
    }
    if a.detach {
        std::mem::forget(container);
        return Ok(0);
    }
    if let Some(m) = &master {
        let pid = rec.pid;
        crate::console::proxy(m, &|| {
            crate::record::proc_stat(pid).is_none_or(|(_, s)| s == 'Z')
        });
    }
    let status = crate::signals::wait_forwarding(
        &signals,
        || Ok(container.try_wait()?),
        |s| {
            let _ = container.signal(s);
        },
    )?;
    if !a.keep {
        crate::delete::remove(cli, &rec)?;
    }
    Ok(status.code())
}
