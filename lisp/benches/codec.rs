//! Parse, write and verify time per message type: `cargo bench -p lisp`.
//! Each sample is a realistic lispguard message (see tests/samples).
//! "parse" checks a message and reads every record and locator of it (a
//! view defers the reading to its iterators: the walk counts it), as the
//! codec before views did; "verify-parse" is what a receiver of an
//! authenticated message does: verify, then parse.

use criterion::{criterion_group, criterion_main, Criterion};
use lisp::{auth, message_type, Algorithm, MapNotify, MapRegister, Message, Record};
use std::hint::black_box;

#[path = "../tests/samples/mod.rs"]
mod samples;

/// Reads every locator of every record: what a receiver does.
fn walk<'a>(records: impl Iterator<Item = Record<'a>>) -> usize {
    records.map(|r| r.locators.iter().count() + 1).sum()
}

fn parse_and_walk(bytes: &[u8]) -> usize {
    match Message::parse(bytes).unwrap() {
        Message::MapRequest(m) => walk(m.map_reply.into_iter()) + m.records.iter().count(),
        Message::MapReply(m) => walk(m.records.iter()),
        Message::Untrusted(u) => walk(u.untrusted_records().iter()),
        Message::Ecm(m) => m.message.len(),
    }
}

fn verify_parse_and_walk(bytes: &[u8]) -> usize {
    let verified = auth::verify(bytes, samples::SITE_KEY).unwrap();
    let body = match verified.message_type() {
        message_type::MAP_REGISTER => MapRegister::parse(&verified).unwrap().body,
        message_type::MAP_NOTIFY => MapNotify::parse(&verified).unwrap().body,
        _ => MapNotify::parse_ack(&verified).unwrap().body,
    };
    walk(body.records.iter())
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, bytes, _) in samples::all() {
        group.bench_function(name, |b| b.iter(|| parse_and_walk(black_box(&bytes))));
    }
    group.finish();
}

fn verify_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify-parse");
    for (name, bytes, _) in samples::all() {
        if name.starts_with("map-register") || name.starts_with("map-notify") {
            group.bench_function(name, |b| {
                b.iter(|| verify_parse_and_walk(black_box(&bytes)))
            });
        }
    }
    group.finish();
}

/// The checked view alone: what reading a nonce costs.
fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
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
        b.iter(|| black_box(&request).emit(&mut buf).unwrap())
    });
    let reply = samples::map_reply();
    group.bench_function("map-reply", |b| {
        b.iter(|| black_box(&reply).emit(&mut buf).unwrap())
    });
    let negative = samples::negative_map_reply();
    group.bench_function("negative-map-reply", |b| {
        b.iter(|| black_box(&negative).emit(&mut buf).unwrap())
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
                    .emit(&mut buf, samples::SITE_KEY)
                    .unwrap()
            })
        });
    }
    let notify = samples::map_notify();
    group.bench_function("map-notify", |b| {
        b.iter(|| {
            black_box(&notify)
                .emit(&mut buf, samples::SITE_KEY)
                .unwrap()
        })
    });
    // The agent's answer to a Map-Notify: its bytes as type 5, signed.
    let notify_bytes = samples::written(|b| notify.emit(b, samples::SITE_KEY));
    let verified = auth::verify(&notify_bytes, samples::SITE_KEY).unwrap();
    group.bench_function("map-notify-ack-from-notify", |b| {
        b.iter(|| {
            black_box(&verified)
                .acknowledge(&mut buf, samples::SITE_KEY)
                .unwrap()
        })
    });
    let inner = samples::written(|b| request.emit(b));
    let ecm = samples::ecm(&inner, "10.1.0.5:40000", "192.0.2.1:4342");
    group.bench_function("ecm-ipv4", |b| {
        b.iter(|| black_box(&ecm).emit(&mut buf).unwrap())
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

criterion_group!(benches, parse, check, verify_parse, write, verify);
criterion_main!(benches);
