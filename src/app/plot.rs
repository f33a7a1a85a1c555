//! Minimal raster plots written as PNG: training curves, α heat maps and bar charts with error
//! bars. A 3×5 pixel font
//! labels them; the encoder is a plain PNG (zlib via miniz_oxide, CRC-32 from spd-data).

use std::path::Path;

use spd_nas::NetworkConfig;
use spd_nas::search::EpochLog;
use spd_nas::space::EdgeKind;
use spd_nas::train::TrainLog;

use super::error::{AppError, Result};

/// An RGB raster.
pub struct Canvas {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

/// A colour.
pub type Rgb = [u8; 3];

/// Series colours: blue, orange, green, red.
pub const PALETTE: [Rgb; 4] = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]];
const GREY: Rgb = [120, 120, 120];
const BLACK: Rgb = [20, 20, 20];

fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_lowercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '%' => [5, 1, 2, 4, 5],
        '-' => [0, 0, 7, 0, 0],
        ':' => [0, 2, 0, 2, 0],
        '_' => [0, 0, 0, 0, 7],
        '/' => [1, 1, 2, 4, 4],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        'a' => [2, 5, 7, 5, 5],
        'b' => [6, 5, 6, 5, 6],
        'c' => [3, 4, 4, 4, 3],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'g' => [3, 4, 5, 5, 3],
        'h' => [5, 5, 7, 5, 5],
        'i' => [7, 2, 2, 2, 7],
        'j' => [1, 1, 1, 5, 2],
        'k' => [5, 5, 6, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'm' => [5, 7, 7, 5, 5],
        'n' => [6, 5, 5, 5, 5],
        'o' => [2, 5, 5, 5, 2],
        'p' => [6, 5, 6, 4, 4],
        'q' => [2, 5, 5, 6, 3],
        'r' => [6, 5, 6, 5, 5],
        's' => [3, 4, 2, 1, 6],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'w' => [5, 5, 7, 7, 5],
        'x' => [5, 5, 2, 5, 5],
        'y' => [5, 5, 2, 2, 2],
        'z' => [7, 1, 2, 4, 7],
        _ => [0; 5],
    }
}

impl Canvas {
    /// A white canvas.
    pub fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            rgb: vec![255; w * h * 3],
        }
    }

    /// Sets one pixel (ignored outside).
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = 3 * (y as usize * self.w + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A filled rectangle.
    pub fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// A line (Bresenham), `thick` pixels wide.
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.fill(x - thick / 2, y - thick / 2, thick, thick, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text in the 3×5 font scaled by `scale`, top-left at `(x, y)`.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        self.fill(
                            x + (k as i64 * 4 + col) * scale,
                            y + row as i64 * scale,
                            scale,
                            scale,
                            c,
                        );
                    }
                }
            }
        }
    }

    /// PNG bytes (8-bit RGB).
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.w * 3 + 1) * self.h);
        for row in self.rgb.chunks(self.w * 3) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            out.extend_from_slice(&spd_data::npz::crc32(&body).to_be_bytes());
        };
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(self.w as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.h as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(
            &mut out,
            b"IDAT",
            &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
        );
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// Writes the PNG atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        spd_data::write_atomic(path, &self.png()).map_err(|e| AppError::Runtime(e.to_string()))
    }
}

/// A named series of values per epoch.
pub struct Series<'a> {
    /// Legend.
    pub name: &'a str,
    /// Values.
    pub values: Vec<f64>,
}

/// One panel of line series at `(x, y)` of size `w × h`, titled, with the y range printed.
pub fn panel(
    c: &mut Canvas,
    (x, y, w, h): (i64, i64, i64, i64),
    title: &str,
    series: &[Series<'_>],
) {
    c.text(x, y, title, 2, BLACK);
    let (top, left, bottom) = (y + 16, x + 40, y + h - 14);
    let right = x + w;
    c.line((left, top), (left, bottom), GREY, 1);
    c.line((left, bottom), (right, bottom), GREY, 1);
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return;
    }
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi - lo < 1e-12 {
        lo -= 0.5;
        hi += 0.5;
    }
    c.text(x, top, &format!("{hi:.2}"), 1, GREY);
    c.text(x, bottom - 5, &format!("{lo:.2}"), 1, GREY);
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(1);
    c.text(left, bottom + 4, "epoch", 1, GREY);
    c.text(
        right - 4 * format!("{n}").len() as i64,
        bottom + 4,
        &format!("{n}"),
        1,
        GREY,
    );
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let px = |i: usize| {
            left + if n > 1 {
                (i as i64) * (right - left) / (n as i64 - 1)
            } else {
                (right - left) / 2
            }
        };
        let py = |v: f64| bottom - ((v - lo) / (hi - lo) * (bottom - top) as f64) as i64;
        for i in 1..s.values.len() {
            c.line(
                (px(i - 1), py(s.values[i - 1])),
                (px(i), py(s.values[i])),
                color,
                2,
            );
        }
        if s.values.len() == 1 {
            c.fill(px(0) - 2, py(s.values[0]) - 2, 5, 5, color);
        }
        c.fill(right - 110 + 60 * k as i64, y + 2, 8, 3, color);
        c.text(right - 98 + 60 * k as i64, y, s.name, 1, color);
    }
}

/// α heat map over epochs: for every edge a block of rows (one per candidate, named by
/// `ops[edge]`), one column per epoch, darker = larger weight (white at the smallest weight
/// shown, darkest at the largest; both printed).
pub fn alpha_heatmap(title: &str, ops: &[Vec<&str>], per_epoch: &[Vec<Vec<f64>>]) -> Canvas {
    let epochs = per_epoch.len().max(1);
    let edges = per_epoch.first().map_or(0, Vec::len);
    let width = ops.iter().map(Vec::len).max().unwrap_or(0);
    let (cell_w, cell_h, label_w) = ((600 / epochs).clamp(3, 40) as i64, 9i64, 150i64);
    let (w, h) = (
        label_w + cell_w * epochs as i64 + 20,
        44 + (edges * (width + 1)) as i64 * cell_h + 10,
    );
    let (vmin, vmax) = per_epoch
        .iter()
        .flatten()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (vmax - vmin).max(1e-12);
    let mut c = Canvas::new(w.max(300) as usize, h as usize);
    c.text(4, 4, title, 2, BLACK);
    c.text(
        4,
        20,
        &format!("columns: epochs 1-{epochs}; white {vmin:.3}, darkest {vmax:.3}"),
        1,
        GREY,
    );
    for e in 0..edges {
        let y0 = 34 + (e * (width + 1)) as i64 * cell_h;
        c.text(4, y0 + 2, &format!("edge {e}"), 1, BLACK);
        for (k, op) in ops[e].iter().enumerate() {
            let y = y0 + (k as i64 + 1) * cell_h;
            c.text(20, y + 2, op, 1, GREY);
            for (t, rows) in per_epoch.iter().enumerate() {
                let v = ((rows[e][k] - vmin) / span).clamp(0.0, 1.0);
                let shade = |base: u8| (255.0 - v * (255.0 - base as f64)) as u8;
                c.fill(
                    label_w + t as i64 * cell_w,
                    y,
                    cell_w,
                    cell_h - 1,
                    [shade(8), shade(48), shade(107)],
                );
            }
        }
    }
    c
}

/// Bars of `means` (accuracies in `[0, 1]`) with error bars `± stds`, one per label, on a
/// `[lo, 1]` axis where `lo` is a tenth below the lowest `mean − std`, rounded down.
pub fn bar_chart(title: &str, labels: &[String], means: &[f64], stds: &[f64]) -> Canvas {
    let (bar, gap, left, top, height) = (70i64, 24i64, 50i64, 30i64, 260i64);
    let width = left + (bar + gap) * labels.len() as i64 + 20;
    let width = width.max(320);
    let mut c = Canvas::new(width as usize, (top + height + 40) as usize);
    let scale = if 8 * title.chars().count() as i64 + 8 > width {
        1
    } else {
        2
    };
    c.text(4, 4, title, scale, BLACK);
    let low = means
        .iter()
        .zip(stds)
        .map(|(m, s)| m - s)
        .fold(1.0f64, f64::min);
    let lo = ((low - 0.1) * 10.0).floor().clamp(0.0, 9.0) / 10.0;
    let bottom = top + height;
    let py = |v: f64| bottom - ((v - lo) / (1.0 - lo) * height as f64).round() as i64;
    c.line((left, top), (left, bottom), GREY, 1);
    c.line((left, bottom), (width - 10, bottom), GREY, 1);
    c.text(4, top, "100%", 1, GREY);
    c.text(4, bottom - 5, &format!("{:.0}%", 100.0 * lo), 1, GREY);
    for (k, (label, (&m, &s))) in labels.iter().zip(means.iter().zip(stds)).enumerate() {
        let x = left + gap / 2 + k as i64 * (bar + gap);
        let color = PALETTE[k % PALETTE.len()];
        let y = py(m.clamp(lo, 1.0));
        c.fill(x, y, bar, bottom - y, color);
        let (hi_y, lo_y) = (py((m + s).min(1.0)), py((m - s).max(lo)));
        c.line((x + bar / 2, hi_y), (x + bar / 2, lo_y), BLACK, 1);
        c.line((x + bar / 2 - 6, hi_y), (x + bar / 2 + 6, hi_y), BLACK, 1);
        c.line((x + bar / 2 - 6, lo_y), (x + bar / 2 + 6, lo_y), BLACK, 1);
        c.text(x, y - 10, &format!("{:.1}", 100.0 * m), 1, BLACK);
        c.text(x, bottom + 6, label, 1, BLACK);
    }
    c
}

/// `curves.png` (search and training loss/accuracy), `alpha_normal.png`, `alpha_reduce.png`.
pub fn write_plots(
    dir: &Path,
    search: &[EpochLog],
    train: &[TrainLog],
    config: &NetworkConfig,
) -> Result<()> {
    let mut c = Canvas::new(900, 520);
    let s = |f: fn(&EpochLog) -> f64| search.iter().map(f).collect::<Vec<_>>();
    let t = |f: fn(&TrainLog) -> f64| train.iter().map(f).collect::<Vec<_>>();
    panel(
        &mut c,
        (10, 10, 420, 240),
        "search loss",
        &[
            Series {
                name: "train",
                values: s(|l| l.train_loss),
            },
            Series {
                name: "val",
                values: s(|l| l.val_loss),
            },
        ],
    );
    panel(
        &mut c,
        (460, 10, 420, 240),
        "search accuracy",
        &[
            Series {
                name: "train",
                values: s(|l| l.train_accuracy),
            },
            Series {
                name: "val",
                values: s(|l| l.val_accuracy),
            },
        ],
    );
    panel(
        &mut c,
        (10, 270, 420, 240),
        "training loss",
        &[
            Series {
                name: "train",
                values: t(|l| l.train_loss),
            },
            Series {
                name: "val",
                values: t(|l| l.val_loss),
            },
        ],
    );
    panel(
        &mut c,
        (460, 270, 420, 240),
        "training accuracy",
        &[
            Series {
                name: "train",
                values: t(|l| l.train_accuracy),
            },
            Series {
                name: "val",
                values: t(|l| l.val_accuracy),
            },
        ],
    );
    c.save(&dir.join("curves.png"))?;
    let space = config.search_space();
    for (name, reduce) in [("alpha_normal.png", false), ("alpha_reduce.png", true)] {
        let ops: Vec<Vec<&str>> = (0..config.spec.steps)
            .flat_map(|node| 0..2 + node)
            .map(|source| {
                space
                    .list(EdgeKind::new(reduce, source))
                    .iter()
                    .map(|p| p.name)
                    .collect()
            })
            .collect();
        let rows: Vec<Vec<Vec<f64>>> = search
            .iter()
            .map(|l| {
                if reduce {
                    l.alpha_reduce.clone()
                } else {
                    l.alpha_normal.clone()
                }
            })
            .collect();
        alpha_heatmap(
            if reduce {
                "reduction cell weights by epoch"
            } else {
                "normal cell weights by epoch"
            },
            &ops,
            &rows,
        )
        .save(&dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_valid_structure() {
        let mut c = Canvas::new(30, 20);
        c.line((0, 0), (29, 19), PALETTE[0], 1);
        c.text(1, 1, "ok 1.5%", 1, BLACK);
        let png = c.png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        let idat = &png[41..41 + idat_len];
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(idat).unwrap();
        assert_eq!(raw.len(), 20 * (30 * 3 + 1));
        assert!(png.ends_with(&[0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]));
    }
}
