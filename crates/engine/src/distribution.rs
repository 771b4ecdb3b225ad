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
        let reference = Reference::parse(name)?;
        Ok(client::pull(
            &self.images,
            &reference,
            &self.registry_options(),
            progress,
        )?)
    }

    /// Pushes the local image `name` to the registry its name points at.
    pub fn push(&self, name: &str, progress: Arc<dyn Progress>) -> Result<Pushed> {
        let reference = Reference::parse(name)?;
        if reference.digest().is_some() {
            return Err(Error::InvalidArgument(format!(
                "cannot push a digest reference: {name}"
            )));
        }
        // The image must exist under this very name.
        self.images.resolve(&reference.to_string())?;
        Ok(client::push(
            &self.images,
            &reference,
            &self.registry_options(),
            progress,
        )?)
    }

    /// Checks credentials against `registry` and stores them.
    pub fn login(&self, registry: &str, creds: &Credentials) -> Result<()> {
        Ok(client::login(&self.registry_options(), registry, creds)?)
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
        self.pull(name, progress).map(Some)
    }
}
