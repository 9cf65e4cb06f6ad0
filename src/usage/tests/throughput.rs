//! Throughput on a realistic 10 MB chat stream. Run with
//! `cargo test --release -- --ignored --nocapture throughput`.

use crate::testing::test;
use std::time::Instant;

use super::fixtures::*;
use super::*;

const WORDS: &[&str] = &[
    " the",
    " model",
    " returns",
    " tokens",
    ",",
    " and",
    " 你好",
    " 👋",
    " streaming",
    ".",
    " usage",
    "\\n",
    " \\\"quoted\\\"",
    " data",
];

/// About `size` bytes of OpenAI-style content chunks with `include_usage` (`"usage":null` on
/// each), then the usage chunk and `[DONE]`; and how many content chunks there are.
fn chat_stream(size: usize) -> (Vec<u8>, usize) {
    let mut chunks = 0;
    let mut rng = SplitMix64::new(99);
    let mut stream = Vec::with_capacity(size + 1024);
    while stream.len() < size {
        let mut content = String::new();
        let max_words = if rng.below(20) == 0 { 200 } else { 3 };
        for _ in 0..1 + rng.below(max_words) {
            content.push_str(WORDS[rng.below(WORDS.len())]);
        }
        stream.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ\",\"object\":\"chat.completion.chunk\",\"created\":1738960000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_72ed7ab54c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
            )
            .as_bytes(),
        );
        chunks += 1;
    }
    stream.extend_from_slice(CHAT_SSE_USAGE_EVENT.as_bytes());
    stream.extend_from_slice(b"data: [DONE]\n\n");
    (stream, chunks)
}

/// MB/s of the fastest of `ROUNDS` runs of `run` over `bytes` bytes (the machine is shared:
/// the best run is the least disturbed one).
fn best_mb_per_s(bytes: usize, mut run: impl FnMut()) -> f64 {
    let best = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    bytes as f64 / 1e6 / best
}

const ROUNDS: usize = 9;

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn throughput_of_scanning_and_stripping_a_10_mb_sse_stream() {
    let (stream, content_chunks) = chat_stream(10_000_000);
    let stripped_len =
        stream.len() - CHAT_SSE_USAGE_EVENT.len() - content_chunks * ",\"usage\":null".len();
    for chunk_size in [16 * 1024, 1024] {
        let scan_rate = best_mb_per_s(stream.len(), || {
            let mut scanner = UsageScanner::new(Format::Sse);
            for chunk in stream.chunks(chunk_size) {
                scanner.feed(chunk);
            }
            assert_eq!(scanner.usage(), Some(CHAT_SSE_USAGE));
        });
        let strip_rate = best_mb_per_s(stream.len(), || {
            let mut stripper = UsageChunkStripper::new();
            let mut passed = 0;
            for chunk in stream.chunks(chunk_size) {
                passed += stripper.filter(chunk, false).len();
            }
            passed += stripper.filter(&[], true).len();
            assert_eq!(passed, stripped_len);
        });
        println!(
            "{} MB SSE stream in {} KiB chunks: UsageScanner {scan_rate:.0} MB/s, UsageChunkStripper {strip_rate:.0} MB/s",
            stream.len() / 1_000_000,
            chunk_size / 1024
        );
    }

    // The same stream without `"usage":null` (nothing to copy but at chunk boundaries).
    let plain = without_null_usage(std::str::from_utf8(&stream).unwrap_or_default()).into_bytes();
    for chunk_size in [16 * 1024, 1024] {
        let strip_rate = best_mb_per_s(plain.len(), || {
            let mut stripper = UsageChunkStripper::new();
            let mut passed = 0;
            for chunk in plain.chunks(chunk_size) {
                passed += stripper.filter(chunk, false).len();
            }
            passed += stripper.filter(&[], true).len();
            assert_eq!(passed, plain.len() - CHAT_SSE_USAGE_EVENT.len());
        });
        println!(
            "{} MB SSE stream without usage:null in {} KiB chunks: UsageChunkStripper {strip_rate:.0} MB/s",
            plain.len() / 1_000_000,
            chunk_size / 1024
        );
    }

    let json = {
        let mut doc = String::from("{\"choices\":[{\"message\":{\"content\":\"");
        while doc.len() < 10_000_000 {
            doc.push_str("Lorem ipsum dolor sit amet, 你好 👋 \\\"usage\\\": {} \\n");
        }
        doc.push_str("\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}");
        doc
    };
    let rate = best_mb_per_s(json.len(), || {
        let mut scanner = UsageScanner::new(Format::Json);
        for chunk in json.as_bytes().chunks(16 * 1024) {
            scanner.feed(chunk);
        }
        assert_eq!(scanner.usage(), Some(usage(1, 2)));
    });
    println!("10 MB JSON body with one long content string: UsageScanner {rate:.0} MB/s");

    let embeddings = {
        let mut rng = SplitMix64::new(5);
        let mut doc = String::from("{\"object\":\"list\",\"data\":[");
        let mut index = 0;
        while doc.len() < 10_000_000 {
            doc.push_str(&format!(
                "{{\"object\":\"embedding\",\"index\":{index},\"embedding\":["
            ));
            for k in 0..1536 {
                let sign = if rng.below(2) == 0 { "-" } else { "" };
                let sep = if k == 0 { "" } else { "," };
                doc.push_str(&format!("{sep}{sign}0.0{:08}", rng.below(100_000_000)));
            }
            doc.push_str("]},");
            index += 1;
        }
        doc.pop();
        doc.push_str("],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}");
        doc
    };
    let rate = best_mb_per_s(embeddings.len(), || {
        let mut scanner = UsageScanner::new(Format::Json);
        for chunk in embeddings.as_bytes().chunks(16 * 1024) {
            scanner.feed(chunk);
        }
        assert_eq!(scanner.usage(), Some(usage(8, 0)));
    });
    println!("10 MB embeddings response: UsageScanner {rate:.0} MB/s");
}
