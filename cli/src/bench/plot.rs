//! `--plot out.svg`: three panels (latency histogram, latency over time, req/s over time),
//! written as plain SVG text: labelled axes, ticks, a legend, no dependencies.

use std::fmt::Write as _;

use super::report::Report;

const WIDTH: f64 = 960.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Where a panel draws and how values map to it.
struct Frame {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    xs: (f64, f64),
    ys: (f64, f64),
    log_x: bool,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        let f = if self.log_x {
            (v.max(1e-9) / self.xs.0).ln() / (self.xs.1 / self.xs.0).ln()
        } else {
            (v - self.xs.0) / (self.xs.1 - self.xs.0)
        };
        self.x0 + f.clamp(0.0, 1.0) * self.w
    }

    fn y(&self, v: f64) -> f64 {
        let f = (v - self.ys.0) / (self.ys.1 - self.ys.0);
        self.y0 + self.h - f.clamp(0.0, 1.0) * self.h
    }
}

/// The SVG document for `r`.
pub fn svg(r: &Report) -> String {
    let height = 3.0 * (PANEL_H + TOP + BOTTOM) + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "wirecore bench: {} {} (c={}{}), {:.0} req/s, p99 {:.2} ms",
        r.method,
        r.urls.join(" "),
        r.concurrency,
        r.rate.map_or(String::new(), |x| format!(", rate {x}/s")),
        r.req_per_s,
        r.latency_ms.p99
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        escape(&title)
    );
    let panel_top = |i: f64| 40.0 + i * (PANEL_H + TOP + BOTTOM) + TOP;
    histogram_panel(&mut s, r, panel_top(0.0));
    latency_panel(&mut s, r, panel_top(1.0));
    throughput_panel(&mut s, r, panel_top(2.0));
    s.push_str("</svg>\n");
    s
}

fn histogram_panel(s: &mut String, r: &Report, y0: f64) {
    let bins = &r.histogram;
    let (lo, hi) = match (bins.first(), bins.last()) {
        (Some(a), Some(b)) => (a.from_ms, b.to_ms),
        _ => (0.0, 1.0),
    };
    let log_x = lo > 0.0 && hi / lo > 4.0;
    let most = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let f = frame(y0, (lo, hi.max(lo + 1e-6)), (0.0, nice_max(most)), log_x);
    axes(s, &f, "Latency histogram", "latency (ms)", "responses");
    for b in bins {
        let (x1, x2) = (f.x(b.from_ms), f.x(b.to_ms));
        let y = f.y(b.count as f64);
        let _ = writeln!(
            s,
            r##"<rect x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#4878d0" stroke="white" stroke-width="0.5"/>"##,
            (x2 - x1).max(0.5),
            f.y0 + f.h - y
        );
    }
}

fn latency_panel(s: &mut String, r: &Report, y0: f64) {
    let t_max = r.timeline.last().map_or(1.0, |p| p.t_s).max(1e-3);
    let top = r
        .timeline
        .iter()
        .filter_map(|p| p.p99_ms)
        .fold(0.0, f64::max);
    let f = frame(y0, (0.0, t_max), (0.0, nice_max(top)), false);
    axes(s, &f, "Latency over time", "time (s)", "latency (ms)");
    let p50: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .filter_map(|p| Some((p.t_s, p.p50_ms?)))
        .collect();
    let p99: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .filter_map(|p| Some((p.t_s, p.p99_ms?)))
        .collect();
    line(s, &f, &p99, "#d65f5f");
    line(s, &f, &p50, "#4878d0");
    legend(s, &f, &[("p50", "#4878d0"), ("p99", "#d65f5f")]);
}

fn throughput_panel(s: &mut String, r: &Report, y0: f64) {
    let t_max = r.timeline.last().map_or(1.0, |p| p.t_s).max(1e-3);
    let top = r.timeline.iter().map(|p| p.req_per_s).fold(0.0, f64::max);
    let f = frame(y0, (0.0, t_max), (0.0, nice_max(top)), false);
    axes(s, &f, "Throughput over time", "time (s)", "requests / s");
    let width = match r.timeline.as_slice() {
        [first, ..] => first.t_s,
        [] => 1.0,
    };
    let rps: Vec<(f64, f64)> = r.timeline.iter().map(|p| (p.t_s, p.req_per_s)).collect();
    let errs: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .map(|p| (p.t_s, p.errors as f64 / width.max(1e-9)))
        .collect();
    line(s, &f, &rps, "#4878d0");
    if r.errors > 0 {
        line(s, &f, &errs, "#d65f5f");
        legend(s, &f, &[("finished", "#4878d0"), ("errors", "#d65f5f")]);
    } else {
        legend(s, &f, &[("finished", "#4878d0")]);
    }
}

fn frame(y0: f64, xs: (f64, f64), ys: (f64, f64), log_x: bool) -> Frame {
    Frame {
        x0: LEFT,
        y0,
        w: WIDTH - LEFT - RIGHT,
        h: PANEL_H,
        xs,
        ys,
        log_x,
    }
}

/// Frame, grid, ticks with labels, axis titles and the panel title.
fn axes(s: &mut String, f: &Frame, title: &str, xlabel: &str, ylabel: &str) {
    let (x1, y1) = (f.x0 + f.w, f.y0 + f.h);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#,
        f.x0,
        f.y0 - 12.0,
        escape(title)
    );
    let xticks = if f.log_x {
        log_ticks(f.xs.0, f.xs.1)
    } else {
        linear_ticks(f.xs.0, f.xs.1)
    };
    for t in xticks {
        let x = f.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="#e3e3e3"/><line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{:.1}" stroke="black"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            f.y0,
            y1 + 5.0,
            y1 + 19.0,
            tick_label(t)
        );
    }
    for t in linear_ticks(f.ys.0, f.ys.1) {
        let y = f.y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#e3e3e3"/><line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="black"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            f.x0,
            f.x0 - 5.0,
            f.x0,
            f.x0 - 8.0,
            y + 4.0,
            tick_label(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        f.x0, f.y0, f.w, f.h
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">{}</text>"#,
        f.x0 + f.w / 2.0,
        y1 + 38.0,
        escape(xlabel)
    );
    let (lx, ly) = (f.x0 - 60.0, f.y0 + f.h / 2.0);
    let _ = writeln!(
        s,
        r#"<text x="{lx:.1}" y="{ly:.1}" text-anchor="middle" font-size="13" transform="rotate(-90 {lx:.1} {ly:.1})">{}</text>"#,
        escape(ylabel)
    );
}

fn line(s: &mut String, f: &Frame, pts: &[(f64, f64)], color: &str) {
    if pts.is_empty() {
        return;
    }
    let path: Vec<String> = pts
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", f.x(x), f.y(y)))
        .collect();
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.8"/>"#,
        path.join(" ")
    );
}

fn legend(s: &mut String, f: &Frame, items: &[(&str, &str)]) {
    for (i, (name, color)) in items.iter().enumerate() {
        let x = f.x0 + f.w - 110.0;
        let y = f.y0 + 16.0 + i as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 24.0,
            x + 30.0,
            y + 4.0,
            escape(name)
        );
    }
}

/// The axis top: `v` rounded up to 1, 2 or 5 times a power of ten.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

/// About five ticks at a round step.
fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return vec![lo];
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 50 {
        out.push(t);
        t += step;
    }
    out
}

/// 1, 2 and 5 times each power of ten in range (only powers of ten when it spans a lot).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let wide = hi / lo > 1e3;
    let mut mag = 10f64.powf(lo.log10().floor());
    while mag <= hi && out.len() < 50 {
        for m in [1u8, 2, 5] {
            let t = f64::from(m) * mag;
            if (!wide || m == 1) && t >= lo && t <= hi {
                out.push(t);
            }
        }
        mag *= 10.0;
    }
    out
}

fn tick_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(linear_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(log_ticks(0.3, 30.0), vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
        assert!((nice_max(730.0) - 1000.0).abs() < 1e-9);
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(25_000.0), "25k");
    }
}
