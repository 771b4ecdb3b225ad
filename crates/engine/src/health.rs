//! Health checks: docker's HEALTHCHECK (from the image) and `--health-*`
//! options (from the user), merged into the container's options at create;
//! the container's monitor runs them (see `monitor::health`) and records
//! each result in the container's state.

use serde::{Deserialize, Serialize};

/// docker's `HealthConfig` (`Config.Healthcheck`); durations in
/// nanoseconds, 0 meaning "inherit" (or docker's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` off, `["CMD", args...]`, `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// docker's defaults.
const DEFAULT_INTERVAL: i64 = 30_000_000_000;
const DEFAULT_TIMEOUT: i64 = 30_000_000_000;
const DEFAULT_START_INTERVAL: i64 = 5_000_000_000;
const DEFAULT_RETRIES: i64 = 3;

impl HealthConfig {
    /// The user's settings over the image's, field by field, as docker
    /// merges them.
    pub fn merged(
        user: Option<&HealthConfig>,
        image: Option<&HealthConfig>,
    ) -> Option<HealthConfig> {
        let (u, i) = match (user, image) {
            (None, None) => return None,
            (Some(u), None) => return Some(u.clone()),
            (None, Some(i)) => return Some(i.clone()),
            (Some(u), Some(i)) => (u, i),
        };
        let pick = |a: i64, b: i64| if a != 0 { a } else { b };
        Some(HealthConfig {
            test: if u.test.is_empty() {
                i.test.clone()
            } else {
                u.test.clone()
            },
            interval: pick(u.interval, i.interval),
            timeout: pick(u.timeout, i.timeout),
            start_period: pick(u.start_period, i.start_period),
            start_interval: pick(u.start_interval, i.start_interval),
            retries: pick(u.retries, i.retries),
        })
    }

    /// The command to run, or `None` when checks are off.
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str) {
            Some("CMD") if self.test.len() > 1 => Some(self.test[1..].to_vec()),
            Some("CMD-SHELL") if self.test.len() > 1 => Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                self.test[1..].join(" "),
            ]),
            _ => None,
        }
    }

    fn nanos(v: i64, default: i64) -> std::time::Duration {
        std::time::Duration::from_nanos(if v > 0 { v } else { default } as u64)
    }

    pub fn interval(&self) -> std::time::Duration {
        Self::nanos(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> std::time::Duration {
        Self::nanos(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> std::time::Duration {
        Self::nanos(self.start_period, 0)
    }

    pub fn start_interval(&self) -> std::time::Duration {
        Self::nanos(self.start_interval, DEFAULT_START_INTERVAL)
    }

    pub fn retries(&self) -> u32 {
        (if self.retries > 0 {
            self.retries
        } else {
            DEFAULT_RETRIES
        }) as u32
    }
}

/// `State.Health`: the last results and what they add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

/// One check's result (docker keeps the last five).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// How many results `State.Health.Log` keeps.
const KEPT: usize = 5;
/// How much of a check's output is kept.
pub const MAX_OUTPUT: usize = 4096;

impl Health {
    pub fn starting() -> Health {
        Health {
            status: "starting".into(),
            ..Health::default()
        }
    }

    /// Adds a result: success makes it healthy; `retries` failures in a
    /// row make it unhealthy, failures during the start period excepted.
    pub fn record(&mut self, result: HealthLog, retries: u32, in_start_period: bool) {
        if result.exit_code == 0 {
            self.status = "healthy".into();
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(result);
        if self.log.len() > KEPT {
            let extra = self.log.len() - KEPT;
            self.log.drain(..extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthLog {
        HealthLog {
            exit_code: code,
            ..HealthLog::default()
        }
    }

    #[test]
    fn merge_and_commands() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "curl -f localhost".into()],
            interval: 5,
            retries: 2,
            ..Default::default()
        };
        let user = HealthConfig {
            interval: 9,
            ..Default::default()
        };
        let m = HealthConfig::merged(Some(&user), Some(&image)).unwrap();
        assert_eq!((m.interval, m.retries), (9, 2));
        assert_eq!(m.command().unwrap(), ["/bin/sh", "-c", "curl -f localhost"]);
        let off = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(HealthConfig::merged(Some(&off), Some(&image))
            .unwrap()
            .command()
            .is_none());
        assert_eq!(m.timeout(), std::time::Duration::from_secs(30));
    }

    #[test]
    fn streaks_and_start_period() {
        let mut h = Health::starting();
        h.record(result(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(result(0), 2, true);
        assert_eq!(h.status, "healthy");
        h.record(result(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 1));
        h.record(result(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        for _ in 0..10 {
            h.record(result(0), 2, false);
        }
        assert_eq!((h.status.as_str(), h.log.len()), ("healthy", 5));
    }
}
