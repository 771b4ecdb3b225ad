//! `system check`: the image store's findings (see `berth_image::Store::check`)
//! and the containers': damaged records, containers whose image or writable
//! layer is gone, containers recorded running whose processes are gone or
//! that run without a monitor, and directories no record owns.

pub use berth_image::Severity;
use berth_image::{Finding, Subject};

use crate::error::Result;
use crate::lifecycle::monitor_alive;
use crate::{Engine, REMOVED_PREFIX};

/// What is wrong with a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerProblem {
    /// Its record cannot be read.
    DamagedRecord,
    /// Its image is gone or damaged: it can never start again.
    ImageGone,
    /// Its writable layer is gone.
    LayerGone,
    /// Recorded running, but its monitor and processes are gone.
    ProcessesGone,
    /// Running without a monitor (it was killed).
    Unmonitored,
    /// A directory without a record (a create that was killed), or one a
    /// removal renamed away and did not delete.
    Leftover(std::path::PathBuf),
}

/// One finding about the containers.
#[derive(Debug, Clone)]
pub struct ContainerFinding {
    pub severity: Severity,
    /// The container's ID ("" for a leftover directory).
    pub id: String,
    pub name: String,
    pub problem: ContainerProblem,
    pub why: String,
}

/// What `system check` found.
#[derive(Debug, Clone, Default)]
pub struct Check {
    pub images: Vec<Finding>,
    pub containers: Vec<ContainerFinding>,
}

impl Check {
    /// Every finding as (severity, what, why), containers first.
    pub fn lines(&self) -> Vec<(Severity, String, String)> {
        let mut out: Vec<(Severity, String, String)> = self
            .containers
            .iter()
            .map(|f| {
                let what = match &f.problem {
                    ContainerProblem::Leftover(p) => format!("leftover {}", p.display()),
                    _ => format!("container {} ({})", f.id, f.name),
                };
                (f.severity, what, f.why.clone())
            })
            .collect();
        out.extend(
            self.images
                .iter()
                .map(|f| (f.severity, f.subject.describe(), f.why.clone())),
        );
        out
    }

    pub fn damaged(&self) -> usize {
        self.lines()
            .iter()
            .filter(|(s, _, _)| *s == Severity::Damaged)
            .count()
    }

    pub fn orphaned(&self) -> usize {
        self.lines()
            .iter()
            .filter(|(s, _, _)| *s == Severity::Orphaned)
            .count()
    }
}

/// What a repair did, and what it left (and why).
#[derive(Debug, Clone, Default)]
pub struct Repair {
    pub done: Vec<String>,
    pub left: Vec<(String, String)>,
}

impl Engine {
    /// Checks the containers and the image store; `quick` skips verifying
    /// every blob's digest.
    pub fn system_check(&self, quick: bool) -> Result<Check> {
        let mut containers = Vec::new();
        let images = self.images.check(quick)?;
        let bad_images: Vec<String> = images
            .iter()
            .filter(|f| f.severity == Severity::Damaged)
            .filter_map(|f| match &f.subject {
                Subject::Image(d) => Some(d.to_string()),
                _ => None,
            })
            .collect();
        for rec in self.containers.list()? {
            let mut add = |severity, problem, why: String| {
                containers.push(ContainerFinding {
                    severity,
                    id: rec.id.clone(),
                    name: rec.name.clone(),
                    problem,
                    why,
                })
            };
            if let Some(e) = &rec.damaged {
                add(
                    Severity::Damaged,
                    ContainerProblem::DamagedRecord,
                    format!("its record cannot be read: {e}"),
                );
                continue;
            }
            if bad_images.contains(&rec.image_id) || self.images.resolve(&rec.image_id).is_err() {
                add(
                    Severity::Damaged,
                    ContainerProblem::ImageGone,
                    format!("its image {} is gone or damaged", rec.image_id),
                );
            }
            if !self.containers.dir(&rec.id).join("upper").is_dir() {
                add(
                    Severity::Damaged,
                    ContainerProblem::LayerGone,
                    "its writable layer is gone".into(),
                );
            }
            if rec.state.status.is_active() && !monitor_alive(rec.state.monitor_pid) {
                if self.init_runs(&rec) {
                    add(
                        Severity::Damaged,
                        ContainerProblem::Unmonitored,
                        "it runs without a monitor (killed): its output is not logged".into(),
                    );
                } else {
                    add(
                        Severity::Damaged,
                        ContainerProblem::ProcessesGone,
                        format!(
                            "recorded {}, but its processes are gone",
                            rec.state.status.as_str()
                        ),
                    );
                }
            }
        }
        for id in self.containers.orphan_dirs() {
            containers.push(ContainerFinding {
                severity: Severity::Orphaned,
                id: String::new(),
                name: String::new(),
                problem: ContainerProblem::Leftover(self.containers.dir(&id)),
                why: "a container directory without a record (a create was interrupted)".into(),
            });
        }
        for parent in [
            self.config.root.join("containers"),
            self.config.runroot.join("containers"),
        ] {
            for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(REMOVED_PREFIX) {
                    containers.push(ContainerFinding {
                        severity: Severity::Orphaned,
                        id: String::new(),
                        name: String::new(),
                        problem: ContainerProblem::Leftover(e.path()),
                        why: "a removed container's directory (a removal was interrupted)".into(),
                    });
                }
            }
        }
        Ok(Check { images, containers })
    }

    /// Repairs what `check` found. Containers whose image is gone, and
    /// damaged images some container uses, are removed only with `force`
    /// (the container's writable layer goes with it).
    pub fn system_repair(&self, check: &Check, force: bool) -> Result<Repair> {
        let mut r = Repair::default();
        let mut in_use: Vec<String> = Vec::new();
        let mut removed: Vec<&str> = Vec::new();
        for f in &check.containers {
            let what = format!("container {} ({})", f.id, f.name);
            if !f.id.is_empty() && removed.contains(&f.id.as_str()) {
                continue;
            }
            let removal = matches!(
                f.problem,
                ContainerProblem::DamagedRecord | ContainerProblem::LayerGone
            ) || (force && f.problem == ContainerProblem::ImageGone);
            if removal {
                removed.push(&f.id);
            }
            match &f.problem {
                ContainerProblem::DamagedRecord | ContainerProblem::LayerGone => {
                    match self.remove(&f.id, true, true) {
                        Ok(()) => r.done.push(format!("removed {what}")),
                        Err(e) => r.left.push((what, e.to_string())),
                    }
                }
                ContainerProblem::ImageGone if force => match self.remove(&f.id, true, true) {
                    Ok(()) => r.done.push(format!("removed {what}")),
                    Err(e) => r.left.push((what, e.to_string())),
                },
                ContainerProblem::ImageGone => {
                    if let Ok(rec) = self.containers.find(&f.id) {
                        in_use.push(rec.image_id);
                    }
                    r.left
                        .push((what, "its image is gone: --force removes it".into()));
                }
                ContainerProblem::ProcessesGone | ContainerProblem::Unmonitored => {
                    // The exit recorded (and what it held released), or a
                    // new monitor.
                    self.reap_orphans();
                    r.done.push(match f.problem {
                        ContainerProblem::Unmonitored => format!("gave {what} a new monitor"),
                        _ => format!("recorded the exit of {what}"),
                    });
                }
                ContainerProblem::Leftover(p) => {
                    let _lock = self.lock_containers()?;
                    // Still without a record, under the lock.
                    let still = p.exists()
                        && (p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(REMOVED_PREFIX))
                            || !p.join("container.json").exists());
                    if still {
                        if let Err(e) = std::fs::remove_dir_all(p) {
                            r.left
                                .push((format!("leftover {}", p.display()), e.to_string()));
                            continue;
                        }
                    }
                    r.done.push(format!("removed leftover {}", p.display()));
                }
            }
        }
        // Damaged images a kept container still uses stay.
        let images: Vec<Finding> = check
            .images
            .iter()
            .filter(|f| match &f.subject {
                Subject::Image(d) if in_use.contains(&d.to_string()) => {
                    r.left.push((
                        f.subject.describe(),
                        "a container uses it: --force removes both".into(),
                    ));
                    false
                }
                _ => true,
            })
            .cloned()
            .collect();
        for s in self.images.repair(&images)? {
            r.done.push(format!("removed {}", s.describe()));
        }
        Ok(r)
    }
}
