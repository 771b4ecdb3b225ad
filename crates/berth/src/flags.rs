//! Docker's flag syntax, in one place. Docker's CLI parses flags with pflag:
//! every boolean flag takes `--flag`, `--flag=true|false` and `-f=false`;
//! short flags combine (`-dit`) and take attached values (`-eA=B`,
//! `-p8080:80`, `-e=A=B`); a value flag takes the next word whatever it looks
//! like (`--stop-timeout -1`); `run`, `create`, `exec` and `top` stop reading
//! flags at their first argument. This module rewrites the words a user typed
//! into the one form clap reads (`--long=value`, `--switch`), using the flags
//! the clap command declares, and reports pflag's errors in docker's words.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};

/// A flag error, with the command it was found in (`berth run`), for
/// docker's "See 'berth run --help'." line.
#[derive(Debug, PartialEq, Eq)]
pub struct FlagError {
    pub message: String,
    pub command: String,
}

/// What a flag takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A boolean that is false unless given (clap's SetTrue).
    Switch,
    /// A boolean with a default of its own, stored as a value (`--sig-proxy`).
    Bool,
    /// A flag that takes a value.
    Value,
    /// `--help`, handed to clap as typed.
    Help,
}

fn kind(arg: &Arg) -> Kind {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count => Kind::Switch,
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version => {
            Kind::Help
        }
        _ if arg.get_value_parser().type_id() == std::any::TypeId::of::<bool>() => Kind::Bool,
        _ => Kind::Value,
    }
}

/// pflag's (Go's `strconv.ParseBool`) spellings of a boolean.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The command whose flags are being read, and the global flags of the
/// commands above it. Subcommands are built one at a time as the words reach
/// them (clap builds the rest only if they are used), so a command line
/// costs the flags of its own command, not the whole tree's.
struct Scope<'r> {
    cmd: Cow<'r, Command>,
    globals: Vec<Arg>,
}

impl Scope<'_> {
    fn args(&self) -> impl Iterator<Item = &Arg> {
        self.cmd.get_arguments().chain(self.globals.iter())
    }

    fn find_long(&self, name: &str) -> Option<Found<'_>> {
        self.args()
            .find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
            .map(Found::Flag)
            .or_else(|| (name == "help" && self.auto_help()).then_some(Found::Help))
    }

    fn find_short(&self, c: char) -> Option<Found<'_>> {
        self.args()
            .find(|a| {
                a.get_short() == Some(c)
                    || a.get_all_short_aliases().is_some_and(|al| al.contains(&c))
            })
            .map(Found::Flag)
            .or_else(|| (c == 'h' && self.auto_help()).then_some(Found::Help))
    }

    /// clap adds `-h, --help` when it builds a command that has none.
    fn auto_help(&self) -> bool {
        !self.cmd.is_disable_help_flag_set()
    }

    /// Descends into `sub`, built on its own; this command's global flags
    /// stay in reach.
    fn enter(&mut self, sub: &Command) {
        let mut next = sub.clone();
        next.build();
        self.globals.extend(
            self.cmd
                .get_arguments()
                .filter(|a| a.is_global_set())
                .cloned(),
        );
        self.cmd = Cow::Owned(next);
    }
}

/// A flag the command line names.
enum Found<'a> {
    Flag(&'a Arg),
    /// The help flag clap adds itself.
    Help,
}

impl Found<'_> {
    fn kind(&self) -> Kind {
        match self {
            Found::Flag(a) => kind(a),
            Found::Help => Kind::Help,
        }
    }
}

/// `-d, --detach` or `--name`, as pflag names a flag in its errors.
fn flag_title(arg: &Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (None, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// The words clap reads, built as flags are taken.
struct Out {
    words: Vec<Option<OsString>>,
    /// Where each boolean flag was last written: a later one replaces it.
    bools: HashMap<String, usize>,
}

impl Out {
    fn push(&mut self, w: impl Into<OsString>) {
        self.words.push(Some(w.into()));
    }

    fn flag_name(arg: &Arg) -> String {
        match (arg.get_long(), arg.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => format!("--{}", arg.get_id()),
        }
    }

    fn set_bool(&mut self, arg: &Arg, value: bool) {
        if let Some(i) = self.bools.remove(arg.get_id().as_str()) {
            self.words[i] = None;
        }
        let word = match kind(arg) {
            Kind::Switch if value => Self::flag_name(arg),
            Kind::Switch => return,
            _ => format!("{}={value}", Self::flag_name(arg)),
        };
        self.bools
            .insert(arg.get_id().as_str().to_string(), self.words.len());
        self.push(word);
    }

    fn set_value(&mut self, arg: &Arg, value: &str) {
        self.push(format!("{}={value}", Self::flag_name(arg)));
    }
}

/// Rewrites `args` (with the program name first) for clap. `root` need not
/// be built: each subcommand the words name is built as they reach it.
pub fn normalize(root: &Command, args: Vec<OsString>) -> Result<Vec<OsString>, FlagError> {
    let mut out = Out {
        words: Vec::with_capacity(args.len()),
        bools: HashMap::new(),
    };
    let mut words = args.into_iter();
    if let Some(program) = words.next() {
        out.push(program);
    }
    let mut scope = Scope {
        cmd: Cow::Borrowed(root),
        globals: Vec::new(),
    };
    let mut path = vec![root.get_name().to_string()];
    let mut flags_done = false;
    let err = |path: &[String], message: String| FlagError {
        message,
        command: path.join(" "),
    };
    while let Some(word) = words.next() {
        if flags_done {
            out.push(word);
            continue;
        }
        let Some(w) = word.to_str().map(str::to_string) else {
            out.push(word);
            continue;
        };
        if w == "--" {
            out.push(word);
            flags_done = true;
        } else if let Some(long) = w.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(found) = scope.find_long(name) else {
                return Err(err(&path, format!("unknown flag: --{name}")));
            };
            let arg = match found {
                Found::Help => {
                    out.push(word);
                    continue;
                }
                Found::Flag(arg) => arg,
            };
            match kind(arg) {
                Kind::Help => out.push(word),
                Kind::Switch | Kind::Bool => {
                    let value = match attached {
                        None => true,
                        Some(v) => parse_bool(v).ok_or_else(|| err(&path, bad_bool(arg, v)))?,
                    };
                    out.set_bool(arg, value);
                }
                Kind::Value => {
                    let value = match attached {
                        Some(v) => v.to_string(),
                        None => next_value(&mut words).ok_or_else(|| {
                            err(&path, format!("flag needs an argument: --{name}"))
                        })?,
                    };
                    out.set_value(arg, &value);
                }
            }
        } else if w.len() > 1 && w.starts_with('-') {
            let shorts: Vec<char> = w[1..].chars().collect();
            let mut i = 0;
            while i < shorts.len() {
                let c = shorts[i];
                let Some(found) = scope.find_short(c) else {
                    return Err(err(&path, format!("unknown shorthand flag: '{c}' in {w}")));
                };
                let rest: String = shorts[i + 1..].iter().collect();
                match (found.kind(), found) {
                    (_, Found::Help) | (Kind::Help, _) => {
                        out.push("--help");
                        i += 1;
                    }
                    (Kind::Switch | Kind::Bool, Found::Flag(arg)) => {
                        if let Some(v) = rest.strip_prefix('=') {
                            let value =
                                parse_bool(v).ok_or_else(|| err(&path, bad_bool(arg, v)))?;
                            out.set_bool(arg, value);
                            break;
                        }
                        out.set_bool(arg, true);
                        i += 1;
                    }
                    (Kind::Value, Found::Flag(arg)) => {
                        let attached = rest.strip_prefix('=').unwrap_or(&rest);
                        let value = if attached.is_empty() && !rest.starts_with('=') {
                            next_value(&mut words).ok_or_else(|| {
                                err(&path, format!("flag needs an argument: '{c}' in -{c}"))
                            })?
                        } else {
                            attached.to_string()
                        };
                        out.set_value(arg, &value);
                        break;
                    }
                }
            }
        } else if scope.cmd.has_subcommands() {
            match scope.cmd.find_subcommand(&w).cloned() {
                Some(sub) => {
                    path.push(sub.get_name().to_string());
                    scope.enter(&sub);
                }
                // clap says the command is unknown.
                None => flags_done = true,
            }
            out.push(word);
        } else {
            // An argument. Commands that run a program stop reading flags at
            // their first argument: the rest is the program's.
            if scope
                .cmd
                .get_positionals()
                .any(Arg::is_trailing_var_arg_set)
            {
                flags_done = true;
            }
            out.push(word);
        }
    }
    Ok(out.words.into_iter().flatten().collect())
}

/// The next word as a flag's value (pflag takes it whatever it looks like).
fn next_value(words: &mut impl Iterator<Item = OsString>) -> Option<String> {
    words.next().map(|w| w.to_string_lossy().into_owned())
}

fn bad_bool(arg: &Arg, value: &str) -> String {
    format!(
        "invalid argument \"{value}\" for \"{}\" flag: strconv.ParseBool: parsing \"{value}\": invalid syntax",
        flag_title(arg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn norm(args: &str) -> Result<String, String> {
        let root = crate::cli::Cli::command();
        let words = std::iter::once("berth")
            .chain(args.split(' '))
            .map(OsString::from)
            .collect();
        normalize(&root, words)
            .map(|v| {
                v[1..]
                    .iter()
                    .map(|w| w.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .map_err(|e| format!("{} ({})", e.message, e.command))
    }

    /// What a user types, and what clap is handed.
    #[test]
    fn docker_forms() {
        let cases = [
            ("run --rm=true busybox", "run --rm busybox"),
            ("run --rm=false busybox", "run busybox"),
            ("run --rm --rm=false busybox", "run busybox"),
            ("run --rm=false --rm busybox", "run --rm busybox"),
            ("run -d=false busybox", "run busybox"),
            ("run --detach=true busybox", "run --detach busybox"),
            ("run --privileged=false busybox", "run busybox"),
            ("run --tty=false busybox", "run busybox"),
            (
                "run -dit busybox sh",
                "run --detach --interactive --tty busybox sh",
            ),
            ("run -eA=B busybox", "run --env=A=B busybox"),
            ("run -e=A=B busybox", "run --env=A=B busybox"),
            ("run -e A=B busybox", "run --env=A=B busybox"),
            ("run -p8080:80 busybox", "run --publish=8080:80 busybox"),
            ("run -p=80:80 busybox", "run --publish=80:80 busybox"),
            ("run -w/tmp busybox", "run --workdir=/tmp busybox"),
            ("run -uroot busybox", "run --user=root busybox"),
            ("run -v/a:/b busybox", "run --volume=/a:/b busybox"),
            (
                "run -itv/a:/b busybox",
                "run --interactive --tty --volume=/a:/b busybox",
            ),
            ("run --sig-proxy busybox", "run --sig-proxy=true busybox"),
            (
                "run --sig-proxy=false busybox",
                "run --sig-proxy=false busybox",
            ),
            (
                "run --stop-timeout -1 busybox",
                "run --stop-timeout=-1 busybox",
            ),
            ("run --net host busybox", "run --network=host busybox"),
            ("run -h web busybox", "run --hostname=web busybox"),
            // The program's own flags are the program's.
            ("run busybox ls -la --rm", "run busybox ls -la --rm"),
            ("run busybox -x", "run busybox -x"),
            ("exec -it c sh -c x", "exec --interactive --tty c sh -c x"),
            ("exec -eX=1 c env", "exec --env=X=1 c env"),
            ("top c -ef", "top c -ef"),
            // Flags after arguments, as pflag takes them elsewhere.
            ("rm c1 -f", "rm c1 --force"),
            ("ps -a=false -q", "ps --quiet"),
            ("ps --no-trunc=true", "ps --no-trunc"),
            ("images --no-trunc=1", "images --no-trunc"),
            ("ps -n -1", "ps --last=-1"),
            ("--root state run busybox", "--root=state run busybox"),
            ("-D ps", "--debug ps"),
            ("container ls -aq", "container ls --all --quiet"),
            (
                "network create -d bridge n",
                "network create --driver=bridge n",
            ),
            ("rm -- -x", "rm -- -x"),
            ("run --help", "run --help"),
            ("ps -h", "ps --help"),
            ("load -i -", "load --input=-"),
        ];
        for (typed, want) in cases {
            assert_eq!(norm(typed).as_deref(), Ok(want), "{typed}");
        }
    }

    #[test]
    fn docker_errors() {
        let cases = [
            ("run --foo busybox", "unknown flag: --foo (berth run)"),
            ("ps -x", "unknown shorthand flag: 'x' in -x (berth ps)"),
            ("ps -ax", "unknown shorthand flag: 'x' in -ax (berth ps)"),
            (
                "run -d=maybe busybox",
                "invalid argument \"maybe\" for \"-d, --detach\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax (berth run)",
            ),
            (
                "images --no-trunc=yes",
                "invalid argument \"yes\" for \"--no-trunc\" flag: strconv.ParseBool: parsing \"yes\": invalid syntax (berth images)",
            ),
            ("run -e", "flag needs an argument: 'e' in -e (berth run)"),
            ("run --name", "flag needs an argument: --name (berth run)"),
            ("volume ls --bogus", "unknown flag: --bogus (berth volume ls)"),
        ];
        for (typed, want) in cases {
            assert_eq!(norm(typed), Err(want.to_string()), "{typed}");
        }
    }

    #[test]
    fn booleans() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("yes"), None);
    }
}
