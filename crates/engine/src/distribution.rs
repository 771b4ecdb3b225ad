//! Images from and to registries: pull, push, login, and the pull a `run`
//! of a missing image makes first.

use std::sync::Arc;

use berth_image::Reference;
use berth_registry::client::{self, Credentials, Options, Progress, PullPolicy, Pulled, Pushed};

use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    fn registry_options(&self) -> Options {
        let mut o = Options::new(self.config.client_config.clone());
        o.insecure_registries = self.config.insecure_registries.clone();
        o
    }

    /// Pulls `name` (`busybox`, `host:5000/me/app:v1`, `app@sha256:...`).
    pub fn pull(&self, name: &str, progress: Arc<dyn Progress>) -> Result<Pulled> {
        self.pull_as(name, None, progress)
    }

    /// [`Engine::pull`] with credentials given for this pull only (none:
    /// the stored ones).
    pub fn pull_as(
        &self,
        name: &str,
        credentials: Option<Credentials>,
        progress: Arc<dyn Progress>,
    ) -> Result<Pulled> {
        let reference = Reference::parse(name)?;
        let mut opts = self.registry_options();
        opts.credentials = credentials;
        let pulled = client::pull(&self.images, &reference, &opts, progress)?;
        self.emit_pulled(&reference);
        Ok(pulled)
    }

    fn emit_pulled(&self, r: &Reference) {
        self.emit_image(&r.familiar(), &r.familiar_repository(), "pull");
    }

    /// `pull -a`: every tag of the repository `name` names (a tag or digest
    /// in `name` is refused, as docker does).
    pub fn pull_all_tags(&self, name: &str, progress: Arc<dyn Progress>) -> Result<Vec<Pulled>> {
        let repo = Self::repository_only(name, "pull")?;
        let opts = self.registry_options();
        let tags = client::list_tags(&repo, &opts)?;
        if tags.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "the repository {} has no tags",
                repo.familiar_repository()
            )));
        }
        let mut out = Vec::new();
        for t in tags {
            let r = Reference::parse(&format!("{}:{t}", repo.repository()))?;
            out.push(client::pull(&self.images, &r, &opts, progress.clone())?);
            self.emit_pulled(&r);
        }
        Ok(out)
    }

    /// `push -a`: every local tag of the repository `name` names.
    pub fn push_all_tags(
        &self,
        name: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<(Reference, Pushed)>> {
        let repo = Self::repository_only(name, "push")?;
        let mut refs: Vec<Reference> = self
            .images
            .list()?
            .into_iter()
            .flat_map(|i| i.refs)
            .filter(|r| r.repository() == repo.repository() && r.tag().is_some())
            .collect();
        refs.sort_by(|a, b| a.tag().cmp(&b.tag()));
        if refs.is_empty() {
            return Err(Error::Image(berth_image::Error::ImageNotFound(
                repo.familiar_repository(),
            )));
        }
        let opts = self.registry_options();
        // "The push refers to repository [...]" once, as docker says it.
        let progress: Arc<dyn Progress> = Arc::new(OnceEach {
            inner: progress,
            said: std::sync::Mutex::new(std::collections::HashSet::new()),
        });
        let mut out = Vec::new();
        for r in refs {
            let pushed = client::push(&self.images, &r, &opts, progress.clone())?;
            self.emit_image(&r.familiar(), &r.familiar_repository(), "push");
            out.push((r, pushed));
        }
        Ok(out)
    }

    /// `name` as a repository with no tag or digest.
    fn repository_only(name: &str, verb: &str) -> Result<Reference> {
        let has_tag = name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
            || name.contains('@');
        if has_tag {
            return Err(Error::InvalidArgument(format!(
                "tag can't be used with --all-tags/-a (berth {verb} -a {name})"
            )));
        }
        Ok(Reference::parse(name)?)
    }

    /// Pushes the local image `name` to the registry its name points at.
    pub fn push(&self, name: &str, progress: Arc<dyn Progress>) -> Result<Pushed> {
        self.push_as(name, None, progress)
    }

    /// [`Engine::push`] with credentials given for this push only (none:
    /// the stored ones).
    pub fn push_as(
        &self,
        name: &str,
        credentials: Option<Credentials>,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed> {
        let reference = Reference::parse(name)?;
        if reference.digest().is_some() {
            return Err(Error::InvalidArgument(format!(
                "cannot push a digest reference: {name}"
            )));
        }
        // The image must exist under this very name.
        self.images.resolve(&reference.to_string())?;
        let mut opts = self.registry_options();
        opts.credentials = credentials;
        let pushed = client::push(&self.images, &reference, &opts, progress)?;
        self.emit_image(
            &reference.familiar(),
            &reference.familiar_repository(),
            "push",
        );
        Ok(pushed)
    }

    /// Fetches `url` (http or https) into the new file `dest`, at most
    /// `max` bytes: a build's remote context.
    pub fn fetch(&self, url: &str, max: u64, dest: &std::path::Path) -> Result<()> {
        Ok(client::fetch(url, max, dest)?)
    }

    /// Checks credentials against `registry` and stores them.
    pub fn login(&self, registry: &str, creds: &Credentials) -> Result<()> {
        Ok(client::login(&self.registry_options(), registry, creds)?)
    }

    /// Checks credentials against `registry`, storing nothing.
    pub fn verify_login(&self, registry: &str, creds: &Credentials) -> Result<()> {
        Ok(client::verify(&self.registry_options(), registry, creds)?)
    }

    /// `search`: the repositories `registry` lists in its catalog.
    pub fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        Ok(client::catalog(&self.registry_options(), registry)?)
    }

    /// Forgets `registry`'s credentials; false if there were none.
    pub fn logout(&self, registry: &str) -> Result<bool> {
        Ok(client::logout(&self.registry_options(), registry)?)
    }

    /// Makes sure the image a container is created from is here, pulling it
    /// as `policy` says. `before_pull` runs before a pull starts (docker's
    /// "Unable to find image ... locally"). Returns the pull, if one was made.
    pub fn ensure_image(
        &self,
        name: &str,
        policy: PullPolicy,
        progress: Arc<dyn Progress>,
        before_pull: impl FnOnce(&Reference),
    ) -> Result<Option<Pulled>> {
        self.ensure_image_as(name, policy, None, progress, before_pull)
    }

    /// [`Engine::ensure_image`] with credentials given for its pull only
    /// (a build's `X-Registry-Config`); none: the stored ones.
    pub fn ensure_image_as(
        &self,
        name: &str,
        policy: PullPolicy,
        credentials: Option<Credentials>,
        progress: Arc<dyn Progress>,
        before_pull: impl FnOnce(&Reference),
    ) -> Result<Option<Pulled>> {
        let local = self.images.resolve(name);
        let wanted = match (policy, &local) {
            (PullPolicy::Never, _) => false,
            (PullPolicy::Always, _) => true,
            (PullPolicy::Missing, Ok(_)) => false,
            (PullPolicy::Missing, Err(e)) => e.kind() == berth_image::ErrorKind::NotFound,
        };
        if !wanted {
            return local.map(|_| None).map_err(Error::from);
        }
        // An ID (or its prefix) is never pulled.
        let reference = match Reference::parse(name) {
            Ok(r) => r,
            Err(_) => return local.map(|_| None).map_err(Error::from),
        };
        if local.is_err() {
            before_pull(&reference);
        }
        self.pull_as(name, credentials, progress).map(Some)
    }
}

/// Passes progress on, each whole-operation line only the first time.
struct OnceEach {
    inner: Arc<dyn Progress>,
    said: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Progress for OnceEach {
    fn layer(&self, id: &str, status: client::Status) {
        self.inner.layer(id, status);
    }
    fn message(&self, line: &str) {
        let first = self
            .said
            .lock()
            .map(|mut s| s.insert(line.to_string()))
            .unwrap_or(true);
        if first {
            self.inner.message(line);
        }
    }
}
