//! Tags out of the library: gathers each photo's tags and hands them to the CSV and XMP writers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::Library;
use crate::domain::ImageStatus;
use crate::error::Result;
use crate::export::csv::{CsvForm, CsvReport};
use crate::export::target::{self, Target};
use crate::export::xmp::{self, SidecarNaming, XmpReport};
use crate::export::{self, ImageTags, PathStyle};
use crate::store::TagRow;

/// A CSV to write.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvExport {
    pub path: PathBuf,
    pub form: CsvForm,
    pub style: PathStyle,
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportRequest {
    pub csv: Option<CsvExport>,
    /// Write XMP sidecars, named so.
    pub xmp: Option<SidecarNaming>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportReport {
    /// The CSV written.
    pub csv: Option<CsvReport>,
    pub xmp: Option<XmpReport>,
}

impl Library {
    /// Every photo with the tags that apply to it (rejections left out), ordered by path: the
    /// indexed ones, and missing ones that still carry tags.
    fn image_tags(&mut self) -> Result<Vec<(ImageStatus, ImageTags)>> {
        let mut by_image: HashMap<i64, Vec<TagRow>> = HashMap::new();
        let mut rows = self.store.tags()?;
        self.rescore_decided(&mut rows);
        for tag in rows {
            if tag.source.applies() {
                by_image.entry(tag.image_id).or_default().push(tag);
            }
        }
        let mut out = Vec::new();
        for image in self.store.images()? {
            let tags = by_image.remove(&image.id).unwrap_or_default();
            if image.status == ImageStatus::Ok || !tags.is_empty() {
                out.push((
                    image.status,
                    ImageTags {
                        path: image.path,
                        tags,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// The files that make up this library: the database with its journal files, the
    /// embeddings file and the thumbnail cache with its own (in the cache folder, and beside the
    /// library where an earlier cliptag kept it).
    fn own_files(&self) -> Vec<PathBuf> {
        let with_suffix = |path: &Path, suffix: &str| {
            let mut name = path.as_os_str().to_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        let mut files = Vec::new();
        // Named from the path the library was opened by and from the file it is (a `--db` that
        // is a link): SQLite names its journal files after the file, cliptag its side files
        // after the path.
        let named = self.store.path().to_path_buf();
        let real = std::fs::canonicalize(&named).unwrap_or_else(|_| named.clone());
        for db in [named, real] {
            let thumbnails = crate::store::thumbnails::cache_path(&db);
            let beside = crate::store::thumbnails::beside_path(&db);
            for base in [db.clone(), thumbnails, beside] {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    files.push(with_suffix(&base, suffix));
                }
            }
            files.push(crate::store::vectors_path(&db));
            files.push(with_suffix(&db, ".index-lock"));
        }
        files
    }

    /// Checks that an export may write `path`: never one of the library's own files, a photo of
    /// the library or any file cliptag reads as an image, and only a regular file, a new path, a
    /// named pipe or `-` (standard output).
    pub fn export_target(&self, path: &Path) -> Result<Target> {
        let target = Target::of(path)?;
        if self.own_files().iter().any(|own| target.is_same_file(own)) {
            return Err(target::refused(
                path,
                "it is one of this library's own files",
            ));
        }
        if let Target::File(file) = &target {
            let resolved = file.canonicalize().ok().or_else(|| target::resolved(file));
            if let Some(resolved) = resolved
                && self.store.image_by_path(&resolved)?.is_some()
            {
                return Err(target::refused(path, "it is a photo in this library"));
            }
            let mut head = vec![0u8; 8192];
            let read = std::fs::File::open(file)
                .and_then(|f| std::io::Read::read(&mut std::io::Read::take(f, 8192), &mut head))
                .unwrap_or(0);
            head.truncate(read);
            if read > 0 && crate::imaging::is_photo(&head[..read]) {
                return Err(target::refused(path, "it is an image"));
            }
            // Another library, a backup of this one, any program's database: never a CSV.
            if head[..read].starts_with(b"SQLite format 3\0") {
                return Err(target::refused(
                    path,
                    "it is a database (another cliptag library or a backup?)",
                ));
            }
            // A CSV or vocabulary file is replaced; anything else stays. A camera RAW, a video,
            // a document or a program is not text; a sidecar is text, but another program's.
            if let Some(why) = not_replaceable(file, &head) {
                return Err(target::refused(path, why));
            }
        }
        Ok(target)
    }

    /// Writes the library's tags to a CSV file and/or XMP sidecars beside the photos. A sidecar
    /// that cannot be written is reported in the result and the others are still written.
    pub fn export(&mut self, request: &ExportRequest) -> Result<ExportReport> {
        let images = self.image_tags()?;
        let mut report = ExportReport::default();
        if let Some(csv) = &request.csv {
            let roots = self.store.roots()?;
            let all: Vec<&ImageTags> = images.iter().map(|(_, tags)| tags).collect();
            let target = self.export_target(&csv.path)?;
            report.csv = Some(export::csv::export(
                &all, &roots, &target, csv.form, csv.style,
            )?);
        }
        if let Some(naming) = request.xmp {
            report.xmp = Some(self.write_sidecars(&images, naming)?);
        }
        Ok(report)
    }

    /// Writes or updates the sidecar of every photo on disk that has tags (or whose sidecar holds
    /// keywords cliptag added before). Photos that share a sidecar name (`photo.jpg` and
    /// `photo.png` under Adobe naming) share its keywords. A sidecar that cannot be written is
    /// reported, and the others are still written.
    fn write_sidecars(
        &mut self,
        images: &[(ImageStatus, ImageTags)],
        naming: SidecarNaming,
    ) -> Result<XmpReport> {
        let mut by_sidecar: BTreeMap<PathBuf, Vec<&ImageTags>> = BTreeMap::new();
        // A photo that is not on disk gets no sidecar.
        for (_, photo) in images
            .iter()
            .filter(|(status, _)| *status == ImageStatus::Ok)
        {
            let sidecar = xmp::sidecar_path(&photo.path, naming);
            by_sidecar.entry(sidecar).or_default().push(photo);
        }
        let mut report = XmpReport::default();
        for (sidecar, photos) in by_sidecar {
            let (subject, hierarchical) = self.store.sidecar_keywords(&sidecar)?;
            let merge = xmp::Merge {
                wanted: xmp::Keywords::of(photos.iter().copied()),
                owned: xmp::Keywords {
                    subject,
                    hierarchical,
                },
            };
            match xmp::update(&sidecar, &merge) {
                Ok(None) => {}
                Ok(Some((written, owned))) => {
                    if owned != merge.owned {
                        self.store.set_sidecar_keywords(
                            &sidecar,
                            &owned.subject,
                            &owned.hierarchical,
                        )?;
                    }
                    match written {
                        xmp::Written::Written => report.written += 1,
                        xmp::Written::Unchanged => report.unchanged += 1,
                    }
                }
                Err(reason) => report.failed.push((sidecar, reason)),
            }
        }
        Ok(report)
    }
}

/// Why an existing file at an export's path is not one an export may replace (`head`: its
/// first bytes), or `None` for a text file such as an earlier export.
fn not_replaceable(file: &Path, head: &[u8]) -> Option<&'static str> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => Some(text),
        // The first bytes may end inside a character.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let Some(text) = text.filter(|t| !t.contains('\0')) else {
        return Some("it is not a text file (a camera RAW, a video, a document?); give a new name");
    };
    let sidecar = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xmp"))
        || text.contains("<x:xmpmeta")
        || text.contains("<?xpacket");
    if sidecar {
        return Some("it is an XMP sidecar; give a new name");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(file).is_ok_and(|m| m.permissions().mode() & 0o111 != 0) {
            return Some("it is a program (it can be run); give a new name");
        }
    }
    None
}
