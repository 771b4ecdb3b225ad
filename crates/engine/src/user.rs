//! Resolving `--user` / the image's `User` against the container's
//! /etc/passwd and /etc/group, as docker does.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

/// (name, gid, members) of each /etc/group line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) against
/// the container's passwd and group files (empty when the image has none).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ExecUser> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let mut name = None;
    if !user.is_empty() {
        let numeric = user.parse::<u32>().ok();
        let found = passwd_entries(passwd).find(|e| match numeric {
            Some(n) => e.uid == n,
            None => e.name == user,
        });
        match (found, numeric) {
            (Some(e), _) => {
                out.uid = e.uid;
                out.gid = e.gid;
                out.home = e.home.to_string();
                name = Some(e.name.to_string());
            }
            (None, Some(n)) => out.uid = n,
            (None, None) => {
                return Err(Error::InvalidArgument(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                )))
            }
        }
    } else if let Some(e) = passwd_entries(passwd).find(|e| e.uid == 0) {
        out.home = e.home.to_string();
        name = Some(e.name.to_string());
    }
    match grp {
        Some(g) if !g.is_empty() => {
            out.gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_entries(group)
                    .find(|(n, _, _)| *n == g)
                    .map(|(_, gid, _)| gid)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?,
            };
        }
        _ => {
            if let Some(n) = &name {
                out.additional_gids = group_entries(group)
                    .filter(|(_, gid, members)| *gid != out.gid && members.contains(&n.as_str()))
                    .map(|(_, gid, _)| gid)
                    .collect();
            }
        }
    }
    Ok(out)
}

/// The gids of `--group-add` values (names or numbers), as the container's
/// /etc/group has them.
pub fn extra_groups(names: &[String], group: &str) -> Result<Vec<u32>> {
    names
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => group_entries(group)
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| gid)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "Unable to find group {g}: no matching entries in group file"
                    ))
                }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:web\nweb:x:1000:\nnogroup:x:65534:\n";

    #[test]
    fn names_and_numbers() {
        let u = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        let u = resolve("web", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone(), u.home.as_str()),
            (1000, 1000, vec![10], "/home/web")
        );
        let u = resolve("1000:1000", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        let u = resolve("nobody:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 10));
        // A uid with no passwd entry is taken as is, with gid 0 and home /.
        let u = resolve("4242", "", "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(resolve("ghost", PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("unable to find user ghost"));
        assert!(resolve("web:ghosts", PASSWD, GROUP).is_err());
    }

    #[test]
    fn group_add_by_name_and_number() {
        let names = vec!["wheel".to_string(), "4242".to_string()];
        assert_eq!(extra_groups(&names, GROUP).unwrap(), vec![10, 4242]);
        assert!(extra_groups(&["ghosts".to_string()], GROUP)
            .unwrap_err()
            .to_string()
            .contains("Unable to find group ghosts"));
    }
}
