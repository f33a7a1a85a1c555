//! MATLAB level-5 `.mat` files: numeric arrays (double, single, integer classes; real part),
//! uncompressed or zlib-compressed, either byte order; and a writer of uncompressed double
//! arrays. Cells, structs, sparse and character arrays are skipped when reading.

use std::path::Path;

use crate::error::{DataError, Location, Problem, Result};

/// A numeric variable: its name, its dimensions, and its real values in column-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatVariable {
    /// Variable name.
    pub name: String,
    /// Dimensions (at least 2).
    pub dims: Vec<usize>,
    /// Real part, column-major.
    pub data: Vec<f64>,
}

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MAX_DECOMPRESSED: usize = 1 << 32;

struct Reader<'a> {
    b: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> std::result::Result<u32, Problem> {
        let s: [u8; 4] = self
            .b
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Problem::Truncated("data element tag".into()))?;
        Ok(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    /// `(type, payload range, next element offset)` of the element at `at`.
    fn element(
        &self,
        at: usize,
    ) -> std::result::Result<(u32, std::ops::Range<usize>, usize), Problem> {
        let tag = self.u32(at)?;
        if tag >> 16 != 0 {
            // small data element: size in the upper half, payload in the next 4 bytes
            let (ty, size) = (tag & 0xFFFF, (tag >> 16) as usize);
            if size > 4 {
                return Err(Problem::CorruptHeader(format!(
                    "small element of {size} bytes"
                )));
            }
            if at + 8 > self.b.len() {
                return Err(Problem::Truncated("small data element".into()));
            }
            return Ok((ty, at + 4..at + 4 + size, at + 8));
        }
        let size = self.u32(at + 4)? as usize;
        let start = at + 8;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| Problem::Truncated(format!("element of {size} bytes at offset {at}")))?;
        let next = if tag == MI_COMPRESSED {
            end
        } else {
            start + size.div_ceil(8) * 8
        };
        Ok((tag, start..end, next))
    }

    fn numbers(
        &self,
        ty: u32,
        r: std::ops::Range<usize>,
    ) -> std::result::Result<Vec<f64>, Problem> {
        let bytes = &self.b[r];
        let width = match ty {
            MI_INT8 | MI_UINT8 => 1,
            MI_INT16 | MI_UINT16 => 2,
            MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
            MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
            other => return Err(Problem::Dtype(format!("MAT data type {other}"))),
        };
        if bytes.len() % width != 0 {
            return Err(Problem::CorruptHeader(format!(
                "{} bytes of {width}-byte values",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(width)
            .map(|c| {
                let mut w = [0u8; 8];
                if self.big {
                    c.iter().rev().enumerate().for_each(|(i, b)| w[i] = *b);
                } else {
                    w[..width].copy_from_slice(c);
                }
                match ty {
                    MI_INT8 => w[0] as i8 as f64,
                    MI_UINT8 => w[0] as f64,
                    MI_INT16 => i16::from_le_bytes([w[0], w[1]]) as f64,
                    MI_UINT16 => u16::from_le_bytes([w[0], w[1]]) as f64,
                    MI_INT32 => i32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64,
                    MI_UINT32 => u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64,
                    MI_SINGLE => f32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64,
                    MI_DOUBLE => f64::from_le_bytes(w),
                    MI_INT64 => i64::from_le_bytes(w) as f64,
                    _ => u64::from_le_bytes(w) as f64,
                }
            })
            .collect())
    }

    /// A numeric matrix element (the payload of a miMATRIX), or `None` for other classes.
    fn matrix(
        &self,
        r: std::ops::Range<usize>,
    ) -> std::result::Result<Option<MatVariable>, Problem> {
        let (ty, flags, mut at) = self.element(r.start)?;
        if ty != MI_UINT32 || flags.len() < 8 {
            return Err(Problem::CorruptHeader("array flags".into()));
        }
        let class = self.u32(flags.start)? & 0xFF;
        let (ty, dims_r, next) = self.element(at)?;
        at = next;
        if ty != MI_INT32 {
            return Err(Problem::CorruptHeader("dimensions".into()));
        }
        let dims: Vec<usize> = self
            .numbers(MI_INT32, dims_r)?
            .iter()
            .map(|&d| d.max(0.0) as usize)
            .collect();
        let (_, name_r, next) = self.element(at)?;
        at = next;
        let name = String::from_utf8_lossy(&self.b[name_r]).into_owned();
        if !(6..=15).contains(&class) {
            return Ok(None);
        }
        let (ty, real_r, _) = self.element(at)?;
        let data = self.numbers(ty, real_r)?;
        let count = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(usize::MAX);
        if data.len() != count {
            return Err(Problem::Shape(format!(
                "{name}: {} values for dimensions {dims:?}",
                data.len()
            )));
        }
        Ok(Some(MatVariable { name, dims, data }))
    }
}

fn parse_elements(
    b: &[u8],
    big: bool,
    out: &mut Vec<MatVariable>,
    depth: usize,
) -> std::result::Result<(), (Location, Problem)> {
    let r = Reader { b, big };
    let mut at = 0;
    while at + 8 <= b.len() {
        let (ty, payload, next) = r.element(at).map_err(|p| (Location::File, p))?;
        match ty {
            MI_MATRIX => {
                if let Some(v) = r
                    .matrix(payload)
                    .map_err(|p| (Location::Entry(format!("element at offset {at}")), p))?
                {
                    out.push(v);
                }
            }
            MI_COMPRESSED if depth == 0 => {
                let inflated = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(
                    &b[payload],
                    MAX_DECOMPRESSED,
                )
                .map_err(|e| {
                    (
                        Location::File,
                        Problem::CorruptHeader(format!("zlib stream: {e:?}")),
                    )
                })?;
                parse_elements(&inflated, big, out, depth + 1)?;
            }
            _ => {}
        }
        at = next;
    }
    Ok(())
}

/// Parses level-5 `.mat` bytes into its numeric variables.
pub fn parse_mat(bytes: &[u8]) -> std::result::Result<Vec<MatVariable>, (Location, Problem)> {
    if bytes.len() < 128 {
        return Err((
            Location::File,
            Problem::Truncated("shorter than the 128-byte MAT header".into()),
        ));
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => {
            let hint =
                if bytes.starts_with(b"\x89HDF") || bytes[..128].windows(4).any(|w| w == b"HDF5") {
                    " (this looks like a v7.3/HDF5 file; save with -v7 instead)"
                } else {
                    ""
                };
            return Err((
                Location::File,
                Problem::CorruptHeader(format!("not a level-5 MAT file{hint}")),
            ));
        }
    };
    let mut out = Vec::new();
    parse_elements(&bytes[128..], big, &mut out, 0)?;
    Ok(out)
}

/// Reads a `.mat` file.
pub fn read_mat(path: &Path) -> Result<Vec<MatVariable>> {
    let bytes = crate::error::read_file(path)?;
    parse_mat(&bytes).map_err(|(l, p)| DataError::at(path, l, p))
}

fn push_element(out: &mut Vec<u8>, ty: u32, payload: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().div_ceil(8) * 8, 0);
}

/// Level-5 `.mat` bytes (little-endian, uncompressed) holding double arrays.
pub fn mat_bytes(vars: &[MatVariable]) -> Vec<u8> {
    let mut out = vec![b' '; 128];
    let text = b"MATLAB 5.0 MAT-file, written by spdnas";
    out[..text.len()].copy_from_slice(text);
    out[116..124].fill(0);
    out[124..126].copy_from_slice(&0x0100u16.to_le_bytes());
    out[126..128].copy_from_slice(b"IM");
    for v in vars {
        let mut m = Vec::new();
        push_element(
            &mut m,
            MI_UINT32,
            &[6u32.to_le_bytes(), 0u32.to_le_bytes()].concat(),
        );
        let dims: Vec<u8> = v
            .dims
            .iter()
            .flat_map(|&d| (d as i32).to_le_bytes())
            .collect();
        push_element(&mut m, MI_INT32, &dims);
        push_element(&mut m, MI_INT8, v.name.as_bytes());
        let data: Vec<u8> = v.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        push_element(&mut m, MI_DOUBLE, &data);
        push_element(&mut out, MI_MATRIX, &m);
    }
    out
}

/// [`mat_bytes`] with every variable inside a zlib-compressed element (MATLAB's default `-v7`).
pub fn mat_bytes_compressed(vars: &[MatVariable]) -> Vec<u8> {
    let plain = mat_bytes(vars);
    let mut out = plain[..128].to_vec();
    let z = miniz_oxide::deflate::compress_to_vec_zlib(&plain[128..], 6);
    out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
    out.extend_from_slice(&(z.len() as u32).to_le_bytes());
    out.extend_from_slice(&z);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<MatVariable> {
        vec![
            MatVariable {
                name: "X".into(),
                dims: vec![2, 2, 3],
                data: (0..12).map(|i| i as f64 * 0.5).collect(),
            },
            MatVariable {
                name: "y".into(),
                dims: vec![3, 1],
                data: vec![1.0, 2.0, 1.0],
            },
        ]
    }

    #[test]
    fn round_trips_plain_and_compressed() {
        assert_eq!(parse_mat(&mat_bytes(&sample())).unwrap(), sample());
        assert_eq!(
            parse_mat(&mat_bytes_compressed(&sample())).unwrap(),
            sample()
        );
    }

    /// Small data elements (≤ 4 bytes packed into the tag), as MATLAB writes short names and
    /// tiny integer arrays, and an int8 class array.
    #[test]
    fn reads_small_elements_and_integer_classes() {
        let mut m = Vec::new();
        push_element(
            &mut m,
            MI_UINT32,
            &[8u32.to_le_bytes(), 0u32.to_le_bytes()].concat(),
        ); // mxINT8
        push_element(
            &mut m,
            MI_INT32,
            &[3i32.to_le_bytes(), 1i32.to_le_bytes()].concat(),
        );
        m.extend_from_slice(&((1u32 << 16) | MI_INT8).to_le_bytes());
        m.extend_from_slice(&[b'y', 0, 0, 0]);
        m.extend_from_slice(&((3u32 << 16) | MI_INT8).to_le_bytes());
        m.extend_from_slice(&[0xff, 2, 3, 0]);
        let mut bytes = mat_bytes(&[]);
        push_element(&mut bytes, MI_MATRIX, &m);
        let v = parse_mat(&bytes).unwrap();
        assert_eq!(
            v,
            vec![MatVariable {
                name: "y".into(),
                dims: vec![3, 1],
                data: vec![-1.0, 2.0, 3.0]
            }]
        );
    }

    #[test]
    fn explains_v73_files() {
        let mut b = vec![0u8; 200];
        b[..4].copy_from_slice(b"\x89HDF");
        let (_, p) = parse_mat(&b).unwrap_err();
        assert!(p.to_string().contains("HDF5"), "{p}");
    }

    proptest! {
        #![proptest_config(crate::test_support::fuzz_config())]

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), flips in prop::collection::vec((0usize..400, any::<u8>()), 1..6), cut in 0usize..400, compressed in any::<bool>()) {
            let _ = parse_mat(&bytes);
            let mut valid = if compressed { mat_bytes_compressed(&sample()) } else { mat_bytes(&sample()) };
            for (i, b) in flips {
                let n = valid.len();
                valid[128 + i % (n - 128)] = b;
            }
            let _ = parse_mat(&valid);
            valid.truncate(cut.min(valid.len()));
            let _ = parse_mat(&valid);
        }
    }
}
