//! Storing one batch: the encoder runs on the photos that need it, moves and copies are
//! decided in order, and everything the batch found (embeddings, statuses, automatic tags)
//! commits in one transaction. A kept matrix of embeddings follows.

use crate::store::Basis;
use std::path::PathBuf;
use std::time::Instant;

use super::IndexRun;
use super::pool::{Done, Job, Outcome};
use crate::error::{Error, Result};
use crate::imaging::Pixels;
use crate::library::Library;
use crate::tagging::EmbeddingMatrix;

/// What one batch decided for each of its files, in order.
enum Write {
    Embedded {
        id: i64,
        hash: String,
        display: (u32, u32),
        vector: Vec<f32>,
    },
    Copy {
        id: i64,
        hash: String,
        from: i64,
    },
    Move {
        from: i64,
        pending: i64,
        path: PathBuf,
        size: u64,
        mtime_ns: i64,
    },
    Same {
        id: i64,
        size: u64,
        mtime_ns: i64,
    },
    Failed {
        id: i64,
        hash: Option<String>,
        reason: String,
    },
}

impl Library {
    /// Embeds the batch's ready images and writes the whole batch in one transaction.
    pub(super) fn store_batch(&mut self, run: &mut IndexRun, batch: Vec<Done>) -> Result<()> {
        let pixels: Vec<&Pixels> = batch
            .iter()
            .filter_map(|d| match &d.outcome {
                Outcome::Ready { pixels, .. } => Some(pixels),
                _ => None,
            })
            .collect();
        let mut vectors = if pixels.is_empty() {
            Vec::new()
        } else {
            let engine = self.engine()?;
            // Loading may have re-keyed an older library's embeddings to the model's own id.
            run.model = engine.model_id().to_string();
            run.summary.precision = Some(engine.precision().name());
            let pixels: Vec<Pixels> = pixels.into_iter().cloned().collect();
            let encoding = Instant::now();
            let vectors = engine.embed_images(&pixels)?;
            run.summary.timings.encode += encoding.elapsed();
            vectors
        }
        .into_iter();

        // Decide moves and copies here, in order, so that one vanished photo moves only once.
        let mut writes = Vec::with_capacity(batch.len());
        let mut thumbnails = Vec::new();
        for Done { job, outcome, .. } in batch {
            let write = match outcome {
                Outcome::Ready {
                    hash,
                    display,
                    thumbnail,
                    ..
                } => Write::Embedded {
                    id: job.image_id,
                    hash: {
                        if let Some(jpeg) = thumbnail {
                            thumbnails.push((hash.clone(), jpeg));
                        }
                        hash
                    },
                    display,
                    vector: vectors
                        .next()
                        .ok_or_else(|| Error::invalid("the encoder returned too few embeddings"))?,
                },
                Outcome::Same => Write::Same {
                    id: job.image_id,
                    size: job.size,
                    mtime_ns: job.mtime_ns,
                },
                Outcome::Known { hash } => match run.known.missing.remove(&hash) {
                    Some(from) if job.new => Write::Move {
                        from,
                        pending: job.image_id,
                        path: job.path,
                        size: job.size,
                        mtime_ns: job.mtime_ns,
                    },
                    other => {
                        if let Some(from) = other {
                            run.known.missing.insert(hash.clone(), from);
                        }
                        match run.known.embedded.get(&hash).copied() {
                            Some(from) if from != job.image_id => Write::Copy {
                                id: job.image_id,
                                hash,
                                from,
                            },
                            _ => Write::Same {
                                id: job.image_id,
                                size: job.size,
                                mtime_ns: job.mtime_ns,
                            },
                        }
                    }
                },
                Outcome::Deferred => {
                    // Its bytes are not the ones embedded: the next pool decodes it.
                    run.deferred.push(Job {
                        expect: None,
                        ..job
                    });
                    continue;
                }
                Outcome::Failed { hash, reason } => {
                    run.summary.fail(&job.path, reason.clone());
                    Write::Failed {
                        id: job.image_id,
                        hash,
                        reason,
                    }
                }
            };
            run.handled += 1;
            writes.push(write);
        }
        let embedded: Vec<(i64, Vec<f32>)> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Embedded { id, vector, .. } => Some((*id, vector.clone())),
                _ => None,
            })
            .collect();
        let copies = writes.iter().any(|w| matches!(w, Write::Copy { .. }));
        // Tag what this batch embeds with the vocabulary as it is now (an edit made between two
        // batches applies from the next one). A plan that cannot be made (new prompts and no
        // model) leaves tagging to the next re-tag.
        // While the library switches models, tags stay the old model's until every photo has
        // the new model's embedding (the run re-tags at its end).
        let tagging = (!embedded.is_empty() || copies) && !run.switching;
        let planned = tagging
            && match self.plan() {
                Ok(_) => true,
                Err(error) => {
                    run.summary.tagging_error.get_or_insert(error.to_string());
                    false
                }
            };
        let mut tags = Vec::new();
        if planned && !embedded.is_empty() {
            let plan = self
                .scores
                .plan
                .as_ref()
                .expect("prepared above. This is a bug.");
            tags = plan
                .assign(&EmbeddingMatrix::from_rows(embedded.clone())?)?
                .into_iter()
                .map(|a| (a.image_id, a.label_id, a.score))
                .collect();
        }
        let storing = Instant::now();
        let model = run.model.clone();
        let precision = run.summary.precision;
        let plan = self.scores.plan.as_ref().filter(|_| planned);
        let generation = self.scores.plan_generation;
        let (counts, copied, generations) = self.store.batch(|b| {
            let before = b.embedding_generation()?;
            let (mut indexed, mut moved, mut copies, mut same, mut restored) = (0, 0, 0, 0, 0);
            let mut copied: Vec<(i64, Vec<f32>)> = Vec::new();
            for write in &writes {
                match write {
                    Write::Embedded {
                        id,
                        hash,
                        display,
                        vector,
                    } => {
                        restored +=
                            b.record_ok(*id, hash, *display, (&model, precision), vector)?;
                        indexed += 1;
                    }
                    Write::Copy { id, hash, from } => {
                        let (vector, back) = b.record_copy(*id, hash, *from, &model)?;
                        copied.push((*id, vector));
                        restored += back;
                        copies += 1;
                    }
                    Write::Move {
                        from,
                        pending,
                        path,
                        size,
                        mtime_ns,
                    } => {
                        b.record_move(*from, Some(*pending), path, *size, *mtime_ns)?;
                        moved += 1;
                    }
                    Write::Same { id, size, mtime_ns } => {
                        b.mark_same_content(*id, *size, *mtime_ns)?;
                        same += 1;
                    }
                    Write::Failed { id, hash, reason } => {
                        b.record_error(*id, hash.as_deref(), reason)?;
                    }
                }
            }
            let mut all_tags = tags;
            if let Some(plan) = plan
                && !copied.is_empty()
            {
                all_tags.extend(
                    plan.assign(&EmbeddingMatrix::from_rows(copied.clone())?)?
                        .into_iter()
                        .map(|a| (a.image_id, a.label_id, a.score)),
                );
            }
            if plan.is_some() {
                let ids: Vec<i64> = embedded.iter().chain(&copied).map(|(id, _)| *id).collect();
                b.replace_auto_tags(&ids, &all_tags, Basis::Part(generation))?;
            }
            let after = b.embedding_generation()?;
            Ok((
                (indexed, moved, copies, same, restored as u64),
                copied,
                (before, after),
            ))
        })?;
        run.summary.timings.store += storing.elapsed();
        run.summary.indexed += counts.0;
        run.summary.moved += counts.1;
        run.summary.duplicates += counts.2;
        run.summary.unchanged += counts.3;
        run.summary.restored += counts.4;
        // After the photos' own writes: a thumbnail that cannot be cached is made again when
        // the gallery shows the photo, and never fails indexing.
        if let Some(cache) = &mut self.thumbnails {
            let _ = cache.put_many(&thumbnails);
        }
        self.keep_matrix_current(&run.model, &writes, embedded, copied, generations)
    }

    /// Brings a kept matrix of embeddings up to date with a stored batch, so that searches and
    /// previews during indexing never reload the library's embeddings. `generations` are the
    /// database's embedding generations before and after the batch: a matrix that was not at
    /// the first (something else changed the embeddings) is dropped and read again when needed.
    fn keep_matrix_current(
        &mut self,
        model: &str,
        writes: &[Write],
        embedded: Vec<(i64, Vec<f32>)>,
        copied: Vec<(i64, Vec<f32>)>,
        (before, after): (i64, i64),
    ) -> Result<()> {
        if self.scores.matrix.is_none() {
            return Ok(());
        }
        if self.scores.generation != before {
            self.scores.matrix = None;
            self.scores.columns.clear();
            return Ok(());
        }
        self.scores.columns.clear();
        let mut fetched = Vec::new();
        for write in writes {
            match write {
                Write::Move { from: id, .. } | Write::Same { id, .. } => {
                    if let Some(vector) = self.store.embedding(*id, model)? {
                        fetched.push((*id, vector));
                    }
                }
                _ => {}
            }
        }
        let matrix = self
            .scores
            .matrix
            .as_mut()
            .expect("checked above. This is a bug.");
        let mirrored = (|| {
            for (id, vector) in embedded.iter().chain(&copied).chain(&fetched) {
                matrix.upsert(*id, vector)?;
            }
            for write in writes {
                if let Write::Failed { id, .. } = write {
                    matrix.remove(*id)?;
                }
            }
            matrix.commit(after)
        })();
        match mirrored {
            Ok(()) => self.scores.generation = after,
            // Half mirrored (the embeddings file could not be written): read again when needed;
            // the file, left marked as changing, is rebuilt then.
            Err(_) => self.scores.matrix = None,
        }
        Ok(())
    }
}
