//! `--security-opt` (HostConfig.SecurityOpt), docker's spellings: the
//! seccomp profile, no-new-privileges, AppArmor and SELinux labels (kept but
//! without effect on a host without those security modules, as docker does),
//! `systempaths=unconfined`.

use crate::error::{Error, Result};

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    /// docker's default profile.
    Default,
    Unconfined,
    /// A profile in docker's JSON format (its text).
    Profile(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityOptions {
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
    pub apparmor: Option<String>,
    pub labels: Vec<String>,
    /// `systempaths=unconfined`: no masked or read-only /proc paths.
    pub unconfined_paths: bool,
}

impl SecurityOptions {
    /// Parses the options; errors in docker's words.
    pub fn parse(list: &[String]) -> Result<SecurityOptions> {
        let mut out = SecurityOptions {
            seccomp: Seccomp::Default,
            no_new_privileges: false,
            apparmor: None,
            labels: Vec::new(),
            unconfined_paths: false,
        };
        for opt in list {
            if opt == "no-new-privileges" {
                out.no_new_privileges = true;
                continue;
            }
            if opt == "disable" {
                out.labels.push("disable".into());
                continue;
            }
            // docker took `key:value` before `key=value`.
            let (k, v) = match opt.split_once('=') {
                Some(kv) => kv,
                None => match opt.split_once(':') {
                    Some(kv) => kv,
                    None => {
                        return Err(Error::InvalidArgument(format!(
                            "invalid --security-opt 1: {opt:?}"
                        )))
                    }
                },
            };
            match k {
                "seccomp" if v == "unconfined" => out.seccomp = Seccomp::Unconfined,
                "seccomp" if v == "builtin" || v.is_empty() => out.seccomp = Seccomp::Default,
                "seccomp" => out.seccomp = Seccomp::Profile(v.to_string()),
                "no-new-privileges" => {
                    out.no_new_privileges = match v {
                        "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
                        "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
                        _ => {
                            return Err(Error::InvalidArgument(format!(
                                "invalid --security-opt 2: {opt:?}"
                            )))
                        }
                    }
                }
                "apparmor" => out.apparmor = Some(v.to_string()),
                "label" => out.labels.push(v.to_string()),
                "systempaths" if v == "unconfined" => out.unconfined_paths = true,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "invalid --security-opt 2: {opt:?}"
                    )))
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<SecurityOptions> {
        SecurityOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn docker_spellings() {
        let d = p(&[]).unwrap();
        assert_eq!(
            (d.seccomp.clone(), d.no_new_privileges),
            (Seccomp::Default, false)
        );
        let s = p(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(
            (s.seccomp, s.no_new_privileges),
            (Seccomp::Unconfined, true)
        );
        assert!(p(&["no-new-privileges=true"]).unwrap().no_new_privileges);
        assert!(!p(&["no-new-privileges:false"]).unwrap().no_new_privileges);
        assert_eq!(
            p(&["seccomp={}"]).unwrap().seccomp,
            Seccomp::Profile("{}".into())
        );
        assert_eq!(
            p(&["apparmor=docker-default"]).unwrap().apparmor.as_deref(),
            Some("docker-default")
        );
        assert!(p(&["systempaths=unconfined"]).unwrap().unconfined_paths);
        assert_eq!(
            p(&["bogus"]).unwrap_err().to_string(),
            "invalid --security-opt 1: \"bogus\""
        );
        assert_eq!(
            p(&["colour=blue"]).unwrap_err().to_string(),
            "invalid --security-opt 2: \"colour=blue\""
        );
        assert!(p(&["no-new-privileges=maybe"]).is_err());
    }
}
