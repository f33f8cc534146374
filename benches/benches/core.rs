//! Criterion benchmark of the core on the standard mix (see benches/README.md).
//! `cargo bench -p tape-benches` runs it; `tape bench core` gives the headline line.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tape_benches::{prepared_core, run_commands, standard_mix};

const COMMANDS: u64 = 200_000;
const SEED: u64 = 1;

fn core_standard_mix(c: &mut Criterion) {
    let mix = standard_mix(COMMANDS, SEED);
    let start = prepared_core(&mix);
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(COMMANDS));
    group.sample_size(20);
    group.bench_function("standard_mix", |b| {
        b.iter_batched(
            || start.clone(),
            |mut core| run_commands(&mut core, &mix.commands),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, core_standard_mix);
criterion_main!(benches);
