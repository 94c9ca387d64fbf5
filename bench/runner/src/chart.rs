//! The report's chart: pwf / raw ratios as grouped bars, in plain SVG.

use std::fmt::Write as _;

/// One group of bars: a metric, its target, and one ratio per example.
pub(crate) struct Group {
    pub(crate) label: String,
    /// The target ratio, drawn as a tick; `higher_is_better` says which side
    /// of it passes.
    pub(crate) target: Option<f64>,
    pub(crate) higher_is_better: bool,
    pub(crate) bars: Vec<Option<f64>>,
}

const COLORS: [&str; 3] = ["#4e79a7", "#f28e2b", "#59a14f"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart: `series` names the bars of each group.
pub(crate) fn render(title: &str, series: &[&str], groups: &[Group]) -> String {
    let (width, height) = (820.0, 420.0);
    let (left, right, top, bottom) = (60.0, 20.0, 50.0, 90.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = groups
        .iter()
        .flat_map(|g| g.bars.iter().flatten().copied().chain(g.target))
        .fold(1.2_f64, f64::max);
    let max = (max * 10.0).ceil() / 10.0 + 0.1;
    let y = |value: f64| top + plot_h * (1.0 - value / max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    // Grid and axis.
    let step = if max > 2.5 { 0.5 } else { 0.2 };
    let mut tick = 0.0;
    while tick <= max + 1e-9 {
        let ty = y(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" text-anchor="end">{tick:.1}</text>"##,
            width - right,
            left - 6.0,
            ty + 4.0
        );
        tick += step;
    }
    let one = y(1.0);
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" x2="{}" y1="{one:.1}" y2="{one:.1}" stroke="#333" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" font-size="10" fill="#333">raw = 1.0</text>"##,
        width - right,
        width - right - 60.0,
        one - 4.0
    );
    let group_w = plot_w / groups.len().max(1) as f64;
    for (g, group) in groups.iter().enumerate() {
        let gx = left + group_w * g as f64;
        let bar_w = group_w * 0.7 / group.bars.len().max(1) as f64;
        for (b, bar) in group.bars.iter().enumerate() {
            let Some(value) = bar else { continue };
            let x = gx + group_w * 0.15 + bar_w * b as f64;
            let by = y(*value);
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {value:.3}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{value:.2}</text>"#,
                bar_w - 2.0,
                (y(0.0) - by).max(0.0),
                COLORS[b % COLORS.len()],
                escape(series.get(b).copied().unwrap_or("")),
                x + bar_w / 2.0 - 1.0,
                by - 3.0
            );
        }
        if let Some(target) = group.target {
            let ty = y(target);
            let side = if group.higher_is_better { "≥" } else { "≤" };
            let _ = writeln!(
                svg,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#c00" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#c00" text-anchor="end">target {side} {target}</text>"##,
                gx + group_w * 0.1,
                gx + group_w * 0.9,
                gx + group_w * 0.9,
                ty - 3.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w / 2.0,
            y(0.0) + 18.0,
            escape(&group.label)
        );
    }
    for (s, name) in series.iter().enumerate() {
        let x = left + 20.0 + 190.0 * s as f64;
        let ly = height - 30.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{}" y="{ly:.1}">{}</text>"#,
            ly - 10.0,
            COLORS[s % COLORS.len()],
            x + 16.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
