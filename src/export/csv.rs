//! CSV export (RFC 4180 quoting, UTF-8, CRLF line ends).
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
//! formula, so a label or file name could execute in a person's spreadsheet. Every such text cell
//! is written with a leading apostrophe (`'=SUM(A1)`), which spreadsheets show as plain text.
//! Numbers (scores) are written as numbers.

use std::path::Path;

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::export::{ImageTags, PathStyle, styled_path, write_atomically};

/// The shape of a CSV export.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum CsvForm {
    /// One row per image: `path`, `tags` (labels joined with `; `).
    #[default]
    Wide,
    /// One row per tag: `path`, `label`, `score`, `source`.
    Long,
    /// exiftool's import form: `SourceFile`, `XMP-dc:Subject`, `XMP-lr:HierarchicalSubject`
    /// (`exiftool -csv=tags.csv -sep "; " FOLDER` writes them into the photos' metadata).
    Exiftool,
}

/// Neutralises a text cell against spreadsheet formula injection (see the module's doc).
pub fn guard(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// The CSV text of the photos' tags, their paths written as `style` asks.
pub fn render(
    images: &[&ImageTags],
    roots: &[PathBuf],
    form: CsvForm,
    style: PathStyle,
) -> Result<Vec<u8>> {
    let path = |image: &ImageTags| guard(&styled_path(&image.path, roots, style));
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let fail = |e: ::csv::Error| Error::invalid(format!("cannot write CSV: {e}"));
    match form {
        CsvForm::Wide => {
            writer.write_record(["path", "tags"]).map_err(fail)?;
            for image in images {
                let tags: Vec<&str> = image.tags.iter().map(|t| t.label.as_str()).collect();
                writer
                    .write_record([path(image), guard(&tags.join("; "))])
                    .map_err(fail)?;
            }
        }
        CsvForm::Long => {
            writer
                .write_record(["path", "label", "score", "source"])
                .map_err(fail)?;
            for image in images {
                for tag in &image.tags {
                    let score = tag.score.map(|s| format!("{s:.4}")).unwrap_or_default();
                    writer
                        .write_record([
                            path(image),
                            guard(&tag.label),
                            score,
                            tag.source.as_str().to_string(),
                        ])
                        .map_err(fail)?;
                }
            }
        }
        CsvForm::Exiftool => {
            writer
                .write_record(["SourceFile", "XMP-dc:Subject", "XMP-lr:HierarchicalSubject"])
                .map_err(fail)?;
            // An image without tags is left out: importing an empty cell would clear the
            // keywords the photo already has.
            for image in images.iter().filter(|i| !i.tags.is_empty()) {
                let (subjects, hierarchy) = crate::export::xmp::keywords(&image.tags);
                writer
                    .write_record([
                        path(image),
                        guard(&subjects.join("; ")),
                        guard(&hierarchy.join("; ")),
                    ])
                    .map_err(fail)?;
            }
        }
    }
    writer
        .into_inner()
        .map_err(|e| Error::invalid(format!("cannot write CSV: {e}")))
}

/// Writes the photos' tags to `path` atomically; returns the number of data rows.
pub fn export(
    images: &[&ImageTags],
    roots: &[PathBuf],
    path: &Path,
    form: CsvForm,
    style: PathStyle,
) -> Result<usize> {
    let style = if form == CsvForm::Exiftool {
        // exiftool must find the files.
        PathStyle::Absolute
    } else {
        style
    };
    let rows = match form {
        CsvForm::Long => images.iter().map(|i| i.tags.len()).sum(),
        CsvForm::Exiftool => images.iter().filter(|i| !i.tags.is_empty()).count(),
        CsvForm::Wide => images.len(),
    };
    write_atomically(path, &render(images, roots, form, style)?)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_guarded() {
        for cell in ["=SUM(A1)", "+1", "-1", "@cmd", "\tx", "\rx"] {
            assert_eq!(guard(cell), format!("'{cell}"));
        }
        assert_eq!(guard("Dog"), "Dog");
        assert_eq!(guard(""), "");
    }
}
