//! Exact comparison of a JSON number's text with an unsigned integer, without floating point
//! (so `9007199254740993` vs `9007199254740992`, `1e400` or a 40-digit integer all compare
//! right) and without allocating.

/// Whether the JSON number `text` (already validated) is strictly greater than `n`.
pub(super) fn exceeds(text: &[u8], n: u64) -> bool {
    if text.first() == Some(&b'-') {
        return false;
    }
    let int_len = text.iter().take_while(|c| c.is_ascii_digit()).count();
    let int = text.get(..int_len).unwrap_or_default();
    let mut rest = text.get(int_len..).unwrap_or_default();
    let mut frac: &[u8] = &[];
    if rest.first() == Some(&b'.') {
        let len = rest
            .iter()
            .skip(1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        frac = rest.get(1..1 + len).unwrap_or_default();
        rest = rest.get(1 + len..).unwrap_or_default();
    }
    let mut exp: i64 = 0;
    if matches!(rest.first(), Some(b'e' | b'E')) {
        let mut digits = rest.get(1..).unwrap_or_default();
        let negative = digits.first() == Some(&b'-');
        if matches!(digits.first(), Some(b'+' | b'-')) {
            digits = digits.get(1..).unwrap_or_default();
        }
        for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
            // Saturate far beyond anything that matters (a u64 has 20 digits).
            exp = (exp * 10 + i64::from(c - b'0')).min(1_000_000_000);
        }
        if negative {
            exp = -exp;
        }
    }
    // value = 0.D × 10^point, D = int ++ frac with leading zeros stripped.
    let all = || int.iter().chain(frac.iter()).copied();
    let leading = all().take_while(|&c| c == b'0').count();
    let total = int.len() + frac.len();
    if leading == total {
        return false; // zero
    }
    let point = i64::try_from(int.len())
        .unwrap_or(i64::MAX)
        .saturating_add(exp)
        .saturating_sub(i64::try_from(leading).unwrap_or(i64::MAX));
    if point <= 0 {
        return n == 0; // 0 < value < 1
    }
    if point > 20 {
        return true; // value ≥ 10^20 > u64::MAX
    }
    let point = point as usize; // 1..=20
    let mut whole: u128 = 0;
    let mut fraction = false;
    for (k, c) in all().skip(leading).enumerate() {
        if k < point {
            whole = whole * 10 + u128::from(c - b'0');
        } else if c != b'0' {
            fraction = true;
            break;
        }
    }
    let significant = total - leading;
    for _ in significant..point {
        whole *= 10;
    }
    whole > u128::from(n) || (whole == u128::from(n) && fraction)
}
