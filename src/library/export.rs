//! Tags out of the library: gathers each photo's tags and hands them to the CSV and XMP writers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::Library;
use crate::domain::ImageStatus;
use crate::error::Result;
use crate::export::csv::{CsvForm, CsvReport};
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
    fn image_tags(&self) -> Result<Vec<(ImageStatus, ImageTags)>> {
        let mut by_image: HashMap<i64, Vec<TagRow>> = HashMap::new();
        for tag in self.store.tags()? {
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

    /// Writes the library's tags to a CSV file and/or XMP sidecars beside the photos. A sidecar
    /// that cannot be written is reported in the result and the others are still written.
    pub fn export(&mut self, request: &ExportRequest) -> Result<ExportReport> {
        let images = self.image_tags()?;
        let mut report = ExportReport::default();
        if let Some(csv) = &request.csv {
            let roots = self.store.roots()?;
            let all: Vec<&ImageTags> = images.iter().map(|(_, tags)| tags).collect();
            report.csv = Some(export::csv::export(
                &all, &roots, &csv.path, csv.form, csv.style,
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
