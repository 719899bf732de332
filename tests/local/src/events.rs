//! `cargo xtask events`: writes the signed sample events `events/webhook-ingest-<name>.json`
//! from the Meta-shaped bodies in `shared/testdata/webhook/<name>.json`.
//!
//! Only the file handling lives here: what each event holds (the body compacted as Meta sends
//! it, signed with the local stack's default app secret) is the library's
//! [`prechat::entrypoints::sample_events`], whose check
//! `every_sample_event_is_signed_current_and_ingests` asserts the written files are current.

use std::path::Path;

use prechat::entrypoints::sample_events::{ingest_event_file, SAMPLES};

/// Writes every sample event under `root/events/`; returns the files written.
pub fn write_ingest_events(root: &Path) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for (i, name) in SAMPLES.iter().enumerate() {
        let source = root
            .join("shared/testdata/webhook")
            .join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let path = root
            .join("events")
            .join(format!("webhook-ingest-{name}.json"));
        std::fs::write(&path, ingest_event_file(&text, i))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
