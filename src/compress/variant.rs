//! The variant grammar: `f16`, `bf16`, `int8`, `int8-asym`, `int4[:gN]`, `prune:P`,
//! `prune-neurons:P`, `drop-layers:I,J`, `rank:R`, chained with `+` and applied left to right.
//!
//! Parsing checks what can be checked without a model; the rest (a rank above a matrix's size,
//! a layer that does not exist, a group size that does not divide a row) is checked when the
//! variant meets the checkpoint (`transform`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The group size of `int4` when the variant names none.
pub const DEFAULT_INT4_GROUP: usize = 32;

/// The rank of `rank:R`: a number of singular values, or a share of each matrix's full rank.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rank {
    /// Keep this many singular values of every matrix.
    Absolute(usize),
    /// Keep this share (in (0, 1]) of each matrix's full rank, rounded up.
    Fraction(f64),
}

impl Rank {
    /// The rank kept of a matrix whose full rank is `full`, or an error naming the valid range.
    pub fn of(self, full: usize, matrix: &str) -> Result<usize> {
        match self {
            Rank::Absolute(r) if r > full => Err(Error::InvalidArgument(format!(
                "variant rank:{r}: {matrix} has rank at most {full}; use rank:1..={full} or a fraction such as rank:0.5"
            ))),
            Rank::Absolute(r) => Ok(r),
            Rank::Fraction(f) => Ok(((full as f64 * f).ceil() as usize).clamp(1, full)),
        }
    }
}

/// One weight transform of a [`Variant`].
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Every floating-point tensor rounded to IEEE half precision.
    F16,
    /// Every floating-point tensor rounded to bfloat16.
    Bf16,
    /// Symmetric int8 per output channel (one scale per row: `w ≈ q·s`, q in [-127, 127]).
    Int8,
    /// Asymmetric int8 per output channel (`w ≈ (q - z)·s`, q in [-128, 127], zero point z).
    Int8Asym,
    /// Symmetric int4 in groups of `group` weights along the input dimension (q in [-8, 7], each
    /// group's scale searched for the least squared error; see [`quant::int4_groups`](super::quant::int4_groups)).
    Int4 {
        /// Weights sharing one scale.
        group: usize,
    },
    /// Unstructured magnitude pruning: the share `P` of each matrix's smallest weights set to zero.
    Prune(f64),
    /// The share `P` of each layer's feed-forward neurons with the smallest weight norm removed.
    PruneNeurons(f64),
    /// These encoder layers (0-based) skipped.
    DropLayers(Vec<usize>),
    /// Every weight matrix replaced by its rank-R SVD approximation.
    Rank(Rank),
}

impl Step {
    /// Whether this step sets the precision the weights are stored in.
    pub fn is_precision(&self) -> bool {
        matches!(self, Step::F16 | Step::Bf16 | Step::Int8 | Step::Int8Asym | Step::Int4 { .. })
    }
}

/// The valid variants, for messages.
pub const GRAMMAR: &str = "f16, bf16, int8, int8-asym, int4[:gN], prune:P, prune-neurons:P (P in [0,1)), drop-layers:I,J, rank:R (R >= 1 or a fraction in (0,1]), joined with + (e.g. prune:0.3+int8)";

/// A chain of weight transforms, applied left to right to a checkpoint's tensors.
///
/// ```
/// use vecshift::compress::Variant;
/// let v: Variant = "prune:0.30+int4:g32".parse()?;
/// assert_eq!(v.to_string(), "prune:0.3+int4");
/// # Ok::<(), vecshift::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    steps: Vec<Step>,
}

impl Variant {
    /// A variant of the given steps (at least one).
    pub fn new(steps: Vec<Step>) -> Result<Self> {
        if steps.is_empty() {
            return Err(Error::InvalidArgument(format!("empty variant; expected one of {GRAMMAR}")));
        }
        Ok(Variant { steps })
    }

    /// The steps, in the order they are applied.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// For a model of `layers` layers: the base hidden state (0 = embeddings output) that each
    /// hidden state of the variant stands for. The identity unless layers are dropped; layers
    /// that do not exist are left for the load to report.
    pub fn layer_map(&self, layers: usize) -> Vec<usize> {
        let mut map: Vec<usize> = (0..=layers).collect();
        for step in &self.steps {
            if let Step::DropLayers(dropped) = step {
                let kept: Vec<usize> = map.iter().enumerate().filter(|(k, _)| *k == 0 || !dropped.contains(&(k - 1))).map(|(_, &l)| l).collect();
                map = kept;
            }
        }
        map
    }
}

fn bad(text: &str, what: String) -> Error {
    Error::InvalidArgument(format!("variant {text:?}: {what}"))
}

/// `P` of `prune:P`: a share in [0, 1).
fn parse_share(text: &str, name: &str, value: &str) -> Result<f64> {
    match value.parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        _ => Err(bad(text, format!("{name}:P needs a share P in [0,1) (e.g. {name}:0.3), not {value:?}"))),
    }
}

fn parse_step(text: &str) -> Result<Step> {
    let (name, arg) = match text.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (text, None),
    };
    let no_arg = |step: Step| match arg {
        None => Ok(step),
        Some(_) => Err(bad(text, format!("{name} takes no argument; write {name}"))),
    };
    let need = |example: &str| arg.ok_or_else(|| bad(text, format!("{name} needs an argument, e.g. {example}")));
    match name {
        "f16" => no_arg(Step::F16),
        "bf16" => no_arg(Step::Bf16),
        "int8" => no_arg(Step::Int8),
        "int8-asym" => no_arg(Step::Int8Asym),
        "int4" => {
            let group = match arg {
                None => DEFAULT_INT4_GROUP,
                Some(g) => match g.strip_prefix('g').and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) if n >= 1 => n,
                    _ => return Err(bad(text, format!("int4 groups are written int4:gN with N >= 1 (e.g. int4:g32), not {g:?}"))),
                },
            };
            Ok(Step::Int4 { group })
        }
        "prune" => Ok(Step::Prune(parse_share(text, name, need("prune:0.3")?)?)),
        "prune-neurons" => Ok(Step::PruneNeurons(parse_share(text, name, need("prune-neurons:0.3")?)?)),
        "drop-layers" => {
            let list = need("drop-layers:0,5")?;
            let mut layers = list
                .split(',')
                .map(|i| i.trim().parse::<usize>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| bad(text, format!("drop-layers takes 0-based layer numbers separated by commas (e.g. drop-layers:0,5), not {list:?}")))?;
            layers.sort_unstable();
            layers.dedup();
            Ok(Step::DropLayers(layers))
        }
        "rank" => {
            let r = need("rank:64 or rank:0.5")?;
            let rank = match (r.parse::<usize>(), r.parse::<f64>()) {
                (Ok(n), _) if n >= 1 => Rank::Absolute(n),
                (Err(_), Ok(f)) if f > 0.0 && f <= 1.0 => Rank::Fraction(f),
                _ => return Err(bad(text, format!("rank:R needs R >= 1 (singular values kept) or a fraction in (0,1] (e.g. rank:0.5), not {r:?}"))),
            };
            Ok(Step::Rank(rank))
        }
        _ => Err(bad(text, format!("unknown variant {name:?}; expected one of {GRAMMAR}"))),
    }
}

impl FromStr for Variant {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::InvalidArgument(format!("empty variant; expected one of {GRAMMAR}")));
        }
        let steps = text.split('+').map(|s| parse_step(s.trim())).collect::<Result<Vec<_>>>()?;
        Variant::new(steps)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::F16 => f.write_str("f16"),
            Step::Bf16 => f.write_str("bf16"),
            Step::Int8 => f.write_str("int8"),
            Step::Int8Asym => f.write_str("int8-asym"),
            Step::Int4 { group } if *group == DEFAULT_INT4_GROUP => f.write_str("int4"),
            Step::Int4 { group } => write!(f, "int4:g{group}"),
            Step::Prune(p) => write!(f, "prune:{p}"),
            Step::PruneNeurons(p) => write!(f, "prune-neurons:{p}"),
            Step::DropLayers(layers) => {
                let list: Vec<String> = layers.iter().map(usize::to_string).collect();
                write!(f, "drop-layers:{}", list.join(","))
            }
            Step::Rank(Rank::Absolute(r)) => write!(f, "rank:{r}"),
            // Debug keeps the ".0" of 1.0, which would otherwise read back as rank:1.
            Step::Rank(Rank::Fraction(r)) => write!(f, "rank:{r:?}"),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_labels() {
        for (given, label) in [
            ("f16", "f16"),
            ("int4:g32", "int4"),
            ("int4:g64", "int4:g64"),
            (" prune:0.30 + int8 ", "prune:0.3+int8"),
            ("drop-layers:5,0,5", "drop-layers:0,5"),
            ("rank:0.5+bf16", "rank:0.5+bf16"),
            ("rank:64", "rank:64"),
            ("rank:1.0", "rank:1.0"),
            ("prune-neurons:0+int8-asym", "prune-neurons:0+int8-asym"),
        ] {
            let v: Variant = given.parse().unwrap();
            assert_eq!(v.to_string(), label, "{given}");
            assert_eq!(v.to_string().parse::<Variant>().unwrap(), v, "{given} round trip");
        }
    }

    #[test]
    fn bad_variants_name_the_range() {
        for (given, needle) in [
            ("int3", "unknown variant"),
            ("prune:1", "[0,1)"),
            ("prune:-0.1", "[0,1)"),
            ("prune", "needs an argument"),
            ("int4:32", "int4:gN"),
            ("int4:g0", "int4:gN"),
            ("rank:0", "R >= 1"),
            ("rank:1.5", "(0,1]"),
            ("drop-layers:a", "0-based"),
            ("int8:2", "no argument"),
            ("int8+", "unknown variant"),
            ("", "empty variant"),
        ] {
            let error = given.parse::<Variant>().unwrap_err().to_string();
            assert!(error.contains(needle), "{given}: {error}");
            assert!(!error.contains('\n'), "{given}: one line");
        }
    }

    #[test]
    fn layer_map_follows_dropped_layers() {
        let v: Variant = "drop-layers:0,3+drop-layers:1".parse().unwrap();
        // 6 layers: 0 and 3 go (hidden states 1 and 4), then the new layer 1 (old 2, state 3).
        assert_eq!(v.layer_map(6), vec![0, 2, 5, 6]);
        assert_eq!("int8".parse::<Variant>().unwrap().layer_map(2), vec![0, 1, 2]);
    }

    #[test]
    fn rank_of_a_matrix() {
        assert_eq!(Rank::Fraction(0.5).of(384, "m").unwrap(), 192);
        assert_eq!(Rank::Fraction(0.001).of(384, "m").unwrap(), 1);
        assert_eq!(Rank::Absolute(384).of(384, "m").unwrap(), 384);
        assert!(Rank::Absolute(385).of(384, "m").unwrap_err().to_string().contains("rank:1..=384"));
    }
}
