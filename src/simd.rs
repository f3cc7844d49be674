//! Vectorisable building blocks shared by the encoder kernels and the neighbour search.
//!
//! The crate is compiled for baseline x86-64 (SSE2), so that one binary runs everywhere;
//! [`multiversion!`] compiles a hot loop a second time for AVX2+FMA and picks it at run time.

/// Expands to a function that runs `$body` (an `#[inline(always)]` slice kernel) compiled for
/// AVX2+FMA when the CPU has them, and for the baseline target otherwise: the crate is built
/// for baseline x86-64, where these loops would not be vectorised.
macro_rules! multiversion {
    ($name:ident($($arg:ident: $ty:ty),*) => $body:path) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the features were detected just above.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use multiversion;

/// Dot product with eight partial sums, so that it runs in vector lanes.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] = x[i].mul_add(y[i], lanes[i]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

