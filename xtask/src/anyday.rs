//! The "any day" step of `cargo xtask test`: the same Rust test suite again with the system
//! clock moved ahead (Debian's `faketime`, installed with apt when missing), against a second
//! moto started under the same moved clock. A test that passes today but depends on the date
//! (a sample event's fixed timestamp inside a 24-hour window, a hard-coded year) fails here.
//!
//! Measured traps (see the team notes): with a faked monotonic clock Python's condition waits
//! never return, so `DONT_FAKE_MONOTONIC=1` is set; `rustdoc` (doc tests) and chromium hang
//! under faketime even then, so this step runs `--lib --bins --tests` and not the browser test.
//! With `DONT_FAKE_MONOTONIC=1`, libfaketime answers Python's `time.sleep` with EINVAL;
//! `xtask/moto_server.py` replaces `time.sleep` by a condition wait when it runs under faketime.

use std::path::Path;
use std::process::Command;

use crate::venv::Venv;
use crate::{procs, run};

const FAKETIME: &str = "/usr/bin/faketime";

/// Days the clock moves ahead: `PRECHAT_CLOCK_SHIFT_DAYS` (default 60; 0 skips the step).
pub fn shift_days() -> Result<u32, String> {
    match std::env::var("PRECHAT_CLOCK_SHIFT_DAYS") {
        Err(_) => Ok(60),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("PRECHAT_CLOCK_SHIFT_DAYS={v:?} is not a number of days")),
    }
}

fn ensure_faketime() -> Result<(), String> {
    if Path::new(FAKETIME).exists() {
        return Ok(());
    }
    eprintln!("{FAKETIME} is missing: installing Debian's faketime");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "faketime"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Wraps `program` so it runs `days` ahead of the real clock.
fn shifted(days: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(FAKETIME);
    cmd.arg("-f")
        .arg(format!("+{days}d"))
        .arg(program)
        .env("DONT_FAKE_MONOTONIC", "1");
    cmd
}

/// Runs the Rust tests `days` ahead; `extra` are the arguments given to `cargo xtask test`.
pub fn run_shifted(root: &Path, venv: &Venv, days: u32, extra: &[String]) -> Result<(), String> {
    ensure_faketime()?;
    // Everything is compiled under the real clock first: rustc itself can hang under
    // faketime (seen when the first pass had failed to build and this one had to compile),
    // and a build error then fails the step at once instead of holding CI until its timeout.
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "test",
            "--workspace",
            "--lib",
            "--bins",
            "--tests",
            "--no-run",
        ])
        .args(extra)
        .current_dir(root);
    venv.apply_env(&mut build);
    run(&mut build)?;
    let mut moto_cmd = shifted(days, venv.bin("python"));
    let moto = procs::start_moto_with(moto_cmd.arg(root.join("xtask/moto_server.py")))?;
    eprintln!("moto {days} days ahead on {moto}");
    let mut cargo = shifted(days, env!("CARGO"));
    cargo
        .args([
            "test",
            "--workspace",
            "--lib",
            "--bins",
            "--tests",
            "--no-fail-fast",
        ])
        .args(extra)
        .current_dir(root);
    venv.apply_env(&mut cargo);
    crate::aws_env(&mut cargo, &moto);
    run(&mut cargo)
}
