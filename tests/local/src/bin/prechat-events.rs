//! `cargo xtask events`: regenerates `events/webhook-ingest-*.json` (see `prechat_local::events`).

fn main() -> std::process::ExitCode {
    match prechat_local::events::write_ingest_events(prechat_local::workspace_root()) {
        Ok(files) => {
            for f in files {
                println!("wrote {f}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prechat-events: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
