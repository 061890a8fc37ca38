//! The arguments after the bundle, read as `lua` reads its own command line.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// What a command line asks for, in `lua`'s terms.
#[derive(Debug, Default)]
pub(super) struct Invocation {
    pub(super) hermetic: bool,
    pub(super) profile: Option<String>,
    pub(super) importtime: bool,
    pub(super) record: Option<PathBuf>,
    pub(super) allow_binary_chunks: bool,
    /// Reload each newer bundle into the running program (`--watch`).
    pub(super) watch: bool,
    /// `--profile-out`, `--profile-format`, `--repeat` and the start-up budgets.
    pub(super) startup: super::startup::StartupOptions,
    pub(super) module: Option<String>,
    /// `-e`, `-l` and `-W`, in command-line order.
    pub(super) actions: Vec<Action>,
    pub(super) interactive: bool,
    pub(super) version: bool,
    pub(super) ignore_environment: bool,
    /// The script: a file, or standard input (`-`).
    pub(super) script: Option<Script>,
    /// Where the script's name is in the arguments after the bundle.
    pub(super) script_at: Option<usize>,
    /// Arguments of the script, or of the entry module after `--`.
    pub(super) args: Vec<OsString>,
    /// `--` was given before the program's arguments.
    pub(super) dashes: bool,
}

#[derive(Debug)]
pub(super) enum Action {
    Code(OsString),
    Library { global: String, module: String },
    Warnings,
}

#[derive(Debug)]
pub(super) enum Script {
    File(OsString),
    Stdin,
}

/// A command line `lua` would refuse: the message `lua` prints.
pub(super) struct Usage(pub(super) String);

/// Whether this flavour's `lua` has an option (`-E` from 5.2, `-W` from 5.4).
pub(super) fn has_option(option: &str) -> bool {
    match option {
        "-E" => !cfg!(any(feature = "lua51", feature = "luajit")),
        "-W" => cfg!(any(feature = "lua54", feature = "lua55")),
        _ => true,
    }
}

/// The start-up profile options, each taking a value.
pub(super) const STARTUP_OPTIONS: [&str; 5] =
    ["--profile-out", "--profile-format", "--repeat", "--max-startup", "--max-module-time"];

/// Sets start-up option `name` (one of [`STARTUP_OPTIONS`]) to `value`.
pub(super) fn startup_option(
    options: &mut super::startup::StartupOptions,
    name: &str,
    value: &str,
) -> Result<(), String> {
    use super::startup::{parse_duration, ProfileFormat};
    match name {
        "--profile-out" => options.out = Some(PathBuf::from(value)),
        "--profile-format" => options.format = Some(ProfileFormat::parse(value)?),
        "--repeat" => {
            options.repeat = value
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("--repeat takes a number of runs (1 or more), not '{value}'"))?;
        }
        "--max-startup" => options.max_startup = Some(parse_duration(value)?),
        _ => options.max_module_time = Some(parse_duration(value)?),
    }
    Ok(())
}

/// Reads the arguments after the bundle as `lua` reads its own.
pub(super) fn parse(rest: &[OsString]) -> Result<Invocation, Usage> {
    let mut run = Invocation::default();
    let mut i = 0;
    // An option's value, attached (`-eCODE`) or the next argument.
    let value = |i: &mut usize, option: &str, attached: &[u8]| -> Result<OsString, Usage> {
        if !attached.is_empty() {
            return Ok(OsString::from(String::from_utf8_lossy(attached).into_owned()));
        }
        *i += 1;
        rest.get(*i).cloned().ok_or_else(|| Usage(format!("'{option}' needs argument")))
    };
    while i < rest.len() {
        let text = rest[i].as_bytes();
        let long = |name: &str| text == name.as_bytes();
        let long_value = |name: &str| text.strip_prefix(format!("{name}=").as_bytes()).map(|v| v.to_vec());
        match text {
            _ if long("--hermetic") => run.hermetic = true,
            _ if long("--importtime") => run.importtime = true,
            _ if long("--allow-binary-chunks") => run.allow_binary_chunks = true,
            _ if long("--watch") => run.watch = true,
            _ if STARTUP_OPTIONS.iter().any(|name| long(name) || long_value(name).is_some()) => {
                let name = STARTUP_OPTIONS.iter().find(|name| long(name) || long_value(name).is_some()).expect("one");
                let v = match long_value(name) {
                    Some(v) => String::from_utf8_lossy(&v).into_owned(),
                    None => value(&mut i, name, b"")?.to_string_lossy().into_owned(),
                };
                startup_option(&mut run.startup, name, &v).map_err(Usage)?;
            }
            _ if long("--profile") || long_value("--profile").is_some() => {
                let v = match long_value("--profile") {
                    Some(v) => OsString::from(String::from_utf8_lossy(&v).into_owned()),
                    None => value(&mut i, "--profile", b"")?,
                };
                run.profile = Some(v.to_string_lossy().into_owned());
            }
            _ if long("--record") || long_value("--record").is_some() => {
                let v = match long_value("--record") {
                    Some(v) => OsString::from(String::from_utf8_lossy(&v).into_owned()),
                    None => value(&mut i, "--record", b"")?,
                };
                run.record = Some(PathBuf::from(v));
            }
            b"--" => {
                run.dashes = true;
                i += 1;
                break;
            }
            b"-" => break,
            [b'-', b'e', attached @ ..] => run.actions.push(Action::Code(value(&mut i, "-e", attached)?)),
            [b'-', b'l', attached @ ..] => {
                let spec = value(&mut i, "-l", attached)?.to_string_lossy().into_owned();
                let (global, module) = match spec.split_once('=') {
                    Some((global, module))
                        if !cfg!(any(feature = "lua51", feature = "lua52", feature = "lua53", feature = "luajit")) =>
                    {
                        (global.to_string(), module.to_string())
                    }
                    _ => (spec.clone(), spec),
                };
                run.actions.push(Action::Library { global, module });
            }
            [b'-', b'm', attached @ ..] => {
                run.module = Some(value(&mut i, "-m", attached)?.to_string_lossy().into_owned());
            }
            b"-i" => {
                run.interactive = true;
                run.version = true;
            }
            b"-v" => run.version = true,
            b"-E" if has_option("-E") => run.ignore_environment = true,
            b"-W" if has_option("-W") => run.actions.push(Action::Warnings),
            [b'-', ..] => {
                let shown = String::from_utf8_lossy(text);
                let option = if matches!(text, [b'-', b'-', ..] | [b'-', b'i' | b'v' | b'E' | b'W', _, ..]) {
                    shown.to_string()
                } else {
                    shown.chars().take(2).collect()
                };
                return Err(Usage(format!("unrecognized option '{option}'")));
            }
            _ => break,
        }
        i += 1;
    }
    if i < rest.len() {
        run.script_at = Some(i);
        run.script =
            Some(if rest[i].as_bytes() == b"-" && !run.dashes { Script::Stdin } else { Script::File(rest[i].clone()) });
        run.args = rest[i + 1..].to_vec();
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Invocation {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args).unwrap_or_else(|Usage(message)| panic!("{message}"))
    }

    #[test]
    fn options_are_read_as_lua_reads_them() {
        let run = parsed(&["--hermetic", "-e", "x=1", "-lm", "-i", "script.lua", "-e", "a"]);
        assert!(run.hermetic && run.interactive && run.version);
        assert_eq!(run.actions.len(), 2);
        assert!(matches!(&run.script, Some(Script::File(f)) if f == "script.lua"));
        assert_eq!(run.args, ["-e", "a"]);
        assert_eq!(run.script_at, Some(5));
        let run = parsed(&["--", "-x.lua", "1"]);
        assert!(matches!(&run.script, Some(Script::File(f)) if f == "-x.lua"));
        assert!(matches!(parsed(&["-", "a"]).script, Some(Script::Stdin)));
        assert!(matches!(parse(&["-x".into()]), Err(Usage(m)) if m == "unrecognized option '-x'"));
        assert!(matches!(parse(&["-e".into()]), Err(Usage(m)) if m == "'-e' needs argument"));
        assert!(matches!(parse(&["-iv".into()]), Err(Usage(m)) if m == "unrecognized option '-iv'"));
    }

    #[test]
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    fn a_global_name_can_be_given_to_a_library() {
        let run = parsed(&["-l", "g=pl.utils", "-W"]);
        assert!(matches!(&run.actions[0], Action::Library { global, module } if global == "g" && module == "pl.utils"));
        assert!(matches!(run.actions[1], Action::Warnings));
    }
}
