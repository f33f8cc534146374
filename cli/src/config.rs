//! An optional configuration file (TOML). Every option that has an environment
//! variable can be set in it: a top-level key `data` sets `TAPE_DATA`, a key in a
//! table (`[mm] market = "BTC-USDT"`) sets `TAPE_MM_MARKET`; dashes become
//! underscores. Flags win over the environment, which wins over the file, which wins
//! over the defaults. A key that names no option is an error, not a silent typo.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;

/// The environment variables the command line reads, from clap's own description.
pub fn known_env(command: &clap::Command) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for sub in command.get_subcommands() {
        names.extend(known_env(sub));
    }
    names
}

/// The settings of a configuration file as (environment variable, value) pairs.
pub fn settings(text: &str, known: &BTreeSet<String>) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = toml::from_str(text)?;
    let mut out = Vec::new();
    flatten("TAPE", &table, known, &mut out)?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    known: &BTreeSet<String>,
    out: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    for (key, value) in table {
        let name = format!("{prefix}_{}", key.to_uppercase().replace('-', "_"));
        let text = match value {
            toml::Value::Table(t) => {
                flatten(&name, t, known, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                anyhow::bail!("`{key}`: {other} is not a setting (use a string, number or boolean)")
            }
        };
        if !known.contains(&name) {
            anyhow::bail!("`{key}` is not a setting (it would be {name}); `tape <command> --help` lists every option and its variable");
        }
        out.push((name, text));
    }
    Ok(())
}

/// Reads `path` and sets each setting the environment does not already set.
pub fn apply(path: &Path, command: &clap::Command) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let settings = settings(&text, &known_env(command))
        .with_context(|| format!("in the configuration file {}", path.display()))?;
    for (name, value) in settings {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called at start-up, before the runtime or any other thread
            // exists.
            unsafe { std::env::set_var(name, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        [
            "TAPE_DATA",
            "TAPE_KAFKA",
            "TAPE_CHECKPOINT_EVERY",
            "TAPE_MM_MARKET",
            "TAPE_SHADOW",
        ]
        .map(String::from)
        .into()
    }

    #[test]
    fn keys_map_to_the_options_environment_variables() {
        let text = "data = \"/srv/tape\"\ncheckpoint-every = 5000\nshadow = true\n[mm]\nmarket = \"BTC-USDT\"\n";
        let mut got = settings(text, &known()).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("TAPE_CHECKPOINT_EVERY".to_string(), "5000".to_string()),
                ("TAPE_DATA".into(), "/srv/tape".into()),
                ("TAPE_MM_MARKET".into(), "BTC-USDT".into()),
                ("TAPE_SHADOW".into(), "true".into()),
            ]
        );
    }

    #[test]
    fn an_unknown_key_or_bad_toml_is_an_error() {
        let e = settings("dta = \"x\"", &known()).unwrap_err().to_string();
        assert!(e.contains("`dta` is not a setting"), "{e}");
        assert!(settings("data = ", &known()).is_err());
        assert!(settings("data = [1, 2]", &known()).is_err());
    }
}
