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
    /// Position of the next output sample past `previous`, in 1/`denominator` of an input sample
    /// (integers, so long runs do not drift).
    position: u32,
    previous: i32,
    /// `position / denominator` in Q16 for every position, so the per-sample work is a
    /// multiply and a shift rather than a division (empty for unusual ratios, which divide).
    weights: Vec<i32>,
}

/// The largest `denominator` given a weight table (44.1 kHz from 8 kHz needs 441).
const MAX_TABLE: u32 = 4096;

impl Resampler {
    pub fn new(input_rate: u32, output_rate: u32) -> Self {
        let (input_rate, output_rate) = (input_rate.max(1), output_rate.max(1));
        let divisor = gcd(input_rate, output_rate);
        let denominator = output_rate / divisor;
        let weights = if denominator <= MAX_TABLE {
            (0..denominator)
                .map(|p| ((u64::from(p) << 16) / u64::from(denominator)) as i32)
                .collect()
        } else {
            Vec::new()
        };
        Resampler {
            step: input_rate / divisor,
            denominator,
            position: 0,
            previous: 0,
            weights,
        }
    }

    /// Resamples `input`, appending to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let denominator = i64::from(self.denominator);
        for &sample in input {
            let current = i32::from(sample);
            let delta = current - self.previous;
            while self.position < self.denominator {
                let value = match self.weights.get(self.position as usize) {
                    Some(&weight) => {
                        self.previous + ((i64::from(delta) * i64::from(weight)) >> 16) as i32
                    }
                    None => {
                        let scaled = i64::from(delta) * i64::from(self.position) / denominator;
                        self.previous + scaled as i32
                    }
                };
                out.push(value as i16);
                self.position += self.step;
            }
            self.position -= self.denominator;
            self.previous = current;
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weight_table_matches_exact_interpolation_within_one_step() {
        let input: Vec<i16> = (0..4000)
            .map(|n: i32| ((n * 7919 + n * n * 31) % 65_536 - 32_768) as i16)
            .collect();
        for (from, to) in [
            (8000, 48_000),
            (8000, 44_100),
            (16_000, 48_000),
            (32_000, 48_000),
        ] {
            let mut fast = Resampler::new(from, to);
            assert!(!fast.weights.is_empty());
            let mut exact = fast.clone();
            exact.weights.clear();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for chunk in input.chunks(160) {
                fast.process(chunk, &mut a);
                exact.process(chunk, &mut b);
            }
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
                .max();
            assert!(worst <= Some(1), "{from}->{to}: {worst:?}");
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
