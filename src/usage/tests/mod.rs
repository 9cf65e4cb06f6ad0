//! Tests of the usage scanner and the SSE usage-chunk stripper, with shared split helpers.

mod fast_path;
mod fixtures;
mod members;
mod oracle;
mod scanner;
mod stripper;
mod throughput;

use super::{Format, Usage, UsageChunkStripper, UsageScanner};
use crate::testing::{RngCore, SplitMix64, TestRng};

/// Cuts `input` at the given increasing positions.
pub(super) fn cut<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for &at in cuts {
        chunks.push(&input[from..at]);
        from = at;
    }
    chunks.push(&input[from..]);
    chunks
}

/// The ways `len` bytes are split in the tests: whole, every 2-way split point, one byte per
/// chunk, and deterministic pseudo-random many-way splits with pieces of varied sizes
/// (including empty chunks).
pub(super) fn split_plans(len: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut plans = vec![Vec::new()];
    plans.extend((0..=len).map(|at| vec![at]));
    plans.push((1..len).collect());
    let mut rng = SplitMix64::new(seed);
    for round in 0..200 {
        let max_piece = [1, 2, 3, 5, 8, 13, 64, 300][round % 8];
        plans.push(random_cuts(len, &mut rng, max_piece));
    }
    plans
}

/// Pseudo-random cut positions for `len` bytes, pieces of `0..=max_piece` bytes.
pub(super) fn random_cuts(len: usize, rng: &mut SplitMix64, max_piece: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        at += rng.below(max_piece + 1);
        if at >= len {
            return cuts;
        }
        cuts.push(at);
    }
}

pub(super) fn scan(format: Format, chunks: &[&[u8]]) -> Option<Usage> {
    let mut scanner = UsageScanner::new(format);
    for chunk in chunks {
        scanner.feed(chunk);
    }
    scanner.usage()
}

/// Asserts the scanner reports `expected` however `input` is split.
pub(super) fn assert_usage_for_all_splits(format: Format, input: &[u8], expected: Option<Usage>) {
    for cuts in split_plans(input.len(), input.len() as u64) {
        let got = scan(format, &cut(input, &cuts));
        assert_eq!(got, expected, "{format:?} split at {cuts:?}");
    }
}

/// What the client receives: `end_of_stream` either on the last chunk or on an extra empty one.
pub(super) fn strip(chunks: &[&[u8]], eos_on_last: bool) -> (Vec<u8>, Option<Usage>) {
    let mut stripper = UsageChunkStripper::new();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        out.extend_from_slice(&stripper.filter(chunk, eos_on_last && last));
    }
    if !eos_on_last {
        out.extend_from_slice(&stripper.filter(&[], true));
    }
    (out, stripper.usage())
}

/// Asserts the stripper turns `input` into `expected` however it is split.
pub(super) fn assert_stripped_for_all_splits(input: &[u8], expected: &[u8]) {
    for cuts in split_plans(input.len(), input.len() as u64 ^ 0x5eed) {
        let chunks = cut(input, &cuts);
        for eos_on_last in [true, false] {
            let (out, _) = strip(&chunks, eos_on_last);
            assert!(
                out == expected,
                "split at {cuts:?} (eos on last: {eos_on_last}):\n got: {}\nwant: {}",
                String::from_utf8_lossy(&out).escape_debug(),
                String::from_utf8_lossy(expected).escape_debug()
            );
        }
    }
}

/// Asserts the stripper turns `input` into `expected` for `rounds` more pseudo-random many-way
/// splits (pieces of 0 to 1..=96 bytes).
pub(super) fn assert_stripped_for_random_splits(input: &[u8], expected: &[u8], rounds: usize) {
    let mut rng = SplitMix64::new(input.len() as u64 ^ 0xc0ffee);
    for round in 0..rounds {
        let cuts = random_cuts(input.len(), &mut rng, 1 + round % 96);
        let (out, _) = strip(&cut(input, &cuts), round % 2 == 0);
        assert!(
            out == expected,
            "split at {cuts:?}:\n got: {}\nwant: {}",
            String::from_utf8_lossy(&out).escape_debug(),
            String::from_utf8_lossy(expected).escape_debug()
        );
    }
}

/// `stream` without the `,"usage":null` that `include_usage` adds as the last member of every
/// other chunk (for fixtures where that is the only place it occurs).
pub(super) fn without_null_usage(stream: &str) -> String {
    stream.replace(",\"usage\":null", "")
}

/// `stream` with `event` (which must occur exactly once) removed.
pub(super) fn without(stream: &str, event: &str) -> String {
    assert_eq!(
        stream.matches(event).count(),
        1,
        "fixture must hold the event once"
    );
    stream.replacen(event, "", 1)
}
