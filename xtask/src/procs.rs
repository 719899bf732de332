//! Child processes started by xtask, tracked by PID so they are always stopped: at the end of
//! a command, when it fails, and on Ctrl-C or SIGTERM.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::venv::Venv;

static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn track(pid: u32) {
    if let Ok(mut p) = PIDS.lock() {
        p.push(pid);
    }
}

fn untrack(pid: u32) {
    if let Ok(mut p) = PIDS.lock() {
        p.retain(|x| *x != pid);
    }
}

pub fn last_pid() -> u32 {
    PIDS.lock()
        .ok()
        .and_then(|p| p.last().copied())
        .unwrap_or(0)
}

/// Sends SIGTERM to every tracked process, then SIGKILL to those still alive.
pub fn stop_all() {
    let pids: Vec<u32> = PIDS
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for pid in pids.iter().rev() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in pids.iter().rev() {
        while alive(*pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(*pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn install_signal_handler() {
    let _ = ctrlc::set_handler(|| {
        eprintln!("\nxtask: interrupted; stopping the processes it started");
        stop_all();
        std::process::exit(130);
    });
}

/// Runs a command to completion while tracking its PID.
pub fn run_tracked(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    let mut child: Child = cmd.spawn()?;
    let pid = child.id();
    track(pid);
    let status = child.wait();
    untrack(pid);
    status
}

/// Starts a long-running process in the background, tracked so it is stopped on exit.
pub fn spawn_tracked(cmd: &mut Command) -> std::io::Result<Child> {
    let child = cmd.spawn()?;
    track(child.id());
    Ok(child)
}

/// Stops one tracked process (SIGTERM, then SIGKILL after 5 s) and reaps it.
pub fn stop(child: &mut Child) {
    let pid = child.id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            untrack(pid);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    untrack(pid);
}

/// A free loopback port (bound and released).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts moto_server on a free loopback port; returns its endpoint once it answers.
/// moto is started through `xtask/moto_server.py`, which applies DynamoDB requests one at a time
/// as real DynamoDB's per-item atomicity requires (see that file).
pub fn start_moto(venv: &Venv) -> Result<String, String> {
    let launcher = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_server.py");
    start_moto_with(Command::new(venv.bin("python")).arg(launcher))
}

/// Starts moto with a prepared launcher command (e.g. under faketime), adding host and port.
pub fn start_moto_with(launcher: &mut Command) -> Result<String, String> {
    let port = free_port()?;
    let log_path = std::env::temp_dir().join(format!("prechat-moto-{port}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let child = launcher
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    track(child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "moto_server did not start; see {}",
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(format!("http://127.0.0.1:{port}"))
}
