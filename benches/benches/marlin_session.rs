//! The Marlin host state machine alone: lines per second through `Session` (framing, history,
//! window, `ok` parsing and attribution), and the firmware-line parser.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use easyprint_marlin::{FirmwareLine, FlowPolicy, Session, SessionConfig};

fn connected(flow: FlowPolicy, advanced: bool) -> (Session, Instant) {
    let now = Instant::now();
    let mut s = Session::new(
        SessionConfig {
            flow,
            ..SessionConfig::default()
        },
        now,
    );
    let mut out = Vec::new();
    let ok: &[u8] = if advanced { b"ok N0 P15 B3\n" } else { b"ok\n" };
    s.poll_transmit(now, &mut out);
    s.handle_rx(now, ok);
    s.poll_transmit(now, &mut out);
    s.handle_rx(now, b"FIRMWARE_NAME:Marlin 2.1.2\n");
    s.handle_rx(now, if advanced { b"ok N1 P15 B3\n" } else { b"ok\n" });
    while s.poll_event().is_some() {}
    (s, now)
}

const LINES: u64 = 10_000;

fn session(c: &mut Criterion) {
    let job: Vec<String> = (0..LINES)
        .map(|i| {
            format!(
                "G1 X{}.{:03} Y{}.{:03} E{}.{:05}",
                i % 200,
                i % 1000,
                i % 150,
                (i * 7) % 1000,
                i / 10,
                i % 100_000
            )
        })
        .collect();
    let mut g = c.benchmark_group("marlin_session");
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("ping_pong_plain_ok", |b| {
        b.iter_batched(
            || connected(FlowPolicy::PingPong, false),
            |(mut s, now)| {
                let mut out = Vec::with_capacity(256);
                for line in &job {
                    s.send(line).unwrap();
                    out.clear();
                    s.poll_transmit(now, &mut out);
                    s.handle_rx(now, b"ok\n");
                    while s.poll_event().is_some() {}
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("credit_advanced_ok", |b| {
        let oks: Vec<Vec<u8>> = (0..LINES)
            .map(|i| format!("ok N{} P15 B3\n", i + 2).into_bytes())
            .collect();
        b.iter_batched(
            || connected(FlowPolicy::Auto { rx_bytes: 128 }, true),
            |(mut s, now)| {
                let mut out = Vec::with_capacity(256);
                for (line, ok) in job.iter().zip(&oks) {
                    s.send(line).unwrap();
                    out.clear();
                    s.poll_transmit(now, &mut out);
                    s.handle_rx(now, ok);
                    while s.poll_event().is_some() {}
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let lines: [&[u8]; 5] = [
        b"ok",
        b"ok N1645 P57 B63",
        b"ok T:201.23 /200.00 B:60.01 /60.00 @:80 B@:127",
        b"echo:busy: processing",
        b"Error:checksum mismatch, Last Line: 11",
    ];
    let mut g = c.benchmark_group("firmware_line_parse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("mixed", |b| {
        b.iter(|| {
            for l in lines {
                std::hint::black_box(FirmwareLine::parse(std::hint::black_box(l)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
