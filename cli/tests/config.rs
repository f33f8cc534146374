//! The optional configuration file: its settings reach the command, flags and the
//! environment win over it, and a key that names no option is refused.

use std::process::Command;

const TAPE: &str = env!("CARGO_BIN_EXE_tape");

fn tape(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(TAPE);
    c.args(args)
        .env_remove("TAPE_DATA")
        .env_remove("TAPE_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn settings_come_from_the_file_unless_a_flag_or_the_environment_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_env, from_flag) = (
        dir.path().join("file"),
        dir.path().join("env"),
        dir.path().join("flag"),
    );
    let config = dir.path().join("tape.toml");
    std::fs::write(
        &config,
        format!("data = \"{}\"\n[mm]\nlevels = 3\n", from_file.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // `tape project` prints where the read models are: DATA/views.
    let (ok, out) = tape(&["--config", config, "project"], &[]);
    assert!(
        ok && out.contains(&format!("{}", from_file.join("views").display())),
        "{out}"
    );
    let (ok, out) = tape(
        &["project", "--config", config],
        &[("TAPE_DATA", from_env.to_str().unwrap())],
    );
    assert!(
        ok && out.contains(&format!("{}", from_env.join("views").display())),
        "{out}"
    );
    let (ok, out) = tape(
        &["project", "--data", from_flag.to_str().unwrap()],
        &[("TAPE_CONFIG", config)],
    );
    assert!(
        ok && out.contains(&format!("{}", from_flag.join("views").display())),
        "{out}"
    );
}

#[test]
fn a_key_that_names_no_option_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tape.toml");
    std::fs::write(&config, "dta = \"/tmp/x\"\n").unwrap();
    let (ok, out) = tape(&["--config", config.to_str().unwrap(), "demo"], &[]);
    assert!(!ok && out.contains("`dta` is not a setting"), "{out}");
}
