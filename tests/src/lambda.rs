//! Runs functions under cargo-lambda's Lambda runtime emulator (`cargo lambda watch`) and
//! invokes them with `cargo lambda invoke`: the Docker-free stand-in for `sam local invoke`.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback TCP port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// Fails with instructions when cargo-lambda is not installed.
pub fn require_cargo_lambda() {
    let ok = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "cargo-lambda is not on PATH: run the tests with `cargo xtask test`, which installs it into .venv"
    );
}

/// `cargo lambda watch` for one package; the whole process group is killed on drop.
pub struct Emulator {
    child: Child,
    pub port: u16,
    log: std::path::PathBuf,
}

impl Emulator {
    /// Starts the emulator for `package` with extra environment variables, and waits until it
    /// accepts connections.
    pub fn start(package: &str, env: &[(&str, &str)]) -> Emulator {
        require_cargo_lambda();
        let port = free_port();
        let root = crate::workspace_root();
        let log = std::env::temp_dir().join(format!("prechat-watch-{package}-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log file: {e}"));
        let mut cmd = Command::new("cargo");
        cmd.args([
            "lambda",
            "watch",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--ignore-changes",
            "-p",
            package,
        ])
        .current_dir(root)
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log_file.try_clone().unwrap_or_else(|e| panic!("{e}")),
        ))
        .stderr(Stdio::from(log_file))
        .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start cargo lambda watch: {e}"));
        let emulator = Emulator { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "emulator did not listen:\n{}",
                emulator.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// The emulator's output so far (cargo build lines and the function's logs).
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// `cargo lambda invoke <function> --data-file <file>`; returns the function's JSON reply.
    /// The first invocation waits for the function to compile, so it is retried for a while.
    pub fn invoke_file(&self, function: &str, data_file: &Path) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let out = Command::new("cargo")
                .args([
                    "lambda",
                    "invoke",
                    function,
                    "-A",
                    "127.0.0.1",
                    "-P",
                    &self.port.to_string(),
                    "-o",
                    "json",
                    "--data-file",
                ])
                .arg(data_file)
                .output()
                .unwrap_or_else(|e| panic!("cannot run cargo lambda invoke: {e}"));
            if out.status.success() {
                return serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                    panic!(
                        "invoke printed no JSON ({e}): {}",
                        String::from_utf8_lossy(&out.stdout)
                    )
                });
            }
            assert!(
                Instant::now() < deadline,
                "invoke failed: {}\n--- emulator log ---\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // cargo lambda watch -> cargo run -> the function: stop the whole group.
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}
