//! Sorting for the few, short lists the filter sorts (a body's edits, a route's targets, the
//! model names of `GET /v1/models`): insertion sort, stable. For lists this short it is as fast
//! as the standard library's sorts, and it is a few hundred bytes of wasm where each of those
//! is several kilobytes per element type (the `.wasm` has a size budget).

/// Sorts `v` by `key`, stable (equal keys keep their order). Quadratic: for short lists only.
pub(crate) fn by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (v.get(j - 1), v.get(j)) else {
                break;
            };
            if key(a) <= key(b) {
                break;
            }
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test, SplitMix64, TestRng};

    #[test]
    fn sorts_like_the_standard_stable_sort() {
        let mut rng = SplitMix64::new(7);
        for len in 0..40 {
            for _ in 0..20 {
                let v: Vec<(u8, usize)> = (0..len).map(|i| (rng.below(5) as u8, i)).collect();
                let mut ours = v.clone();
                by_key(&mut ours, |e| e.0);
                let mut std = v;
                std.sort_by_key(|e| e.0);
                assert_eq!(ours, std);
            }
        }
    }
}
