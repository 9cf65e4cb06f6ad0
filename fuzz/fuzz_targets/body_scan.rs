//! The body scan's two modes (`body::scan_check`), on any bytes.
//!
//! Input: byte 0 picks an alignment (0..64 spaces put before the rest) and a cut (a prefix of
//! the rest); the rest is the body.
//!
//! Checked, on the body, on it shifted by the alignment and on the prefix:
//! 1. The vector UTF-8 check (`utf8_valid`, the check the fast scan runs on a string's
//!    blocks) says what `std::str::from_utf8` says.
//! 2. The fast scan (64-byte string masks, UTF-8 checked on the same vectors) gives exactly
//!    the scalar scan's result: the value's end and members, or the same error at the same
//!    offset.
//! 3. The scan accepts the body as one JSON value (whitespace around it) exactly when
//!    serde_json does.
//!
//! Built natively, this runs the portable emulation of the vectors (`src/body/simd.rs`), not
//! the wasm intrinsics: those are tested by the unit tests under `make wasm-test`.
#![no_main]

use ai_gateway_filter::body::scan_check;
use fuzz_support::{serde_valid, skip_ws};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&c0, raw)) = data.split_first() else {
        return;
    };
    check(raw);
    let mut shifted = vec![b' '; usize::from(c0 % 64)];
    shifted.extend_from_slice(raw);
    check(&shifted);
    check(&raw[..raw.len() * usize::from(c0) / 256]);
});

fn check(b: &[u8]) {
    let utf8 = std::str::from_utf8(b).is_ok();
    assert_eq!(scan_check::utf8_valid(b), utf8, "utf8_valid on {b:x?}");
    let start = skip_ws(b, 0);
    let scalar = scan_check::scan(b, start, false);
    assert_eq!(
        scan_check::scan(b, start, true),
        scalar,
        "fast vs scalar on {:?}",
        String::from_utf8_lossy(b)
    );
    if let Some(valid) = serde_valid(b) {
        let ours =
            start < b.len() && matches!(&scalar, Ok((end, _)) if skip_ws(b, *end) == b.len());
        assert_eq!(ours, valid, "serde_json says {valid}: {:?}", String::from_utf8_lossy(b));
    }
}
