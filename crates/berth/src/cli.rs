//! The command line's shape: docker's syntax and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A container engine",
    disable_help_subcommand = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Persistent state directory
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: PathBuf,
    /// Runtime state directory
    #[arg(
        long,
        global = true,
        env = "BERTH_RUNROOT",
        default_value = "/run/berth"
    )]
    pub runroot: PathBuf,
    /// Parent cgroup of every container
    #[arg(
        long,
        global = true,
        env = "BERTH_CGROUP_PARENT",
        default_value = "berth"
    )]
    pub cgroup_parent: String,
    /// Enable debug output
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    /// The default network's bridge interface
    #[arg(long, global = true, env = "BERTH_BRIDGE", default_value = "berth0")]
    pub bridge: String,
    /// Logging level (debug, info, warn, error)
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// Location of client config files (registry credentials; default ~/.docker)
    #[arg(long = "config", global = true, env = "DOCKER_CONFIG")]
    pub client_config: Option<PathBuf>,
    /// A registry to reach over plain http (localhost always is)
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "BERTH_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// User namespace of containers run without --userns: host, or auto
    /// (also "default") for a range of /etc/subuid's "berth" ids each
    #[arg(long, global = true, env = "BERTH_USERNS_REMAP", default_value = "")]
    pub userns_remap: String,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Return low-level information on containers or images
    Inspect(InspectArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Manage Berth
    #[command(subcommand)]
    System(SystemCommand),
    /// List containers
    Ps(PsArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Run a registry
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Search a registry's catalog for images
    Search(SearchArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Serve the Docker Engine API on a unix socket
    Daemon(DaemonArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Generate the shell completion script (bash, zsh or fish)
    Completion(CompletionArgs),
    /// Show the Berth version information
    Version(VersionArgs),
    /// Write a man page for every command into DIR
    #[command(hide = true)]
    ManPages(ManPagesArgs),
    /// Display system-wide information
    Info(FormatArgs),
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Address to listen on, repeatable (unix:///PATH, or tcp://HOST:PORT with --tlsverify; default unix://RUNROOT/berth.sock)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Group that may use the socket besides root
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Use TLS; implied by --tlsverify (tcp:// is served only with --tlsverify)
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the client: tcp:// needs it
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust only clients with certificates signed by this CA
    #[arg(long, value_name = "PATH")]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Path to the daemon's TLS certificate file
    #[arg(long, value_name = "PATH")]
    pub tlscert: Option<std::path::PathBuf>,
    /// Path to the daemon's TLS key file
    #[arg(long, value_name = "PATH")]
    pub tlskey: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Format output using a Go template, or "json"
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct ManPagesArgs {
    /// Directory to write berth.1, berth-run.1, ... into
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a Go template, or "json"
    #[arg(short, long)]
    pub format: Option<String>,
    /// Kubernetes config file (deprecated in docker; there is no orchestrator to ask)
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable (only the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Skip image verification (the only mode)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image signing (the only mode)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Filter output based on conditions provided (stars=N, is-official=BOOL, is-automated=BOOL)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// HOST[:PORT]/TERM: the registry whose catalog is searched, and the text to find
    pub term: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry (default Docker Hub)
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (default Docker Hub)
    pub server: Option<String>,
}

#[derive(Subcommand, Debug)]
// Not deferred: `serve --root` shadows the global `--root`, and clap checks
// the shadowing only when the subcommand's own arguments exist before the
// global ones propagate.
pub enum RegistryCommand {
    /// Serve the distribution API (v2) from a directory
    Serve(RegistryServeArgs),
    /// Remove the blobs no manifest of a registry directory uses
    GarbageCollect(RegistryGcArgs),
}

#[derive(Args, Debug)]
pub struct RegistryGcArgs {
    /// Directory holding the registry's content
    #[arg(long, default_value = "/var/lib/berth-registry")]
    pub root: PathBuf,
    /// Show what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove manifests that no tag reaches
    #[arg(long)]
    pub delete_untagged: bool,
    /// Keep blobs written or used more recently than this (a push in progress)
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub grace: std::time::Duration,
}

/// `90s`, `24h`, `1h30m`, `500ms`, `2d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 90s, 30m, 24h, 1h30m)");
    let mut total = std::time::Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ms" => {
                total += std::time::Duration::from_millis(n);
                rest = &rest[unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        total += std::time::Duration::from_secs(n.checked_mul(secs).ok_or_else(bad)?);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[derive(Args, Debug)]
pub struct RegistryServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: std::net::SocketAddr,
    /// Directory holding the registry's content
    #[arg(long, default_value = "/var/lib/berth-registry")]
    pub root: PathBuf,
    /// htpasswd file (bcrypt): require basic auth
    #[arg(long)]
    pub htpasswd: Option<PathBuf>,
    /// With --htpasswd: issue bearer tokens at /token instead of taking basic auth
    #[arg(long, requires = "htpasswd")]
    pub token_auth: bool,
    /// PEM certificate chain: serve https
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Remove an upload nobody has written to for this long (e.g. 24h, 90s)
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub upload_expiry: std::time::Duration,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuilderCommand {
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h", "label=k=v")
    #[arg(long)]
    pub filter: Vec<String>,
    /// Amount of disk space to keep for cache (e.g. 512m; the newest is kept)
    #[arg(long)]
    pub keep_storage: Option<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short, long)]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Set metadata for an image
    #[arg(long)]
    pub label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Remove intermediate containers after a successful build (always done)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers (always done)
    #[arg(long)]
    pub force_rm: bool,
    /// Set platform if server is multi-platform capable (only linux/amd64)
    #[arg(long)]
    pub platform: Option<String>,
    /// RUN steps' resource limits, as `run` takes them
    #[command(flatten)]
    pub res: BuildResourceArgs,
    /// Size of /dev/shm for RUN steps
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Ulimit options for RUN steps
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip) for RUN steps
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Security options for RUN steps (seccomp=unconfined|PROFILE.json, no-new-privileges)
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Compress the build context using gzip (accepted: the context is read in place)
    #[arg(long)]
    pub compress: bool,
    /// Container isolation technology (default only)
    #[arg(long)]
    pub isolation: Option<String>,
    /// Images to consider as cache sources (refused: only local build steps are cache)
    #[arg(long)]
    pub cache_from: Vec<String>,
    /// Squash newly built layers into a single new layer (refused: experimental in docker)
    #[arg(long)]
    pub squash: bool,
    /// Skip image verification (the only mode)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// Build context: a directory, or "-" to read a Dockerfile (or a tar context) from stdin
    pub context: String,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network
    Create(Box<NetworkCreateArgs>),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks
    Prune(FilterPruneArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Option<String>,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long)]
    pub ip_range: Option<String>,
    /// Auxiliary IPv4 addresses used by Network driver (NAME=IP)
    #[arg(long)]
    pub aux_address: Vec<String>,
    /// Set driver specific options (com.docker.network.bridge.name=NAME)
    #[arg(short, long)]
    pub opt: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment (bridge networks always allow it)
    #[arg(long)]
    pub attachable: bool,
    /// IP Address Management Driver (default only)
    #[arg(long, default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options (refused: the default driver has none)
    #[arg(long)]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv6 networking (refused: no IPv6 networks yet)
    #[arg(long)]
    pub ipv6: bool,
    /// Control the network's scope (local only)
    #[arg(long)]
    pub scope: Option<String>,
    /// Create swarm routing-mesh network (refused: no swarm)
    #[arg(long)]
    pub ingress: bool,
    /// Create a configuration only network (refused: no swarm)
    #[arg(long)]
    pub config_only: bool,
    /// The network from which to copy the configuration (refused: no swarm)
    #[arg(long)]
    pub config_from: Option<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct NetworkInspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics (swarm's services and tasks: local networks have none)
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104), on a user network
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Add link to another container (NAME[:ALIAS])
    #[arg(long)]
    pub link: Vec<String>,
    /// IPv6 address (refused: no IPv6 networks yet)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add a link-local address for the container (refused)
    #[arg(long)]
    pub link_local_ip: Vec<String>,
    /// Driver options for the network (refused: the bridge driver takes none per endpoint)
    #[arg(long)]
    pub driver_opt: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options (type, device, o)
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (dangling=, name=, label=, driver=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeInspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Do not fail when a volume does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (label=, label!=)
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Remove all stopped containers
    Prune(FilterPruneArgs),
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Display the running processes of a container
    Top(TopArgs),
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (accepted: ownership is kept as root's)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH (accepted; links are copied as links)
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH or a local path
    pub src: String,
    /// CONTAINER:DEST_PATH or a local path
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// The container, then the command and its arguments
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    pub args: Vec<String>,
}

/// `container prune` and `network prune`.
#[derive(Args, Debug)]
pub struct FilterPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v", "label!=k")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short, long, allow_negative_numbers = true)]
    pub timeout: Option<i64>,
    /// Seconds to wait before killing the container (deprecated: use --timeout)
    #[arg(long, allow_negative_numbers = true, conflicts_with = "timeout")]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs (accepted; there are none)
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell: bash, zsh or fish
    pub shell: clap_complete::Shell,
    /// Disable completion descriptions
    #[arg(long)]
    pub no_descriptions: bool,
}

// The cgroup limits `build` gives RUN steps (docker's build flags). A plain
// comment: a doc comment on a flattened struct becomes its command's about.
#[derive(Args, Debug)]
pub struct BuildResourceArgs {
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
}

// The resource limits `run`, `create` and `update` take alike. A plain
// comment: a doc comment on a flattened struct becomes its command's about.
#[derive(Args, Debug)]
pub struct ResourceArgs {
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// Block IO (relative weight), between 10 and 1000
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub res: ResourceArgs,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Kernel memory limit (deprecated, ignored as docker ignores it)
    #[arg(long)]
    pub kernel_memory: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove one or more images
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Archive format: docker (docker-archive, also an OCI layout) or oci
    #[arg(long, default_value = "docker")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<std::path::PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Check the store for damage and leftovers, and repair them
    Check(SystemCheckArgs),
}

#[derive(Args, Debug)]
pub struct SystemCheckArgs {
    /// Remove what is damaged or orphaned
    #[arg(short, long)]
    pub repair: bool,
    /// Skip checks that read every blob in whole (their digests)
    #[arg(short, long)]
    pub quick: bool,
    /// With --repair, also remove damaged images containers use, and those containers
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ContainerArg {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit (accepted; containers are read as they are)
    #[arg(short, long, default_value_t = true)]
    pub pause: bool,
    pub container: String,
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
    /// Show history for the given platform (this host's only)
    #[arg(long)]
    pub platform: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of this type (container, image)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents (the layers stay until a prune)
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v", "label!=k")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>", "until=24h")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Tarball (plain, gzip or zstd), or - for standard input
    pub file: String,
    /// Repository and tag for the image
    pub reference: Option<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, USER)
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set platform if server is multi-platform capable (only the host's)
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
    /// Repository to list
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub res: ResourceArgs,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Connect a container to a network (bridge, host, none, container:NAME, or a user network)
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// Add link to another container (NAME[:ALIAS])
    #[arg(long)]
    pub link: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Disable OOM Killer
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, allow_negative_numbers = true)]
    pub oom_score_adj: Option<i32>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Add additional groups to join
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// Set meta data on a container
    #[arg(short = 'l', long)]
    pub label: Vec<String>,
    /// Security Options (seccomp=unconfined|PROFILE.json, no-new-privileges, apparmor=..., label=...)
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Command to run to check health
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Read in a line delimited file of labels
    #[arg(long)]
    pub label_file: Vec<PathBuf>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long)]
    pub device_cgroup_rule: Vec<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long)]
    pub memory_swappiness: Option<u64>,
    /// Block IO weight (relative device weight)
    #[arg(long)]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long)]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long)]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long)]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long)]
    pub device_write_iops: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// Runtime to use for this container (berth's own; "runc" names it too)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// CPU count (Windows only: refused)
    #[arg(long)]
    pub cpu_count: Option<String>,
    /// CPU percent (Windows only: refused)
    #[arg(long)]
    pub cpu_percent: Option<String>,
    /// Maximum IO bandwidth limit for the system drive (Windows only: refused)
    #[arg(long)]
    pub io_maxbandwidth: Option<String>,
    /// Maximum IOps limit for the system drive (Windows only: refused)
    #[arg(long)]
    pub io_maxiops: Option<String>,
    /// Container isolation technology (default only)
    #[arg(long)]
    pub isolation: Option<String>,
    /// GPU devices to add to the container (refused: no GPU support)
    #[arg(long)]
    pub gpus: Option<String>,
    /// Storage driver options for the container (refused)
    #[arg(long)]
    pub storage_opt: Vec<String>,
    /// Bind mount the Docker API socket (refused: Docker Desktop only)
    #[arg(long)]
    pub use_api_socket: bool,
    /// Container IPv4/IPv6 link-local addresses (refused)
    #[arg(long)]
    pub link_local_ip: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104), on a user network
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long)]
    pub mac_address: Option<String>,
    /// IPv6 address (refused: no IPv6 networks yet)
    #[arg(long)]
    pub ip6: Option<String>,
    /// User namespace to use: host, or auto[:size=N] for a range of its own
    #[arg(long)]
    pub userns: Option<String>,
    /// Optional volume driver for the container (local)
    #[arg(long)]
    pub volume_driver: Option<String>,
    /// Kernel memory limit (deprecated, ignored as docker ignores it)
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// Skip image verification (the only mode: content trust needs Docker Hub's notary)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Logging driver for the container (json-file, local, none)
    #[arg(long, default_value = "json-file")]
    pub log_driver: String,
    /// Log driver options (max-size, max-file)
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// The image, then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, id=, exited=, ancestor=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link (/CONTAINER/ALIAS), not a container
    #[arg(short, long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "h", "10", "5x", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    /// Subcommands are built only when named (deferred), so clap's checks
    /// of a subcommand's arguments against the global ones run only then:
    /// build every command the way a line naming it would.
    #[test]
    fn every_subcommand_builds_beside_the_globals() {
        use clap::{CommandFactory, FromArgMatches};
        fn walk(cmd: &mut clap::Command, path: &mut Vec<String>, seen: &mut usize) {
            cmd.build();
            *seen += 1;
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|s| s.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            for name in names {
                path.push(name.clone());
                if let Some(sub) = cmd.find_subcommand_mut(&name) {
                    walk(sub, path, seen);
                }
                path.pop();
            }
        }
        let mut seen = 0;
        walk(&mut super::Cli::command(), &mut Vec::new(), &mut seen);
        assert!(seen > 50, "{seen} commands");
        // A subcommand's own --root beside the global one.
        for line in [
            "berth --root /a registry serve --root /b",
            "berth registry garbage-collect --root /b --dry-run",
        ] {
            let m = super::Cli::command()
                .try_get_matches_from(line.split(' '))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            super::Cli::from_arg_matches(&m).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}
