//! The end-to-end step of `cargo xtask test`: the chat simulator, then the agent inbox next to
//! it, in headless Debian chromium (playwright-core from `tests/e2e/package-lock.json`), each
//! against a local stack of its own started in the background on a free port and stopped by
//! PID afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::venv::Venv;
use crate::{procs, run};

const CHROMIUM: &str = "/usr/bin/chromium";

pub fn run_e2e(root: &Path, venv: &Venv, moto: &str) -> Result<(), String> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("{CHROMIUM} is missing: installing Debian's chromium");
        run(Command::new("apt-get").arg("update"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let e2e = root.join("tests/e2e");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&e2e))?;

    // The web form's JavaScript validators against the Rust validators' test vectors.
    run(Command::new("node")
        .arg("validators.test.mjs")
        .current_dir(&e2e))?;
    let binary = build_stack(root)?;
    // Each test gets a stack of its own (its own prefix in moto): the inbox test counts on
    // agents with free slots and an empty line.
    for (test, prefix) in [
        ("simulator.test.mjs", "e2e-sim"),
        ("inbox.test.mjs", "e2e-inbox"),
        ("webchat.test.mjs", "e2e-web"),
    ] {
        with_stack(root, venv, moto, &binary, prefix, |port, log| {
            run(Command::new("node")
                .arg(test)
                .env("PRECHAT_E2E_URL", format!("http://127.0.0.1:{port}"))
                .env("PRECHAT_E2E_STACK_LOG", log)
                .current_dir(&e2e))
        })?;
    }
    Ok(())
}

/// Starts the local stack on a free port under `prefix`, runs `test` against it, stops it
/// (by PID) and prints its log's tail when the test failed.
fn with_stack(
    root: &Path,
    venv: &Venv,
    moto: &str,
    binary: &Path,
    prefix: &str,
    test: impl FnOnce(u16, &Path) -> Result<(), String>,
) -> Result<(), String> {
    let port = procs::free_port()?;
    let log_path = std::env::temp_dir().join(format!("prechat-local-{port}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(binary);
    cmd.env("PRECHAT_PORT", port.to_string())
        .env(
            "PRECHAT_LOCAL_PREFIX",
            format!("{prefix}-{}", std::process::id()),
        )
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    venv.apply_env(&mut cmd);
    crate::aws_env(&mut cmd, moto);
    let mut stack =
        procs::spawn_tracked(&mut cmd).map_err(|e| format!("{}: {e}", binary.display()))?;
    eprintln!(
        "local stack on 127.0.0.1:{port} (pid {}, log {})",
        stack.id(),
        log_path.display()
    );
    let outcome = wait_healthy(&mut stack, port, &log_path).and_then(|()| test(port, &log_path));
    procs::stop(&mut stack);
    if outcome.is_err() {
        eprintln!(
            "--- local stack log ({}) ---\n{}",
            log_path.display(),
            tail(&log_path, 60)
        );
    }
    outcome
}

/// Builds `prechat-local` (debug) and returns its path.
pub fn build_stack(root: &Path) -> Result<PathBuf, String> {
    run(Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "prechat-local",
            "--bin",
            "prechat-local",
        ])
        .current_dir(root))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() {
        root.join(target)
    } else {
        target
    };
    Ok(target.join("debug").join("prechat-local"))
}

fn wait_healthy(stack: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = stack.try_wait() {
            return Err(format!(
                "the local stack exited ({status}):\n{}",
                tail(log, 40)
            ));
        }
        if health_status(port) == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the local stack did not become healthy:\n{}",
                tail(log, 40)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET /local/health` over a plain socket (xtask carries no HTTP client).
fn health_status(port: u16) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /local/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 16];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
