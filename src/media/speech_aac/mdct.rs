//! The forward MDCT of AAC's long window (2,048 samples in, 1,024 spectral lines out), scaled
//! as AAC's inverse transform expects (§4.6.11.3.1: the decoder's IMDCT carries the 2/N), with
//! the sine window.
//!
//! The transform folds the windowed block into a DCT-IV of 1,024 points and computes that with a
//! 512-point complex FFT between two twiddle passes. The FFT plan, the window and the twiddles
//! are computed once and shared by every encoder in the process.

use std::f64::consts::PI;
use std::sync::{Arc, OnceLock};

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Spectral lines per long block (the frame length).
pub const LINES: usize = 1024;
/// Samples the long window spans: the previous frame and this one.
const WINDOW: usize = 2 * LINES;
/// Points of the complex FFT behind the DCT-IV.
const FFT_POINTS: usize = LINES / 2;

struct Tables {
    fft: Arc<dyn Fft<f32>>,
    /// The sine window, sin(π (n + ½) / 2048).
    window: Vec<f32>,
    /// e^(−iπ n / 1024), applied before the FFT.
    pre_twiddle: Vec<Complex32>,
    /// 2 e^(−iπ (k + ¼) / 1024), applied after it (the 2 is AAC's scale).
    post_twiddle: Vec<Complex32>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let turn = |phase: f64| Complex32::new(phase.cos() as f32, phase.sin() as f32);
        Tables {
            fft: FftPlanner::new().plan_fft_forward(FFT_POINTS),
            window: (0..WINDOW)
                .map(|n| (PI * (n as f64 + 0.5) / WINDOW as f64).sin() as f32)
                .collect(),
            pre_twiddle: (0..FFT_POINTS)
                .map(|n| turn(-PI * n as f64 / LINES as f64))
                .collect(),
            post_twiddle: (0..FFT_POINTS)
                .map(|k| turn(-PI * (k as f64 + 0.25) / LINES as f64) * 2.0)
                .collect(),
        }
    })
}

/// One transform's working memory, allocated once per encoder.
pub struct Mdct {
    folded: Vec<f32>,
    spectrum: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl Default for Mdct {
    fn default() -> Self {
        Mdct {
            folded: vec![0.0; LINES],
            spectrum: vec![Complex32::default(); FFT_POINTS],
            scratch: vec![Complex32::default(); tables().fft.get_inplace_scratch_len()],
        }
    }
}

impl Mdct {
    /// Transforms the block `previous ++ current` (1,024 samples each) into the first
    /// `lines.len()` spectral lines (the rest are not computed).
    ///
    /// X[k] = 2 Σ w[n] x[n] cos(π/1024 (n + ½ + 512)(k + ½)), n over the 2,048 samples: the
    /// factor 2 makes AAC's inverse (2/N, overlap-added) give the input back at its level.
    pub fn forward(&mut self, previous: &[f32], current: &[f32], lines: &mut [f32]) {
        let tables = tables();
        let quarter = LINES / 2;
        // The block in quarters a b c d folds to (−c_r − d, a − b_r), whose DCT-IV is the MDCT.
        let (a, b) = previous[..LINES].split_at(quarter);
        let (c, d) = current[..LINES].split_at(quarter);
        let (window_ab, window_cd) = tables.window.split_at(LINES);
        let (window_a, window_b) = window_ab.split_at(quarter);
        let (window_c, window_d) = window_cd.split_at(quarter);
        let (low, high) = self.folded.split_at_mut(quarter);
        let reversed_c = c.iter().zip(window_c).rev();
        for ((slot, (c, wc)), (d, wd)) in low.iter_mut().zip(reversed_c).zip(d.iter().zip(window_d))
        {
            *slot = -c * wc - d * wd;
        }
        let reversed_b = b.iter().zip(window_b).rev();
        for ((slot, (a, wa)), (b, wb)) in
            high.iter_mut().zip(a.iter().zip(window_a)).zip(reversed_b)
        {
            *slot = a * wa - b * wb;
        }
        // DCT-IV through a half-length complex FFT: pair v[2n] with v[N−1−2n].
        let evens = self.folded.iter().step_by(2);
        let odds_reversed = self.folded.iter().rev().step_by(2);
        for ((point, (&even, &odd)), twiddle) in self
            .spectrum
            .iter_mut()
            .zip(evens.zip(odds_reversed))
            .zip(&tables.pre_twiddle)
        {
            *point = Complex32::new(even, odd) * twiddle;
        }
        tables
            .fft
            .process_with_scratch(&mut self.spectrum, &mut self.scratch);
        // Point k gives lines 2k and N−1−2k: only the points behind the wanted lines are turned.
        let wanted = lines.len().min(LINES);
        let turned = |k: usize| self.spectrum[k] * tables.post_twiddle[k];
        for k in 0..wanted.div_ceil(2) {
            lines[2 * k] = turned(k).re;
        }
        for k in (LINES - wanted).div_ceil(2)..FFT_POINTS {
            lines[LINES - 1 - 2 * k] = -turned(k).im;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(block: &[f32]) -> Vec<f64> {
        (0..LINES)
            .map(|k| {
                block
                    .iter()
                    .enumerate()
                    .map(|(n, &x)| {
                        let w = (PI * (n as f64 + 0.5) / WINDOW as f64).sin();
                        let phase = PI / LINES as f64
                            * (n as f64 + 0.5 + LINES as f64 / 2.0)
                            * (k as f64 + 0.5);
                        2.0 * f64::from(x) * w * phase.cos()
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn the_fast_transform_matches_the_definition() {
        // A tone, a step and a pseudo-random tail, so every line carries something.
        let mut seed = 12345u32;
        let block: Vec<f32> = (0..WINDOW)
            .map(|n| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let noise = f32::from((seed >> 16) as u16) / 65536.0 - 0.5;
                (n as f32 * 0.07).sin() * 8000.0
                    + if n > 700 { 3000.0 } else { 0.0 }
                    + noise * 500.0
            })
            .collect();
        let mut lines = vec![0.0; LINES];
        Mdct::default().forward(&block[..LINES], &block[LINES..], &mut lines);
        let mut first = vec![0.0; 176];
        Mdct::default().forward(&block[..LINES], &block[LINES..], &mut first);
        assert_eq!(first, lines[..176]);
        let expected = direct(&block);
        let peak = expected.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (k, (&fast, &slow)) in lines.iter().zip(&expected).enumerate() {
            assert!(
                (f64::from(fast) - slow).abs() <= peak * 1e-5,
                "line {k}: {fast} vs {slow}"
            );
        }
    }
}
