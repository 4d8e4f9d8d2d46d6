//! What the gallery asks of the database: which photos a filter shows, in order, and the rows
//! on screen. The app asks these on a connection of its own ([`Store::open_reader`]), so the
//! gallery pages through a million photos while the worker indexes and tags on another.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::Connection;

use super::{ImageRow, Store, migrate};
use crate::domain::TagSource;
use crate::error::{Error, Result};

/// Which photos the gallery shows. Photos come in path order, or in the order of `within`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GalleryQuery {
    /// Only photos with every one of these labels (or any of them, with `any_tag`).
    pub tags: Vec<i64>,
    pub any_tag: bool,
    /// Only photos without any tag.
    pub untagged: bool,
    /// Only photos that could not be read or went missing (otherwise missing ones are left
    /// out).
    pub problems: bool,
    /// Only these photos, in this order (a search's results, best first; what an edit would
    /// change).
    pub within: Option<Vec<i64>>,
}

/// A photo's tags as `(label, source)`.
pub type PhotoTags = Vec<(i64, TagSource)>;

/// Photos the app lists in its problems window at most; the count says how many there are.
pub const PROBLEMS_LISTED: usize = 1000;

impl Store {
    /// A connection for reading beside the one that writes (the app's gallery): no migrations
    /// (the library's own connection made the schema current), and every write refused.
    pub fn open_reader(path: &Path) -> Result<Self> {
        if let Some(why) = super::read_only_reason(path) {
            return Self::open_read_only(path, why);
        }
        let fail = |e: rusqlite::Error| Error::store(path, e.to_string());
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(super::BUSY_TIMEOUT).map_err(fail)?;
        let version = migrate::version(&conn, path)?;
        if version != migrate::LATEST_VERSION {
            return Err(Error::store(
                path,
                format!(
                    "the library's schema is version {version}, not {}: open it in cliptag first",
                    migrate::LATEST_VERSION
                ),
            ));
        }
        conn.pragma_update(None, "query_only", "ON").map_err(fail)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            checkpoint_due: false,
            read_only: Some("the gallery's reader only reads".into()),
            last_vocabulary_edit: None,
        })
    }

    /// The photos `query` shows, in order.
    pub fn gallery_ids(&self, query: &GalleryQuery) -> Result<Vec<i64>> {
        let problems = self.ids_where("status IN ('error', 'missing')")?;
        let missing = self.ids_where("status = 'missing'")?;
        let mut ids = match &query.within {
            Some(within) => {
                let mut seen = HashSet::new();
                let mut known = Vec::with_capacity(within.len());
                for &id in within {
                    if seen.insert(id) && self.image_exists(id)? {
                        known.push(id);
                    }
                }
                known
            }
            None if query.problems => self.ids_where_by_path("status IN ('error', 'missing')")?,
            None => self.ids_where_by_path("1 = 1")?,
        };
        if query.problems {
            let problems: HashSet<i64> = problems.into_iter().collect();
            ids.retain(|id| problems.contains(id));
        } else if !missing.is_empty() {
            let missing: HashSet<i64> = missing.into_iter().collect();
            ids.retain(|id| !missing.contains(id));
        }
        if query.untagged {
            let tagged = self.tagged_images()?;
            ids.retain(|id| tagged.binary_search(id).is_err());
        }
        if !query.tags.is_empty() {
            let mut sets = Vec::with_capacity(query.tags.len());
            for &label in &query.tags {
                sets.push(self.images_with_label(label)?);
            }
            ids.retain(|id| {
                let has = |set: &Vec<i64>| set.binary_search(id).is_ok();
                if query.any_tag {
                    sets.iter().any(has)
                } else {
                    sets.iter().all(has)
                }
            });
        }
        Ok(ids)
    }

    /// The rows of these photos with their tags (rejections included, best score first), in the
    /// order asked; a photo that is no longer known is left out.
    pub fn gallery_rows(&self, ids: &[i64]) -> Result<Vec<(ImageRow, PhotoTags)>> {
        let mut tags_of = self
            .conn
            .prepare_cached(
                // Best first (a person's tag without a score last): the gallery's chips show
                // the first few.
                "SELECT label_id, source FROM tags WHERE image_id = ?1 ORDER BY score DESC",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(image) = self.image(id)? else {
                continue;
            };
            let tags = tags_of
                .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| self.err(e))?
                .map(|r| {
                    let (label, source) = r.map_err(|e| self.err(e))?;
                    Ok((label, self.parse_source(&source)?))
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push((image, tags));
        }
        Ok(rows)
    }

    /// Up to `limit` photos that could not be read or went missing, by path, and how many there
    /// are in all.
    pub fn problem_images(&self, limit: usize) -> Result<(Vec<ImageRow>, usize)> {
        let ids = self.ids_where_by_path("status IN ('error', 'missing')")?;
        let mut rows = Vec::with_capacity(ids.len().min(limit));
        for &id in ids.iter().take(limit) {
            rows.extend(self.image(id)?);
        }
        Ok((rows, ids.len()))
    }

    /// Calls `each(image, label)` for every tag that puts a label on a photo (all but
    /// rejections), photo by photo: one pass over the tags, for counting them.
    pub fn each_applied_tag(&self, mut each: impl FnMut(i64, i64)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT image_id, label_id FROM tags WHERE source != 'rejected' ORDER BY image_id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let image: i64 = row.get(0).map_err(|e| self.err(e))?;
            let label: i64 = row.get(1).map_err(|e| self.err(e))?;
            each(image, label);
        }
        Ok(())
    }

    fn image_exists(&self, id: i64) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM images WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        stmt.exists([id]).map_err(|e| self.err(e))
    }

    /// Ids of the photos matching `condition` (a constant SQL condition), in no set order.
    fn ids_where(&self, condition: &str) -> Result<Vec<i64>> {
        self.id_list(&format!("SELECT id FROM images WHERE {condition}"), &[])
    }

    /// Ids of the photos matching `condition`, by path (the path index holds the id, so the
    /// whole library is read from the index alone).
    fn ids_where_by_path(&self, condition: &str) -> Result<Vec<i64>> {
        self.id_list(
            &format!("SELECT id FROM images WHERE {condition} ORDER BY path"),
            &[],
        )
    }

    /// Photos with any tag that applies, sorted by id.
    fn tagged_images(&self) -> Result<Vec<i64>> {
        // The tags' primary key starts with the photo, so this is one ordered pass.
        self.id_list(
            "SELECT DISTINCT image_id FROM tags WHERE source != 'rejected' ORDER BY image_id",
            &[],
        )
    }

    /// Photos the label applies to, sorted by id.
    fn images_with_label(&self, label_id: i64) -> Result<Vec<i64>> {
        let mut ids = self.id_list(
            "SELECT image_id FROM tags WHERE label_id = ?1 AND source != 'rejected'",
            &[&label_id],
        )?;
        ids.sort_unstable();
        Ok(ids)
    }

    fn id_list(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }
}
