//! Authenticate + parse + normalise one webhook delivery (`entrypoints::ingest::accept`), for a
//! 1-message and a 10-message delivery shaped like Meta's. Queueing is not included: it is a
//! network call. Run: `cargo bench -p prechat --bench ingest`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prechat::entrypoints::ingest::accept;
use prechat::secrets::Secret;
use prechat::whatsapp::signature::Verifier;
use prechat::whatsapp::{normalize::normalize, webhook};

const TEXT: &str = include_str!("../testdata/webhook/text.json");
/// "Now" for the benchmark: the sample's own time, so nothing is clamped.
const NOW: i64 = 1_763_931_600;

/// The sample text delivery with `n` messages, compacted as Meta sends it.
fn delivery(n: usize) -> String {
    let mut v: serde_json::Value = serde_json::from_str(TEXT).expect("sample is JSON");
    let value = &mut v["entry"][0]["changes"][0]["value"];
    let first = value["messages"][0].clone();
    value["messages"] = (0..n)
        .map(|i| {
            let mut m = first.clone();
            m["id"] = format!("wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0R{i:03}=")
                .into();
            m
        })
        .collect();
    v.to_string()
}

fn bench(c: &mut Criterion) {
    let verifier = Verifier::new(&Secret::new("local-app-secret"));
    let mut group = c.benchmark_group("ingest_accept");
    for n in [1usize, 10] {
        let body = delivery(n);
        let sig = verifier.sign(body.as_bytes());
        let events = accept(&verifier, Some(sig.as_bytes()), body.as_bytes(), NOW)
            .expect("sample is accepted")
            .events
            .len();
        assert_eq!(events, n);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{n}_message_delivery_{}_bytes", body.len()), |b| {
            b.iter(|| {
                accept(
                    black_box(&verifier),
                    black_box(Some(sig.as_bytes())),
                    black_box(body.as_bytes()),
                    NOW,
                )
            })
        });
    }
    group.finish();

    // Where the single-message time goes: each step alone.
    let body = delivery(1);
    let sig = verifier.sign(body.as_bytes());
    let mut parts = c.benchmark_group("ingest_parts_1_message");
    parts.bench_function("signature", |b| {
        b.iter(|| verifier.verify(black_box(Some(sig.as_bytes())), black_box(body.as_bytes())))
    });
    parts.bench_function("parse", |b| {
        b.iter(|| webhook::parse(black_box(body.as_bytes())))
    });
    let parsed = webhook::parse(body.as_bytes()).expect("sample parses");
    parts.bench_function("normalize", |b| {
        b.iter_batched(
            || parsed.clone(),
            |p| normalize(p, NOW),
            criterion::BatchSize::SmallInput,
        )
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
