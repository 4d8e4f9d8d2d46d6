//! CSV export (RFC 4180 quoting, UTF-8, CRLF line ends).
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
//! formula, so a label or file name could execute in a person's spreadsheet. In the spreadsheet
//! forms (wide, long) every such text cell is written with a leading apostrophe (`'=SUM(A1)`),
//! which spreadsheets show as plain text. exiftool's import form is read by exiftool, not a
//! spreadsheet: its cells are written as they are, so a label `+1` reaches the photo as `+1`.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::export::target::Target;
use crate::export::xmp::Keywords;
use crate::export::{ImageTags, PathStyle, styled_path};

/// exiftool's list separator for the import form (`exiftool -csv=FILE -sep "; "`).
pub const EXIFTOOL_SEPARATOR: &str = "; ";

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

/// What a CSV export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvReport {
    pub path: PathBuf,
    /// Data rows written.
    pub rows: usize,
    /// For the exiftool form: the command that writes the tags into the photos.
    pub exiftool: Option<String>,
    /// Photos whose names are not valid UTF-8: a CSV holds them with U+FFFD in place of the
    /// odd bytes, so exiftool's import cannot find those files.
    pub lossy_names: usize,
}

/// Neutralises a spreadsheet cell against formula injection (see the module's doc).
pub fn guard(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// `path` relative to the folder `base` (with `..` where it lies outside it).
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<Component<'_>> = path.components().collect();
    let base: Vec<Component<'_>> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &path[common..] {
        out.push(part);
    }
    out
}

/// The exiftool form's cells must survive exiftool's list separator.
fn check_exiftool_labels(images: &[&ImageTags]) -> Result<()> {
    let mut split: Vec<&str> = images
        .iter()
        .flat_map(|i| i.tags.iter())
        .map(|t| t.label.as_str())
        .filter(|l| l.contains(EXIFTOOL_SEPARATOR))
        .collect();
    split.sort_unstable();
    split.dedup();
    if split.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "exiftool's list separator {EXIFTOOL_SEPARATOR:?} would split the label(s) {}; rename \
         them, or write XMP sidecars (--xmp), which keep every label whole",
        split
            .iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The CSV text of the photos' tags. Paths are absolute, or relative: to the library folder
/// holding the photo (wide, long), or to `csv_folder` (exiftool, which is run from there).
pub fn render(
    images: &[&ImageTags],
    roots: &[PathBuf],
    csv_folder: &Path,
    form: CsvForm,
    style: PathStyle,
) -> Result<Vec<u8>> {
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let fail = |e: ::csv::Error| Error::invalid(format!("cannot write CSV: {e}"));
    let sheet_path = |image: &ImageTags| guard(&styled_path(&image.path, roots, style));
    match form {
        CsvForm::Wide => {
            writer.write_record(["path", "tags"]).map_err(fail)?;
            for image in images {
                let tags: Vec<&str> = image.tags.iter().map(|t| t.label.as_str()).collect();
                writer
                    .write_record([sheet_path(image), guard(&tags.join("; "))])
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
                            sheet_path(image),
                            guard(&tag.label),
                            score,
                            tag.source.as_str().to_string(),
                        ])
                        .map_err(fail)?;
                }
            }
        }
        CsvForm::Exiftool => {
            check_exiftool_labels(images)?;
            writer
                .write_record(["SourceFile", "XMP-dc:Subject", "XMP-lr:HierarchicalSubject"])
                .map_err(fail)?;
            // An image without tags is left out: importing an empty cell would clear the
            // keywords the photo already has.
            for image in images.iter().filter(|i| !i.tags.is_empty()) {
                let keywords = Keywords::of([*image]);
                let source = match style {
                    PathStyle::Absolute => image.path.clone(),
                    PathStyle::Relative => relative_to(&image.path, csv_folder),
                };
                writer
                    .write_record([
                        source.to_string_lossy().as_ref(),
                        &keywords.subject.join(EXIFTOOL_SEPARATOR),
                        &keywords.hierarchical.join(EXIFTOOL_SEPARATOR),
                    ])
                    .map_err(fail)?;
            }
        }
    }
    writer
        .into_inner()
        .map_err(|e| Error::invalid(format!("cannot write CSV: {e}")))
}

/// Quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Writes the photos' tags to `target` (a file atomically; a pipe or standard output through).
pub fn export(
    images: &[&ImageTags],
    roots: &[PathBuf],
    target: &Target,
    form: CsvForm,
    style: PathStyle,
) -> Result<CsvReport> {
    // Relative paths are relative to the CSV's folder; for standard output, to the current one.
    let path = match target {
        Target::File(path) | Target::Pipe(path) => path.clone(),
        Target::Stdout => PathBuf::from("-"),
    };
    let absolute = match target {
        Target::Stdout => std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join("-"),
        _ => std::path::absolute(&path).map_err(|e| Error::io(&path, e))?,
    };
    let folder = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
    let rows = match form {
        CsvForm::Long => images.iter().map(|i| i.tags.len()).sum(),
        CsvForm::Exiftool => images.iter().filter(|i| !i.tags.is_empty()).count(),
        CsvForm::Wide => images.len(),
    };
    target.write(&render(images, roots, &folder, form, style)?)?;
    // exiftool reads the CSV back from a file; a pipe's or standard output's rows are gone.
    let exiftool = (form == CsvForm::Exiftool && matches!(target, Target::File(_))).then(|| {
        let name = absolute
            .file_name()
            .map_or_else(|| "tags.csv".into(), |n| n.to_string_lossy().into_owned());
        let targets: Vec<String> = match style {
            PathStyle::Absolute => roots
                .iter()
                .map(|r| shell_quote(&r.to_string_lossy()))
                .collect(),
            PathStyle::Relative => roots
                .iter()
                .map(|r| shell_quote(&relative_to(r, &folder).to_string_lossy()))
                .collect(),
        };
        let command = format!(
            "exiftool -csv={} -sep {} -r {}",
            shell_quote(&name),
            shell_quote(EXIFTOOL_SEPARATOR),
            targets.join(" ")
        );
        format!("cd {} && {command}", shell_quote(&folder.to_string_lossy()))
    });
    let lossy_names = images.iter().filter(|i| i.path.to_str().is_none()).count();
    Ok(CsvReport {
        path,
        rows,
        exiftool,
        lossy_names,
    })
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

    #[test]
    fn paths_relative_to_a_folder() {
        assert_eq!(
            relative_to(Path::new("/a/b/c.jpg"), Path::new("/a")),
            Path::new("b/c.jpg")
        );
        assert_eq!(
            relative_to(Path::new("/a/b/c.jpg"), Path::new("/a/d")),
            Path::new("../b/c.jpg")
        );
    }
}
