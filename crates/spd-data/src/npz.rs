//! `.npz` archives (NumPy's `savez` / `savez_compressed`): a minimal ZIP reader for stored and
//! deflated entries (ZIP64 sizes and offsets included, CRC-32 checked) and a writer of stored
//! entries.

use std::path::Path;

use crate::error::{DataError, Location, Problem, Result};
use crate::npy::{NpyArray, parse_npy};

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses it).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn truncated(what: &str) -> Problem {
    Problem::Truncated(format!("ZIP {what}"))
}

struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// Upper bound on a decompressed entry, to refuse decompression bombs.
const MAX_ENTRY: u64 = 1 << 32;

fn central_directory(b: &[u8]) -> std::result::Result<Vec<Entry>, Problem> {
    let eocd = (0..b.len().saturating_sub(21))
        .rev()
        .take(65_557)
        .find(|&i| u32_at(b, i) == Some(0x0605_4b50))
        .ok_or_else(|| Problem::CorruptHeader("no ZIP end-of-central-directory record".into()))?;
    let mut count = u16_at(b, eocd + 10).ok_or_else(|| truncated("end record"))? as u64;
    let mut cd_offset = u32_at(b, eocd + 16).ok_or_else(|| truncated("end record"))? as u64;
    if (count == 0xFFFF || cd_offset == 0xFFFF_FFFF)
        && eocd >= 20
        && u32_at(b, eocd - 20) == Some(0x0706_4b50)
    {
        let z64 = u64_at(b, eocd - 12).ok_or_else(|| truncated("ZIP64 locator"))? as usize;
        if u32_at(b, z64) != Some(0x0606_4b50) {
            return Err(Problem::CorruptHeader("bad ZIP64 end record".into()));
        }
        count = u64_at(b, z64 + 32).ok_or_else(|| truncated("ZIP64 end record"))?;
        cd_offset = u64_at(b, z64 + 48).ok_or_else(|| truncated("ZIP64 end record"))?;
    }
    let mut at = usize::try_from(cd_offset).map_err(|_| truncated("directory offset"))?;
    let mut entries = Vec::new();
    for _ in 0..count {
        if u32_at(b, at) != Some(0x0201_4b50) {
            return Err(Problem::CorruptHeader(
                "bad ZIP central directory entry".into(),
            ));
        }
        let field = |o: usize| u32_at(b, at + o).ok_or_else(|| truncated("directory entry"));
        let method = u16_at(b, at + 10).ok_or_else(|| truncated("directory entry"))?;
        let crc = field(16)?;
        let mut compressed = field(20)? as u64;
        let mut size = field(24)? as u64;
        let name_len = u16_at(b, at + 28).ok_or_else(|| truncated("directory entry"))? as usize;
        let extra_len = u16_at(b, at + 30).ok_or_else(|| truncated("directory entry"))? as usize;
        let comment_len = u16_at(b, at + 32).ok_or_else(|| truncated("directory entry"))? as usize;
        let mut offset = field(42)? as u64;
        let name_bytes = b
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| truncated("entry name"))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = b
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or_else(|| truncated("extra field"))?;
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = u16_at(extra, e).unwrap_or(0);
            let len = u16_at(extra, e + 2).unwrap_or(0) as usize;
            if id == 0x0001 {
                let mut z = e + 4;
                for slot in [&mut size, &mut compressed, &mut offset] {
                    if *slot == 0xFFFF_FFFF {
                        *slot = u64_at(extra, z).ok_or_else(|| truncated("ZIP64 extra field"))?;
                        z += 8;
                    }
                }
            }
            e += 4 + len;
        }
        entries.push(Entry {
            name,
            method,
            crc,
            compressed,
            size,
            offset,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

fn entry_data(b: &[u8], e: &Entry) -> std::result::Result<Vec<u8>, Problem> {
    let at = usize::try_from(e.offset).map_err(|_| truncated("entry offset"))?;
    if u32_at(b, at) != Some(0x0403_4b50) {
        return Err(Problem::CorruptHeader("bad ZIP local header".into()));
    }
    let name_len = u16_at(b, at + 26).ok_or_else(|| truncated("local header"))? as usize;
    let extra_len = u16_at(b, at + 28).ok_or_else(|| truncated("local header"))? as usize;
    let start = at + 30 + name_len + extra_len;
    let len = usize::try_from(e.compressed).map_err(|_| truncated("entry size"))?;
    let raw = b
        .get(start..start.saturating_add(len))
        .ok_or_else(|| truncated("entry data"))?;
    if e.size > MAX_ENTRY {
        return Err(Problem::Shape(format!(
            "entry of {} bytes is larger than this reader accepts",
            e.size
        )));
    }
    let data = match e.method {
        0 => raw.to_vec(),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, e.size as usize)
            .map_err(|err| Problem::CorruptHeader(format!("deflate stream: {err:?}")))?,
        m => return Err(Problem::Dtype(format!("ZIP compression method {m}"))),
    };
    if data.len() as u64 != e.size || crc32(&data) != e.crc {
        return Err(Problem::CorruptHeader(
            "entry fails its size or CRC-32 check".into(),
        ));
    }
    Ok(data)
}

/// Parses every `.npy` entry of an `.npz` archive, as `(name without ".npy", array)` in
/// archive order; the location of an error names the entry.
pub fn parse_npz(
    bytes: &[u8],
) -> std::result::Result<Vec<(String, NpyArray)>, (Location, Problem)> {
    let entries = central_directory(bytes).map_err(|p| (Location::File, p))?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let name = e.name.strip_suffix(".npy").unwrap_or(&e.name).to_string();
        let data = entry_data(bytes, &e).map_err(|p| (Location::Entry(e.name.clone()), p))?;
        let array = parse_npy(&data).map_err(|p| (Location::Entry(e.name.clone()), p))?;
        out.push((name, array));
    }
    Ok(out)
}

/// Reads an `.npz` file.
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let bytes = crate::error::read_file(path)?;
    parse_npz(&bytes).map_err(|(location, problem)| DataError::at(path, location, problem))
}

/// An `.npz` archive of stored (uncompressed) entries `name.npy` holding the given `.npy` bytes.
pub fn npz_bytes(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let file = format!("{name}.npy");
        let offset = out.len() as u32;
        let crc = crc32(data);
        let head = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(file.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend_from_slice(file.as_bytes());
        out.extend_from_slice(data);
        let mut c = head(0x0201_4b50, true);
        c.extend_from_slice(&[0u8; 8]); // comment length, disk, internal and external attributes
        c.extend_from_slice(&0u32.to_le_bytes()[..2]);
        c.extend_from_slice(&offset.to_le_bytes());
        c.extend_from_slice(file.as_bytes());
        central.extend(c);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::{NpyData, npy_f64, npy_i64};
    use proptest::prelude::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trips_stored_archives() {
        let bytes = npz_bytes(&[
            ("X", npy_f64(&[1, 2, 2], &[1.0, 0.5, 0.5, 2.0])),
            ("y", npy_i64(&[1], &[3])),
        ]);
        let arrays = parse_npz(&bytes).unwrap();
        assert_eq!(arrays[0].0, "X");
        assert_eq!(arrays[1].1.data, NpyData::Int(vec![3]));
    }

    /// A deflated entry, as `np.savez_compressed` writes it.
    #[test]
    fn reads_deflated_entries() {
        let npy = npy_f64(&[3], &[1.0, 2.0, 3.0]);
        let deflated = miniz_oxide::deflate::compress_to_vec(&npy, 6);
        let mut bytes = npz_bytes(&[("a", npy.clone())]);
        // rewrite the single entry as method 8 with the deflated payload
        let name_len = 5;
        let mut local = bytes[..30 + name_len].to_vec();
        local[8] = 8;
        local[18..22].copy_from_slice(&(deflated.len() as u32).to_le_bytes());
        let mut central = bytes[30 + name_len + npy.len()..].to_vec();
        central[10] = 8;
        central[20..24].copy_from_slice(&(deflated.len() as u32).to_le_bytes());
        let cd_offset = (local.len() + deflated.len()) as u32;
        let n = central.len();
        central[n - 6..n - 2].copy_from_slice(&cd_offset.to_le_bytes());
        bytes = [local, deflated, central].concat();
        let arrays = parse_npz(&bytes).unwrap();
        assert_eq!(arrays[0].1.data, NpyData::Real(vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn detects_corruption() {
        let mut bytes = npz_bytes(&[("X", npy_f64(&[2], &[1.0, 2.0]))]);
        let at = 30 + 5 + 60;
        bytes[at] ^= 0xFF;
        match parse_npz(&bytes) {
            Err((Location::Entry(name), Problem::CorruptHeader(_))) => assert_eq!(name, "X.npy"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert!(parse_npz(b"PK\x03\x04 not really").is_err());
    }

    proptest! {
        #![proptest_config(crate::test_support::fuzz_config())]

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), flips in prop::collection::vec((0usize..300, any::<u8>()), 1..6), cut in 0usize..300) {
            let _ = parse_npz(&bytes);
            let mut valid = npz_bytes(&[("X", npy_f64(&[2], &[1.0, 2.0])), ("y", npy_i64(&[2], &[0, 1]))]);
            for (i, b) in flips {
                let n = valid.len();
                valid[i % n] = b;
            }
            let _ = parse_npz(&valid);
            valid.truncate(cut.min(valid.len()));
            let _ = parse_npz(&valid);
        }
    }
}
