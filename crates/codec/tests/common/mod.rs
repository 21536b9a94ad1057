//! Helpers shared by the integration tests: test signals, level/frequency
//! measurements.
#![allow(dead_code)]

use std::f64::consts::TAU;

pub const FS: f64 = 48_000.0;

/// `n` samples of a sine of amplitude `amp` (full scale = 1.0).
pub fn sine(freq: f64, amp: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| amp * (TAU * freq * i as f64 / FS).sin()).collect()
}

pub fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter().map(|v| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16).collect()
}

pub fn from_i16(x: &[i16]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v) / 32768.0).collect()
}

/// Interleaves two equally long channels.
pub fn interleave(l: &[f64], r: &[f64]) -> Vec<f64> {
    l.iter().zip(r).flat_map(|(a, b)| [*a, *b]).collect()
}

/// Channel `c` of `channels` interleaved channels.
pub fn channel(x: &[f64], channels: usize, c: usize) -> Vec<f64> {
    x.iter().skip(c).step_by(channels).copied().collect()
}

pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

pub fn peak(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Amplitude of the component at `freq` (Goertzel / single-bin DFT with a Hann window).
pub fn tone_amplitude(x: &[f64], freq: f64) -> f64 {
    let n = x.len();
    let w = TAU * freq / FS;
    let (mut re, mut im, mut wsum) = (0.0, 0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let hann = 0.5 - 0.5 * (TAU * i as f64 / n as f64).cos();
        re += v * hann * (w * i as f64).cos();
        im -= v * hann * (w * i as f64).sin();
        wsum += hann;
    }
    2.0 * (re * re + im * im).sqrt() / wsum
}

/// The frequency (in `step` Hz steps between `lo` and `hi`) with the largest amplitude.
pub fn dominant_frequency(x: &[f64], lo: f64, hi: f64, step: f64) -> f64 {
    let mut best = (lo, 0.0);
    let mut f = lo;
    while f <= hi {
        let a = tone_amplitude(x, f);
        if a > best.1 {
            best = (f, a);
        }
        f += step;
    }
    best.0
}

/// Signal-to-residual ratio (dB) of `x` against its least-squares fit
/// `a*sin + b*cos` at `freq`: how pure a tone `x` is.
pub fn tone_snr_db(x: &[f64], freq: f64) -> f64 {
    let w = TAU * freq / FS;
    let (mut ss, mut cc, mut sc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        ss += s * s;
        cc += c * c;
        sc += s * c;
        xs += v * s;
        xc += v * c;
    }
    let det = ss * cc - sc * sc;
    let a = (xs * cc - xc * sc) / det;
    let b = (xc * ss - xs * sc) / det;
    let (mut sig, mut res) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let fit = a * s + b * c;
        sig += fit * fit;
        res += (v - fit) * (v - fit);
    }
    10.0 * (sig / res.max(1e-30)).log10()
}
