//! NumPy `.npy` arrays (format versions 1–3): reading real, integer and complex arrays in C or
//! Fortran order, and writing `f64`, `i64` and `complex128` arrays.

use std::path::Path;

use crate::error::{DataError, Problem, Result};

/// The values of an array, converted to 64 bits.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// Floating-point values (`f2` is not supported; `f4` and `f8` are).
    Real(Vec<f64>),
    /// Signed or unsigned integers and booleans.
    Int(Vec<i64>),
    /// Complex values `(re, im)` from `c8` or `c16`.
    Complex(Vec<(f64, f64)>),
}

/// An array: its shape and its values in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape.
    pub shape: Vec<usize>,
    /// Values in C order (Fortran-order files are transposed on read).
    pub data: NpyData,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Real values (integers converted); an error for complex data.
    pub fn to_real(&self) -> Option<Vec<f64>> {
        match &self.data {
            NpyData::Real(v) => Some(v.clone()),
            NpyData::Int(v) => Some(v.iter().map(|&i| i as f64).collect()),
            NpyData::Complex(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
    Complex,
}

struct Descr {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

fn corrupt(msg: impl Into<String>) -> Problem {
    Problem::CorruptHeader(msg.into())
}

fn parse_descr(s: &str) -> std::result::Result<Descr, Problem> {
    let bytes = s.as_bytes();
    if bytes.len() < 3 {
        return Err(Problem::Dtype(s.to_string()));
    }
    let big_endian = match bytes[0] {
        b'<' | b'|' | b'=' => false,
        b'>' => true,
        _ => return Err(Problem::Dtype(s.to_string())),
    };
    let kind = match bytes[1] {
        b'f' => Kind::Float,
        b'i' => Kind::Int,
        b'u' => Kind::UInt,
        b'b' => Kind::Bool,
        b'c' => Kind::Complex,
        _ => return Err(Problem::Dtype(s.to_string())),
    };
    let size: usize = s[2..].parse().map_err(|_| Problem::Dtype(s.to_string()))?;
    let ok = match kind {
        Kind::Float => matches!(size, 4 | 8),
        Kind::Int | Kind::UInt => matches!(size, 1 | 2 | 4 | 8),
        Kind::Bool => size == 1,
        Kind::Complex => matches!(size, 8 | 16),
    };
    if !ok {
        return Err(Problem::Dtype(s.to_string()));
    }
    Ok(Descr {
        kind,
        size,
        big_endian,
    })
}

/// The value of `'key':` in a Python dict literal, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> std::result::Result<&'a str, Problem> {
    let pattern_a = format!("'{key}'");
    let pattern_b = format!("\"{key}\"");
    let at = header
        .find(&pattern_a)
        .or_else(|| header.find(&pattern_b))
        .ok_or_else(|| corrupt(format!("no '{key}' in header")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(|| corrupt(format!("no ':' after '{key}'")))?;
    let rest = rest.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q).map(|i| i + 2)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| corrupt(format!("unterminated value of '{key}'")))?;
    Ok(rest[..end].trim())
}

fn parse_shape(s: &str) -> std::result::Result<Vec<usize>, Problem> {
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| corrupt(format!("shape {s}")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| corrupt(format!("shape {s}")))
        })
        .collect()
}

/// Parses `.npy` bytes.
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, Problem> {
    if bytes.len() < 10 {
        return Err(Problem::Truncated(format!(
            "{} bytes, shorter than the .npy preamble",
            bytes.len()
        )));
    }
    if &bytes[..6] != b"\x93NUMPY" {
        return Err(corrupt("missing the \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Problem::Truncated("header length".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(corrupt(format!("format version {v}"))),
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            Problem::Truncated(format!(
                "header of {header_len} bytes in a {}-byte file",
                bytes.len()
            ))
        })?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| corrupt("header is not text"))?;
    let descr_raw = dict_value(header, "descr")?;
    let descr = parse_descr(descr_raw.trim_matches(|c| c == '\'' || c == '"'))?;
    let fortran = match dict_value(header, "fortran_order")? {
        "True" => true,
        "False" => false,
        other => return Err(corrupt(format!("fortran_order {other}"))),
    };
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Problem::Shape(format!("{shape:?} overflows")))?;
    let needed = count
        .checked_mul(descr.size)
        .ok_or_else(|| Problem::Shape(format!("{shape:?} overflows")))?;
    let payload = &bytes[end..];
    if payload.len() < needed {
        return Err(Problem::Truncated(format!(
            "{} data bytes for shape {shape:?} need {needed}",
            payload.len()
        )));
    }
    let payload = &payload[..needed];
    let word = |i: usize, size: usize| -> [u8; 8] {
        let mut w = [0u8; 8];
        let src = &payload[i * size..(i + 1) * size];
        if descr.big_endian {
            for (k, b) in src.iter().rev().enumerate() {
                w[k] = *b;
            }
        } else {
            w[..size].copy_from_slice(src);
        }
        w
    };
    let float = |w: [u8; 8], size: usize| -> f64 {
        if size == 4 {
            f32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64
        } else {
            f64::from_le_bytes(w)
        }
    };
    let data = match descr.kind {
        Kind::Float => NpyData::Real(
            (0..count)
                .map(|i| float(word(i, descr.size), descr.size))
                .collect(),
        ),
        Kind::Int | Kind::UInt | Kind::Bool => {
            let signed = matches!(descr.kind, Kind::Int);
            let s = descr.size;
            NpyData::Int(
                (0..count)
                    .map(|i| {
                        let w = word(i, s);
                        let u = u64::from_le_bytes(w);
                        if signed && s < 8 && (u >> (8 * s - 1)) & 1 == 1 {
                            (u | (!0u64 << (8 * s))) as i64
                        } else {
                            u as i64
                        }
                    })
                    .collect(),
            )
        }
        Kind::Complex => {
            let half = descr.size / 2;
            NpyData::Complex(
                (0..count)
                    .map(|i| {
                        let re = word(2 * i, half);
                        let im = word(2 * i + 1, half);
                        (float(re, half), float(im, half))
                    })
                    .collect(),
            )
        }
    };
    let data = if fortran && shape.len() > 1 {
        to_c_order(data, &shape)
    } else {
        data
    };
    Ok(NpyArray { shape, data })
}

/// Reorders column-major (Fortran) values into row-major order.
fn to_c_order(data: NpyData, shape: &[usize]) -> NpyData {
    let count: usize = shape.iter().product();
    // C index → Fortran index
    let mut perm = vec![0usize; count];
    let nd = shape.len();
    let mut idx = vec![0usize; nd];
    for (c_index, slot) in perm.iter_mut().enumerate() {
        let mut rem = c_index;
        for d in (0..nd).rev() {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        let mut f = 0;
        for d in (0..nd).rev() {
            f = f * shape[d] + idx[d];
        }
        *slot = f;
    }
    match data {
        NpyData::Real(v) => NpyData::Real(perm.iter().map(|&f| v[f]).collect()),
        NpyData::Int(v) => NpyData::Int(perm.iter().map(|&f| v[f]).collect()),
        NpyData::Complex(v) => NpyData::Complex(perm.iter().map(|&f| v[f]).collect()),
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = crate::error::read_file(path)?;
    parse_npy(&bytes).map_err(|p| DataError::file(path, p))
}

fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_str}, }}");
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let text = format!("{dict}{}\n", " ".repeat(padding));
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// `.npy` bytes of little-endian `f64` values in C order.
pub fn npy_f64(shape: &[usize], data: &[f64]) -> Vec<u8> {
    let mut out = header("<f8", shape);
    data.iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    out
}

/// `.npy` bytes of little-endian `i64` values.
pub fn npy_i64(shape: &[usize], data: &[i64]) -> Vec<u8> {
    let mut out = header("<i8", shape);
    data.iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    out
}

/// `.npy` bytes of little-endian `complex128` values.
pub fn npy_c128(shape: &[usize], data: &[(f64, f64)]) -> Vec<u8> {
    let mut out = header("<c16", shape);
    for (re, im) in data {
        out.extend_from_slice(&re.to_le_bytes());
        out.extend_from_slice(&im.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_every_writer() {
        let a = parse_npy(&npy_f64(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5])).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::Real(vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]));
        let b = parse_npy(&npy_i64(&[3], &[-1, 0, 7])).unwrap();
        assert_eq!(b.data, NpyData::Int(vec![-1, 0, 7]));
        let c = parse_npy(&npy_c128(&[2], &[(1.0, -1.0), (0.5, 2.0)])).unwrap();
        assert_eq!(c.data, NpyData::Complex(vec![(1.0, -1.0), (0.5, 2.0)]));
    }

    /// A hand-made Fortran-order, big-endian `f4` file (as `np.asfortranarray(a).astype('>f4')`).
    #[test]
    fn reads_fortran_order_big_endian_f32() {
        let dict = "{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        // a = [[1, 2, 3], [4, 5, 6]] stored column by column
        for v in [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let a = parse_npy(&bytes).unwrap();
        assert_eq!(a.data, NpyData::Real(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    }

    #[test]
    fn reads_small_signed_integers() {
        let dict = "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&[0xff, 0x02, 0x80]);
        assert_eq!(
            parse_npy(&bytes).unwrap().data,
            NpyData::Int(vec![-1, 2, -128])
        );
    }

    #[test]
    fn names_the_problem() {
        assert!(matches!(
            parse_npy(b"\x93NUMPY"),
            Err(Problem::Truncated(_))
        ));
        assert!(matches!(
            parse_npy(b"NOTNUMPY00000000"),
            Err(Problem::CorruptHeader(_))
        ));
        let mut t = npy_f64(&[4], &[1.0, 2.0, 3.0, 4.0]);
        t.truncate(t.len() - 3);
        assert!(matches!(parse_npy(&t), Err(Problem::Truncated(_))));
        let odd = String::from_utf8(npy_f64(&[1], &[1.0]))
            .unwrap_or_default()
            .replace("<f8", "<f2");
        if !odd.is_empty() {
            assert!(matches!(parse_npy(odd.as_bytes()), Err(Problem::Dtype(_))));
        }
    }

    proptest! {
        #![proptest_config(crate::test_support::fuzz_config())]

        /// Arbitrary bytes, and valid files with random bytes overwritten or cut: an error or an
        /// array, never a panic.
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), cut in 0usize..200, flips in prop::collection::vec((0usize..200, any::<u8>()), 0..6)) {
            let _ = parse_npy(&bytes);
            let mut valid = npy_f64(&[2, 2], &[1.0, 0.0, 0.0, 1.0]);
            for (i, b) in flips {
                if i < valid.len() { valid[i] = b; }
            }
            let _ = parse_npy(&valid);
            valid.truncate(cut.min(valid.len()));
            let _ = parse_npy(&valid);
        }
    }
}
