//! Project automation (the cargo xtask convention).
//!
//! - `cargo xtask test`: installs the Python tools into `.venv` when missing, starts moto on a
//!   free loopback port, lints the SAM template, runs every test against moto, runs them again
//!   with the clock 60 days ahead (`PRECHAT_CLOCK_SHIFT_DAYS`, see `anyday`), then the
//!   end-to-end test of the chat simulator in headless chromium.
//! - `cargo xtask e2e`: only that end-to-end test.
//! - `cargo xtask local`: the whole pipeline on this machine (see README).
//! - `cargo xtask events`: regenerates the signed sample events `events/webhook-ingest-*.json`.
//!
//! Every process started here is stopped by PID on exit, on failure and on Ctrl-C.

mod anyday;
mod e2e;
mod procs;
mod venv;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test     install tools if needed, start moto, lint the template, run every test,
           again with the clock PRECHAT_CLOCK_SHIFT_DAYS (60) days ahead (faketime),
           then the chat simulator end-to-end test (headless chromium)
  local    run the whole pipeline locally (moto, webhook, consumers, chat simulator)
  e2e      only the end-to-end test of the chat simulator (headless chromium)
  events   regenerate events/webhook-ingest-*.json from shared/testdata/webhook
  setup    only install the Python tools into .venv";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    procs::install_signal_handler();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&root, &args[1..]),
        Some("local") => local(&root, &args[1..]),
        Some("e2e") => e2e_only(&root),
        Some("events") => events(&root),
        Some("setup") => venv::ensure(&root).map(|_| ()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    procs::stop_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Runs a command to completion; an error names it.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = procs::run_tracked(cmd).map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

fn test(root: &Path, extra: &[String]) -> Result<(), String> {
    let started = std::time::Instant::now();
    step("Python tools (.venv)");
    let venv = venv::ensure(root)?;

    step("Lint infra/template.yaml");
    let template = root.join("infra/template.yaml");
    run(Command::new(venv.bin("cfn-lint")).arg(&template))?;
    run(Command::new(venv.bin("sam"))
        .args(["validate", "--lint", "-t"])
        .arg(&template)
        .env("SAM_CLI_TELEMETRY", "0")
        .current_dir(root))?;

    step("moto_server");
    let moto = procs::start_moto(&venv)?;
    eprintln!("moto on {moto} (pid {})", procs::last_pid());

    step("cargo test --workspace");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .current_dir(root);
    venv.apply_env(&mut cargo);
    aws_env(&mut cargo, &moto);
    let mut outcome = run(&mut cargo);

    let days = anyday::shift_days()?;
    if days > 0 {
        step(&format!(
            "The same tests with the clock {days} days ahead (faketime; PRECHAT_CLOCK_SHIFT_DAYS)"
        ));
        outcome = outcome.and(anyday::run_shifted(root, &venv, days, extra));
    }

    step("End-to-end: chat simulator and agent inbox in headless chromium");
    let e2e = e2e::run_e2e(root, &venv, &moto);
    if let Err(e) = &e2e {
        eprintln!("xtask: {e}");
    }
    outcome = outcome.and(e2e);
    eprintln!(
        "\nxtask test finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    outcome
}

fn e2e_only(root: &Path) -> Result<(), String> {
    step("Python tools (.venv)");
    let venv = venv::ensure(root)?;
    step("moto_server");
    let moto = procs::start_moto(&venv)?;
    step("End-to-end: chat simulator and agent inbox in headless chromium");
    e2e::run_e2e(root, &venv, &moto)
}

/// Points the AWS SDK at the local protocol server with dummy credentials.
pub fn aws_env(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

fn local(root: &Path, extra: &[String]) -> Result<(), String> {
    step("Python tools (.venv)");
    let venv = venv::ensure(root)?;
    step("build the local stack");
    // Built first and started directly (not through `cargo run`), so the stack's own PID is
    // tracked and stopped with moto on Ctrl-C.
    let binary = e2e::build_stack(root)?;
    step("moto_server");
    let moto = procs::start_moto(&venv)?;
    eprintln!("moto on {moto}");
    step("local stack (Ctrl-C stops everything)");
    let mut cmd = Command::new(&binary);
    cmd.args(extra).current_dir(root);
    venv.apply_env(&mut cmd);
    aws_env(&mut cmd, &moto);
    run(&mut cmd)
}

/// Regenerates the signed sample webhook events (`prechat_local::events`).
fn events(root: &Path) -> Result<(), String> {
    step("events/webhook-ingest-*.json");
    run(Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "prechat-local",
            "--bin",
            "prechat-events",
        ])
        .current_dir(root))
}
