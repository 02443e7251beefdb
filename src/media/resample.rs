//! Streaming linear-interpolation resampler, narrowband/wideband voice → the AAC rate.
//!
//! Telephone audio is band-limited far below the output Nyquist frequency, so interpolation's
//! images sit where the source had nothing and stay quiet; a polyphase filter would buy little
//! for voice. State carries across calls so packet boundaries leave no clicks.

#[derive(Clone, Debug)]
pub struct Resampler {
    /// Input rate over output rate, reduced: each output sample advances `step` of `denominator`.
    step: u32,
    denominator: u32,
    /// ⌈2^48 / `denominator`⌉: dividing by a multiply, see [`Resampler::divide`].
    reciprocal: u64,
    /// Position of the next output sample past `previous`, in 1/`denominator` of an input sample
    /// (integers, so long runs do not drift).
    position: u32,
    previous: i32,
}

impl Resampler {
    pub fn new(input_rate: u32, output_rate: u32) -> Self {
        let (input_rate, output_rate) = (input_rate.max(1), output_rate.max(1));
        let divisor = gcd(input_rate, output_rate);
        Resampler {
            step: input_rate / divisor,
            denominator: output_rate / divisor,
            reciprocal: (1u64 << 48).div_ceil(u64::from(output_rate / divisor)),
            position: 0,
            previous: 0,
        }
    }

    /// Resamples `input`, appending to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for &sample in input {
            let current = i32::from(sample);
            while self.position < self.denominator {
                let delta = i64::from(current - self.previous) * i64::from(self.position);
                out.push((i64::from(self.previous) + self.divide(delta)) as i16);
                self.position += self.step;
            }
            self.position -= self.denominator;
            self.previous = current;
        }
    }

    /// `value / denominator`, rounded toward zero as `/` does, by one multiply: a division
    /// per output sample was most of the resampler's time (48,000 a second per stream). Exact
    /// for |value| < 2^32 (here at most 65,535 × `denominator` < 2^32): writing ⌈2^48/d⌉ as
    /// (2^48 + e)/d with e < d < 2^16, the error x·e/(d·2^48) stays below 1/d and never
    /// crosses an integer.
    fn divide(&self, value: i64) -> i64 {
        let quotient =
            ((u128::from(value.unsigned_abs()) * u128::from(self.reciprocal)) >> 48) as i64;
        if value < 0 { -quotient } else { quotient }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divides_exactly_like_the_division_it_replaces() {
        for (input, output) in [(8000, 48000), (16000, 44100), (8000, 44100), (1, 65535)] {
            let r = Resampler::new(input, output);
            let d = i64::from(r.denominator);
            let largest = 65_535 * (d - 1);
            let edges = (0..2000).flat_map(|k| [k, largest - k, k * d - 1, k * d, k * d + 1]);
            let spread = (0..20_000).map(|k| k * 7919 % (largest + 1));
            for value in edges.chain(spread).filter(|v| (0..=largest).contains(v)) {
                assert_eq!(r.divide(value), value / d, "{value} / {d}");
                assert_eq!(r.divide(-value), -value / d, "-{value} / {d}");
            }
        }
    }

    #[test]
    fn upsamples_by_the_rate_ratio_across_calls() {
        let mut r = Resampler::new(8000, 48000);
        let mut out = Vec::new();
        for _ in 0..50 {
            r.process(&[1000; 160], &mut out);
        }
        assert_eq!(out.len(), 48000);
        assert!(out[100..].iter().all(|&s| s == 1000));
    }

    #[test]
    fn keeps_a_tone_continuous_at_a_fractional_ratio() {
        let mut r = Resampler::new(8000, 44100);
        let tone: Vec<i16> = (0..8000)
            .map(|n| (10000.0 * (n as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin()) as i16)
            .collect();
        let mut out = Vec::new();
        for chunk in tone.chunks(160) {
            r.process(chunk, &mut out);
        }
        assert!((out.len() as i64 - 44100).abs() <= 1, "{}", out.len());
        let max_step = out
            .windows(2)
            .map(|w| (w[1] as i32 - w[0] as i32).abs())
            .max();
        // 440 Hz at 10000 amplitude moves at most ~630 per 44.1 kHz sample.
        assert!(max_step.unwrap() < 700, "{max_step:?}");
    }
}
