//! Streaming linear-interpolation resampler, narrowband/wideband voice → the AAC rate.
//!
//! Telephone audio is band-limited far below the output Nyquist frequency, so interpolation's
//! images sit where the source had nothing and stay quiet; a polyphase filter would buy little
//! for voice. State carries across calls so packet boundaries leave no clicks.

/// Interpolation weights are fractions of 2^15: delta × weight stays within an `i32`.
const WEIGHT_BITS: u32 = 15;

#[derive(Clone, Debug)]
pub struct Resampler {
    /// Input rate over output rate, reduced: each output sample advances `step` of `denominator`.
    step: u32,
    denominator: u32,
    /// Position of the next output sample past `previous`, in 1/`denominator` of an input sample
    /// (integers, so long runs do not drift).
    position: u32,
    /// position / denominator for every position, in 2^-15: the interpolation costs a multiply
    /// and a shift, no division (it runs 48,000 times a second per stream). `denominator`
    /// entries: 6 for 8 → 48 kHz, 441 at most for the codec rates sipcast takes.
    weights: Vec<i32>,
    previous: i32,
}

impl Resampler {
    pub fn new(input_rate: u32, output_rate: u32) -> Self {
        let (input_rate, output_rate) = (input_rate.max(1), output_rate.max(1));
        let divisor = gcd(input_rate, output_rate);
        let denominator = output_rate / divisor;
        Resampler {
            step: input_rate / divisor,
            denominator,
            position: 0,
            weights: (0..u64::from(denominator))
                .map(|position| {
                    let weight = ((position << WEIGHT_BITS) + u64::from(denominator / 2))
                        / u64::from(denominator);
                    weight.min((1 << WEIGHT_BITS) - 1) as i32
                })
                .collect(),
            previous: 0,
        }
    }

    /// Resamples `input`, appending to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let start = out.len();
        let most =
            (input.len() as u64 * u64::from(self.denominator)).div_ceil(u64::from(self.step));
        out.resize(start + most as usize + 1, 0);
        // A step of one input sample per output run keeps `position` at 0 between inputs.
        let written = if self.step == 1 {
            self.upsample_by_whole_factor(input, &mut out[start..])
        } else {
            self.interpolate(input, &mut out[start..])
        };
        out.truncate(start + written);
    }

    /// Every input sample is followed by exactly `denominator` outputs at the same weights
    /// (8 → 48 kHz, 16 → 48 kHz): a loop over the weights the compiler vectorizes.
    fn upsample_by_whole_factor(&mut self, input: &[i16], out: &mut [i16]) -> usize {
        let factor = self.weights.len();
        let mut previous = self.previous;
        for (&sample, outputs) in input.iter().zip(out.chunks_exact_mut(factor)) {
            let current = i32::from(sample);
            // |delta| ≤ 65,535 and weight < 2^15: the product fits an i32.
            let delta = current - previous;
            for (output, &weight) in outputs.iter_mut().zip(&self.weights) {
                *output = (previous + ((delta * weight) >> WEIGHT_BITS)) as i16;
            }
            previous = current;
        }
        self.previous = previous;
        input.len() * factor
    }

    /// Any ratio: `out` holds at least every output `input` makes.
    fn interpolate(&mut self, input: &[i16], out: &mut [i16]) -> usize {
        let (mut position, mut previous, mut written) = (self.position, self.previous, 0);
        for &sample in input {
            let current = i32::from(sample);
            let delta = current - previous;
            while let Some(&weight) = self.weights.get(position as usize) {
                out[written] = (previous + ((delta * weight) >> WEIGHT_BITS)) as i16;
                written += 1;
                position += self.step;
            }
            position -= self.denominator;
            previous = current;
        }
        (self.position, self.previous) = (position, previous);
        written
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_within_two_steps_of_the_exact_line() {
        // The weight's rounding (half of 2^-15 of a swing of up to 65,535) and the shift's
        // flooring add up to less than two steps of the 16-bit output.
        for (input_rate, output_rate) in [(8000, 48000), (16000, 44100), (8000, 44100)] {
            let mut r = Resampler::new(input_rate, output_rate);
            let input: Vec<i16> = (0..4000)
                .map(|n| {
                    if n % 7 < 3 {
                        i16::MAX
                    } else {
                        i16::MIN + (n as i16 % 5)
                    }
                })
                .collect();
            let mut out = Vec::new();
            r.process(&input, &mut out);
            let ratio = f64::from(input_rate) / f64::from(output_rate);
            for (k, &sample) in out.iter().enumerate() {
                // Output k lies k × ratio input samples past the (silent) sample before input 0.
                let at = k as f64 * ratio;
                let (before, fraction) = (at.floor() as usize, at.fract());
                let previous = before.checked_sub(1).map_or(0.0, |i| f64::from(input[i]));
                let exact = previous + (f64::from(input[before]) - previous) * fraction;
                assert!(
                    (f64::from(sample) - exact).abs() < 2.0,
                    "{k}: {sample} vs {exact}"
                );
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
