//! One function per command; each returns the process exit code.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};

use anyhow::{bail, Context, Result};
use berth_engine::image::{ImportOptions, Reference, RuntimeConfigJson};
use berth_engine::{
    mounts, units, ContainerOptions, Engine, EngineConfig, NamespaceMode, NetworkMode, Resources,
    RestartPolicy,
};

use crate::attach;
use crate::build_cmds;
use crate::cli::{
    BuilderCommand, Cli, Command, ContainerCommand, Global, ImageCommand, ImagesArgs, ImportArgs,
    PsArgs, RegistryCommand, RmArgs, RunArgs, SystemCommand,
};
use crate::container_cmds as cc;
use crate::format;
use crate::image_cmds;
use crate::network_cmds;
use crate::registry_cmds;
use crate::template::Format;
use crate::volume_cmds;

/// Exit code of a `run` that failed before the container's program ran.
const RUN_FAILED: i32 = 125;

pub(crate) fn engine_config(g: &Global) -> Result<EngineConfig> {
    Ok(EngineConfig {
        root: g.root.clone(),
        runroot: g.runroot.clone(),
        cgroup_parent: g.cgroup_parent.clone(),
        bridge: g.bridge.clone(),
        // The caller's credentials: ~/.docker unless --config says.
        client_config: match &g.client_config {
            Some(c) => c.clone(),
            None => std::env::var_os("HOME")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| "/root".into())
                .join(".docker"),
        },
        insecure_registries: g.insecure_registries.clone(),
        userns_remap: g.userns_remap.clone(),
        monitor_program: monitor_program()?,
        ..Default::default()
    })
}

/// The program a container's monitor runs: `berth-monitor` beside this
/// executable (installed with it; a small program whose start costs a
/// fraction of this one's), else this very program under the monitor's name.
fn monitor_program() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().context("find berth's own executable")?;
    let small = exe.with_file_name(berth_engine::monitor::PROGRAM_NAME);
    Ok(if small.is_file() { small } else { exe })
}

fn engine(g: &Global) -> Result<Engine> {
    Ok(Engine::open(engine_config(g)?)?)
}

pub(crate) fn report(e: &anyhow::Error) {
    eprintln!("berth: {}", error_text(e));
}

/// An error's text for a terminal: its causes joined as anyhow's `{:#}`
/// joins them, each cause once (an error whose message already ends with its
/// source's text does not repeat it), and every control character of an
/// untrusted byte string (an archive's header, a server's reply) escaped so
/// it cannot drive the terminal.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    escape_controls(&text)
}

/// `s` with its control characters (but newline and tab) escaped, as
/// `\u{1b}`.
pub(crate) fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether the reader of stdout has gone: stdout is a pipe or socket whose
/// other end is closed (poll reports an error or hang-up on it).
pub(crate) fn stdout_closed() -> bool {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let Ok(stat) = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&stdout)) else {
        return false;
    };
    let kind = stat.st_mode & libc::S_IFMT;
    if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
        return false;
    }
    let mut fds = [nix::poll::PollFd::new(
        stdout.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_some_and(|r| {
            r.intersects(nix::poll::PollFlags::POLLERR | nix::poll::PollFlags::POLLHUP)
        }),
        Err(_) => false,
    }
}

/// Ends the process as docker's CLI ends when its stdout's reader is gone:
/// quietly, by the SIGPIPE a write to the closed pipe raises (the shell
/// prints nothing for it; status 141 under `set -o pipefail`).
pub(crate) fn end_on_closed_stdout() -> ! {
    // SAFETY: restoring the default action of SIGPIPE and raising it
    // touches no memory; nothing else runs while the process ends.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141)
}

/// Whether an error is a write to a closed stdout (an `io::Error` of kind
/// BrokenPipe anywhere in its chain while stdout's reader is gone): such a
/// command has simply come to the end of its output.
fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) && stdout_closed()
}

pub fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    if cli.version {
        println!("{}", crate::system_cmds::version_line());
        return 0;
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return 0;
    };
    let result = match command {
        Command::Version(a) => crate::system_cmds::version(a),
        Command::ManPages(a) => crate::man_cmd::man_pages(&a.dir),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            engine(g).and_then(|e| crate::system_cmds::events(&e, a))
        }
        Command::Completion(a) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            if a.no_descriptions {
                cmd = without_descriptions(cmd);
            }
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "berth", &mut script);
            // A reader that stops early (`| head`) ends the output, no error.
            use std::io::Write;
            match std::io::stdout().lock().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::Error::from(e).context("write the completion script"))
                }
                _ => Ok(0),
            }
        }
        Command::Daemon(a) => crate::system_cmds::daemon(g, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => {
            engine(g).and_then(|e| crate::system_cmds::info(&e, g, a))
        }
        Command::Run(args) => return run(g, *args),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import(g, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images(g, a),
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            engine(g).and_then(|e| image_cmds::diff(&e, &a.container))
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            engine(g).and_then(|e| image_cmds::commit(&e, a))
        }
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            engine(g).and_then(|e| image_cmds::history(&e, a))
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => {
            engine(g).and_then(|e| image_cmds::tag(&e, a))
        }
        Command::Inspect(a) => engine(g).and_then(|e| image_cmds::inspect(&e, a)),
        Command::Image(ImageCommand::Inspect(mut a)) => {
            a.kind = Some("image".into());
            engine(g).and_then(|e| image_cmds::inspect(&e, a))
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            engine(g).and_then(|e| image_cmds::rmi(&e, a))
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            engine(g).and_then(|e| image_cmds::export(&e, a))
        }
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            engine(g).and_then(|e| image_cmds::save(&e, a))
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            engine(g).and_then(|e| image_cmds::load(&e, a))
        }
        Command::Image(ImageCommand::Prune(a)) => engine(g).and_then(|e| image_cmds::prune(&e, a)),
        Command::System(SystemCommand::Prune(a)) => {
            engine(g).and_then(|e| crate::prune_cmds::system_prune(&e, a))
        }
        Command::System(SystemCommand::Df(a)) => engine(g).and_then(|e| crate::df_cmd::df(&e, a)),
        Command::System(SystemCommand::Check(a)) => {
            engine(g).and_then(|e| crate::system_cmds::check(&e, a))
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps(g, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => rm(g, a),
        Command::Container(ContainerCommand::Run(a)) => return run(g, *a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => create(g, *a),
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            engine(g).and_then(|e| cc::start(&e, a))
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            engine(g).and_then(|e| cc::stop(&e, a))
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            engine(g).and_then(|e| cc::restart(&e, a))
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            engine(g).and_then(|e| cc::kill(&e, a))
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            engine(g).and_then(|e| cc::wait(&e, &a.containers))
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            engine(g).and_then(|e| cc::pause(&e, &a.containers, true))
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            engine(g).and_then(|e| cc::pause(&e, &a.containers, false))
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            engine(g).and_then(|e| cc::logs(&e, a))
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            engine(g).and_then(|e| cc::attach(&e, a))
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            engine(g).and_then(|e| Ok(e.rename(&a.container, &a.new_name).map(|_| 0)?))
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            engine(g).and_then(|e| cc::update(&e, a))
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => return exec(g, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            engine(g).and_then(|e| cc::top(&e, a))
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            engine(g).and_then(|e| cc::stats(&e, a))
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            engine(g).and_then(|e| cc::cp(&e, a))
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            engine(g).and_then(|e| cc::port(&e, a))
        }
        Command::Container(ContainerCommand::Prune(a)) => engine(g).and_then(|e| cc::prune(&e, a)),
        Command::Volume(c) => engine(g).and_then(|e| volume_cmds::dispatch(&e, c)),
        Command::Network(c) => engine(g).and_then(|e| network_cmds::dispatch(&e, c)),
        Command::Build(a)
        | Command::Builder(BuilderCommand::Build(a))
        | Command::Image(ImageCommand::Build(a)) => {
            engine(g).and_then(|e| build_cmds::build(&e, *a))
        }
        Command::Builder(BuilderCommand::Prune(a)) => {
            engine(g).and_then(|e| build_cmds::prune(&e, a))
        }
        Command::Registry(RegistryCommand::Serve(a)) => registry_cmds::serve(a),
        Command::Registry(RegistryCommand::GarbageCollect(a)) => registry_cmds::garbage_collect(a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            engine(g).and_then(|e| registry_cmds::pull(&e, a))
        }
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => {
            engine(g).and_then(|e| registry_cmds::push(&e, a))
        }
        Command::Login(a) => engine(g).and_then(|e| registry_cmds::login(&e, a)),
        Command::Search(a) => engine(g).and_then(|e| registry_cmds::search(&e, a)),
        Command::Logout(a) => engine(g).and_then(|e| registry_cmds::logout(&e, a)),
        Command::Container(ContainerCommand::Inspect(mut a)) => {
            a.kind = Some("container".into());
            engine(g).and_then(|e| image_cmds::inspect(&e, a))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) if is_closed_stdout(&e) => end_on_closed_stdout(),
        Err(e) => {
            report(&e);
            1
        }
    }
}

/// `import -c`: the changes applied to an empty runtime config.
fn import_config(changes: &[String]) -> Result<Option<RuntimeConfigJson>> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut config = RuntimeConfigJson::new();
    berth_builder::apply_changes(&mut config, changes)?;
    Ok(Some(config))
}

/// `completion --no-descriptions`: the command tree with every about and
/// help text taken out, so the shells offer bare words.
fn without_descriptions(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd
        .about(None::<&str>)
        .long_about(None::<&str>)
        .mut_args(|a| a.help(None::<&str>).long_help(None::<&str>));
    for n in names {
        cmd = cmd.mut_subcommand(n, without_descriptions);
    }
    cmd
}

fn import(g: &Global, a: ImportArgs) -> Result<i32> {
    registry_cmds::check_platform(a.platform.as_deref())?;
    let engine = engine(g)?;
    let reference = a.reference.as_deref().map(Reference::parse).transpose()?;
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&a.file).with_context(|| format!("open {}", a.file))?)
    };
    let opts = ImportOptions {
        reference,
        message: a.message,
        source: if a.file == "-" {
            "-".into()
        } else {
            a.file.clone()
        },
        config: import_config(&a.change)?,
    };
    let image = engine
        .import_image(input, &opts)
        .with_context(|| format!("import {}", a.file))?;
    println!("{}", image.id);
    Ok(0)
}

/// `images --filter`: docker's dangling, label, before, since and
/// reference filters (values of one key are alternatives; keys all apply).
struct ImageFilter {
    dangling: Option<bool>,
    labels: Vec<String>,
    before: Option<String>,
    since: Option<String>,
    references: Vec<String>,
}

impl ImageFilter {
    fn parse(engine: &Engine, items: &[String]) -> Result<ImageFilter> {
        let mut f = ImageFilter {
            dangling: None,
            labels: Vec::new(),
            before: None,
            since: None,
            references: Vec::new(),
        };
        let created = |key: &str| -> Result<String> { Ok(engine.images().resolve(key)?.created) };
        for item in items {
            let Some((k, v)) = item.split_once('=') else {
                bail!("bad format of filter (expected name=value)");
            };
            match k {
                "dangling" => {
                    f.dangling = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("invalid filter 'dangling={v}'"),
                    })
                }
                "label" => f.labels.push(v.to_string()),
                "before" => f.before = Some(created(v)?),
                "since" => f.since = Some(created(v)?),
                "reference" => f.references.push(v.to_string()),
                _ => bail!("invalid filter '{k}'"),
            }
        }
        Ok(f)
    }

    fn matches_image(&self, img: &berth_engine::image::Image) -> bool {
        if self.dangling.is_some_and(|d| d != img.refs.is_empty()) {
            return false;
        }
        if self.before.as_ref().is_some_and(|t| img.created >= *t)
            || self.since.as_ref().is_some_and(|t| img.created <= *t)
        {
            return false;
        }
        let labels = img
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default();
        self.labels.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
    }

    /// Whether a name (`repo`, `tag`) passes the reference filters.
    fn matches_name(&self, repo: &str, tag: &str) -> bool {
        self.references.is_empty()
            || self
                .references
                .iter()
                .any(|p| glob(p, repo) || glob(p, &format!("{repo}:{tag}")))
    }
}

/// Go's `path.Match` for reference filters: `*` and `?` stay within one
/// path segment.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => n.first().is_some_and(|c| *c != b'/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// An RFC 3339 time as docker's lists print `CreatedAt`.
fn docker_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_default()
}

/// Column titles for `images --format 'table ...'`.
fn images_header(field: &str) -> &str {
    match field {
        "ID" => "IMAGE ID",
        "Repository" => "REPOSITORY",
        "Tag" => "TAG",
        "Digest" => "DIGEST",
        "CreatedSince" => "CREATED",
        "CreatedAt" => "CREATED AT",
        "Size" => "SIZE",
        other => other,
    }
}

fn images(g: &Global, a: ImagesArgs) -> Result<i32> {
    let engine = engine(g)?;
    let filters = ImageFilter::parse(&engine, &a.filter)?;
    let mut list = engine.images().list()?;
    list.sort_by(|x, y| y.created.cmp(&x.created));
    let filter = a.repository.as_deref().map(Reference::parse).transpose()?;
    let mut header = vec!["REPOSITORY", "TAG"];
    if a.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut rows: Vec<(Vec<String>, serde_json::Value)> = Vec::new();
    let mut ids = Vec::new();
    // Build cache stays out of the list, unless -a or a filter asks for
    // untagged images.
    let show_all = a.all || filters.dangling == Some(true);
    for img in list
        .iter()
        .filter(|i| show_all || !i.intermediate)
        .filter(|i| filters.matches_image(i))
    {
        let id = if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
        let bytes = engine.images().size(img);
        let size = format::human_size(bytes);
        let created = format::ago(&img.created);
        let mut names: Vec<(String, String)> = img
            .refs
            .iter()
            .filter(|r| {
                filter.as_ref().is_none_or(|f| {
                    f.repository() == r.repository()
                        && (a.repository.as_deref().is_some_and(|s| !s.contains(':'))
                            || f.tag() == r.tag())
                })
            })
            .map(|r| {
                (
                    r.familiar_repository(),
                    r.tag().unwrap_or("<none>").to_string(),
                )
            })
            .filter(|(repo, tag)| filters.matches_name(repo, tag))
            .collect();
        if img.refs.is_empty() && filter.is_none() && filters.references.is_empty() {
            // Pulled by digest: named by its repository, with no tag.
            let mut repos: Vec<String> = img
                .repo_digests
                .iter()
                .filter_map(|d| d.split('@').next())
                .map(str::to_string)
                .collect();
            repos.dedup();
            if repos.is_empty() {
                repos.push("<none>".into());
            }
            names.extend(repos.into_iter().map(|r| (r, "<none>".to_string())));
        }
        names.sort();
        if !names.is_empty() && !ids.contains(&id) {
            ids.push(id.clone());
        }
        for (repo, tag) in names {
            // The digest this repository knows the image by (docker's
            // RepoDigests), if it came from or went to a registry.
            let digest = img
                .repo_digests
                .iter()
                .filter_map(|d| d.split_once('@'))
                .find(|(r, _)| *r == repo)
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "<none>".into());
            let mut row = vec![repo.clone(), tag.clone()];
            if a.digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), created.clone(), size.clone()]);
            let doc = serde_json::json!({
                "ID": id,
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": created,
                "CreatedAt": docker_time(&img.created),
                "Size": size,
                "VirtualSize": size,
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "Containers": "N/A",
            });
            rows.push((row, doc));
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
        return Ok(0);
    }
    format::print_list(a.format.as_deref(), &header, images_header, &rows)?;
    Ok(0)
}

fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let file = File::open(f).with_context(|| format!("open env file {}", f.display()))?;
        for line in BufReader::new(file).lines() {
            let line = line.with_context(|| format!("read env file {}", f.display()))?;
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// `-e NAME` takes this caller's value of NAME, here at the face: the engine
/// never reads its caller's environment (docker's CLI does the same; a name
/// the caller has no value for stays bare and is left out of the container).
fn caller_env(entries: impl Iterator<Item = String>) -> Vec<String> {
    entries
        .map(|e| match (e.contains('='), std::env::var(&e)) {
            (false, Ok(v)) => format!("{e}={v}"),
            _ => e,
        })
        .collect()
}

/// The resource flags `run`, `create` and `update` share, parsed (sizes
/// with docker's units, `--memory-swap -1` unlimited); `None` where not given.
pub(crate) fn resource_request(
    r: &crate::cli::ResourceArgs,
) -> Result<berth_engine::UpdateRequest> {
    let bytes = |v: &Option<String>| v.as_deref().map(units::parse_bytes).transpose();
    Ok(berth_engine::UpdateRequest {
        memory: bytes(&r.memory)?,
        memory_swap: match r.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            other => other.map(units::parse_bytes).transpose()?,
        },
        memory_reservation: bytes(&r.memory_reservation)?,
        nano_cpus: r.cpus.as_deref().map(units::parse_nano_cpus).transpose()?,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        pids_limit: r.pids_limit,
        blkio_weight: r.blkio_weight,
        cpu_rt_period: r.cpu_rt_period,
        cpu_rt_runtime: r.cpu_rt_runtime,
        restart: None,
    })
}

fn rates(flag: &str, values: &[String], bytes: bool) -> Result<Vec<berth_engine::DeviceRate>> {
    values
        .iter()
        .map(|v| Ok(berth_engine::DeviceRate::parse(flag, v, bytes)?))
        .collect()
}

/// `--security-opt`: a seccomp profile's file (relative to the working
/// directory) is read here and its text passed on, as docker's CLI does.
pub(crate) fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    opts.iter()
        .map(|o| match o.split_once('=') {
            Some(("seccomp", v)) if !matches!(v, "unconfined" | "builtin" | "") => {
                let text = std::fs::read_to_string(v)
                    .with_context(|| format!("opening seccomp profile ({v}) failed"))?;
                Ok(format!("seccomp={text}"))
            }
            Some(("apparmor", _)) | Some(("label", _)) => {
                eprintln!(
                    "WARNING: {o}: this host has no AppArmor or SELinux, the option has no effect"
                );
                Ok(o.clone())
            }
            _ => Ok(o.clone()),
        })
        .collect()
}

/// `--health-*` and `--no-healthcheck` as docker's HealthConfig.
fn healthcheck(a: &RunArgs) -> Result<Option<berth_engine::health::HealthConfig>> {
    let durations = [
        ("interval", &a.health_interval),
        ("timeout", &a.health_timeout),
        ("start-period", &a.health_start_period),
        ("start-interval", &a.health_start_interval),
    ];
    let any = a.health_cmd.is_some()
        || a.health_retries.is_some()
        || durations.iter().any(|(_, v)| v.is_some());
    if a.no_healthcheck {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(berth_engine::health::HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    let mut nanos = [0i64; 4];
    for (slot, (name, v)) in nanos.iter_mut().zip(durations) {
        let Some(v) = v else { continue };
        let d = berth_engine::units::parse_go_duration(v).map_err(|e| {
            anyhow::anyhow!("invalid argument {v:?} for \"--health-{name}\" flag: {e}")
        })?;
        if d != std::time::Duration::ZERO && d < std::time::Duration::from_millis(1) {
            bail!("--health-{name} cannot be less than 1ms");
        }
        *slot = d.as_nanos().min(i64::MAX as u128) as i64;
    }
    if a.health_retries.is_some_and(|r| r < 0) {
        bail!("--health-retries cannot be negative");
    }
    Ok(Some(berth_engine::health::HealthConfig {
        test: a
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
            .unwrap_or_default(),
        interval: nanos[0],
        timeout: nanos[1],
        start_period: nanos[2],
        start_interval: nanos[3],
        retries: a.health_retries.unwrap_or(0),
    }))
}

fn container_options(a: &RunArgs) -> Result<ContainerOptions> {
    let mut o = ContainerOptions::new(a.args[0].clone());
    o.cmd = a.args[1..].to_vec();
    o.name = a.name.clone();
    o.entrypoint = a.entrypoint.clone();
    o.env = caller_env(
        read_env_files(&a.env_file)?
            .into_iter()
            .chain(a.env.iter().cloned()),
    );
    o.workdir = a.workdir.clone();
    o.user = a.user.clone();
    o.hostname = a.hostname.clone();
    o.tty = a.tty;
    o.interactive = a.interactive;
    o.network = NetworkMode::parse(&a.network)?;
    o.cap_add = a.cap_add.clone();
    o.cap_drop = a.cap_drop.clone();
    o.privileged = a.privileged;
    o.read_only = a.read_only;
    o.auto_remove = a.rm;
    o.restart = RestartPolicy::parse(&a.restart)?;
    if a.rm && o.restart != RestartPolicy::No {
        bail!("Conflicting options: --restart and --rm");
    }
    o.log = berth_engine::LogOptions::for_driver(berth_engine::LogDriver::parse(&a.log_driver)?);
    for opt in &a.log_opt {
        o.log.set(opt)?;
    }
    if let Some(s) = &a.stop_signal {
        berth_engine::parse_signal(s)?;
    }
    o.stop_signal = a.stop_signal.clone();
    for v in &a.volume {
        o.mounts
            .push(mounts::parse_volume_flag(&crate::paths::volume_flag(v)?)?);
    }
    for m in &a.mount {
        o.mounts
            .push(mounts::parse_mount_flag(&crate::paths::mount_flag(m)?)?);
    }
    for t in &a.tmpfs {
        o.mounts.push(mounts::parse_tmpfs_flag(t)?);
    }
    mounts::check_duplicates(o.mounts.iter().map(|m| m.target.as_str()))?;
    o.volumes_from = a.volumes_from.clone();
    for p in &a.publish {
        o.publish
            .extend(berth_engine::network::ports::parse_publish(p).map_err(anyhow::Error::msg)?);
    }
    o.publish_all = a.publish_all;
    o.network_aliases = a.network_alias.clone();
    for l in &a.link {
        o.links.push(berth_engine::Link::parse(l)?);
    }
    for d in &a.dns {
        d.parse::<std::net::IpAddr>()
            .map_err(|_| anyhow::anyhow!("{d} is not an ip address"))?;
    }
    o.dns = a.dns.clone();
    for h in &a.add_host {
        match h.split_once(':') {
            Some((name, ip)) if !name.is_empty() && ip.parse::<std::net::IpAddr>().is_ok() => {}
            _ => bail!("invalid argument \"{h}\" for \"--add-host\" flag: bad format for add-host: \"{h}\""),
        }
    }
    o.add_hosts = a.add_host.clone();
    if matches!(o.network, NetworkMode::Host | NetworkMode::Container(_)) {
        if !o.publish.is_empty() || o.publish_all {
            eprintln!("WARNING: Published ports are discarded when using host network mode");
            o.publish.clear();
            o.publish_all = false;
        }
        if matches!(o.network, NetworkMode::Container(_)) && a.hostname.is_some() {
            bail!("conflicting options: hostname and the network mode");
        }
    }
    o.stop_timeout = a.stop_timeout;
    for u in &a.ulimit {
        o.ulimits.push(berth_engine::Ulimit::parse(u)?);
    }
    for kv in &a.sysctl {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            anyhow::anyhow!(
                "invalid argument \"{kv}\" for \"--sysctl\" flag: sysctl '{kv}' is not whitelisted"
            )
        })?;
        o.sysctls.insert(k.to_string(), v.to_string());
    }
    o.oom_score_adj = a.oom_score_adj;
    o.shm_size = a.shm_size.as_deref().map(units::parse_bytes).transpose()?;
    o.group_add = a.group_add.clone();
    o.dns_search = a.dns_search.clone();
    o.dns_options = a.dns_option.clone();
    o.ipc = NamespaceMode::parse("ipc", a.ipc.as_deref().unwrap_or(""))?;
    o.pid = NamespaceMode::parse("pid", a.pid.as_deref().unwrap_or(""))?;
    o.uts = NamespaceMode::parse("uts", a.uts.as_deref().unwrap_or(""))?;
    o.init = a.init;
    o.expose = a.expose.clone();
    o.healthcheck = healthcheck(a)?;
    o.ip = a.ip;
    o.mac_address = a.mac_address.clone();
    o.security_opt = security_opts(&a.security_opt)?;
    // Label files first: a -l given on the command line wins.
    for kv in read_env_files(&a.label_file)?.iter().chain(&a.label) {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.is_empty() {
            bail!("invalid label {kv:?}: the key is empty");
        }
        o.labels.insert(k.to_string(), v.to_string());
    }
    for d in &a.device {
        o.devices.push(berth_engine::DeviceMapping::parse(d)?);
    }
    o.device_cgroup_rules = a.device_cgroup_rule.clone();
    o.domainname = a.domainname.clone();
    if let Some(u) = &a.userns {
        berth_engine::userns::parse(u)?;
        o.userns = u.clone();
    }
    o.cgroupns_host = match a.cgroupns.as_deref() {
        None | Some("private") => false,
        Some("host") => true,
        Some(other) => bail!("invalid cgroup namespace mode {other:?}: use host or private"),
    };
    for kv in &a.annotation {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow::anyhow!("invalid annotation {kv:?}: expected KEY=VALUE"))?;
        o.annotations.insert(k.to_string(), v.to_string());
    }
    registry_cmds::check_platform(a.platform.as_deref())?;
    for s in &a.attach {
        if !matches!(
            s.to_ascii_lowercase().as_str(),
            "stdin" | "stdout" | "stderr"
        ) {
            bail!("invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
        }
    }
    if a.detach && !a.attach.is_empty() {
        bail!("Conflicting options: -a and -d");
    }
    let unsupported = [
        ("--cpu-count", a.cpu_count.is_some(), "Windows only"),
        ("--cpu-percent", a.cpu_percent.is_some(), "Windows only"),
        (
            "--io-maxbandwidth",
            a.io_maxbandwidth.is_some(),
            "Windows only",
        ),
        ("--io-maxiops", a.io_maxiops.is_some(), "Windows only"),
        (
            "--isolation",
            a.isolation.as_deref().is_some_and(|i| i != "default"),
            "Windows only",
        ),
        ("--gpus", a.gpus.is_some(), "no GPU support"),
        (
            "--storage-opt",
            !a.storage_opt.is_empty(),
            "overlay has no per-container size quota here",
        ),
        (
            "--use-api-socket",
            a.use_api_socket,
            "a Docker Desktop feature",
        ),
        (
            "--link-local-ip",
            !a.link_local_ip.is_empty(),
            "no link-local addresses",
        ),
        ("--ip6", a.ip6.is_some(), "no IPv6 networks yet"),
        (
            "--volume-driver",
            a.volume_driver.as_deref().is_some_and(|d| d != "local"),
            "only the local volume driver exists",
        ),
    ];
    if let Some((flag, _, why)) = unsupported.iter().find(|(_, given, _)| *given) {
        bail!("{flag} is not supported by Berth ({why})");
    }
    if a.kernel_memory.is_some() {
        eprintln!(
            "WARNING: Specifying a kernel memory limit is deprecated and ignored (as docker does)"
        );
    }
    if let Some(r) = &a.runtime {
        if !matches!(r.as_str(), "berth" | "runc" | "io.containerd.runc.v2") {
            bail!("unknown or invalid runtime name: {r}");
        }
    }
    if !a.disable_content_trust {
        bail!("content trust is not supported: it needs Docker Hub's notary service");
    }
    let r = resource_request(&a.res)?;
    o.resources = Resources {
        memory: r.memory,
        memory_swap: r.memory_swap,
        nano_cpus: r.nano_cpus,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset_cpus,
        cpuset_mems: r.cpuset_mems,
        pids_limit: r.pids_limit,
        memory_reservation: r.memory_reservation,
        oom_kill_disable: a.oom_kill_disable,
        memory_swappiness: a.memory_swappiness,
        cpu_rt_runtime: r.cpu_rt_runtime,
        cpu_rt_period: r.cpu_rt_period,
        blkio_weight: r.blkio_weight,
        blkio_weight_device: rates("--blkio-weight-device", &a.blkio_weight_device, false)?,
        device_read_bps: rates("--device-read-bps", &a.device_read_bps, true)?,
        device_write_bps: rates("--device-write-bps", &a.device_write_bps, true)?,
        device_read_iops: rates("--device-read-iops", &a.device_read_iops, false)?,
        device_write_iops: rates("--device-write-iops", &a.device_write_iops, false)?,
    };
    if o.resources.nano_cpus.is_some() && (a.res.cpu_period.is_some() || a.res.cpu_quota.is_some())
    {
        eprintln!("WARNING: --cpu-period/--cpu-quota given: --cpus is ignored");
    }
    Ok(o)
}

/// `--cidfile`: made before the container (docker refuses a file that
/// exists), given its id once it exists, removed if it never does.
struct CidFile(Option<(std::path::PathBuf, std::fs::File)>);

impl CidFile {
    fn create(path: Option<&std::path::Path>) -> Result<CidFile> {
        let Some(path) = path else {
            return Ok(CidFile(None));
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                    "Container ID file found, make sure the other container isn't running or delete {}",
                    path.display()
                ),
                _ => anyhow::anyhow!("failed to create the container ID file {}: {e}", path.display()),
            })?;
        Ok(CidFile(Some((path.to_path_buf(), file))))
    }

    fn write(&mut self, id: &str) -> Result<()> {
        if let Some((path, file)) = &mut self.0 {
            use std::io::Write;
            file.write_all(id.as_bytes())
                .with_context(|| format!("write the container ID file {}", path.display()))?;
        }
        Ok(())
    }

    fn abandon(self) {
        if let Some((path, _)) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn run(g: &Global, a: RunArgs) -> i32 {
    match run_inner(g, a) {
        Ok(code) => code,
        Err((code, e)) => {
            report(&e);
            code
        }
    }
}

type RunResult = std::result::Result<i32, (i32, anyhow::Error)>;

fn fail(e: impl Into<anyhow::Error>) -> (i32, anyhow::Error) {
    (RUN_FAILED, e.into())
}

fn run_inner(g: &Global, a: RunArgs) -> RunResult {
    if a.tty && a.interactive && !a.detach && !std::io::stdin().is_terminal() {
        return Err((1, anyhow::anyhow!("the input device is not a TTY")));
    }
    let opts = container_options(&a).map_err(fail)?;
    let engine = engine(g).map_err(fail)?;
    // A missing image is pulled first (^C still stops berth here).
    registry_cmds::ensure_image(&engine, &opts.image, &a.pull, a.quiet).map_err(fail)?;
    // Block the forwarded signals before the container exists, so that none
    // sent in between is lost.
    let mut sigfd = attach::block_signals().map_err(fail)?;
    engine.reap_orphans();
    let mut cidfile = CidFile::create(a.cidfile.as_deref()).map_err(fail)?;
    let rec = match engine.create(opts) {
        Ok(rec) => rec,
        Err(e) => {
            cidfile.abandon();
            return Err(fail(e));
        }
    };
    cidfile.write(&rec.id).map_err(fail)?;
    let remove = |engine: &Engine| {
        if a.rm {
            if let Err(e) = engine.remove(&rec.id, true, true) {
                report(&anyhow::Error::from(e).context("remove container"));
            }
        }
    };
    if a.detach {
        return match engine.start_monitored(&rec.id, None, None) {
            Ok(_) => {
                println!("{}", rec.id);
                Ok(0)
            }
            Err(e) => {
                remove(&engine);
                Err((berth_engine::exit_code_for(&e), e.into()))
            }
        };
    }
    // `-a STREAM`: only the streams named are attached.
    let named = |s: &str| a.attach.is_empty() || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let started = cc::start_attached(
        &engine,
        &rec.id,
        a.interactive && named("stdin"),
        a.sig_proxy,
        a.detach_keys.as_deref(),
        &mut sigfd,
        [named("stdout"), named("stderr")],
    );
    if started.is_err()
        && engine
            .container(&rec.id)
            .is_ok_and(|r| !r.state.status.is_active())
    {
        remove(&engine);
    }
    started
}

fn exec(g: &Global, a: crate::cli::ExecArgs) -> i32 {
    let run = || -> RunResult {
        let engine = engine(g).map_err(|e| (1, e))?;
        let env = read_env_files(&a.env_file).map_err(|e| (1, e))?;
        let env = caller_env(env.into_iter().chain(a.env.iter().cloned()));
        cc::exec(&engine, &a, env)
    };
    match run() {
        Ok(code) => code,
        Err((code, e)) => {
            report(&e);
            code
        }
    }
}

fn create(g: &Global, a: RunArgs) -> Result<i32> {
    let opts = container_options(&a)?;
    let engine = engine(g)?;
    registry_cmds::ensure_image(&engine, &opts.image, &a.pull, a.quiet)?;
    let mut cidfile = CidFile::create(a.cidfile.as_deref())?;
    let rec = match engine.create(opts) {
        Ok(rec) => rec,
        Err(e) => {
            cidfile.abandon();
            return Err(e.into());
        }
    };
    cidfile.write(&rec.id)?;
    println!("{}", rec.id);
    Ok(0)
}

/// Column titles for `--format 'table ...'`, docker's names.
fn ps_header(field: &str) -> &str {
    match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "Ports" => "PORTS",
        "State" => "STATE",
        "Status" => "STATUS",
        "Size" => "SIZE",
        "Names" => "NAMES",
        "Labels" => "LABELS",
        "Mounts" => "MOUNTS",
        "Networks" => "NETWORKS",
        "LocalVolumes" => "LOCAL VOLUMES",
        other => other,
    }
}

fn ps(g: &Global, a: PsArgs) -> Result<i32> {
    let engine = engine(g)?;
    engine.reap_orphans();
    let filter = berth_engine::filters::ContainerFilter::from_words(&a.filter)?;
    let all = a.all || a.latest || a.last >= 0 || filter.has("status") || filter.has("exited");
    let mut list: Vec<_> = engine
        .containers()?
        .into_iter()
        .filter(|c| all || c.state.status.is_active())
        .filter(|c| filter.matches(&engine, c))
        .collect();
    let limit = if a.latest { 1 } else { a.last };
    if limit >= 0 {
        list.truncate(limit as usize);
    }
    let (table_mode, template) = format::split_table(a.format.as_deref());
    let mut rows: Vec<Vec<String>> = Vec::new();
    let fmt = template.as_deref().map(Format::parse).transpose()?;
    if let (Some(t), true, false) = (&template, table_mode, a.quiet) {
        rows.push(format::header_row(t, ps_header));
    } else if fmt.is_none() && !a.quiet {
        let mut h = vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ];
        if a.size {
            h.push("SIZE");
        }
        rows.push(h.into_iter().map(String::from).collect());
    }
    for c in &list {
        let id = if a.no_trunc {
            c.id.clone()
        } else {
            c.id[..12].to_string()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let mut cmd = c.args.join(" ");
        if !a.no_trunc && cmd.chars().count() > 20 {
            cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
        }
        let command = format!("\"{cmd}\"");
        // docker's SIZE: the writable layer, and with the image under it.
        let size = || {
            let rw = engine.container_size(&c.id);
            let image = engine
                .images()
                .resolve(&c.image_id)
                .map(|i| engine.images().size(&i))
                .unwrap_or(0);
            format!(
                "{} (virtual {})",
                format::human_size(rw),
                format::human_size(rw + image)
            )
        };
        let ports = ports_column(&engine, c);
        match &fmt {
            Some(f) => {
                let created = docker_time(&c.created);
                let data = serde_json::json!({
                    "ID": id,
                    "Image": c.image,
                    "Command": command,
                    "CreatedAt": created,
                    "RunningFor": format::ago(&c.created),
                    "Ports": ports,
                    "State": c.state.status.as_str(),
                    "Status": c.status_text(),
                    "Size": if a.size { size() } else { String::new() },
                    "Names": c.name,
                    "Labels": c
                        .options
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    "Mounts": c
                        .mounts
                        .iter()
                        .map(|m| m.name.clone().unwrap_or_else(|| m.source.display().to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                    "LocalVolumes": c.mounts.iter().filter(|m| m.name.is_some()).count().to_string(),
                    "Networks": networks_column(c),
                });
                let line = f.render(&data)?;
                if table_mode {
                    rows.push(line.split('\t').map(String::from).collect());
                } else {
                    println!("{line}");
                }
            }
            None => {
                let mut row = vec![
                    id,
                    c.image.clone(),
                    command,
                    format::ago(&c.created),
                    c.status_text(),
                    ports,
                    c.name.clone(),
                ];
                if a.size {
                    row.push(size());
                }
                rows.push(row);
            }
        }
    }
    if !rows.is_empty() {
        format::table(&rows)?;
    }
    Ok(0)
}

/// `0.0.0.0:4000->80/tcp, 443/tcp` (ps's PORTS): published ports, then
/// those a running container exposes without publishing.
fn ports_column(engine: &berth_engine::Engine, c: &berth_engine::ContainerRecord) -> String {
    let mut out: Vec<String> = c
        .state
        .ports
        .iter()
        .map(|p| format!("{}->{}/{}", p.host(), p.container_port, p.proto.as_str()))
        .collect();
    if c.state.status.is_active() {
        for e in engine.exposed_ports(c) {
            let published = c
                .state
                .ports
                .iter()
                .any(|p| format!("{}/{}", p.container_port, p.proto.as_str()) == e);
            if !published {
                out.push(e);
            }
        }
    }
    out.join(", ")
}

/// ps's NETWORKS: the networks a container is on, as its mode names them.
fn networks_column(c: &berth_engine::ContainerRecord) -> String {
    use berth_engine::NetworkMode;
    let mut nets: Vec<String> = match &c.options.network {
        NetworkMode::Bridge => vec!["bridge".into()],
        NetworkMode::Named(n) => vec![n.clone()],
        NetworkMode::Host => vec!["host".into()],
        NetworkMode::None => vec!["none".into()],
        NetworkMode::Container(_) => Vec::new(),
    };
    for n in &c.options.extra_networks {
        if !nets.contains(n) {
            nets.push(n.clone());
        }
    }
    nets.join(",")
}

fn rm(g: &Global, a: RmArgs) -> Result<i32> {
    let engine = engine(g)?;
    let mut code = 0;
    for key in &a.containers {
        let done = if a.link {
            engine.remove_link(key)
        } else {
            engine.remove(key, a.force, a.volumes)
        };
        match done {
            Ok(()) => println!("{key}"),
            // `rm -f` of what is not there is done (docker says so, and
            // exits 0, so cleanup scripts under `set -e` go on).
            Err(e) if a.force && e.kind() == berth_engine::ErrorKind::NotFound => {
                report(&e.into());
            }
            Err(e) => {
                report(&e.into());
                code = 1;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn reference_patterns_match_as_docker_s() {
        assert!(glob("busybox", "busybox"));
        assert!(glob("my*/app:*", "myrepo/app:1"));
        assert!(glob("*", "busybox"));
        assert!(!glob("*", "myrepo/app"), "* stays within a path segment");
        assert!(glob("*/*", "myrepo/app"));
        assert!(glob("app:?", "app:1") && !glob("app:?", "app:10"));
        assert!(!glob("busy", "busybox"));
    }
}

#[cfg(test)]
mod error_text_tests {
    use super::*;

    /// An error that prints its source after its own text, as many do.
    #[derive(Debug)]
    struct Open {
        path: String,
        source: std::io::Error,
    }

    impl std::fmt::Display for Open {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "open {}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for Open {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::from(Open {
            path: "/x".into(),
            source: io,
        })
        .context("load /x");
        assert_eq!(
            error_text(&e),
            "load /x: open /x: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn causes_that_differ_are_kept() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&e), "outer: inner");
    }

    #[test]
    fn control_characters_are_escaped() {
        let e = anyhow::anyhow!("bad name o\u{1b}[31m\u{7}w\r").context("reading archive");
        assert_eq!(
            error_text(&e),
            "reading archive: bad name o\\u{1b}[31m\\u{7}w\\r"
        );
    }
}
