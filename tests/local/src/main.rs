//! `cargo xtask local`: the local stack (see `prechat_local`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    prechat::telemetry::init();
    match prechat_local::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prechat-local: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
