//! Keyed bijections (format-preserving permutations) built as Feistel networks whose round
//! function is HMAC-SHA256: integers onto the same range (sign kept), 128-bit values, and
//! strings onto strings with the same character class at each position.

use super::key::Prf;

/// Rounds per permutation. Four rounds of a Feistel network with a pseudo-random round
/// function give a strong pseudo-random permutation (Luby-Rackoff).
const ROUNDS: u8 = 4;

/// A permutation of `0..2^bits` (1 ≤ bits ≤ 128): an unbalanced Feistel network on the two
/// halves of the bit string. Each round is invertible, so the whole is a bijection.
pub fn permute_bits(prf: &Prf, value: u128, bits: u32) -> u128 {
    debug_assert!((1..=128).contains(&bits));
    if bits == 1 {
        // Two values: swap them or not, by the key.
        return value ^ (prf.eval(&[b"bit"])[0] as u128 & 1);
    }
    let left_bits = bits / 2;
    let right_bits = bits - left_bits;
    let (lmask, rmask) = ((1u128 << left_bits) - 1, (1u128 << right_bits) - 1);
    let (mut l, mut r) = ((value >> right_bits) & lmask, value & rmask);
    for round in 0..ROUNDS {
        // Alternate which half is changed, so unequal halves need no swap.
        if round % 2 == 0 {
            let f = round_value(prf, round, r, bits);
            l = (l ^ f) & lmask;
        } else {
            let f = round_value(prf, round, l, bits);
            r = (r ^ f) & rmask;
        }
    }
    (l << right_bits) | r
}

/// The inverse of `permute_bits` (for tests and for proving bijectivity).
pub fn unpermute_bits(prf: &Prf, value: u128, bits: u32) -> u128 {
    if bits == 1 {
        return value ^ (prf.eval(&[b"bit"])[0] as u128 & 1);
    }
    let left_bits = bits / 2;
    let right_bits = bits - left_bits;
    let (lmask, rmask) = ((1u128 << left_bits) - 1, (1u128 << right_bits) - 1);
    let (mut l, mut r) = ((value >> right_bits) & lmask, value & rmask);
    for round in (0..ROUNDS).rev() {
        if round % 2 == 0 {
            l = (l ^ round_value(prf, round, r, bits)) & lmask;
        } else {
            r = (r ^ round_value(prf, round, l, bits)) & rmask;
        }
    }
    (l << right_bits) | r
}

#[inline]
fn round_value(prf: &Prf, round: u8, half: u128, bits: u32) -> u128 {
    let h = prf.eval(&[&[round, bits as u8], &half.to_be_bytes()]);
    u128::from_be_bytes(h[..16].try_into().unwrap_or_default())
}

/// A permutation of the signed `width`-bit integers that keeps the sign: non-negative values
/// map onto non-negative values, negative onto negative.
pub fn permute_signed(prf: &Prf, value: i64, width: u32) -> i64 {
    let bits = width - 1;
    if value >= 0 {
        permute_bits(prf, value as u128, bits) as i64
    } else {
        // -1 .. -2^bits  ↔  0 .. 2^bits - 1
        let m = (-(value + 1)) as u128;
        -(permute_bits(prf, m, bits) as i64) - 1
    }
}

/// Character classes a text permutation keeps at each position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    Digit,
}

impl Class {
    fn of(c: char) -> Option<(Class, u32)> {
        match c {
            'a'..='z' => Some((Class::Lower, c as u32 - 'a' as u32)),
            'A'..='Z' => Some((Class::Upper, c as u32 - 'A' as u32)),
            '0'..='9' => Some((Class::Digit, c as u32 - '0' as u32)),
            _ => None,
        }
    }

    fn radix(self) -> u32 {
        match self {
            Class::Lower | Class::Upper => 26,
            Class::Digit => 10,
        }
    }

    fn char(self, d: u32) -> char {
        let base = match self {
            Class::Lower => 'a',
            Class::Upper => 'A',
            Class::Digit => '0',
        };
        char::from_u32(base as u32 + d).unwrap_or(base)
    }
}

/// Buffers a text permutation reuses from call to call, so masking allocates nothing per row.
#[derive(Default)]
pub struct TextWork {
    digits: Vec<(Class, u32)>,
    pattern: Vec<u8>,
    half: Vec<u8>,
}

/// A keyed permutation of strings that keeps each position's class: ASCII lower-case letters
/// stay lower-case letters, upper-case stay upper-case, digits stay digits, and every other
/// character stays as it is. Distinct inputs give distinct outputs.
///
/// The class digits are split in two halves; each round adds (per position, modulo its radix)
/// pseudo-random digits derived from the other half, alternating halves. Every round can be
/// undone by subtracting, so the whole is a bijection on strings of the same class pattern.
pub fn permute_text(prf: &Prf, input: &str, out: &mut String, work: &mut TextWork) {
    work.digits.clear();
    work.digits.extend(input.chars().filter_map(Class::of));
    mix_digits(prf, work, false);
    let mut it = work.digits.iter();
    for c in input.chars() {
        match (Class::of(c), it.clone().next()) {
            (Some(_), Some(&(class, d))) => {
                it.next();
                out.push(class.char(d));
            }
            _ => out.push(c),
        }
    }
}

/// The inverse of `permute_text` (for tests).
pub fn unpermute_text(prf: &Prf, input: &str) -> String {
    let mut work = TextWork::default();
    work.digits.extend(input.chars().filter_map(Class::of));
    mix_digits(prf, &mut work, true);
    let mut it = work.digits.iter();
    input
        .chars()
        .map(|c| {
            if Class::of(c).is_some() {
                it.next().map(|&(cl, d)| cl.char(d)).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

fn mix_digits(prf: &Prf, work: &mut TextWork, inverse: bool) {
    let n = work.digits.len();
    if n == 0 {
        return;
    }
    let split = n / 2;
    // The class pattern is a tweak: strings of different shapes get unrelated permutations.
    work.pattern.clear();
    work.pattern
        .extend(work.digits.iter().map(|(c, _)| *c as u8));
    for step in 0..ROUNDS {
        let round = if inverse { ROUNDS - 1 - step } else { step };
        // With one position the source half of some rounds is empty: the round then adds a
        // keyed constant, still a bijection.
        let (source, target) = if round % 2 == 0 {
            (split..n, 0..split)
        } else {
            (0..split, split..n)
        };
        work.half.clear();
        work.half
            .extend(work.digits[source].iter().map(|(_, d)| *d as u8));
        let mut stream = KeyStream::new(prf, &[&[round], &work.pattern, &work.half]);
        for i in target {
            let (class, d) = work.digits[i];
            let r = class.radix();
            let k = stream.next_below(r);
            work.digits[i].1 = if inverse {
                (d + r - k) % r
            } else {
                (d + k) % r
            };
        }
    }
}

/// Pseudo-random values from the PRF in counter mode.
struct KeyStream<'a> {
    prf: &'a Prf,
    seed: [u8; 32],
    block: [u8; 32],
    at: usize,
    counter: u32,
}

impl<'a> KeyStream<'a> {
    fn new(prf: &'a Prf, parts: &[&[u8]]) -> KeyStream<'a> {
        let seed = prf.eval(parts);
        KeyStream {
            prf,
            seed,
            block: seed,
            at: 0,
            counter: 0,
        }
    }

    /// A value below `n` (n ≤ 256) from two bytes: bias under 2^-8 · n/256, negligible for
    /// the radixes used (10 and 26).
    fn next_below(&mut self, n: u32) -> u32 {
        if self.at + 2 > self.block.len() {
            self.counter += 1;
            self.block = self.prf.eval(&[&self.seed, &self.counter.to_be_bytes()]);
            self.at = 0;
        }
        let v = u16::from_be_bytes([self.block[self.at], self.block[self.at + 1]]) as u32;
        self.at += 2;
        v % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::key::MaskKey;
    use std::collections::HashSet;

    fn prf() -> Prf {
        MaskKey::new(b"test key for feistel tests")
            .unwrap()
            .prf("tokenize")
    }

    #[test]
    fn bit_permutations_are_bijections() {
        let p = prf();
        for bits in [1u32, 2, 3, 8, 15, 16] {
            let n = 1u128 << bits;
            let image: HashSet<u128> = (0..n).map(|v| permute_bits(&p, v, bits)).collect();
            assert_eq!(image.len() as u128, n, "bits {bits}");
            assert!(image.iter().all(|&v| v < n));
        }
        for v in [0u128, 1, 12345, (1 << 62) + 7] {
            assert_eq!(unpermute_bits(&p, permute_bits(&p, v, 63), 63), v);
        }
    }

    #[test]
    fn signed_permutation_keeps_sign_and_range() {
        let p = prf();
        let image: HashSet<i64> = (-32768..=32767)
            .map(|v| permute_signed(&p, v, 16))
            .collect();
        assert_eq!(image.len(), 65536);
        assert!(image.iter().all(|&v| (-32768..=32767).contains(&v)));
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 42] {
            let t = permute_signed(&p, v, 64);
            assert_eq!(t >= 0, v >= 0);
        }
    }

    #[test]
    fn text_permutation_keeps_classes_and_is_invertible() {
        let p = prf();
        let mut out = String::new();
        permute_text(&p, "Alice.Smith-42@x", &mut out, &mut TextWork::default());
        assert_eq!(out.len(), 16);
        for (a, b) in "Alice.Smith-42@x".chars().zip(out.chars()) {
            assert_eq!(
                Class::of(a).map(|c| c.0),
                Class::of(b).map(|c| c.0),
                "{a} {b}"
            );
            if Class::of(a).is_none() {
                assert_eq!(a, b);
            }
        }
        assert_ne!(out, "Alice.Smith-42@x");
        assert_eq!(unpermute_text(&p, &out), "Alice.Smith-42@x");
        // All 676 two-letter strings map to 676 distinct strings.
        let mut seen = HashSet::new();
        for a in 'a'..='z' {
            for b in 'a'..='z' {
                let mut o = String::new();
                permute_text(&p, &format!("{a}{b}"), &mut o, &mut TextWork::default());
                seen.insert(o);
            }
        }
        assert_eq!(seen.len(), 676);
    }
}
