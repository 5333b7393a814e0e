//! Line charts drawn on the server as inline SVG: scalable, printable,
//! readable by screen readers through their title and description, and
//! nothing to download.

use std::fmt::Write;

use crate::html::esc;

/// Colours that stay distinct for colour-blind readers (Okabe–Ito), each
/// paired with a dash pattern so lines differ in more than colour.
pub(crate) const PALETTE: [(&str, &str); 7] = [
    ("#0072B2", ""),
    ("#D55E00", "6 3"),
    ("#009E73", "2 2"),
    ("#CC79A7", "8 3 2 3"),
    ("#8a6d00", "4 4"),
    ("#56B4E9", "1 3"),
    ("#000000", "10 4"),
];

#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub label: String,
    pub points: Vec<Option<f64>>,
    /// Index into [`PALETTE`].
    pub style: usize,
    /// Drawn as steps (a level holds until the next assessment).
    pub step: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub title: String,
    /// What the chart shows, in words, for screen readers.
    pub description: String,
    /// One label per x position.
    pub x_labels: Vec<String>,
    pub y_min: f64,
    pub y_max: f64,
    /// Tick values on the y axis, with their labels.
    pub y_ticks: Vec<(f64, String)>,
    /// A horizontal reference line (the target), with its label.
    pub reference: Option<(f64, String)>,
    /// Vertical markers: (x position, label).
    pub markers: Vec<(usize, String)>,
    pub series: Vec<Series>,
}

const W: f64 = 760.0;
const H: f64 = 250.0;
const LEFT: f64 = 48.0;
/// Room for the y axis's labels again on the right: a phone opens a chart
/// scrolled to its latest weeks, where the left axis is out of view.
const RIGHT: f64 = 48.0;
/// The largest font an axis label is drawn in (the phone's stylesheet sets
/// 14), for telling whether two labels would overlap.
const LABEL_FONT: f64 = 14.0;
const TOP: f64 = 14.0;
/// A text's halo: an outline of the chart's background, drawn under it.
const HALO: &str =
    " stroke=\"#fff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"";
const BOTTOM: f64 = 34.0;

impl Chart {
    fn x(&self, i: usize) -> f64 {
        let n = self.x_labels.len().max(2) - 1;
        LEFT + (W - LEFT - RIGHT) * i as f64 / n as f64
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.y_max - self.y_min).max(f64::EPSILON);
        let v = v.clamp(self.y_min, self.y_max);
        TOP + (H - TOP - BOTTOM) * (1.0 - (v - self.y_min) / span)
    }

    /// The chart as a `<figure>` with an SVG and a legend.
    pub(crate) fn render(&self, id: &str) -> String {
        let mut s = String::with_capacity(8 * 1024);
        let _ = write!(
            s,
            "<figure class=\"chart\"><figcaption id=\"{id}-t\">{}</figcaption>\
             <svg class=\"plot\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" \
             preserveAspectRatio=\"xMidYMid meet\"><desc id=\"{id}-d\">{}</desc>",
            esc(&self.title),
            esc(&self.description)
        );
        // Grid and the y axis, labelled on both sides.
        for (v, label) in &self.y_ticks {
            let y = self.y(*v);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e1e5ea\"/>\
                 <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4a5360\">{}</text>\
                 <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"start\" fill=\"#4a5360\" aria-hidden=\"true\">{}</text>",
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                esc(label),
                W - RIGHT + 6.0,
                y + 4.0,
                esc(label)
            );
        }
        // X labels: at most about ten.
        let n = self.x_labels.len();
        let every = n.div_ceil(10).max(1);
        // The room a label takes, at the largest font, with a gap.
        let widest = self
            .x_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as f64
            * LABEL_FONT
            * 0.62
            + 8.0;
        for (i, label) in self.x_labels.iter().enumerate() {
            // The last label only when it does not crowd the one before.
            let last_fits =
                i + 1 == n && i % every != 0 && self.x(i) - self.x(i - i % every) >= widest;
            if i % every == 0 || last_fits {
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#4a5360\">{}</text>",
                    self.x(i),
                    H - BOTTOM + 16.0,
                    esc(label)
                );
            }
        }
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#8a94a3\"/>",
            W - RIGHT,
            H - BOTTOM,
            H - BOTTOM
        );
        // The reference's and the markers' words are drawn after the
        // series, each on a halo of the background, so that no line runs
        // through them.
        let mut words = String::new();
        if let Some((v, label)) = &self.reference {
            let y = self.y(*v);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#1b1f24\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>",
                W - RIGHT,
            );
            let _ = write!(
                words,
                "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#1b1f24\"{HALO}>{}</text>",
                W - RIGHT - 2.0,
                y - 4.0,
                esc(label)
            );
        }
        for (i, label) in &self.markers {
            let x = self.x(*i);
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#8b3fc7\" stroke-width=\"2\"/>",
                H - BOTTOM,
            );
            let _ = write!(
                words,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" fill=\"#4c1a73\" font-weight=\"600\"{HALO}>{}</text>",
                x + 4.0,
                TOP + 10.0,
                esc(label)
            );
        }
        for series in &self.series {
            let (color, dash) = PALETTE[series.style % PALETTE.len()];
            let mut path = String::new();
            let mut pen_down = false;
            for (i, point) in series.points.iter().enumerate() {
                match point {
                    Some(v) => {
                        let (x, y) = (self.x(i), self.y(*v));
                        if !pen_down {
                            let _ = write!(path, "M{x:.1},{y:.1}");
                        } else if series.step {
                            let _ = write!(path, "H{x:.1}V{y:.1}");
                        } else {
                            let _ = write!(path, "L{x:.1},{y:.1}");
                        }
                        pen_down = true;
                    }
                    None if !series.step => pen_down = false,
                    None => {}
                }
            }
            if path.is_empty() {
                continue;
            }
            let _ = write!(
                s,
                "<path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2.2\" \
                 stroke-linejoin=\"round\"{}><title>{}</title></path>",
                if dash.is_empty() {
                    String::new()
                } else {
                    format!(" stroke-dasharray=\"{dash}\"")
                },
                esc(&series.label)
            );
            if !series.step {
                for (i, point) in series.points.iter().enumerate() {
                    if let Some(v) = point {
                        let _ = write!(
                            s,
                            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{color}\"/>",
                            self.x(i),
                            self.y(*v)
                        );
                    }
                }
            }
        }
        s.push_str(&words);
        s.push_str("</svg><ul class=\"legend\">");
        for series in &self.series {
            let (color, dash) = PALETTE[series.style % PALETTE.len()];
            let _ = write!(
                s,
                "<li><svg width=\"26\" height=\"10\" aria-hidden=\"true\"><line x1=\"0\" x2=\"26\" y1=\"5\" y2=\"5\" \
                 stroke=\"{color}\" stroke-width=\"3\"{}/></svg>{}</li>",
                if dash.is_empty() {
                    String::new()
                } else {
                    format!(" stroke-dasharray=\"{dash}\"")
                },
                esc(&series.label)
            );
        }
        if let Some((_, label)) = &self.reference {
            let _ = write!(
                s,
                "<li><svg width=\"26\" height=\"10\" aria-hidden=\"true\"><line x1=\"0\" x2=\"26\" y1=\"5\" y2=\"5\" \
                 stroke=\"#1b1f24\" stroke-width=\"2\" stroke-dasharray=\"5 4\"/></svg>{}</li>",
                esc(label)
            );
        }
        for (_, label) in &self.markers {
            let _ = write!(
                s,
                "<li><svg width=\"26\" height=\"10\" aria-hidden=\"true\"><line x1=\"13\" x2=\"13\" y1=\"0\" y2=\"10\" \
                 stroke=\"#8b3fc7\" stroke-width=\"3\"/></svg>{}</li>",
                esc(label)
            );
        }
        s.push_str("</ul></figure>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_escapes_its_labels_and_draws_each_series() {
        let chart = Chart {
            title: "Levels <by> competency".into(),
            description: "d".into(),
            x_labels: vec!["W1".into(), "W2".into(), "W3".into()],
            y_min: 1.0,
            y_max: 5.0,
            y_ticks: vec![(1.0, "1".into()), (5.0, "5".into())],
            reference: Some((1.0, "target".into())),
            markers: vec![(1, "gate".into())],
            series: vec![Series {
                label: "A & B".into(),
                points: vec![Some(2.0), None, Some(3.0)],
                style: 0,
                step: true,
            }],
        };
        let svg = chart.render("c");
        assert!(svg.contains("Levels &lt;by&gt; competency"));
        assert!(svg.contains("A &amp; B"));
        assert_eq!(svg.matches("<path").count(), 1);
        // The reference's and the marker's words lie over the series, on a
        // halo, not under a line.
        let path = svg.find("<path").expect("a path");
        for words in [">target</text>", ">gate</text>"] {
            let at = svg.find(words).expect(words);
            assert!(at > path, "{words} drawn before the series: {svg}");
            let text = &svg[svg[..at].rfind("<text").expect("its text")..at];
            assert!(text.contains("paint-order=\"stroke\""), "{text}");
        }
    }

    fn weeks(n: usize) -> Chart {
        Chart {
            title: "t".into(),
            description: "d".into(),
            x_labels: (0..n).map(|i| format!("{} Nov", i + 1)).collect(),
            y_min: 0.0,
            y_max: 100.0,
            y_ticks: vec![(0.0, "0%".into()), (100.0, "100%".into())],
            reference: None,
            markers: vec![],
            series: vec![],
        }
    }

    /// The x position of each x label drawn.
    fn x_label_positions(svg: &str) -> Vec<f64> {
        svg.split("<text x=\"")
            .skip(1)
            .filter(|t| t.contains("text-anchor=\"middle\""))
            .map(|t| {
                t.split('"')
                    .next()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(f64::NAN)
            })
            .collect()
    }

    #[test]
    fn the_last_x_label_is_drawn_only_where_it_clears_the_one_before() {
        for n in 2..60 {
            let svg = weeks(n).render("c");
            let xs = x_label_positions(&svg);
            let widest = 6.0 * LABEL_FONT * 0.62 + 8.0;
            for pair in xs.windows(2) {
                assert!(
                    pair[1] - pair[0] >= widest - 0.1,
                    "{n} labels: {pair:?} overlap at the phone's font"
                );
            }
        }
        // Thirty-one labels show every fourth; the last, two after the
        // 29th, is too close to it and is left out.
        let xs = x_label_positions(&weeks(31).render("c"));
        assert_eq!(xs.len(), 8, "{xs:?}");
    }

    #[test]
    fn each_y_label_stands_on_both_sides_of_the_plot() {
        let svg = weeks(5).render("c");
        assert_eq!(svg.matches(">100%</text>").count(), 2, "{svg}");
        assert_eq!(svg.matches(">0%</text>").count(), 2, "{svg}");
    }
}
