//! The Internet checksum (RFC 1071) at the sizes the data plane sums: a 20-byte IPv4
//! header, a 64-byte segment, a 1500-byte frame, a 9000-byte jumbo frame and a 64 KiB
//! super-segment. Three implementations side by side: `sum` (one add-with-carry chain of
//! 64-bit words per 128-byte block), `sum_carry64` (two 64-bit accumulators with end-around
//! carry, an add and an add-with-carry per word) and the RFC 1071 §4.1 reference loop.
//! Throughput in bytes/s per core.
//!
//! Run: `cargo bench -p dataplane --no-default-features --bench checksum`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::wire::checksum::{reference_rfc1071, sum, sum_carry64};

fn checksums(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [20usize, 64, 1500, 9000, 65535] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("sum", size), &data, |b, d| b.iter(|| sum(black_box(d), 0)));
        g.bench_with_input(BenchmarkId::new("sum_carry64", size), &data, |b, d| b.iter(|| sum_carry64(black_box(d), 0)));
        g.bench_with_input(BenchmarkId::new("rfc1071_reference", size), &data, |b, d| {
            b.iter(|| reference_rfc1071(black_box(d)))
        });
    }
    g.finish();
}

criterion_group!(benches, checksums);
criterion_main!(benches);
