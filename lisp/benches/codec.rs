//! Parse and write time per message type: `cargo bench -p lisp`.
//! Each sample is a realistic lispguard message (see tests/samples).

use criterion::{criterion_group, criterion_main, Criterion};
use lisp::{auth, Algorithm, Message};
use std::hint::black_box;

#[path = "../tests/samples/mod.rs"]
mod samples;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, bytes, _) in samples::all() {
        group.bench_function(name, |b| {
            b.iter(|| Message::parse(black_box(&bytes)).unwrap())
        });
    }
    group.finish();
}

fn write(c: &mut Criterion) {
    let mut group = c.benchmark_group("write");
    let mut buf = [0u8; 4096];
    let request = samples::map_request();
    group.bench_function("map-request", |b| {
        b.iter(|| black_box(&request).write(&mut buf).unwrap())
    });
    let reply = samples::map_reply();
    group.bench_function("map-reply", |b| {
        b.iter(|| black_box(&reply).write(&mut buf).unwrap())
    });
    let negative = samples::negative_map_reply();
    group.bench_function("negative-map-reply", |b| {
        b.iter(|| black_box(&negative).write(&mut buf).unwrap())
    });
    for algorithm in [Algorithm::HmacSha256_128, Algorithm::HmacSha1_96] {
        let register = samples::map_register(algorithm);
        let name = match algorithm {
            Algorithm::HmacSha256_128 => "map-register-sha256",
            Algorithm::HmacSha1_96 => "map-register-sha1",
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(&register)
                    .write(&mut buf, samples::SITE_KEY)
                    .unwrap()
            })
        });
    }
    let notify = samples::map_notify();
    group.bench_function("map-notify", |b| {
        b.iter(|| {
            black_box(&notify)
                .write(&mut buf, samples::SITE_KEY)
                .unwrap()
        })
    });
    let inner = samples::written(|b| request.write(b));
    let ecm = samples::ecm(&inner, "10.1.0.5:40000", "192.0.2.1:4342");
    group.bench_function("ecm-ipv4", |b| {
        b.iter(|| black_box(&ecm).write(&mut buf).unwrap())
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for (name, bytes, _) in samples::all() {
        if name.starts_with("map-register") || name == "map-notify" {
            group.bench_function(name, |b| {
                b.iter(|| auth::verify(black_box(&bytes), samples::SITE_KEY).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parse, write, verify);
criterion_main!(benches);
