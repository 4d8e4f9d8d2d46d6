//! What the gallery holds of the library: the ids it shows (the gallery reader's answer to its
//! filter) and the rows on screen and near it, asked for as they come into view and dropped when
//! far from it, so a million photos cost the app their ids and a few thousand rows.

use std::collections::{HashMap, HashSet};

use crate::library::{GalleryQuery, ImageEntry};
use crate::worker::{GalleryAnswer, GalleryView};

/// Rows the gallery keeps at most; beyond it, rows far from what is on screen are dropped.
const ROW_CACHE: usize = 4096;
/// Rows asked for ahead of what is on screen, on each side, in screens.
const ROWS_AHEAD: usize = 1;

/// A photo's row as the gallery last read it, and for which snapshot.
#[derive(Debug)]
struct CachedRow {
    version: u64,
    entry: ImageEntry,
}

#[derive(Debug)]
pub struct GalleryState {
    /// Rows held at most before those far from the screen are dropped.
    pub row_limit: usize,
    /// Show only photos that have every one of these labels (or any, with `any_tag`).
    pub tags: Vec<i64>,
    /// Whether one of the filter's labels is enough.
    pub any_tag: bool,
    /// Show only photos without any tag.
    pub untagged: bool,
    /// Show only photos that failed or went missing.
    pub problems: bool,
    /// A search being typed.
    pub search_text: String,
    /// The last search's results, best first.
    pub search: Option<(String, Vec<(i64, f32)>)>,
    /// Only these photos, and what they are (a preview's changes).
    pub only: Option<(String, Vec<i64>)>,
    /// Photos picked with Ctrl- or Shift-click (or Ctrl-A), for actions on many at once.
    pub picked: std::collections::BTreeSet<i64>,
    /// The modifiers of the last click.
    pub(super) click_modifiers: egui::Modifiers,
    /// The photos shown, in order, as the gallery reader last answered.
    pub(super) view: Option<GalleryView>,
    /// The query last asked of the reader, and for which snapshot; `None` asks again.
    pub(super) asked: Option<(GalleryQuery, u64)>,
    /// Rows of photos on screen or near it.
    rows: HashMap<i64, CachedRow>,
    /// Photos whose rows were asked for and not answered yet, with the snapshot asked for.
    pending: HashMap<i64, u64>,
    /// Scores to show under thumbnails (search results).
    pub(super) scores: HashMap<i64, f32>,
    /// The gallery's scroll offset and visible height in the last frame.
    pub(super) viewport: (f32, f32),
    /// An offset to scroll to in the next frame (the keyboard moved the selection off screen).
    pub(super) scroll_to: Option<f32>,
    /// A photo to bring into view once the gallery shows it (an undo brought it back), and the
    /// snapshot it was asked under: a view answered for a later one without it gives up.
    pub(super) reveal: Option<(i64, u64)>,
    /// How many photos the gallery showed side by side in the last frame.
    pub columns: usize,
    /// Cells drawn in the last frame, and how many of them showed their thumbnail.
    pub cells_shown: (usize, usize),
}

impl Default for GalleryState {
    fn default() -> Self {
        GalleryState {
            row_limit: ROW_CACHE,
            tags: Vec::new(),
            any_tag: false,
            untagged: false,
            problems: false,
            search_text: String::new(),
            search: None,
            only: None,
            picked: Default::default(),
            click_modifiers: Default::default(),
            view: None,
            asked: None,
            rows: HashMap::new(),
            pending: HashMap::new(),
            scores: HashMap::new(),
            viewport: (0.0, 0.0),
            scroll_to: None,
            reveal: None,
            columns: 0,
            cells_shown: (0, 0),
        }
    }
}

impl GalleryState {
    /// Asks for the shown photos again (the filter changed).
    pub fn invalidate(&mut self) {
        self.asked = None;
    }

    /// Adds or removes a label from the tag filter.
    pub fn toggle_tag(&mut self, label_id: i64) {
        if let Some(i) = self.tags.iter().position(|t| *t == label_id) {
            self.tags.remove(i);
        } else {
            self.tags.push(label_id);
        }
        self.invalidate();
    }

    /// Shows only the photos `ids` (what an edit would change), named `what` in the filter bar.
    pub fn show_only(&mut self, what: String, ids: Vec<i64>) {
        self.search = None;
        self.only = Some((what, ids));
        self.invalidate();
    }

    /// The photos shown now, in order.
    pub fn visible(&self) -> &[i64] {
        self.view.as_ref().map_or(&[], |v| &v.ids)
    }

    /// Whether the photos shown are the answer to the filter as it is now, for the snapshot
    /// numbered `version`.
    pub fn is_current(&self, version: u64) -> bool {
        match (&self.view, &self.asked) {
            (Some(view), Some((query, asked))) => {
                *asked == version && view.version == version && view.query == *query
            }
            _ => false,
        }
    }

    /// The row of photo `id`, if the gallery has read it.
    pub fn entry(&self, id: i64) -> Option<&ImageEntry> {
        self.rows.get(&id).map(|r| &r.entry)
    }

    /// How many rows the gallery holds.
    pub fn rows_held(&self) -> usize {
        self.rows.len()
    }

    /// What the filter asks the reader for.
    pub(super) fn query(&self) -> GalleryQuery {
        let within = match (&self.only, &self.search) {
            (Some((_, ids)), _) => Some(ids.clone()),
            (None, Some((_, results))) => Some(results.iter().map(|(id, _)| *id).collect()),
            (None, None) => None,
        };
        GalleryQuery {
            tags: self.tags.clone(),
            any_tag: self.any_tag,
            untagged: self.untagged,
            problems: self.problems,
            within,
        }
    }

    /// Takes in one of the reader's answers. Returns the photos found gone from the library.
    pub fn receive(&mut self, answer: GalleryAnswer) -> Vec<i64> {
        match answer {
            GalleryAnswer::View(view) => {
                // An answer to an older question still replaces an older one: it is closer to
                // what was asked than what is shown.
                if self.asked.as_ref().is_some_and(|(q, _)| *q == view.query) || self.view.is_none()
                {
                    self.view = Some(view);
                }
                Vec::new()
            }
            GalleryAnswer::Rows {
                version,
                asked,
                entries,
            } => {
                for id in &asked {
                    if self.pending.get(id).is_some_and(|v| *v <= version) {
                        self.pending.remove(id);
                    }
                }
                let mut gone: HashSet<i64> = asked.into_iter().collect();
                for entry in entries {
                    gone.remove(&entry.id);
                    self.rows.insert(entry.id, CachedRow { version, entry });
                }
                for id in &gone {
                    self.rows.remove(id);
                }
                gone.into_iter().collect()
            }
        }
    }

    /// Rows to ask for so that `range` of the shown photos (and a screen around it) can be
    /// drawn as of the snapshot `version`; marks them asked for. Drops rows far from it when
    /// the cache is full.
    pub(super) fn rows_wanted(&mut self, range: std::ops::Range<usize>, version: u64) -> Vec<i64> {
        let Some(view) = &self.view else {
            return Vec::new();
        };
        let ahead = range.len() * ROWS_AHEAD;
        let from = range.start.saturating_sub(ahead);
        let to = (range.end + ahead).min(view.ids.len());
        let near = view.ids[from.min(to)..to].to_vec();
        if self.rows.len() > self.row_limit {
            let keep: HashSet<i64> = near.iter().copied().collect();
            self.rows.retain(|id, _| keep.contains(id));
        }
        near.into_iter()
            .filter(|id| self.want_row(*id, version))
            .collect()
    }

    /// Whether photo `id`'s row must be asked for to show it as of the snapshot `version` (not
    /// held that fresh, nor asked for already); marks it asked for if so.
    pub(super) fn want_row(&mut self, id: i64, version: u64) -> bool {
        let fresh = self.rows.get(&id).is_some_and(|r| r.version >= version);
        let asked = self.pending.get(&id).is_some_and(|v| *v >= version);
        if fresh || asked {
            return false;
        }
        self.pending.insert(id, version);
        true
    }
}

/// The scroll offset that brings row `row` (rows `stride` apart) fully into a view scrolled to
/// `offset` and `height` tall; `None` if it is in view already.
pub(super) fn into_view(row: usize, stride: f32, (offset, height): (f32, f32)) -> Option<f32> {
    let top = row as f32 * stride;
    if top < offset {
        Some(top)
    } else if top + stride > offset + height {
        Some((top + stride - height).max(0.0))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::into_view;

    #[test]
    fn a_row_off_screen_is_scrolled_into_view_and_one_on_screen_is_left() {
        // Rows 100 apart, a view 350 tall scrolled to 1000: rows 10, 11 and 12 are in it.
        assert_eq!(into_view(11, 100.0, (1000.0, 350.0)), None);
        assert_eq!(into_view(9, 100.0, (1000.0, 350.0)), Some(900.0));
        assert_eq!(into_view(13, 100.0, (1000.0, 350.0)), Some(1050.0));
        assert_eq!(into_view(0, 100.0, (1000.0, 350.0)), Some(0.0));
    }
}
