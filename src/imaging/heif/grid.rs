//! A grid of tiles (512×512 in iPhone photos), assembled and cut to its size; its tiles decoded
//! on idle cores where there are any (the last photos of an indexing run, a single `embed`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use heifer::heifer_hevc_dec::recon::Frame;
use heifer::heifer_isobmff::ItemId;
use image::{RgbImage, imageops};

use super::colour::Colour;
use super::{Decoder, Shown, container};

/// Helpers started on idle cores so far, in this process (the tests and the bench read it).
static HELPERS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// How many helpers have decoded grid tiles on idle cores in this process.
pub fn helpers_started() -> usize {
    HELPERS_STARTED.load(Ordering::Acquire)
}

/// One tile, decoded.
enum Part {
    /// A coded picture shown as decoded, converted straight into the canvas.
    Picture(Frame, Colour, (u32, u32)),
    /// Anything else, decoded and transformed first.
    Image(RgbImage),
}

impl Decoder<'_> {
    pub(super) fn grid(&self, id: ItemId, depth: u32) -> Result<Shown, String> {
        let grid = self.file.grid(id).map_err(container)?;
        let tiles = self.file.referenced_items(id, b"dimg");
        let columns = usize::from(grid.columns);
        if tiles.is_empty() || tiles.len() != usize::from(grid.rows) * columns {
            return Err(format!(
                "damaged HEIF file: its grid has {} of {}×{} tiles",
                tiles.len(),
                grid.rows,
                grid.columns
            ));
        }
        let (width, height) = (grid.output_width, grid.output_height);
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > self.limit {
            return Err(format!(
                "damaged HEIF file: its grid is {width}×{height}, unlike the photo it belongs to"
            ));
        }
        let mut canvas = RgbImage::new(width.div_ceil(self.scale), height.div_ceil(self.scale));
        let mut tile_size = None;
        let mut place = |i: usize, part: Part| -> Result<(), String> {
            let size = match &part {
                Part::Image(tile) => tile.dimensions(),
                Part::Picture(_, _, size) => *size,
            };
            // Every tile has the same size; the last row and column may reach past the canvas
            // and are cut.
            let (tw, th) = *tile_size.get_or_insert(size);
            if size != (tw, th) {
                return Err("damaged HEIF file: its grid tiles differ in size".into());
            }
            let x = (i % columns) as u64 * u64::from(tw);
            let y = (i / columns) as u64 * u64::from(th);
            if x >= u64::from(width) || y >= u64::from(height) {
                return Ok(());
            }
            let (x, y) = (x as u32, y as u32);
            match part {
                Part::Image(tile) => {
                    imageops::replace(&mut canvas, &tile, i64::from(x), i64::from(y));
                    Ok(())
                }
                Part::Picture(frame, colour, _) => {
                    let shown = (tw.min(width - x), th.min(height - y));
                    self.convert(&frame, colour, &mut canvas, (x, y), shown)
                }
            }
        };
        let mut plain = true;
        for &tile in tiles {
            plain &= self.is_plain_picture(tile)?;
        }
        if plain && tiles.len() > 1 {
            self.decode_tiles_on_idle_cores(tiles, &mut place)?;
        } else {
            for (i, &tile) in tiles.iter().enumerate() {
                // Tiles as iPhones write them are plain pictures, converted in place; others
                // are decoded and transformed first (never in a reduced decode: see
                // `reducible`).
                let part = if self.is_plain_picture(tile)? {
                    let (frame, colour, size) = self.picture(tile)?;
                    Part::Picture(frame, colour, size)
                } else {
                    Part::Image(self.item(tile, depth + 1)?.image)
                };
                place(i, part)?;
            }
        }
        Ok(Shown::new(canvas, (width, height), self.scale))
    }

    /// Decodes the plain-picture `tiles`, handing each to `place` on this thread. Before each
    /// tile it takes, this thread borrows any core left idle and starts a helper on it, which
    /// decodes tiles from the same list until none is left; the cores go back when the grid is
    /// done. With none idle, the tiles are decoded here, one after the other.
    fn decode_tiles_on_idle_cores(
        &self,
        tiles: &[ItemId],
        place: &mut dyn FnMut(usize, Part) -> Result<(), String>,
    ) -> Result<(), String> {
        type Decoded = (usize, Result<(Frame, Colour, (u32, u32)), String>);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut borrowed = 0;
        let result = std::thread::scope(|scope| -> Result<(), String> {
            // Made here, so that a panic on this thread drops the receiver and every helper's
            // next send fails and ends it: the scope never waits on a helper blocked on a send.
            let (sender, received) = mpsc::sync_channel::<Decoded>(2);
            let helper = |sender: mpsc::SyncSender<Decoded>| {
                let (next, stop) = (&next, &stop);
                move || {
                    while !stop.load(Ordering::Acquire) {
                        let i = next.fetch_add(1, Ordering::AcqRel);
                        let Some(&tile) = tiles.get(i) else { break };
                        // A decoder panic on a helper is the photo's failure, as on this thread
                        // (and the tile's result always arrives, so nothing waits for it).
                        let picture =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                self.picture(tile)
                            }))
                            .unwrap_or_else(|_| {
                                Err("damaged HEIF file: the decoder failed".into())
                            });
                        if sender.send((i, picture)).is_err() {
                            break;
                        }
                    }
                }
            };
            let mut placed = 0;
            let mut work = || -> Result<(), String> {
                while placed < tiles.len() {
                    let wanted = tiles.len().saturating_sub(placed + borrowed + 1);
                    if wanted > 0 {
                        let more = crate::imaging::borrow_spare_threads(wanted);
                        for _ in 0..more {
                            let started = std::thread::Builder::new()
                                .name("cliptag-heic-tiles".into())
                                .spawn_scoped(scope, helper(sender.clone()));
                            if started.is_ok() {
                                borrowed += 1;
                                HELPERS_STARTED.fetch_add(1, Ordering::AcqRel);
                            } else {
                                crate::imaging::lend_spare_threads(1);
                            }
                        }
                    }
                    // Tiles the helpers finished first, then one of this thread's own.
                    while let Ok((i, picture)) = received.try_recv() {
                        let (frame, colour, size) = picture?;
                        place(i, Part::Picture(frame, colour, size))?;
                        placed += 1;
                    }
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    if let Some(&tile) = tiles.get(i) {
                        let (frame, colour, size) = self.picture(tile)?;
                        place(i, Part::Picture(frame, colour, size))?;
                        placed += 1;
                    } else if placed < tiles.len() {
                        // Every tile is taken: wait for the helpers' last ones.
                        let (i, picture) = received
                            .recv()
                            .map_err(|_| "damaged HEIF file: a grid tile was lost".to_string())?;
                        let (frame, colour, size) = picture?;
                        place(i, Part::Picture(frame, colour, size))?;
                        placed += 1;
                    }
                }
                Ok(())
            };
            let result = work();
            // On a failure the helpers stop at their next tile; the scope waits for them.
            stop.store(true, Ordering::Release);
            drop(received);
            result
        });
        crate::imaging::lend_spare_threads(borrowed);
        result
    }
}
