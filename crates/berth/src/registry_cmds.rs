//! Distribution commands: `pull`, `push`, `login`, `logout`, the pull of a
//! missing image before `run`/`create`, and `registry serve`.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use berth_engine::registry::client::{Credentials, Progress, PullPolicy, Pulled, Quiet, Status};
use berth_engine::Engine;
use berth_registry::server::{self, GcOptions, ServerConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, RegistryGcArgs, RegistryServeArgs};

/// Docker Hub, when `login`/`logout` name no server.
const DEFAULT_REGISTRY: &str = "docker.io";

/// Where progress goes: stdout for pull/push, stderr when a container's
/// output owns stdout (`run`).
#[derive(Clone, Copy)]
enum Out {
    Stdout,
    Stderr,
}

impl Out {
    fn is_terminal(self) -> bool {
        match self {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn line(self, s: &str) {
        let _ = match self {
            Out::Stdout => writeln!(std::io::stdout().lock(), "{s}"),
            Out::Stderr => writeln!(std::io::stderr().lock(), "{s}"),
        };
    }
}

/// docker's words for a layer's status.
fn words(status: &Status) -> String {
    match status {
        Status::Waiting => "Pulling fs layer".into(),
        Status::Downloading { .. } => "Downloading".into(),
        Status::Retrying { attempt } => format!("Retrying (try {attempt} broke off)"),
        Status::DownloadComplete => "Download complete".into(),
        Status::PullComplete => "Pull complete".into(),
        Status::AlreadyExists => "Already exists".into(),
        Status::Preparing => "Preparing".into(),
        Status::Pushing { .. } => "Pushing".into(),
        Status::Pushed => "Pushed".into(),
        Status::LayerExists => "Layer already exists".into(),
        Status::Mounted { from } => format!("Mounted from {from}"),
    }
}

/// Not a terminal: one line per status change, as docker prints them
/// (byte counts are left out).
struct Lines(Out);

impl Progress for Lines {
    fn layer(&self, id: &str, status: Status) {
        if !matches!(status, Status::Downloading { .. } | Status::Pushing { .. }) {
            self.0.line(&format!("{id}: {}", words(&status)));
        }
    }
    fn message(&self, line: &str) {
        self.0.line(line);
    }
}

/// A terminal: a bar per layer.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new(out: Out) -> Bars {
        let target = match out {
            Out::Stdout => ProgressDrawTarget::stdout(),
            Out::Stderr => ProgressDrawTarget::stderr(),
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, id: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(id.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.set_prefix(id.to_string());
                b
            })
            .clone()
    }
}

impl Progress for Bars {
    fn layer(&self, id: &str, status: Status) {
        let b = self.bar(id);
        match status {
            Status::Downloading { done, total } | Status::Pushing { done, total } => {
                if b.length() != Some(total) {
                    b.set_length(total);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                b.set_message(words(&status));
                b.set_position(done);
            }
            s @ (Status::PullComplete
            | Status::AlreadyExists
            | Status::Pushed
            | Status::LayerExists
            | Status::Mounted { .. }) => {
                b.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.finish_with_message(words(&s));
            }
            s => b.set_message(words(&s)),
        }
    }
    fn message(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

fn progress_for(out: Out, quiet: bool) -> Arc<dyn Progress> {
    if quiet {
        Arc::new(Quiet)
    } else if out.is_terminal() {
        Arc::new(Bars::new(out))
    } else {
        Arc::new(Lines(out))
    }
}

/// `--disable-content-trust=false`: content trust needs Docker Hub's notary.
pub fn check_content_trust(disabled: bool) -> Result<()> {
    if !disabled {
        bail!("content trust is not supported: it needs Docker Hub's notary service");
    }
    Ok(())
}

pub fn pull(e: &Engine, a: PullArgs) -> Result<i32> {
    check_content_trust(a.disable_content_trust)?;
    check_platform(a.platform.as_deref())?;
    if a.all_tags {
        let pulled = e.pull_all_tags(&a.name, progress_for(Out::Stdout, a.quiet))?;
        let repo = berth_engine::image::Reference::parse(&a.name)?;
        if !a.quiet {
            for p in &pulled {
                println!("Digest: {}", p.digest);
            }
            let status = if pulled.iter().any(|p| p.downloaded) {
                "Downloaded newer image for"
            } else {
                "Image is up to date for"
            };
            println!("Status: {status} {}", repo.familiar_repository());
        }
        println!("{}", repo.repository());
        return Ok(0);
    }
    pull_with(e, &a.name, Out::Stdout, a.quiet)?;
    Ok(0)
}

/// Pulls `name`, printing docker's progress and summary to `out`.
fn pull_with(e: &Engine, name: &str, out: Out, quiet: bool) -> Result<()> {
    let progress = progress_for(out, quiet);
    let pulled = e.pull(name, progress)?;
    let reference = berth_engine::image::Reference::parse(name)?;
    if !quiet {
        summary(out, &pulled, &reference);
    }
    if matches!(out, Out::Stdout) {
        println!("{reference}");
    }
    Ok(())
}

/// `--platform`: this host's (`linux/amd64`, or `linux` alone); Berth runs
/// no other.
pub fn check_platform(p: Option<&str>) -> Result<()> {
    if let Some(p) = p {
        let arch = berth_engine::image::host_arch();
        if p != "linux" && p != format!("linux/{arch}") {
            bail!("platform {p:?} is not supported: this host runs linux/{arch}");
        }
    }
    Ok(())
}

/// `run`/`create`: the image is pulled first as `--pull` says.
/// `quiet` (`-q`) keeps the pull's output to errors.
pub fn ensure_image(e: &Engine, image: &str, policy: &str, quiet: bool) -> Result<()> {
    let policy: PullPolicy = policy.parse().map_err(anyhow::Error::msg)?;
    let progress = progress_for(Out::Stderr, quiet);
    let pulled = e.ensure_image(image, policy, progress, |r| {
        if !quiet {
            eprintln!("Unable to find image '{}' locally", r.familiar());
        }
    })?;
    if let Some(p) = pulled.filter(|_| !quiet) {
        summary(
            Out::Stderr,
            &p,
            &berth_engine::image::Reference::parse(image)?,
        );
    }
    Ok(())
}

/// docker's last lines of a pull.
fn summary(out: Out, pulled: &Pulled, reference: &berth_engine::image::Reference) {
    out.line(&format!("Digest: {}", pulled.digest));
    let status = if pulled.downloaded {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    out.line(&format!("Status: {status} {}", reference.familiar()));
}

pub fn push(e: &Engine, a: PushArgs) -> Result<i32> {
    check_content_trust(a.disable_content_trust)?;
    let progress = progress_for(Out::Stdout, a.quiet);
    let pushed = if a.all_tags {
        e.push_all_tags(&a.name, progress)?
    } else {
        let reference = berth_engine::image::Reference::parse(&a.name)?;
        vec![(reference, e.push(&a.name, progress)?)]
    };
    for (reference, p) in pushed {
        if a.quiet {
            println!("{reference}");
        } else {
            println!(
                "{}: digest: {} size: {}",
                reference.tag().unwrap_or("latest"),
                p.digest,
                p.size
            );
        }
    }
    Ok(0)
}

pub fn login(e: &Engine, a: LoginArgs) -> Result<i32> {
    let server = a.server.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let server = normalise_server(server);
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None => {
            if a.password_stdin || !std::io::stdin().is_terminal() {
                bail!("Cannot perform an interactive login from a non TTY device");
            }
            eprint!("Username: ");
            let mut u = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut u)
                .context("read username")?;
            u.trim().to_string()
        }
    };
    if username.is_empty() {
        bail!("Username is required");
    }
    let password = if a.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut p)
            .context("read password from stdin")?;
        p.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("Cannot perform an interactive login from a non TTY device");
        }
        read_password()?
    };
    if password.is_empty() {
        bail!("Password is required");
    }
    e.login(server, &Credentials { username, password })?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        e.config().client_config.join("config.json").display()
    );
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(e: &Engine, a: LogoutArgs) -> Result<i32> {
    let server = normalise_server(a.server.as_deref().unwrap_or(DEFAULT_REGISTRY));
    if e.logout(server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

/// `https://host:5000/` -> `host:5000`, as docker takes server names.
fn normalise_server(s: &str) -> &str {
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or(s)
}

/// Reads a password from the terminal without echoing it.
fn read_password() -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let old = tcgetattr(&stdin).context("read terminal settings")?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turn off echo")?;
    eprint!("Password: ");
    let mut p = String::new();
    let read = stdin.lock().read_line(&mut p);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &old);
    eprintln!();
    read.context("read password")?;
    Ok(p.trim_end_matches(['\n', '\r']).to_string())
}

pub fn serve(a: RegistryServeArgs) -> Result<i32> {
    let tls = a.tls_cert.zip(a.tls_key);
    server::serve(ServerConfig {
        addr: a.addr,
        root: a.root,
        htpasswd: a.htpasswd,
        token_auth: a.token_auth,
        tls,
        upload_expiry: a.upload_expiry,
    })?;
    Ok(0)
}

pub fn garbage_collect(a: RegistryGcArgs) -> Result<i32> {
    if !a.root.join("layout").exists() {
        anyhow::bail!("{} is not a registry directory", a.root.display());
    }
    let report = server::garbage_collect(
        &a.root,
        &GcOptions {
            dry_run: a.dry_run,
            delete_untagged: a.delete_untagged,
            grace: a.grace,
        },
    )?;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for (repo, d) in &report.untagged {
        println!("{verb} untagged manifest {repo}@{d}");
    }
    for (d, _) in &report.removed {
        println!("{verb} blob {d}");
    }
    for (what, size) in &report.leftovers {
        println!("{verb} interrupted {what} ({size} bytes)");
    }
    println!(
        "{} blobs in use, {} unused but younger than {}s kept, {} blobs {verb} ({} bytes)",
        report.marked,
        report.young,
        a.grace.as_secs(),
        report.removed.len(),
        report.freed()
    );
    Ok(0)
}

/// `search HOST[:PORT]/TERM`: the repositories of the registry's catalog
/// whose name holds TERM, in docker's columns (a catalog has no
/// descriptions, stars or official marks: they are empty, 0 and empty).
pub fn search(e: &Engine, a: crate::cli::SearchArgs) -> Result<i32> {
    let (registry, term) = match a.term.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => (host, rest),
        _ => ("docker.io", a.term.as_str()),
    };
    let mut min_stars = 0u64;
    let mut official: Option<bool> = None;
    for f in &a.filter {
        let bad = || anyhow::anyhow!("invalid filter '{f}'");
        let (k, v) = f.split_once('=').ok_or_else(bad)?;
        match k {
            "stars" => {
                min_stars = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid filter 'stars={v}'"))?
            }
            "is-official" | "is-automated" => {
                let b = v
                    .parse::<bool>()
                    .map_err(|_| anyhow::anyhow!("invalid filter '{k}={v}'"))?;
                if k == "is-official" {
                    official = Some(b);
                } else if b {
                    // Nothing in a catalog is an automated build.
                    min_stars = u64::MAX;
                }
            }
            _ => return Err(bad()),
        }
    }
    if !(1..=100).contains(&a.limit) {
        bail!("limit {} is outside the range of [1, 100]", a.limit);
    }
    let repos = e.catalog(registry)?;
    let rows: Vec<(Vec<String>, serde_json::Value)> = repos
        .iter()
        .filter(|r| r.contains(term))
        // A catalog has no stars and no official images.
        .filter(|_| min_stars == 0 && official != Some(true))
        .take(a.limit)
        .map(|r| {
            let name = format!("{registry}/{r}");
            let cols = vec![name.clone(), String::new(), "0".into(), String::new()];
            let doc = serde_json::json!({
                "Name": name,
                "Description": "",
                "StarCount": "0",
                "IsOfficial": "false",
                "IsAutomated": "false",
            });
            (cols, doc)
        })
        .collect();
    crate::format::print_list(
        a.format.as_deref(),
        &["NAME", "DESCRIPTION", "STARS", "OFFICIAL"],
        |f| match f {
            "Name" => "NAME",
            "Description" => "DESCRIPTION",
            "StarCount" => "STARS",
            "IsOfficial" => "OFFICIAL",
            "IsAutomated" => "AUTOMATED",
            other => other,
        },
        &rows,
    )?;
    let _ = a.no_trunc;
    Ok(0)
}
