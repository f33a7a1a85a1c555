//! The UEA/UCR time-series `.ts` format (sktime's): `#` comments, `@` header lines, then
//! `@data` and one series per line, channels separated by `:`, values by `,`, the class label
//! last. Equal and unequal lengths; `?` or `NaN` marks a missing value.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Location, Problem, Result};

/// What to do with missing values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MissingPolicy {
    /// Refuse the file, naming the first line with a missing value.
    #[default]
    Error,
    /// Drop the series that have any.
    DropSeries,
    /// Interpolate linearly between the neighbouring observed values (constant at the ends).
    Interpolate,
}

/// Multichannel series with class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeriesSet {
    /// `series[i][c][t]`: sample `i`, channel `c`, time `t`.
    pub series: Vec<Vec<Vec<f64>>>,
    /// Class index of each series.
    pub labels: Vec<usize>,
    /// Class names, in the header's order.
    pub class_names: Vec<String>,
    /// The problem name from the header, if any.
    pub name: Option<String>,
}

impl TimeSeriesSet {
    /// Number of channels (of the first series).
    pub fn channels(&self) -> usize {
        self.series.first().map_or(0, Vec::len)
    }
}

fn line_err(line: usize, p: Problem) -> (Location, Problem) {
    (Location::Line(line), p)
}

fn interpolate(v: &mut [f64]) -> bool {
    let known: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_finite()).collect();
    if known.is_empty() {
        return false;
    }
    for i in 0..v.len() {
        if v[i].is_finite() {
            continue;
        }
        let prev = known.iter().rev().find(|&&k| k < i);
        let next = known.iter().find(|&&k| k > i);
        v[i] = match (prev, next) {
            (Some(&a), Some(&b)) => v[a] + (v[b] - v[a]) * (i - a) as f64 / (b - a) as f64,
            (Some(&a), None) => v[a],
            (None, Some(&b)) => v[b],
            (None, None) => unreachable!("known is not empty"),
        };
    }
    true
}

/// Parses `.ts` text.
pub fn parse_ts(
    text: &str,
    missing: MissingPolicy,
) -> std::result::Result<TimeSeriesSet, (Location, Problem)> {
    let mut class_names: Option<Vec<String>> = None;
    let mut name = None;
    let mut dimensions: Option<usize> = None;
    let mut in_data = false;
    let mut set = TimeSeriesSet {
        series: Vec::new(),
        labels: Vec::new(),
        class_names: Vec::new(),
        name: None,
    };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            let Some(rest) = line.strip_prefix('@') else {
                return Err(line_err(
                    line_no,
                    Problem::CorruptHeader("data before @data".into()),
                ));
            };
            let mut words = rest.split_whitespace();
            let key = words.next().unwrap_or("").to_ascii_lowercase();
            let bool_value = |v: Option<&str>| v.map(|s| s.eq_ignore_ascii_case("true"));
            match key.as_str() {
                "problemname" => name = words.next().map(str::to_string),
                "timestamps" if bool_value(words.next()) == Some(true) => {
                    return Err(line_err(
                        line_no,
                        Problem::Dtype("time-stamped series".into()),
                    ));
                }
                "dimensions" => {
                    dimensions =
                        Some(words.next().and_then(|w| w.parse().ok()).ok_or_else(|| {
                            line_err(
                                line_no,
                                Problem::CorruptHeader("@dimensions needs a number".into()),
                            )
                        })?)
                }
                "classlabel" => {
                    if bool_value(words.next()) != Some(true) {
                        return Err(line_err(
                            line_no,
                            Problem::Invalid("the file has no class labels".into()),
                        ));
                    }
                    let names: Vec<String> = words.map(str::to_string).collect();
                    if names.is_empty() {
                        return Err(line_err(
                            line_no,
                            Problem::CorruptHeader("@classLabel true lists no class".into()),
                        ));
                    }
                    class_names = Some(names);
                }
                "data" => {
                    if class_names.is_none() {
                        return Err(line_err(
                            line_no,
                            Problem::CorruptHeader("@data before @classLabel".into()),
                        ));
                    }
                    in_data = true;
                }
                _ => {}
            }
            continue;
        }
        let classes = class_names.as_ref().expect("checked at @data");
        let (body, label) = line.rsplit_once(':').ok_or_else(|| {
            line_err(
                line_no,
                Problem::CorruptHeader("no ':' before the class label".into()),
            )
        })?;
        let label = label.trim();
        let class = classes
            .iter()
            .position(|c| c == label)
            .ok_or_else(|| line_err(line_no, Problem::UnknownLabel(label.to_string())))?;
        let mut channels = Vec::new();
        for (c, part) in body.split(':').enumerate() {
            if part.trim_start().starts_with('(') {
                return Err(line_err(
                    line_no,
                    Problem::Dtype("time-stamped series".into()),
                ));
            }
            let mut values = Vec::new();
            for tok in part.split(',').map(str::trim) {
                if tok.is_empty() {
                    continue;
                }
                let v = if tok == "?" || tok.eq_ignore_ascii_case("nan") {
                    f64::NAN
                } else {
                    tok.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| {
                            line_err(
                                line_no,
                                Problem::Invalid(format!(
                                    "channel {c}: {tok:?} is not a finite number"
                                )),
                            )
                        })?
                };
                values.push(v);
            }
            if values.is_empty() {
                return Err(line_err(
                    line_no,
                    Problem::Shape(format!("channel {c} is empty")),
                ));
            }
            channels.push(values);
        }
        if let Some(d) = dimensions.filter(|&d| d != channels.len()) {
            return Err(line_err(
                line_no,
                Problem::Shape(format!("{} channels, header says {d}", channels.len())),
            ));
        }
        if let Some(first) = set
            .series
            .first()
            .filter(|f: &&Vec<Vec<f64>>| f.len() != channels.len())
        {
            return Err(line_err(
                line_no,
                Problem::Shape(format!(
                    "{} channels, earlier series have {}",
                    channels.len(),
                    first.len()
                )),
            ));
        }
        if let Some(c) = channels.iter().position(|ch| ch.iter().any(|v| v.is_nan())) {
            match missing {
                MissingPolicy::Error => {
                    return Err(line_err(line_no, Problem::Missing { channel: c }));
                }
                MissingPolicy::DropSeries => continue,
                MissingPolicy::Interpolate => {
                    for (k, ch) in channels.iter_mut().enumerate() {
                        if !interpolate(ch) {
                            return Err(line_err(
                                line_no,
                                Problem::Invalid(format!("channel {k} has no observed value")),
                            ));
                        }
                    }
                }
            }
        }
        set.series.push(channels);
        set.labels.push(class);
    }
    if !in_data {
        return Err((
            Location::File,
            Problem::CorruptHeader("no @data section".into()),
        ));
    }
    if set.series.is_empty() {
        return Err((Location::File, Problem::Invalid("no series".into())));
    }
    set.class_names = class_names.unwrap_or_default();
    set.name = name;
    Ok(set)
}

/// Reads a `.ts` file.
pub fn read_ts(path: &Path, missing: MissingPolicy) -> Result<TimeSeriesSet> {
    let bytes = crate::error::read_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        DataError::file(
            path,
            Problem::CorruptHeader(format!("not UTF-8 text ({e})")),
        )
    })?;
    parse_ts(text, missing).map_err(|(l, p)| DataError::at(path, l, p))
}

/// `.ts` text of a set (equal or unequal lengths).
pub fn ts_text(set: &TimeSeriesSet) -> String {
    let equal = set
        .series
        .iter()
        .flatten()
        .map(Vec::len)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        <= 1;
    let mut s = String::new();
    if let Some(n) = &set.name {
        s.push_str(&format!("@problemName {n}\n"));
    }
    s.push_str("@timeStamps false\n@missing false\n");
    s.push_str(&format!(
        "@univariate {}\n@dimensions {}\n",
        set.channels() == 1,
        set.channels()
    ));
    s.push_str(&format!("@equalLength {equal}\n"));
    if equal {
        if let Some(len) = set.series.first().and_then(|f| f.first()).map(Vec::len) {
            s.push_str(&format!("@seriesLength {len}\n"));
        }
    }
    s.push_str(&format!(
        "@classLabel true {}\n@data\n",
        set.class_names.join(" ")
    ));
    for (series, &label) in set.series.iter().zip(&set.labels) {
        let chans: Vec<String> = series
            .iter()
            .map(|ch| {
                ch.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        s.push_str(&format!("{}:{}\n", chans.join(":"), set.class_names[label]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: &str = "# comment\n@problemName Tiny\n@timeStamps false\n@dimensions 2\n@classLabel true a b\n@data\n1,2,3:4,5,6:b\n0.5,?,1:2,2,2:a\n";

    #[test]
    fn parses_and_applies_missing_policies() {
        let e = parse_ts(SMALL, MissingPolicy::Error).unwrap_err();
        assert_eq!(e, (Location::Line(8), Problem::Missing { channel: 0 }));
        let d = parse_ts(SMALL, MissingPolicy::DropSeries).unwrap();
        assert_eq!(
            (d.series.len(), d.labels.clone(), d.class_names.clone()),
            (1, vec![1], vec!["a".to_string(), "b".to_string()])
        );
        let i = parse_ts(SMALL, MissingPolicy::Interpolate).unwrap();
        assert_eq!(i.series[1][0], vec![0.5, 0.75, 1.0]);
        assert_eq!(i.name.as_deref(), Some("Tiny"));
    }

    #[test]
    fn unequal_lengths_round_trip() {
        let set = TimeSeriesSet {
            series: vec![
                vec![vec![1.0, 2.0], vec![3.0, 4.0]],
                vec![vec![1.5, 2.5, 3.5], vec![0.0, -1.0, 1e-7]],
            ],
            labels: vec![1, 0],
            class_names: vec!["x".into(), "y".into()],
            name: Some("U".into()),
        };
        assert_eq!(parse_ts(&ts_text(&set), MissingPolicy::Error).unwrap(), set);
    }

    #[test]
    fn names_bad_lines() {
        let bad_label = SMALL.replace("4,5,6:b", "4,5,6:c");
        assert_eq!(
            parse_ts(&bad_label, MissingPolicy::DropSeries).unwrap_err(),
            (Location::Line(7), Problem::UnknownLabel("c".into()))
        );
        let bad_value = SMALL.replace("4,5,6", "4,five,6");
        assert!(matches!(
            parse_ts(&bad_value, MissingPolicy::DropSeries),
            Err((Location::Line(7), Problem::Invalid(_)))
        ));
        let wrong_dims = SMALL.replace("@dimensions 2", "@dimensions 3");
        assert!(matches!(
            parse_ts(&wrong_dims, MissingPolicy::DropSeries),
            Err((Location::Line(7), Problem::Shape(_)))
        ));
        assert!(parse_ts("@classLabel true a\n", MissingPolicy::Error).is_err());
    }

    proptest! {
        #![proptest_config(crate::test_support::fuzz_config())]

        #[test]
        fn never_panics(text in "[@a-zA-Z0-9:,.?# \\n-]{0,300}", cut in 0usize..200, flips in prop::collection::vec((0usize..200, any::<u8>()), 0..6)) {
            let _ = parse_ts(&text, MissingPolicy::Interpolate);
            let mut bytes = SMALL.as_bytes().to_vec();
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i % n] = b;
            }
            bytes.truncate(cut.min(bytes.len()));
            let _ = parse_ts(&String::from_utf8_lossy(&bytes), MissingPolicy::Error);
        }
    }
}
