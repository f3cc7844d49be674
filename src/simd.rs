//! Vectorisable building blocks shared by the encoder kernels and the neighbour search.
//!
//! The crate is compiled for baseline x86-64 (SSE2), so that one binary runs everywhere;
//! [`multiversion!`] compiles a hot loop again for AVX2+FMA (and, when asked, AVX-512) and picks
//! one at run time. [`amx`] holds the Intel AMX tile kernels (the encoder's int8 and bf16
//! products, and the neighbour search's batched int8 scores).

pub(crate) mod amx;

/// Expands to a function that runs `$body` (an `#[inline(always)]` slice kernel) compiled for
/// AVX2+FMA when the CPU has them, and for the baseline target otherwise: the crate is built
/// for baseline x86-64, where these loops would not be vectorised.
///
/// `avx512 fn_name(...) => body` adds an AVX-512 version, tried first. Every version gives the
/// same values bit for bit: the bodies spell out their partial sums (lane arrays, sequential
/// sums), and wider vectors only run more of the same lanes at once. It pays for long loops
/// (the neighbour search's eight f64 lanes are one register instead of two); the encoder's
/// short per-head and per-row loops ran slower in it, so they keep AVX2.
macro_rules! multiversion {
    (avx512 $name:ident($($arg:ident: $ty:ty),*) => $body:path) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
                unsafe fn widest($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if $crate::simd::avx512() {
                    // SAFETY: the features were detected (`avx512`).
                    return unsafe { widest($($arg),*) };
                }
            }
            $crate::simd::multiversion!($name($($arg: $ty),*) => $body);
            $name($($arg),*)
        }
    };
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

/// Whether the CPU has the AVX-512 subsets `multiversion!`'s widest version is compiled for.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
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

