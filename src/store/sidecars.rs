//! `sidecar_keywords`: the keywords cliptag added to each XMP sidecar.

use std::path::Path;

use rusqlite::params;

use super::{Store, path_bytes};
use crate::error::Result;

impl Store {
    /// The keywords cliptag added to the sidecar at `sidecar`: `(dc:subject, lr:hierarchicalSubject)`.
    pub fn sidecar_keywords(&self, sidecar: &Path) -> Result<(Vec<String>, Vec<String>)> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, keyword FROM sidecar_keywords WHERE sidecar = ?1 ORDER BY keyword",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([path_bytes(sidecar).as_ref()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let (mut subject, mut hierarchical) = (Vec::new(), Vec::new());
        for row in rows {
            let (kind, keyword) = row.map_err(|e| self.err(e))?;
            if kind == "subject" {
                subject.push(keyword);
            } else {
                hierarchical.push(keyword);
            }
        }
        Ok((subject, hierarchical))
    }

    /// Replaces the record of what cliptag added to the sidecar at `sidecar`.
    pub fn set_sidecar_keywords(
        &mut self,
        sidecar: &Path,
        subject: &[String],
        hierarchical: &[String],
    ) -> Result<()> {
        let key = path_bytes(sidecar).into_owned();
        self.write(|tx| {
            tx.execute("DELETE FROM sidecar_keywords WHERE sidecar = ?1", [&key])?;
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO sidecar_keywords (sidecar, kind, keyword) VALUES (?1, ?2, ?3)",
            )?;
            for keyword in subject {
                insert.execute(params![key, "subject", keyword])?;
            }
            for keyword in hierarchical {
                insert.execute(params![key, "hierarchical", keyword])?;
            }
            Ok(())
        })
    }
}
