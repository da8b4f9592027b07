//! Each run's figures: a table on stdout, JSON and an SVG bar chart under `target/bench/`.

use std::{fmt::Write as _, path::PathBuf};

use serde_json::json;

use crate::scenario::Row;

fn out_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_owned());
    PathBuf::from(target).join("bench")
}

pub fn table(scenario: &str, rows: &[Row]) -> String {
    let mut out = format!("\n{scenario}\n");
    let Some(first) = rows.first() else {
        return out;
    };
    let _ = write!(out, "{:<34}", "target");
    for (name, _) in &first.figures {
        let _ = write!(out, "  {name:>20}");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "{:<34}", row.target);
        for (name, value) in &row.figures {
            let width = name.len().max(20);
            let _ = write!(out, "  {value:>width$.2}");
        }
        out.push('\n');
    }
    out
}

/// Writes `<scenario>.json` and `<scenario>.svg` (a bar chart of `headline`); returns the
/// paths written.
pub fn save(
    scenario: &str,
    command: &str,
    rows: &[Row],
    headline: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let dir = out_dir();
    std::fs::create_dir_all(&dir)?;
    let json_path = dir.join(format!("{scenario}.json"));
    let document = json!({
        "scenario": scenario,
        "command": command,
        "machine": machine(),
        "rows": rows,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&document)?)?;
    let svg_path = dir.join(format!("{scenario}.svg"));
    std::fs::write(
        &svg_path,
        bar_chart(&format!("{scenario}: {headline}"), rows, headline),
    )?;
    Ok(vec![json_path, svg_path])
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {cpu}")
}

fn bar_chart(title: &str, rows: &[Row], figure: &str) -> String {
    let values: Vec<(String, f64)> = rows
        .iter()
        .map(|row| {
            let value = row
                .figures
                .iter()
                .find(|(name, _)| name == figure)
                .map_or(0.0, |(_, v)| *v);
            (row.target.clone(), value)
        })
        .collect();
    let max = values
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let (width, bar_height, left) = (760.0, 28.0, 260.0);
    let height = 60.0 + values.len() as f64 * (bar_height + 12.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="16" y="28" font-size="16" font-weight="bold">{}</text>
"#,
        escape(title)
    );
    for (i, (name, value)) in values.iter().enumerate() {
        let y = 48.0 + i as f64 * (bar_height + 12.0);
        let w = (width - left - 120.0) * value / max;
        let _ = writeln!(
            svg,
            r##"<text x="16" y="{ty}">{}</text><rect x="{left}" y="{y}" width="{w:.1}" height="{bar_height}" fill="#3d5afe"/><text x="{tx:.1}" y="{ty}">{value:.1}</text>"##,
            escape(name),
            ty = y + 19.0,
            tx = left + w + 8.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
