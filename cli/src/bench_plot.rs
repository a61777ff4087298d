//! Plots of `v2v bench` results, as SVG, in the style of the report's figures 7.1-7.6: for
//! the `report` workload, latency and throughput against the number of validators, one line
//! per engine and one chart per payload; for the open-loop workloads, median latency against
//! the finalized rate of each step (one line per engine, one chart per payload and committee
//! size). `v2v bench` draws its own results; `v2v bench-plot` draws several results files
//! together (runs made separately, say small and large committees).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Results files written by `v2v bench` (bench-*.json).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where the SVG files go.
    #[arg(long, default_value = "bench-results/plots")]
    out: PathBuf,
}

pub fn plot_command(args: PlotArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for path in &args.inputs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a bench results file", path.display()))?;
        results.push(json);
    }
    for file in plot(&results, &args.out)? {
        println!("wrote {}", file.display());
    }
    Ok(())
}

/// Draws every chart the results allow into `out`; returns the files written.
pub fn plot(results: &[Value], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, svg: String| -> anyhow::Result<()> {
        let path = out.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    // report: payload -> engine -> n -> (tx/s, p50 ms)
    type Report = BTreeMap<u64, BTreeMap<String, BTreeMap<u64, (f64, f64)>>>;
    let mut report: Report = BTreeMap::new();
    // ladders: (workload, payload, n) -> engine -> [(tx/s, p50 ms)]
    type Ladders = BTreeMap<(String, u64, u64), BTreeMap<String, Vec<(f64, f64)>>>;
    let mut ladders: Ladders = BTreeMap::new();
    for r in results {
        let workload = r["workload"].as_str().unwrap_or("").to_string();
        for row in r["rows"].as_array().into_iter().flatten() {
            let engine = row["engine"].as_str().unwrap_or("?").to_string();
            let n = row["validators"].as_u64().unwrap_or(0);
            let payload = row["payload_bytes"].as_u64().unwrap_or(0);
            let point = |v: &Value| {
                (
                    v["tx_per_s"].as_f64().unwrap_or(0.0),
                    v["latency_ms_p50"].as_f64().unwrap_or(0.0),
                )
            };
            if workload == "report" {
                report
                    .entry(payload)
                    .or_default()
                    .entry(engine)
                    .or_default()
                    .insert(n, point(row));
            } else if let Some(steps) = row["steps"].as_array() {
                ladders
                    .entry((workload.clone(), payload, n))
                    .or_default()
                    .insert(engine, steps.iter().map(point).collect());
            }
        }
    }
    for (payload, engines) in &report {
        let series = |pick: fn(&(f64, f64)) -> f64| -> Vec<Series> {
            engines
                .iter()
                .map(|(engine, by_n)| Series {
                    name: engine.clone(),
                    points: by_n.iter().map(|(n, p)| (*n as f64, pick(p))).collect(),
                })
                .collect()
        };
        let size = payload_name(*payload);
        write(
            format!("report-latency-{size}.svg"),
            chart(
                &format!("Latency, {size} payload (report workload)"),
                "validators",
                "p50 latency to finality (ms)",
                Axis::Log2,
                &series(|p| p.1),
            ),
        )?;
        write(
            format!("report-throughput-{size}.svg"),
            chart(
                &format!("Throughput, {size} payload (report workload)"),
                "validators",
                "finalized transactions per second",
                Axis::Log2,
                &series(|p| p.0),
            ),
        )?;
    }
    for ((workload, payload, n), engines) in &ladders {
        let size = payload_name(*payload);
        let series: Vec<Series> = engines
            .iter()
            .map(|(engine, points)| Series {
                name: engine.clone(),
                points: points.clone(),
            })
            .collect();
        write(
            format!("{workload}-{size}-n{n}.svg"),
            chart(
                &format!("{workload}: latency against finalized rate, {size}, {n} validators"),
                "finalized transactions per second",
                "p50 latency from scheduled send (ms)",
                Axis::Linear,
                &series,
            ),
        )?;
    }
    Ok(written)
}

fn payload_name(bytes: u64) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{}KB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Axis {
    Linear,
    /// Committee sizes: evenly spaced powers of two.
    Log2,
}

const W: f64 = 640.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// A "nice" step for about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line chart, as an SVG document.
fn chart(title: &str, x_label: &str, y_label: &str, x_axis: Axis, series: &[Series]) -> String {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    let fx = |x: f64| match x_axis {
        Axis::Linear => x,
        Axis::Log2 => x.max(1.0).log2(),
    };
    let (mut x0, mut x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(fx(p.0)), b.max(fx(p.0)))
    });
    if x_axis == Axis::Linear {
        x0 = 0.0;
    }
    if all.is_empty() {
        (x0, x1) = (0.0, 1.0);
    }
    let x_step = tick_step(x1);
    if x_axis == Axis::Linear {
        x1 = (x1 / x_step).ceil() * x_step;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let y_step = tick_step(y_max);
    let y1 = ((y_max / y_step).ceil() * y_step).max(y_step);
    let px = |x: f64| LEFT + (fx(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y1 * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        esc(title)
    );
    // Grid and y ticks.
    let mut y = 0.0;
    while y <= y1 + y_step / 2.0 {
        let yy = py(y);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            fmt_tick(y)
        );
        y += y_step;
    }
    // X ticks: the committee sizes present, or even steps.
    let xs: Vec<f64> = match x_axis {
        Axis::Log2 => {
            let mut v: Vec<f64> = all.iter().map(|p| p.0).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        }
        Axis::Linear => {
            let mut v = Vec::new();
            let mut x = 0.0;
            while x <= x1 + x_step / 2.0 {
                v.push(x);
                x += x_step;
            }
            v
        }
    };
    for x in xs {
        let xx = px(x);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 5.0,
            H - BOTTOM + 18.0,
            fmt_tick(x)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        H - BOTTOM,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 18.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        esc(y_label)
    );
    for (i, series) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = series
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in &series.points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                px(*x),
                py(*y)
            );
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = W - RIGHT + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            esc(&series.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_for_report_and_ladder_results() {
        let report = serde_json::json!({
            "workload": "report",
            "rows": [
                {"engine": "pbft", "validators": 4, "payload_bytes": 8, "tx_per_s": 70.0, "latency_ms_p50": 140.0},
                {"engine": "pbft", "validators": 8, "payload_bytes": 8, "tx_per_s": 50.0, "latency_ms_p50": 190.0},
                {"engine": "sbft", "validators": 4, "payload_bytes": 8, "tx_per_s": 72.0, "latency_ms_p50": 135.0},
                {"engine": "sbft", "validators": 4, "payload_bytes": 1024, "tx_per_s": 71.0, "latency_ms_p50": 137.0}
            ]
        });
        let ladder = serde_json::json!({
            "workload": "saturate",
            "rows": [{"engine": "linear", "validators": 4, "payload_bytes": 8, "steps": [
                {"tx_per_s": 250.0, "latency_ms_p50": 90.0},
                {"tx_per_s": 370.0, "latency_ms_p50": 120.0}
            ]}]
        });
        let dir = tempfile::tempdir().unwrap();
        let files = plot(&[report, ladder], dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "report-latency-8B.svg",
                "report-throughput-8B.svg",
                "report-latency-1KB.svg",
                "report-throughput-1KB.svg",
                "saturate-8B-n4.svg"
            ]
        );
        let svg = std::fs::read_to_string(dir.path().join("report-latency-8B.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // One line per engine, one marker per point, ticks at the committee sizes.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(">pbft<") && svg.contains(">sbft<"));
        assert!(svg.contains(">4</text>") && svg.contains(">8</text>"));
        let sat = std::fs::read_to_string(dir.path().join("saturate-8B-n4.svg")).unwrap();
        assert_eq!(sat.matches("<circle").count(), 2);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(140.0), 50.0);
        assert_eq!(tick_step(1.0), 0.2);
        assert_eq!(tick_step(9000.0), 2000.0);
        assert_eq!(tick_step(0.0), 1.0);
    }
}
