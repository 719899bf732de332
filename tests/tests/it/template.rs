//! The template, the function crates and the sample events agree with each other.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(prechat_tests::template_path()).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn functions_in_template() -> Vec<(String, Value)> {
    let doc = template();
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn crates_in_functions_dir() -> BTreeSet<String> {
    std::fs::read_dir(prechat_tests::workspace_root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_function_crate_is_wired_in_the_template_and_vice_versa() {
    let crates = crates_in_functions_dir();
    let mut binaries = BTreeSet::new();
    for (id, f) in functions_in_template() {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        let bin = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names no Binary"))
            .to_owned();
        assert!(
            crates.contains(&bin),
            "{id} builds {bin}, but functions/{bin} does not exist"
        );
        binaries.insert(bin);
    }
    assert_eq!(
        binaries, crates,
        "every crate in functions/ must be a function in the template"
    );
}

#[test]
fn every_function_has_a_sample_event_and_its_own_log_group() {
    let events: Vec<String> = std::fs::read_dir(prechat_tests::workspace_root().join("events"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for (id, f) in functions_in_template() {
        let bin = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.starts_with(bin) && e.ends_with(".json")),
            "{id}: no events/{bin}*.json"
        );
        let log_group = &f["Properties"]["LoggingConfig"]["LogGroup"];
        assert!(
            !log_group.is_null(),
            "{id}: no LoggingConfig.LogGroup (log retention)"
        );
    }
}

#[test]
fn no_secret_values_in_the_template() {
    // Secrets are only ever referenced by SSM parameter name (`*_PARAM`).
    for (id, f) in functions_in_template() {
        if let Some(vars) = f["Properties"]["Environment"]["Variables"].as_mapping() {
            for (k, _) in vars {
                let k = k.as_str().unwrap();
                if k.starts_with("WHATSAPP_") {
                    assert!(k.ends_with("_PARAM"), "{id} sets secret {k} in clear");
                }
            }
        }
    }
}

#[test]
fn function_mains_stay_thin() {
    // Logic belongs in `prechat::entrypoints`; a main only builds clients and runs the loop.
    for name in crates_in_functions_dir() {
        let path = prechat_tests::workspace_root()
            .join("functions")
            .join(&name)
            .join("src/main.rs");
        let code_lines = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
            .count();
        assert!(
            code_lines <= 30,
            "functions/{name}/src/main.rs has {code_lines} lines of code"
        );
    }
}
