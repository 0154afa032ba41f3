//! Keyed bijections (format-preserving permutations) built as Feistel networks whose round
//! function is the keyed PRF (AES-256-CMAC): integers onto the same range (sign kept), 128-bit values, and
//! strings onto strings with the same character class at each position.

use super::key::Prf;

/// Rounds for a domain of `bits` bits (or of that size). Four rounds with a pseudo-random
/// round function make a strong pseudo-random permutation once the halves are large
/// (Luby-Rackoff; here halves of 2^16 values and more); smaller halves need more rounds, as
/// NIST SP 800-38G's FF1 (ten) and FF3-1 (eight) use.
fn rounds(bits: u32) -> u8 {
    match bits {
        0..=20 => 10,
        21..=32 => 8,
        _ => 4,
    }
}

/// Domains up to this size are permuted by a keyed shuffle of the whole domain (a uniformly
/// random permutation given the key): a Feistel network on halves this small is not a good
/// pseudo-random permutation (a one-character domain would be a mere rotation).
pub const SHUFFLE_MAX: u32 = 20_000;

/// A permutation of `0..2^bits` (1 ≤ bits ≤ 128): an unbalanced Feistel network on the two
/// halves of the bit string. Each round is invertible, so the whole is a bijection.
pub fn permute_bits(prf: &Prf, value: u128, bits: u32) -> u128 {
    debug_assert!((1..=128).contains(&bits));
    if bits == 1 {
        // Two values: swap them or not, by the key.
        return value ^ (prf.eval_block(&[b"bit"])[0] as u128 & 1);
    }
    let left_bits = bits / 2;
    let right_bits = bits - left_bits;
    let (lmask, rmask) = ((1u128 << left_bits) - 1, (1u128 << right_bits) - 1);
    let (mut l, mut r) = ((value >> right_bits) & lmask, value & rmask);
    for round in 0..rounds(bits) {
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
        return value ^ (prf.eval_block(&[b"bit"])[0] as u128 & 1);
    }
    let left_bits = bits / 2;
    let right_bits = bits - left_bits;
    let (lmask, rmask) = ((1u128 << left_bits) - 1, (1u128 << right_bits) - 1);
    let (mut l, mut r) = ((value >> right_bits) & lmask, value & rmask);
    for round in (0..rounds(bits)).rev() {
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
    u128::from_be_bytes(prf.eval_block(&[&[round, bits as u8], &half.to_be_bytes()]))
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

/// Buffers a text permutation reuses from call to call, so masking allocates nothing per row,
/// and the keyed shuffles of small domains (one per class pattern). A `TextWork` belongs to
/// one PRF: the shuffles it keeps are that PRF's.
#[derive(Default, Clone)]
pub struct TextWork {
    digits: Vec<(Class, u32)>,
    pattern: Vec<u8>,
    half: Vec<u8>,
    shuffles: std::collections::HashMap<Vec<u8>, Vec<u32>>,
}

/// Patterns whose shuffles are kept (at most SHUFFLE_MAX entries each); past that, a shuffle
/// is made for the value and dropped.
const SHUFFLES_KEPT: usize = 64;

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
    // The domain: every string of this class pattern.
    let domain = work
        .digits
        .iter()
        .try_fold(1u128, |d, (c, _)| d.checked_mul(c.radix() as u128));
    if let Some(d) = domain.filter(|d| *d <= SHUFFLE_MAX as u128) {
        shuffle_digits(prf, work, d as u32, inverse);
        return;
    }
    let total = rounds(domain.map_or(128, |d| 128 - d.leading_zeros()));
    for step in 0..total {
        let round = if inverse { total - 1 - step } else { step };
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

/// A small domain: the digits read as one mixed-radix number, looked up in the keyed shuffle
/// of the whole domain, written back.
fn shuffle_digits(prf: &Prf, work: &mut TextWork, domain: u32, inverse: bool) {
    let x = work
        .digits
        .iter()
        .fold(0u32, |acc, (c, d)| acc * c.radix() + d);
    let y = match work.shuffles.get(&work.pattern) {
        Some(table) => map_through(table, x, inverse),
        None => {
            let table = keyed_shuffle(prf, &work.pattern, domain);
            let y = map_through(&table, x, inverse);
            if work.shuffles.len() < SHUFFLES_KEPT {
                work.shuffles.insert(work.pattern.clone(), table);
            }
            y
        }
    };
    let mut rest = y;
    for (c, d) in work.digits.iter_mut().rev() {
        *d = rest % c.radix();
        rest /= c.radix();
    }
}

fn map_through(table: &[u32], x: u32, inverse: bool) -> u32 {
    if inverse {
        table.iter().position(|&v| v == x).unwrap_or(x as usize) as u32
    } else {
        table.get(x as usize).copied().unwrap_or(x)
    }
}

/// Fisher-Yates over `0..domain`, with swaps drawn from the PRF: a uniformly random
/// permutation for each key and tweak.
fn keyed_shuffle(prf: &Prf, tweak: &[u8], domain: u32) -> Vec<u32> {
    let mut table: Vec<u32> = (0..domain).collect();
    let mut stream = KeyStream::new(prf, &[b"shuffle", tweak]);
    for i in (1..domain as usize).rev() {
        let j = stream.next_u32_below(i as u32 + 1) as usize;
        table.swap(i, j);
    }
    table
}

/// Pseudo-random values from the PRF's keystream.
struct KeyStream<'a> {
    stream: crate::mask::key::Stream<'a>,
    block: [u8; 16],
    at: usize,
}

impl<'a> KeyStream<'a> {
    fn new(prf: &'a Prf, parts: &[&[u8]]) -> KeyStream<'a> {
        let mut stream = prf.stream(parts);
        let block = stream.next_block();
        KeyStream {
            stream,
            block,
            at: 0,
        }
    }

    /// The next `N` bytes of the stream (N ≤ 16).
    fn take<const N: usize>(&mut self) -> [u8; N] {
        if self.at + N > self.block.len() {
            self.block = self.stream.next_block();
            self.at = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.block[self.at..self.at + N]);
        self.at += N;
        out
    }

    /// A value below `n` (n ≤ 256) from two bytes: bias under 2^-8 · n/256, negligible for
    /// the radixes used (10 and 26).
    fn next_below(&mut self, n: u32) -> u32 {
        u16::from_be_bytes(self.take::<2>()) as u32 % n
    }

    /// A value below `n` from four bytes: bias under n / 2^32.
    fn next_u32_below(&mut self, n: u32) -> u32 {
        u32::from_be_bytes(self.take::<4>()) % n
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
    fn one_letter_domains_are_random_permutations_not_rotations() {
        // Over many keys: no key maps the 26 letters by a constant shift, and the fixed
        // points average one per key, as for uniformly random permutations (mean 1,
        // variance 1: over 1,000 keys the total is 1,000 ± 4.5 standard deviations of 32).
        let mut fixed = 0;
        for k in 0..1000u32 {
            let p = MaskKey::new(format!("key number {k:08} for the shift test").as_bytes())
                .unwrap()
                .prf("tokenize");
            let mut work = TextWork::default();
            let mut shifts = HashSet::new();
            let mut image = HashSet::new();
            for c in 'a'..='z' {
                let mut out = String::new();
                permute_text(&p, &c.to_string(), &mut out, &mut work);
                let o = out.chars().next().unwrap();
                assert!(o.is_ascii_lowercase());
                image.insert(o);
                shifts.insert((o as u32 + 26 - c as u32) % 26);
                if o == c {
                    fixed += 1;
                }
                assert_eq!(unpermute_text(&p, &out), c.to_string());
            }
            assert_eq!(image.len(), 26, "a bijection");
            assert!(shifts.len() > 1, "key {k} is a rotation");
        }
        assert!(
            (860..=1140).contains(&fixed),
            "{fixed} fixed points over 1,000 keys"
        );
    }

    #[test]
    fn every_domain_size_is_a_bijection() {
        let p = prf();
        let mut work = TextWork::default();
        // Shuffled (2 letters, 3 digits), and Feistel (4 letters) domains.
        for (alphabet, len) in [("abcdefghijklmnopqrstuvwxyz", 2), ("0123456789", 3)] {
            let chars: Vec<char> = alphabet.chars().collect();
            let mut seen = HashSet::new();
            let total = chars.len().pow(len);
            for i in 0..total {
                let mut s = String::new();
                let mut x = i;
                for _ in 0..len {
                    s.push(chars[x % chars.len()]);
                    x /= chars.len();
                }
                let mut o = String::new();
                permute_text(&p, &s, &mut o, &mut work);
                assert_eq!(unpermute_text(&p, &o), s);
                seen.insert(o);
            }
            assert_eq!(seen.len(), total);
        }
        for s in ["abcd", "Zz09", "x1y2z3", "longer-value-42"] {
            let mut o = String::new();
            permute_text(&p, s, &mut o, &mut work);
            assert_eq!(unpermute_text(&p, &o), s);
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
