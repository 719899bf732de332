//! prechat-admin: the admin command (surveys, agents, teams, conversations).
//!
//! Runs on an admin's machine with their AWS credentials against the deployed table
//! (`PRECHAT_TABLE`, or `--table NAME`); `cargo run -p prechat --bin prechat-admin -- help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    prechat::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match prechat::admin::run(args).await {
        Ok(output) => {
            // Empty when the command streamed its output itself (`answers export`).
            if !output.is_empty() {
                println!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prechat-admin: {e}");
            ExitCode::from(2)
        }
    }
}
