//! Tags out of the library: gathers each photo's tags and hands them to the CSV and XMP writers.

use std::collections::HashMap;
use std::path::PathBuf;

use super::Library;
use crate::domain::ImageStatus;
use crate::error::Result;
use crate::export::csv::CsvForm;
use crate::export::xmp::{SidecarNaming, XmpReport};
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
    /// The CSV written and its number of data rows.
    pub csv: Option<(PathBuf, usize)>,
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
    pub fn export(&self, request: &ExportRequest) -> Result<ExportReport> {
        let images = self.image_tags()?;
        let mut report = ExportReport::default();
        if let Some(csv) = &request.csv {
            let roots = self.store.roots()?;
            let all: Vec<&ImageTags> = images.iter().map(|(_, tags)| tags).collect();
            let rows = export::csv::export(&all, &roots, &csv.path, csv.form, csv.style)?;
            report.csv = Some((csv.path.clone(), rows));
        }
        if let Some(naming) = request.xmp {
            // A photo that is not on disk gets no sidecar.
            let present: Vec<&ImageTags> = images
                .iter()
                .filter(|(status, _)| *status == ImageStatus::Ok)
                .map(|(_, tags)| tags)
                .collect();
            report.xmp = Some(export::xmp::export(&present, naming));
        }
        Ok(report)
    }
}
