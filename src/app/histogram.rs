//! The score histogram of the label editor: how the label's scores spread over the library, the
//! threshold as a line that can be dragged, and where the person's accepts (green) and rejects
//! (red) fall, so a threshold can be set by eye.

use crate::library::Histogram;

/// What the person did to the histogram this frame.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct HistogramResponse {
    /// The threshold moved (dragging or a click).
    pub changed: bool,
    /// The drag ended or the click happened: the new threshold is to be applied.
    pub released: bool,
}

/// Draws `histogram` with the threshold line at `threshold`, which dragging or clicking moves.
pub fn histogram_ui(
    ui: &mut egui::Ui,
    histogram: &Histogram,
    threshold: &mut f32,
    name: &str,
) -> HistogramResponse {
    let width = ui.available_width().max(120.0);
    let (rect, response) =
        ui.allocate_exact_size(egui::vec2(width, 72.0), egui::Sense::click_and_drag());
    // A line under it for the axis, allocated whether or not it is drawn, so the layout below
    // never moves.
    let (axis, _) = ui.allocate_exact_size(egui::vec2(width, 13.0), egui::Sense::hover());
    let label = format!("Score histogram of {name}");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Slider, true, &label));
    let response = response.on_hover_text(
        "Photos by score; the line is the threshold (drag it); green marks are your accepts, red \
         your rejects",
    );
    let span = (histogram.high - histogram.low).max(1e-6);
    let x_of = |score: f32| rect.left() + (score - histogram.low) / span * rect.width();
    let mut result = HistogramResponse::default();
    if let Some(pos) = response.interact_pointer_pos()
        && (response.dragged() || response.clicked())
    {
        let score = histogram.low + (pos.x - rect.left()) / rect.width() * span;
        let score = score.clamp(histogram.low, histogram.high);
        if (score - *threshold).abs() > f32::EPSILON {
            // Rounded down, so the photo at the left end of the range still passes.
            *threshold = (score * 1000.0).floor() / 1000.0;
            result.changed = true;
        }
    }
    result.released = response.drag_stopped() || response.clicked();
    if !ui.is_rect_visible(rect) {
        return result;
    }
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let tallest = histogram.bins.iter().copied().max().unwrap_or(0).max(1) as f32;
    let bar = rect.width() / histogram.bins.len().max(1) as f32;
    let plot = rect.shrink2(egui::vec2(0.0, 8.0));
    for (i, count) in histogram.bins.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        // Square-root heights, so a few photos in a tail stay visible beside a crowded middle.
        let height = (*count as f32 / tallest).sqrt() * plot.height();
        let left = rect.left() + i as f32 * bar;
        let center = histogram.low + (i as f32 + 0.5) / histogram.bins.len() as f32 * span;
        let color = if center >= *threshold {
            visuals.selection.bg_fill
        } else {
            visuals.widgets.inactive.bg_fill
        };
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(left, plot.bottom() - height),
                egui::pos2(left + bar - 1.0, plot.bottom()),
            ),
            0.0,
            color,
        );
    }
    let tick = |score: f32, color: egui::Color32, top: bool| {
        let x = x_of(score);
        let (y0, y1) = if top {
            (rect.top(), rect.top() + 7.0)
        } else {
            (rect.bottom() - 7.0, rect.bottom())
        };
        painter.line_segment([egui::pos2(x, y0), egui::pos2(x, y1)], (2.0, color));
    };
    for score in &histogram.accepted {
        tick(*score, egui::Color32::from_rgb(80, 200, 120), false);
    }
    for score in &histogram.rejected {
        tick(*score, egui::Color32::from_rgb(230, 80, 80), true);
    }
    let x = x_of(threshold.clamp(histogram.low, histogram.high));
    painter.line_segment(
        [egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())],
        (2.0, visuals.strong_text_color()),
    );
    // The axes, in words, under the plot: the score range, and the count the tallest bar stands
    // for (heights are square roots, so the other bars are not read off a linear scale).
    let font = egui::FontId::proportional(10.0);
    let weak = visuals.weak_text_color();
    let below = axis.left_top() + egui::vec2(0.0, 1.0);
    {
        let painter = ui.painter_at(axis);
        painter.text(
            below,
            egui::Align2::LEFT_TOP,
            format!("{:.2}", histogram.low),
            font.clone(),
            weak,
        );
        painter.text(
            egui::pos2(rect.center().x, below.y),
            egui::Align2::CENTER_TOP,
            match histogram.bins.iter().copied().max().unwrap_or(0) {
                0 => "score (bars: photos)".to_string(),
                1 => "score (tallest bar: 1 photo)".to_string(),
                n => format!("score (tallest bar: {n} photos)"),
            },
            font.clone(),
            weak,
        );
        painter.text(
            axis.right_top() + egui::vec2(0.0, 1.0),
            egui::Align2::RIGHT_TOP,
            format!("{:.2}", histogram.high),
            font.clone(),
            weak,
        );
    }
    result
}
