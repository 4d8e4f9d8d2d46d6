//! How a product's output is shared among threads: each thread takes runs of the output
//! panels, and starts (bias, residual) and finishes (activation) the columns it computes.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::SendPtr;

/// The rows of `x`, `inputs` values each.
pub(crate) fn rows_of(x: &[f32], inputs: usize) -> usize {
    assert!(
        inputs > 0 && x.len().is_multiple_of(inputs),
        "input width is not {inputs}"
    );
    x.len() / inputs
}

/// A fresh `rows × outputs` buffer, every value of which `fill` starts (through
/// [`split_panels`] or [`Around::started`]).
pub(crate) fn into_fresh(rows: usize, outputs: usize, fill: impl FnOnce(Output)) -> Vec<f32> {
    let len = rows * outputs;
    let mut values: Vec<f32> = Vec::with_capacity(len);
    fill(Output {
        at: SendPtr(values.as_mut_ptr()),
        rows,
        outputs,
    });
    // SAFETY: `fill` started every column of every row (`split_panels`' parts cover all panels,
    // `started` all rows, and `Around::start` writes each value it is given) within the
    // capacity reserved above.
    unsafe { values.set_len(len) };
    values
}

/// What runs on a product's values once they are done (a layer's activation).
pub type Finish = dyn Fn(&mut [f32]) + Sync;

/// What a linear layer does to its output around the product, on the thread that computes
/// each column range: the values the product adds to (bias, residual) before it, the
/// activation after. No pass over the whole output then runs on one thread while the others
/// wait, and none needs a parallel region of its own.
#[derive(Clone, Copy)]
pub struct Around<'a> {
    bias: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
    finish: Option<&'a Finish>,
}

impl<'a> Around<'a> {
    /// Starts each output row at `residual`'s row plus `bias` (zero where both are `None`), and
    /// applies `finish` to the product's values.
    pub fn new(
        bias: Option<&'a [f32]>,
        residual: Option<&'a [f32]>,
        finish: Option<&'a Finish>,
    ) -> Self {
        Around {
            bias,
            residual,
            finish,
        }
    }

    /// A `rows × outputs` output holding only the starting values, rows shared among the
    /// threads of the current pool: for a product that cannot start its own columns (the
    /// `gemm` crate's).
    pub fn started(&self, rows: usize, outputs: usize) -> Vec<f32> {
        into_fresh(rows, outputs, |out| {
            let all = 0..outputs;
            (0..rows).into_par_iter().for_each(|row| {
                // SAFETY: each row is written by one task only; the row is in bounds.
                self.start(row, &all, outputs, unsafe { out.row(row, &all) });
            });
        })
    }

    /// Applies the finish to a whole output, in chunks shared among the current pool's threads.
    pub fn finish_all(&self, values: &mut [f32]) {
        if let Some(finish) = self.finish {
            values.par_chunks_mut(1 << 14).for_each(finish);
        }
    }

    /// Writes row `row`'s starting values for columns `cols` (of `outputs`) into `out`.
    fn start(&self, row: usize, cols: &Range<usize>, outputs: usize, out: &mut [MaybeUninit<f32>]) {
        let residual = self.residual.map(|r| &r[row * outputs..][cols.clone()]);
        let bias = self.bias.map(|b| &b[cols.clone()]);
        match (residual, bias) {
            (Some(residual), Some(bias)) => {
                for ((o, r), b) in out.iter_mut().zip(residual).zip(bias) {
                    o.write(r + b);
                }
            }
            (Some(values), None) | (None, Some(values)) => {
                for (o, v) in out.iter_mut().zip(values) {
                    o.write(*v);
                }
            }
            (None, None) => {
                for o in out.iter_mut() {
                    o.write(0.0);
                }
            }
        }
    }
}

/// A product's output, `rows × outputs` row-major, written by several threads at once.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    pub(crate) at: SendPtr<f32>,
    pub(crate) rows: usize,
    pub(crate) outputs: usize,
}

impl Output {
    /// Row `row`'s values in columns `cols`.
    ///
    /// # Safety
    /// `row` and `cols` must be in bounds, and no other thread may use those values meanwhile.
    unsafe fn row<'a>(self, row: usize, cols: &Range<usize>) -> &'a mut [MaybeUninit<f32>] {
        // SAFETY: in bounds and not shared, as the caller guarantees.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.at.at(row * self.outputs + cols.start).cast(),
                cols.len(),
            )
        }
    }
}

/// Runs `part` on up to `threads` threads of the current pool, each with its own run of the
/// `panels` output panels of `nr` columns, with `around`'s start before and finish after on
/// that run's columns of every row of `out`.
pub(crate) fn split_panels(
    panels: usize,
    nr: usize,
    out: Output,
    threads: usize,
    around: &Around,
    part: impl Fn(Range<usize>) + Sync,
) {
    let parts = threads.clamp(1, panels.max(1));
    let per_part = panels.div_ceil(parts);
    (0..parts).into_par_iter().for_each(|i| {
        let first = (i * per_part).min(panels);
        let range = first..(first + per_part).min(panels);
        let cols = (range.start * nr).min(out.outputs)..(range.end * nr).min(out.outputs);
        for row in 0..out.rows {
            // SAFETY: each part has its own columns; the row is in bounds.
            around.start(row, &cols, out.outputs, unsafe { out.row(row, &cols) });
        }
        part(range);
        let Some(finish) = around.finish else {
            return;
        };
        for row in 0..out.rows {
            // SAFETY: as above; `start` initialised these values and the product has added to
            // them.
            let values = unsafe { out.row(row, &cols) };
            // SAFETY: every value was initialised (above), and `MaybeUninit<f32>` has `f32`'s
            // layout.
            let values = unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) };
            finish(values);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn every_column_of_every_row_is_started_and_finished_once_whatever_the_split() {
        let rows = 5;
        for panels in [1, 2, 3, 7, 24, 97] {
            for threads in [1, 2, 3, 8] {
                let (nr, outputs) = (4, panels * 4 - 1); // the last panel one column short
                let bias: Vec<f32> = (0..outputs).map(|c| c as f32).collect();
                let finish = |xs: &mut [f32]| xs.iter_mut().for_each(|x| *x = -*x);
                let around = Around::new(Some(&bias), None, Some(&finish));
                let seen = Mutex::new(Vec::new());
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| {
                    into_fresh(rows, outputs, |out| {
                        split_panels(panels, nr, out, threads, &around, |range| {
                            seen.lock().unwrap().push(range);
                        })
                    })
                });
                let mut seen = seen.into_inner().unwrap();
                seen.sort_by_key(|r| r.start);
                let covered: Vec<usize> = seen.into_iter().flatten().collect();
                assert_eq!(covered, (0..panels).collect::<Vec<_>>(), "{panels} panels");
                for (i, value) in got.iter().enumerate() {
                    assert_eq!(
                        *value,
                        -((i % outputs) as f32),
                        "{panels} panels, {threads} threads"
                    );
                }
            }
        }
    }
}
