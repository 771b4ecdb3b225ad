//! Runs a parsed Dockerfile: one image per step, each the child of the one
//! before and found again by its cache key (parent image + the instruction as
//! expanded + the content of what it copies).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::image::{Digest, Image, Reference};
use berth_engine::registry::client::Credentials;
use berth_engine::{ContainerOptions, Engine, NetworkMode, Stream};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::changes::{self, quoted_list};
use crate::config::ImageConfig;
use crate::context::{self, Context, Source};
use crate::copy::{copy_into, CopyPlan};
use crate::error::{BuildError, Result};
use crate::instructions::{Command, CopySpec, Healthcheck, Instruction, Stage, Step};
use crate::parser::Heredoc;
use crate::shell;

/// What `berth build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The context directory; `None` for `build -` (no context).
    pub context: Option<PathBuf>,
    /// `-t` (normalised by the caller).
    pub tags: Vec<Reference>,
    /// `--build-arg NAME=VALUE`.
    pub build_args: Vec<(String, String)>,
    /// `--target`
    pub target: Option<String>,
    /// `--no-cache`
    pub no_cache: bool,
    /// `--label`
    pub labels: Vec<(String, String)>,
    /// `--network` for RUN steps (default: the default network).
    pub network: Option<String>,
    /// `-q`: no progress, no RUN output.
    pub quiet: bool,
    /// `--pull`: pull every base image, not only missing ones.
    pub pull: bool,
    /// What RUN steps' containers get: `--memory`, `--cpu-shares`,
    /// `--cpuset-cpus`, ... (the cgroup limits), `--shm-size`, `--ulimit`,
    /// `--add-host`, `--security-opt`. They do not change cache keys, as
    /// docker's do not.
    pub step: StepOptions,
    /// Set by the caller to stop the build (an API client that went away):
    /// the running step's container is killed and removed, and no further
    /// step starts.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Credentials for base images' registries, by registry (docker's
    /// `X-Registry-Config`: `127.0.0.1:5000`, `https://index.docker.io/v1/`);
    /// a registry not named here uses the stored ones.
    pub registry_auth: Vec<(String, Credentials)>,
}

/// The credentials `auth` gives for the registry `domain` (docker's keys may
/// carry a scheme and a path: `https://index.docker.io/v1/`).
pub fn credentials_for(auth: &[(String, Credentials)], domain: &str) -> Option<Credentials> {
    let host = |key: &str| {
        let k = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        k.split('/').next().unwrap_or(k).to_string()
    };
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    auth.iter()
        .find(|(k, _)| {
            let h = host(k);
            h == domain || (hub(&h) && hub(domain))
        })
        .map(|(_, c)| c.clone())
}

/// The run-time settings of RUN steps' containers.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    pub resources: berth_engine::Resources,
    pub shm_size: Option<i64>,
    pub ulimits: Vec<berth_engine::Ulimit>,
    pub add_hosts: Vec<String>,
    pub security_opt: Vec<String>,
}

/// Docker's `created_by` prefix for steps that only change the config.
const NOP: &str = "/bin/sh -c #(nop) ";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The version of what a cache key covers. Raise it when steps made before a
/// change can hold the wrong content: every older step image then misses and
/// is rebuilt (`builder prune` removes them). Version 2: a COPY from a
/// relative context could copy the layer store instead of the context.
const CACHE_KEY_VERSION: &str = "berth-build-cache/2";

fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(CACHE_KEY_VERSION.as_bytes());
    h.update([0]);
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Parses a Go duration (`30s`, `1m30s`, `500ms`) into nanoseconds.
fn nanos(d: &std::time::Duration) -> Value {
    json!(d.as_nanos() as u64)
}

fn healthcheck_value(h: &Option<Healthcheck>, shell: &[String]) -> Value {
    let Some(h) = h else {
        return json!({"Test": ["NONE"]});
    };
    let test: Vec<String> = match &h.test {
        Command::Exec(v) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
        Command::Shell(s) => {
            let _ = shell;
            vec!["CMD-SHELL".to_string(), s.clone()]
        }
    };
    let mut v = json!({ "Test": test });
    for (k, d) in [
        ("Interval", &h.interval),
        ("Timeout", &h.timeout),
        ("StartPeriod", &h.start_period),
        ("StartInterval", &h.start_interval),
    ] {
        if let Some(d) = d {
            v[k] = nanos(d);
        }
    }
    if let Some(r) = h.retries {
        v["Retries"] = json!(r);
    }
    v
}

/// The script of a shell-form RUN with heredocs: a command that is only a
/// heredoc runs the heredoc; otherwise the shell reads the heredocs itself.
fn run_script(line: &str, heredocs: &[Heredoc]) -> String {
    if heredocs.is_empty() {
        return line.to_string();
    }
    let bare = line.trim().trim_start_matches("<<").trim_start_matches('-');
    let bare = bare.trim_matches(|c| c == '"' || c == '\'');
    if heredocs.len() == 1 && bare == heredocs[0].name {
        return heredocs[0].content.clone();
    }
    let mut s = line.to_string();
    for h in heredocs {
        s.push('\n');
        s.push_str(&h.content);
        s.push_str(&h.name);
    }
    s
}

/// The stages a target needs, by index, in Dockerfile order.
fn needed_stages(stages: &[Stage], target: usize, meta: &[(String, String)]) -> Vec<usize> {
    let index_of = |name: &str, before: usize| -> Option<usize> {
        let expanded = shell::expand_word(name, meta, '\\').unwrap_or_else(|_| name.to_string());
        let n = expanded.to_lowercase();
        stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(n.as_str()))
            .or_else(|| n.parse::<usize>().ok().filter(|i| *i < before))
    };
    let mut need = HashSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let s = &stages[i];
        if let Some(d) = index_of(&s.base, i) {
            todo.push(d);
        }
        for step in &s.steps {
            if let Instruction::Copy(CopySpec { from: Some(f), .. }) = &step.instruction {
                if let Some(d) = index_of(f, i) {
                    todo.push(d);
                }
            }
        }
    }
    let mut v: Vec<usize> = need.into_iter().collect();
    v.sort();
    v
}

/// A stage being built.
struct StageState {
    image: Image,
    config: ImageConfig,
    /// ARGs declared in this stage, with their values (if any).
    args: Vec<(String, Option<String>)>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl StageState {
    /// Variables instructions expand: ARGs, then ENV (which wins).
    fn vars(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        v.extend(self.config.env_pairs());
        v
    }

    /// ARG values a RUN sees that ENV does not override.
    fn run_args(&self) -> Vec<(String, String)> {
        let env = self.config.env_pairs();
        let mut v: Vec<(String, String)> = self
            .args
            .iter()
            .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        v.sort();
        v
    }
}

/// What a step does once its cache key is known.
enum Action {
    /// A new config, no layer.
    Config(ImageConfig),
    Run {
        argv: Vec<String>,
        env: Vec<String>,
        network: Option<String>,
    },
    Copy {
        plans: Vec<PlanSpec>,
        from: Option<Box<Image>>,
    },
}

/// A copy to make inside the step's container; sources from an image are
/// resolved there (its filesystem is only mounted in that child).
struct PlanSpec {
    sources: Vec<Source>,
    from_patterns: Vec<String>,
    dest: PathBuf,
    dest_is_dir: bool,
    chown: Option<String>,
    default_owner: Option<(u32, u32)>,
    mode: Option<u32>,
    /// Apply the context's .dockerignore.
    context_filter: bool,
}

pub struct Builder<'a> {
    engine: &'a Engine,
    opts: &'a BuildOptions,
    out: &'a mut dyn Write,
    context: Option<Context>,
    /// Results of built stages, by index.
    results: BTreeMap<usize, Image>,
    step_no: usize,
    total: usize,
    used_args: HashSet<String>,
    /// Scratch directories (unpacked archives, heredoc files), removed at the end.
    scratch: Vec<tempfile::TempDir>,
    escape: char,
    /// Stage names (lower-cased) and their indexes.
    stage_names: Vec<(String, usize)>,
}

/// Builds the image `opts` describe, writing progress to `out`.
pub fn build(engine: &Engine, opts: &BuildOptions, out: &mut dyn Write) -> Result<Image> {
    let df = crate::instructions::parse_dockerfile(&opts.dockerfile)?;
    let context = match &opts.context {
        Some(dir) => Some(Context::open(dir).map_err(BuildError::Invalid)?),
        None => None,
    };
    // Meta ARGs (before the first FROM): defaults, then --build-arg.
    let mut used_args = HashSet::new();
    let meta: Vec<(String, String)> = df
        .meta_args
        .iter()
        .filter_map(|(k, d)| {
            let v = opts
                .build_args
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| d.clone());
            if opts.build_args.iter().any(|(n, _)| n == k) {
                used_args.insert(k.clone());
            }
            v.map(|v| (k.clone(), v))
        })
        .collect();
    let target = match &opts.target {
        Some(t) => df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
            .ok_or_else(|| {
                BuildError::Invalid(format!("target stage \"{t}\" could not be found"))
            })?,
        None => df.stages.len().saturating_sub(1),
    };
    let order = needed_stages(&df.stages, target, &meta);
    let total = order.iter().map(|i| df.stages[*i].steps.len() + 1).sum();
    // Layers written here stay safe from a concurrent prune until an image
    // references them.
    let _guard = engine.images().write_guard()?;
    let mut b = Builder {
        engine,
        opts,
        out,
        context,
        results: BTreeMap::new(),
        step_no: 0,
        total,
        used_args,
        scratch: Vec::new(),
        escape: df.escape,
        stage_names: df
            .stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.name.clone().map(|n| (n, i)))
            .collect(),
    };
    let mut last = None;
    for i in order {
        let img = b.stage(&df.stages, i, &meta)?;
        b.results.insert(i, img.clone());
        last = Some(img);
    }
    let Some(mut image) = last else {
        return Err(BuildError::Invalid(
            "no build stage in current context".into(),
        ));
    };
    if !opts.labels.is_empty() {
        image = b.labels(image)?;
    }
    engine.images().finish_build(&image.id, &opts.tags)?;
    engine.emit_tags(&image.id, &opts.tags);
    let unused: Vec<&str> = opts
        .build_args
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !b.used_args.contains(*k))
        .collect();
    if !unused.is_empty() && !opts.quiet {
        b.say(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        ))?;
    }
    if !opts.quiet {
        b.say(&format!("Successfully built {}", image.id.short()))?;
        for t in &opts.tags {
            b.say(&format!("Successfully tagged {}", t.familiar()))?;
        }
    }
    Ok(engine.images().resolve(&image.id.to_string())?)
}

impl Builder<'_> {
    /// A FROM image: local, or pulled when missing (or always, with --pull).
    fn base_image(&mut self, base: &str) -> Result<Image> {
        use berth_engine::registry::client::{PullPolicy, Quiet};
        let policy = if self.opts.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        let mut asked = None;
        let credentials = Reference::parse(base)
            .ok()
            .and_then(|r| credentials_for(&self.opts.registry_auth, r.domain()));
        let pulled = self
            .engine
            .ensure_image_as(base, policy, credentials, std::sync::Arc::new(Quiet), |r| {
                asked = Some(r.familiar())
            })
            .map_err(|e| BuildError::step("FROM", e))?;
        if let Some(p) = &pulled {
            self.say(&format!(
                " ---> Pulled {} ({})",
                asked.unwrap_or_else(|| base.to_string()),
                p.digest
            ))?;
        }
        match pulled {
            Some(p) => Ok(p.image),
            None => self
                .engine
                .images()
                .resolve(base)
                .map_err(|e| BuildError::step("FROM", e)),
        }
    }

    fn say(&mut self, line: &str) -> Result<()> {
        if self.opts.quiet {
            return Ok(());
        }
        writeln!(self.out, "{line}").map_err(BuildError::Output)?;
        self.out.flush().map_err(BuildError::Output)
    }

    fn cancelled(&self) -> bool {
        self.opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    fn header(&mut self, original: &str) -> Result<()> {
        if self.cancelled() {
            return Err(BuildError::Cancelled);
        }
        self.step_no += 1;
        let line = format!("Step {}/{} : {original}", self.step_no, self.total);
        self.say(&line)
    }

    fn expand(&self, st: &StageState, word: &str, what: &str) -> Result<String> {
        shell::expand_word(word, &st.vars(), self.escape).map_err(|e| BuildError::step(what, e))
    }

    fn raw_config(&self, image: &Image) -> Result<ImageConfig> {
        let bytes = self.engine.images().content().get(&image.id)?;
        ImageConfig::parse(&bytes).map_err(|e| BuildError::Invalid(format!("image config: {e}")))
    }

    /// The image `FROM scratch` starts from: no layers, an empty config.
    fn scratch(&self) -> Result<Image> {
        let images = self.engine.images();
        if let Some(img) = images.find_step(None, "scratch")? {
            return Ok(img);
        }
        let created = "1970-01-01T00:00:00Z".to_string();
        let cfg = ImageConfig::scratch();
        Ok(images.put_step(None, &cfg.to_bytes(), created, None, "scratch")?)
    }

    fn stage(&mut self, stages: &[Stage], i: usize, meta: &[(String, String)]) -> Result<Image> {
        let stage = &stages[i];
        self.header(&stage.original)?;
        let base = shell::expand_word(&stage.base, meta, self.escape)
            .map_err(|e| BuildError::step("FROM", e))?;
        if base.is_empty() {
            return Err(BuildError::step("FROM", "base name should not be blank"));
        }
        let lower = base.to_lowercase();
        let earlier = stages[..i]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .and_then(|j| self.results.get(&j).cloned());
        let image = match earlier {
            Some(img) => img,
            None if lower == "scratch" => self.scratch()?,
            None => self.base_image(&base)?,
        };
        self.say(&format!(" ---> {}", image.id.short()))?;
        let mut config = self.raw_config(&image)?;
        let triggers = config.on_build();
        // Triggers run in this build; they are not inherited further.
        config.set("OnBuild", Value::Null);
        let mut st = StageState {
            image,
            config,
            args: Vec::new(),
            cmd_set: false,
        };
        if !triggers.is_empty() {
            self.say(&format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ))?;
            for t in &triggers {
                let step = crate::instructions::parse_instruction(t)?;
                self.step(&mut st, &step, meta, false)?;
            }
        }
        for step in &stage.steps {
            self.step(&mut st, step, meta, true)?;
        }
        Ok(st.image)
    }

    /// `--label`s, as a last step of the result.
    fn labels(&mut self, image: Image) -> Result<Image> {
        let mut config = self.raw_config(&image)?;
        let mut text = Vec::new();
        for (k, v) in &self.opts.labels {
            config.insert("Labels", k, json!(v));
            text.push(format!("{k}={v}"));
        }
        let created_by = format!("{NOP} LABEL {}", text.join(" "));
        let key = key_of(&[&created_by]);
        if !self.opts.no_cache {
            if let Some(img) = self.engine.images().find_step(Some(&image.id), &key)? {
                return Ok(img);
            }
        }
        let created = now();
        config.record_step(&created, &created_by, None);
        Ok(self
            .engine
            .images()
            .put_step(Some(&image), &config.to_bytes(), created, None, &key)?)
    }

    fn step(
        &mut self,
        st: &mut StageState,
        step: &Step,
        meta: &[(String, String)],
        counted: bool,
    ) -> Result<()> {
        if counted {
            self.header(&step.original)?;
        } else {
            self.say(&format!("  {}", step.original))?;
        }
        let (created_by, extra, action) = self.plan(st, step, meta)?;
        let key = key_of(&[&created_by, &extra]);
        if !self.opts.no_cache {
            if let Some(img) = self.engine.images().find_step(Some(&st.image.id), &key)? {
                st.config = self.raw_config(&img)?;
                st.image = img;
                self.say(" ---> Using cache")?;
                self.say(&format!(" ---> {}", st.image.id.short()))?;
                return Ok(());
            }
        }
        let created = now();
        let (mut config, layer) = match action {
            Action::Config(c) => (c, None),
            Action::Run { argv, env, network } => {
                let layer = self.run(st, argv, env, network, &created_by)?;
                (st.config.clone(), Some(layer))
            }
            Action::Copy { plans, from } => {
                let layer = self.copy(st, plans, from.as_deref(), keyword(&step.instruction))?;
                (st.config.clone(), Some(layer))
            }
        };
        let diff = layer.as_ref().map(|(d, _)| d.to_string());
        config.record_step(&created, &created_by, diff.as_deref());
        let image = self.engine.images().put_step(
            Some(&st.image),
            &config.to_bytes(),
            created,
            layer.as_ref().map(|(d, s)| (d, *s)),
            &key,
        )?;
        self.say(&format!(" ---> {}", image.id.short()))?;
        st.image = image;
        st.config = config;
        Ok(())
    }

    /// Works out a step: its history line, what else its cache key holds,
    /// and what it does.
    fn plan(
        &mut self,
        st: &mut StageState,
        step: &Step,
        meta: &[(String, String)],
    ) -> Result<(String, String, Action)> {
        let mut config = st.config.clone();
        let shell = config.shell();
        let nop = |text: String| format!("{NOP} {text}");
        let created_by = match &step.instruction {
            Instruction::Run {
                command,
                heredocs,
                network,
            } => {
                let argv = match command {
                    Command::Exec(v) => v.clone(),
                    Command::Shell(s) => shell
                        .iter()
                        .cloned()
                        .chain([run_script(s, heredocs)])
                        .collect(),
                };
                let args = st.run_args();
                for (k, _) in &args {
                    self.used_args.insert(k.clone());
                }
                let mut created_by = argv.join(" ");
                if !args.is_empty() {
                    let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    created_by = format!("|{} {} {created_by}", args.len(), pairs.join(" "));
                }
                let network = network.clone().or_else(|| self.opts.network.clone());
                let env = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let extra = format!("network={}", network.as_deref().unwrap_or(""));
                return Ok((created_by, extra, Action::Run { argv, env, network }));
            }
            Instruction::Add(spec) | Instruction::Copy(spec) => {
                return self.plan_copy(st, step, spec);
            }
            Instruction::Cmd(_)
            | Instruction::Entrypoint(_)
            | Instruction::Env(_)
            | Instruction::Label(_)
            | Instruction::Workdir(_)
            | Instruction::Expose(_)
            | Instruction::User(_)
            | Instruction::Volume(_)
            | Instruction::Stopsignal(_)
            | Instruction::Onbuild(_) => {
                let text = changes::apply(
                    &mut config,
                    &step.instruction,
                    &st.vars(),
                    self.escape,
                    &mut st.cmd_set,
                )
                .map_err(|e| BuildError::step(changes::keyword(&step.instruction), e))?;
                // Docker's history spaces WORKDIR apart from the others.
                match step.instruction {
                    Instruction::Workdir(_) => nop(text),
                    _ => nop(format!(" {text}")),
                }
            }
            Instruction::Arg(args) => {
                let mut text = Vec::new();
                for (k, d) in args {
                    let given = self
                        .opts
                        .build_args
                        .iter()
                        .rev()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone());
                    if given.is_some() {
                        self.used_args.insert(k.clone());
                    }
                    let default = match d {
                        Some(d) => Some(self.expand(st, d, "ARG")?),
                        None => meta.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
                    };
                    let value = given.or(default);
                    st.args.retain(|(n, _)| n != k);
                    st.args.push((k.clone(), value));
                    text.push(match d {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                }
                nop(format!(" ARG {}", text.join(" ")))
            }
            Instruction::Maintainer(m) => {
                config.set_author(m);
                nop(format!(" MAINTAINER {m}"))
            }
            Instruction::Shell(s) => {
                config.set("Shell", json!(s));
                nop(format!(" SHELL {}", quoted_list(s)))
            }
            Instruction::Healthcheck(h) => {
                let v = healthcheck_value(h, &shell);
                let text = serde_json::to_string(&v).unwrap_or_default();
                config.set("Healthcheck", v);
                nop(format!(" HEALTHCHECK {text}"))
            }
        };
        // The config is the whole effect; the key holds it.
        let extra = String::from_utf8_lossy(&config.to_bytes()).into_owned();
        Ok((created_by, extra, Action::Config(config)))
    }

    fn plan_copy(
        &mut self,
        st: &StageState,
        step: &Step,
        spec: &CopySpec,
    ) -> Result<(String, String, Action)> {
        let add = matches!(step.instruction, Instruction::Add(_));
        let what = if add { "ADD" } else { "COPY" };
        let fail = |m: String| BuildError::step(what, m);
        let dest_raw = self.expand(st, &spec.dest, what)?;
        let workdir = st.config.workdir();
        let joined = Path::new(&workdir).join(&dest_raw);
        let dest =
            PathBuf::from("/").join(context::clean(&joined.to_string_lossy()).unwrap_or_default());
        let mut patterns = Vec::new();
        for s in &spec.sources {
            if spec.heredocs.iter().any(|h| &h.name == s) {
                continue;
            }
            patterns.push(self.expand(st, s, what)?);
        }
        let chown = match &spec.chown {
            Some(c) => Some(self.expand(st, c, what)?),
            None => None,
        };
        let mode = match &spec.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| fail(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let mut plans = Vec::new();
        let mut extra = vec![
            format!("chown={}", chown.as_deref().unwrap_or("")),
            format!("chmod={:?}", mode),
        ];
        let from = match &spec.from {
            Some(f) => {
                let f = self.expand(st, f, what)?;
                let lower = f.to_lowercase();
                let stage = self
                    .results
                    .iter()
                    .find(|(i, _)| lower.parse::<usize>().ok() == Some(**i))
                    .map(|(_, img)| img.clone());
                let img = match stage {
                    Some(img) => img,
                    None => match self.stage_by_name(&lower) {
                        Some(img) => img,
                        None => self
                            .engine
                            .images()
                            .resolve(&f)
                            .map_err(|e| fail(format!("--from={f}: no such stage, and {e}")))?,
                    },
                };
                extra.push(format!("from={}", img.id));
                Some(Box::new(img))
            }
            None => None,
        };
        let mut summary_hash = Sha256::new();
        let mut count = 0usize;
        let mut single_dir = false;
        if from.is_some() {
            for p in &patterns {
                extra.push(format!("src={p}"));
                summary_hash.update(p.as_bytes());
            }
            count += patterns.len();
            plans.push(PlanSpec {
                sources: Vec::new(),
                from_patterns: patterns.clone(),
                dest: dest.clone(),
                dest_is_dir: dest_raw.ends_with('/'),
                chown: chown.clone(),
                default_owner: None,
                mode,
                context_filter: false,
            });
        } else if !patterns.is_empty() {
            let Some(ctx) = &self.context else {
                return Err(fail(
                    "no build context: the Dockerfile came from stdin (give a context directory)"
                        .into(),
                ));
            };
            let keep = |p: &Path, d: bool| ctx.includes(p, d);
            let mut plain = Vec::new();
            for p in &patterns {
                if p.contains("://") {
                    return Err(fail(format!(
                        "{p}: fetching URLs is not supported; download it into the build context"
                    )));
                }
                for s in context::resolve(&ctx.root, p, &keep).map_err(fail)? {
                    let digest = context::digest(std::slice::from_ref(&s), &keep).map_err(fail)?;
                    summary_hash.update(digest.as_bytes());
                    extra.push(format!("{}={digest}", s.rel.display()));
                    count += 1;
                    single_dir = s.is_dir;
                    let full = s.root.join(&s.rel);
                    if add && !s.is_dir && context::is_archive(&full) {
                        let tmp = self.scratch_dir()?;
                        context::unpack_archive(&full, tmp.path()).map_err(fail)?;
                        plans.push(PlanSpec {
                            sources: vec![Source {
                                root: tmp.path().to_path_buf(),
                                rel: PathBuf::new(),
                                name: s.name.clone(),
                                is_dir: true,
                            }],
                            from_patterns: Vec::new(),
                            dest: dest.clone(),
                            dest_is_dir: true,
                            chown: chown.clone(),
                            default_owner: None,
                            mode,
                            context_filter: false,
                        });
                        self.scratch.push(tmp);
                    } else {
                        plain.push(s);
                    }
                }
            }
            if !plain.is_empty() {
                plans.push(PlanSpec {
                    sources: plain,
                    from_patterns: Vec::new(),
                    dest: dest.clone(),
                    dest_is_dir: dest_raw.ends_with('/'),
                    chown: chown.clone(),
                    default_owner: Some((0, 0)),
                    mode,
                    context_filter: true,
                });
            }
        }
        if !spec.heredocs.is_empty() {
            let tmp = self.scratch_dir()?;
            let mut sources = Vec::new();
            for h in &spec.heredocs {
                let path = tmp.path().join(&h.name);
                // An unquoted delimiter: the body's variables are expanded
                // (quotes and escapes stay as written).
                let content = match h.expand {
                    true => {
                        let lexer = shell::Lexer {
                            raw_quotes: true,
                            raw_escapes: true,
                            ..shell::Lexer::new(self.escape)
                        };
                        lexer
                            .process(&h.content, &st.vars())
                            .map_err(|e| fail(e.to_string()))?
                            .0
                    }
                    false => h.content.clone(),
                };
                std::fs::write(&path, &content)
                    .map_err(|e| fail(format!("write {}: {e}", path.display())))?;
                summary_hash.update(h.name.as_bytes());
                summary_hash.update(content.as_bytes());
                extra.push(format!("heredoc {}={content}", h.name));
                sources.push(Source {
                    root: tmp.path().to_path_buf(),
                    rel: PathBuf::from(&h.name),
                    name: h.name.clone().into(),
                    is_dir: false,
                });
                count += 1;
            }
            plans.push(PlanSpec {
                sources,
                from_patterns: Vec::new(),
                dest: dest.clone(),
                dest_is_dir: dest_raw.ends_with('/'),
                chown: chown.clone(),
                default_owner: Some((0, 0)),
                mode,
                context_filter: false,
            });
            self.scratch.push(tmp);
        }
        if count > 1 && !dest_raw.ends_with('/') {
            return Err(fail(
                "When using COPY with more than one source file, the destination must be a directory and end with a /".into(),
            ));
        }
        if count > 1 {
            for p in &mut plans {
                p.dest_is_dir = true;
            }
        }
        let kind = match (count, single_dir) {
            (1, true) => "dir",
            (1, false) => "file",
            _ => "multi",
        };
        let created_by = format!(
            "{NOP}{what} {kind}:{} in {} ",
            hex::encode(summary_hash.finalize()),
            dest.display()
        );
        Ok((created_by, extra.join("\n"), Action::Copy { plans, from }))
    }

    fn stage_by_name(&self, name: &str) -> Option<Image> {
        // Stage names map to indexes in `results` through the order they
        // were built; the caller passes lower-cased names.
        self.stage_names
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, i)| self.results.get(i).cloned())
    }

    fn scratch_dir(&self) -> Result<tempfile::TempDir> {
        let base = self.engine.root().join("tmp");
        std::fs::create_dir_all(&base)
            .map_err(|e| BuildError::Invalid(format!("create {}: {e}", base.display())))?;
        tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&base)
            .map_err(|e| {
                BuildError::Invalid(format!("create a directory in {}: {e}", base.display()))
            })
    }

    /// A container of the step's image that never runs (COPY/ADD write into
    /// its filesystem).
    fn step_container(
        &self,
        st: &StageState,
        argv: Vec<String>,
        env: Vec<String>,
        network: Option<&str>,
    ) -> Result<String> {
        let mut o = ContainerOptions::new(st.image.id.to_string());
        o.entrypoint = Some(String::new());
        o.cmd = argv;
        o.env = env;
        // A build whose client is killed leaves no step running.
        o.ends_with_client = true;
        let step = &self.opts.step;
        o.resources = step.resources.clone();
        o.shm_size = step.shm_size;
        o.ulimits = step.ulimits.clone();
        o.add_hosts = step.add_hosts.clone();
        o.security_opt = step.security_opt.clone();
        if let Some(n) = network {
            o.network = NetworkMode::parse(n)?;
        }
        Ok(self.engine.create(o)?.id)
    }

    /// Removes a step's container and its anonymous volumes.
    fn drop_container(&self, id: &str) {
        if let Err(e) = self.engine.remove(id, true, true) {
            tracing::warn!("remove build container {id}: {e}");
        }
    }

    fn run(
        &mut self,
        st: &StageState,
        argv: Vec<String>,
        env: Vec<String>,
        network: Option<String>,
        created_by: &str,
    ) -> Result<(Digest, u64)> {
        let id = self.step_container(st, argv.clone(), env, network.as_deref())?;
        let short = id[..12].to_string();
        self.say(&format!(" ---> Running in {short}"))?;
        let quiet = self.opts.quiet;
        let engine = self.engine;
        let cancel = self.opts.cancel.clone();
        let out = &mut *self.out;
        let mut write_err = None;
        let finished = AtomicBool::new(false);
        let code = std::thread::scope(|scope| {
            // A cancelled build kills its running step: the step may print
            // nothing for a long time, so the flag is watched, not the output.
            if let Some(cancel) = &cancel {
                let (finished, id) = (&finished, &id);
                scope.spawn(move || {
                    while !finished.load(Ordering::SeqCst) {
                        // Until it is gone: it may not have started yet.
                        if cancel.load(Ordering::SeqCst) {
                            if let Err(e) = engine.kill(id, nix::sys::signal::Signal::SIGKILL) {
                                tracing::debug!("kill cancelled build step {id}: {e}");
                            }
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
            }
            let code = engine.run_attached(&id, &mut |_stream: Stream, data: &[u8]| {
                if !quiet && write_err.is_none() {
                    if let Err(e) = out.write_all(data).and_then(|_| out.flush()) {
                        write_err = Some(e);
                    }
                }
            });
            finished.store(true, Ordering::SeqCst);
            code
        });
        if self.cancelled() {
            self.drop_container(&id);
            return Err(BuildError::Cancelled);
        }
        let layer = match code {
            Ok(0) => self.engine.commit_layer(&id).map_err(BuildError::from),
            Ok(code) => Err(BuildError::RunFailed {
                command: created_by.to_string(),
                code,
            }),
            Err(e) => Err(e.into()),
        };
        self.drop_container(&id);
        if let Some(e) = write_err {
            return Err(BuildError::Output(e));
        }
        let layer = layer?;
        self.say(&format!("Removing intermediate container {short}"))?;
        Ok(layer)
    }

    fn copy(
        &mut self,
        st: &StageState,
        plans: Vec<PlanSpec>,
        from: Option<&Image>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let id = self.step_container(st, vec![what.to_string()], Vec::new(), Some("none"))?;
        let ctx = self.context.as_ref();
        let done = self.engine.with_container_fs(&id, from, |root, from_root| {
            for p in &plans {
                let mut sources = p.sources.clone();
                if let Some(fr) = from_root {
                    let all = |_: &Path, _: bool| true;
                    for pat in &p.from_patterns {
                        sources.extend(context::resolve(fr, pat, &all).map_err(|e| {
                            e.replace("build context or excluded by .dockerignore", "source image")
                        })?);
                    }
                }
                let all = |_: &Path, _: bool| true;
                let ctx_keep = |path: &Path, d: bool| ctx.is_none_or(|c| c.includes(path, d));
                let keep: &dyn Fn(&Path, bool) -> bool =
                    if p.context_filter { &ctx_keep } else { &all };
                let plan = CopyPlan {
                    sources,
                    dest: p.dest.clone(),
                    dest_is_dir: p.dest_is_dir,
                    chown: p.chown.clone(),
                    default_owner: p.default_owner,
                    mode: p.mode,
                    keep,
                };
                copy_into(root, &plan)?;
            }
            Ok(())
        });
        let layer = done
            .map_err(|e| BuildError::step(what, e))
            .and_then(|()| self.engine.commit_layer(&id).map_err(BuildError::from));
        self.drop_container(&id);
        layer
    }
}

fn keyword(i: &Instruction) -> &'static str {
    match i {
        Instruction::Add(_) => "ADD",
        _ => "COPY",
    }
}

/// EXPOSE's `80`, `80/udp`, `8000-8002/tcp` as config keys.
#[cfg(test)]
mod tests {
    use super::*;

    fn heredoc(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp: false,
        }
    }

    #[test]
    fn heredoc_scripts() {
        assert_eq!(run_script("echo hi", &[]), "echo hi");
        let h = heredoc("EOF", "echo a\necho b\n");
        assert_eq!(
            run_script("<<EOF", std::slice::from_ref(&h)),
            "echo a\necho b\n"
        );
        assert_eq!(
            run_script("<<-\"EOF\"", std::slice::from_ref(&h)),
            "echo a\necho b\n"
        );
        assert_eq!(
            run_script("cat <<EOF > /f", &[h]),
            "cat <<EOF > /f\necho a\necho b\nEOF"
        );
    }

    #[test]
    fn cache_keys_depend_on_every_part() {
        assert_ne!(key_of(&["a", "bc"]), key_of(&["ab", "c"]));
        assert_eq!(key_of(&["x"]), key_of(&["x"]));
    }
}
