//! Progress of a pull or push, layer by layer, for whoever shows it.

/// What happened to one layer (named by its short digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Pull: the layer is wanted and waits its turn.
    Waiting,
    Downloading {
        done: u64,
        total: u64,
    },
    /// Pull: the download broke off and starts again (try `attempt` failed).
    Retrying {
        attempt: u32,
    },
    DownloadComplete,
    PullComplete,
    /// Pull: the layer is already here.
    AlreadyExists,
    /// Push: the layer is being made ready (compressed if needed).
    Preparing,
    Pushing {
        done: u64,
        total: u64,
    },
    Pushed,
    /// Push: the registry has the layer.
    LayerExists,
    /// Push: the registry linked the layer from another repository.
    Mounted {
        from: String,
    },
}

/// Receives progress; called from several threads.
pub trait Progress: Send + Sync {
    /// A layer's status changed.
    fn layer(&self, id: &str, status: Status);
    /// A line about the whole operation ("latest: Pulling from library/busybox").
    fn message(&self, line: &str);
}

/// Shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn layer(&self, _: &str, _: Status) {}
    fn message(&self, _: &str) {}
}
