//! The project-local Python virtualenv (`.venv`, git-ignored) with the pinned tools from
//! `xtask/requirements.txt`. Created on first use; re-installed when the requirements change.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Venv {
    pub dir: PathBuf,
}

impl Venv {
    pub fn bin(&self, tool: &str) -> PathBuf {
        self.dir.join("bin").join(tool)
    }

    /// Puts the venv's tools (cargo-lambda, sam, moto_server) first on PATH.
    pub fn apply_env(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.dir.join("bin")];
        paths.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(paths) {
            cmd.env("PATH", joined);
        }
        cmd.env("VIRTUAL_ENV", &self.dir)
            .env("SAM_CLI_TELEMETRY", "0");
    }
}

pub fn ensure(root: &Path) -> Result<Venv, String> {
    let dir = root.join(".venv");
    let requirements = root.join("xtask/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = dir.join(".prechat-requirements");
    let venv = Venv { dir: dir.clone() };
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && venv.bin("moto_server").exists()
    {
        eprintln!("up to date ({})", dir.display());
        return Ok(venv);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if !venv.bin("python").exists() {
        crate::run(Command::new(&python).args(["-m", "venv"]).arg(&dir))?;
    }
    crate::run(
        Command::new(venv.bin("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(venv)
}
