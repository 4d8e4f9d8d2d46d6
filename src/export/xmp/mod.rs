//! XMP sidecars, so tags show up in digiKam, darktable and Lightroom: `dc:subject` (keywords) and
//! `lr:hierarchicalSubject` (`Animals|Dog`).
//!
//! A sidecar is read as RDF: the `rdf:Description`s directly under `rdf:RDF` describe the photo;
//! only their `dc:subject` and `lr:hierarchicalSubject` change. Everything else (other properties
//! in element or attribute form, nested structures such as Photoshop's `xmpMM:Pantry` with
//! descriptions of their own, other tools' namespaces, whitespace and comments) is kept byte for
//! byte: the new text is the old one with those two properties cut out and written anew.
//!
//! Which keywords are cliptag's is remembered by the library (per sidecar), not in the sidecar:
//! a keyword counts as cliptag's only if cliptag added it, so one the person or another tool
//! wrote, even with the same text, is never taken out.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::export::ImageTags;

const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DC: &str = "http://purl.org/dc/elements/1.1/";
const LR: &str = "http://ns.adobe.com/lightroom/1.0/";
/// The namespace of the bags in which earlier versions of cliptag kept its own keywords inside
/// the sidecar; read once to learn what was cliptag's, then dropped.
const OLD_CLIPTAG: &str = "urn:cliptag:ns:1.0/";

const EMPTY_SIDECAR: &str = r#"<?xpacket begin="﻿" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="cliptag">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="">
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"#;

/// Where a photo's sidecar goes.
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
pub enum SidecarNaming {
    /// `photo.jpg.xmp`, as digiKam and darktable name them.
    #[default]
    Appended,
    /// `photo.xmp`, as Adobe's tools name them (`photo.jpg` and `photo.png` then share one).
    Replaced,
}

/// The sidecar path of `photo`.
pub fn sidecar_path(photo: &Path, naming: SidecarNaming) -> PathBuf {
    match naming {
        SidecarNaming::Appended => {
            let mut name = photo.as_os_str().to_os_string();
            name.push(".xmp");
            PathBuf::from(name)
        }
        SidecarNaming::Replaced => photo.with_extension("xmp"),
    }
}

/// A sidecar's two keyword lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    /// `dc:subject`: flat keywords.
    pub subject: Vec<String>,
    /// `lr:hierarchicalSubject`: `Animals|Dog`.
    pub hierarchical: Vec<String>,
}

impl Keywords {
    /// The keywords of photos' tags that apply: each label's last level once (`Dog`), and the
    /// whole path of hierarchical labels (`Animals|Dog`).
    pub fn of<'a>(photos: impl IntoIterator<Item = &'a ImageTags>) -> Self {
        let mut keywords = Keywords::default();
        for photo in photos {
            for tag in photo.tags.iter().filter(|t| t.source.applies()) {
                let leaf = tag
                    .label
                    .rsplit('/')
                    .next()
                    .unwrap_or(&tag.label)
                    .to_string();
                push_once(&mut keywords.subject, leaf);
                if tag.label.contains('/') {
                    push_once(&mut keywords.hierarchical, tag.label.replace('/', "|"));
                }
            }
        }
        keywords
    }

    /// Whether both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.subject.is_empty() && self.hierarchical.is_empty()
    }
}

fn push_once(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// What to write: the keywords the photos' tags give, and those cliptag wrote there before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merge {
    pub wanted: Keywords,
    pub owned: Keywords,
}

/// What merging made of a sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    /// The keywords that are cliptag's in the new text (it added them).
    pub owned: Keywords,
}

/// Which bag an element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bag {
    Subject,
    Hierarchical,
    OldOwnSubject,
    OldOwnHierarchical,
}

impl Bag {
    fn of(namespace: &[u8], local: &[u8]) -> Option<Self> {
        match (namespace, local) {
            (ns, b"subject") if ns == DC.as_bytes() => Some(Bag::Subject),
            (ns, b"hierarchicalSubject") if ns == LR.as_bytes() => Some(Bag::Hierarchical),
            (ns, b"subject") if ns == OLD_CLIPTAG.as_bytes() => Some(Bag::OldOwnSubject),
            (ns, b"hierarchicalSubject") if ns == OLD_CLIPTAG.as_bytes() => {
                Some(Bag::OldOwnHierarchical)
            }
            _ => None,
        }
    }
}

/// The parts of a sidecar that merging touches.
#[derive(Debug, Default)]
struct Layout {
    found: Keywords,
    old_owned: Keywords,
    /// Byte ranges of the managed properties (each with the whitespace before it).
    cut: Vec<Range<usize>>,
    /// Where new properties go: before the end tag of the first top-level description, or in
    /// place of an empty one (`<rdf:Description …/>`, whose `/>` is replaced).
    insert: Option<Insert>,
    /// The RDF containers of `dc:subject` and `lr:hierarchicalSubject` as found (an ordered
    /// `rdf:Seq` stays a `Seq`).
    containers: (Container, Container),
}

/// An RDF container: what a keyword list is written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Container {
    /// Unordered (what XMP says `dc:subject` is).
    #[default]
    Bag,
    /// Ordered.
    Seq,
    /// Alternatives.
    Alt,
}

impl Container {
    fn of(local: &[u8]) -> Option<Self> {
        match local {
            b"Bag" => Some(Container::Bag),
            b"Seq" => Some(Container::Seq),
            b"Alt" => Some(Container::Alt),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Container::Bag => "Bag",
            Container::Seq => "Seq",
            Container::Alt => "Alt",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Insert {
    /// Before this byte (the first top-level description's end tag).
    Before(usize),
    /// The empty-element description's `/>` spans these bytes.
    OpenEmpty { slash: usize, end: usize },
}

/// The text of one managed property.
fn bag_text(
    indent: &str,
    (prefix, namespace, local): (&str, &str, &str),
    container: Container,
    values: &[String],
) -> String {
    let kind = container.name();
    let mut out = format!(
        "{indent}<{prefix}:{local} xmlns:{prefix}=\"{namespace}\">\n{indent} <rdf:{kind} xmlns:rdf=\"{RDF}\">\n"
    );
    for value in values {
        out.push_str(&format!(
            "{indent}  <rdf:li>{}</rdf:li>\n",
            escape_text(value)
        ));
    }
    out.push_str(&format!(
        "{indent} </rdf:{kind}>\n{indent}</{prefix}:{local}>"
    ));
    out
}

/// `value` as XML character data: markup characters escaped, and every character XML 1.0 cannot
/// hold (labels refuse them; a keyword read from a sidecar cannot have them) dropped rather than
/// written raw, so the sidecar stays well-formed.
fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Carriage returns would be read back as line feeds.
            '\r' => out.push_str("&#13;"),
            c if crate::domain::fits_xml(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// Merges cliptag's keywords into the sidecar text `existing` (or a new sidecar).
///
/// The new keyword lists are the ones found, less those cliptag owned that no longer apply, plus
/// the wanted ones not there yet; cliptag owns what it added. Everything else is kept byte for
/// byte.
pub fn merge(existing: Option<&str>, merge: &Merge) -> Result<Merged, String> {
    // A byte-order mark is kept as it is and left out of the positions the merge works with.
    let (bom, source) = match existing {
        Some(text) => match text.strip_prefix('\u{FEFF}') {
            Some(rest) => ("\u{FEFF}", rest),
            None => ("", text),
        },
        None => ("", EMPTY_SIDECAR),
    };
    let layout = read::layout(source)?;
    let insert = layout
        .insert
        .ok_or("no rdf:Description under rdf:RDF to put the keywords in (not an XMP sidecar?)")?;
    let list = |found: &[String], owned: &[String], old: &[String], wanted: &[String]| {
        let mut theirs: Vec<String> = found
            .iter()
            .filter(|k| !owned.contains(k) && !old.contains(k))
            .cloned()
            .collect();
        let mut ours = Vec::new();
        for keyword in wanted {
            if !theirs.contains(keyword) && !ours.contains(keyword) {
                ours.push(keyword.clone());
            }
        }
        theirs.extend(ours.iter().cloned());
        (theirs, ours)
    };
    let (subject, owned_subject) = list(
        &layout.found.subject,
        &merge.owned.subject,
        &layout.old_owned.subject,
        &merge.wanted.subject,
    );
    let (hierarchical, owned_hierarchical) = list(
        &layout.found.hierarchical,
        &merge.owned.hierarchical,
        &layout.old_owned.hierarchical,
        &merge.wanted.hierarchical,
    );

    // Keywords as the sidecar already has them, and nothing of an old cliptag's to drop: the
    // text is left exactly as it is (its character references, its layout).
    if subject == layout.found.subject
        && hierarchical == layout.found.hierarchical
        && layout.old_owned.is_empty()
        && existing.is_some()
    {
        return Ok(Merged {
            text: format!("{bom}{source}"),
            owned: Keywords {
                subject: owned_subject,
                hierarchical: owned_hierarchical,
            },
        });
    }

    let mut properties = String::new();
    let indent = "\n   ";
    if !subject.is_empty() {
        properties.push_str(&bag_text(
            indent,
            ("dc", DC, "subject"),
            layout.containers.0,
            &subject,
        ));
    }
    if !hierarchical.is_empty() {
        properties.push_str(&bag_text(
            indent,
            ("lr", LR, "hierarchicalSubject"),
            layout.containers.1,
            &hierarchical,
        ));
    }
    let mut text = String::with_capacity(bom.len() + source.len() + properties.len());
    text.push_str(bom);
    let mut at = 0;
    let emit = |text: &mut String, upto: usize, at: &mut usize| {
        text.push_str(&source[*at..upto]);
        *at = upto;
    };
    let mut cuts = layout.cut.clone();
    cuts.sort_by_key(|r| r.start);
    let place = match insert {
        Insert::Before(at) | Insert::OpenEmpty { slash: at, .. } => at,
    };
    // What is cut out and where the keywords go must not overlap: in a document that is not
    // well formed (a second XMP packet inside a keyword list, found by fuzzing) they did, and
    // slicing the text between them panicked. Such a sidecar is refused, as other broken
    // ones are, and left as it is.
    let inside = |cut: &std::ops::Range<usize>| match insert {
        Insert::Before(at) => cut.start < at && at < cut.end,
        Insert::OpenEmpty { slash, end } => cut.start < end && slash < cut.end,
    };
    let mut previous_end = 0;
    for cut in &cuts {
        if cut.start < previous_end || cut.end < cut.start || cut.end > source.len() || inside(cut)
        {
            return Err("its XML is not well formed (keyword lists overlap); left as it is".into());
        }
        previous_end = cut.end;
    }
    let mut placed = false;
    for cut in &cuts {
        if !placed && place <= cut.start {
            emit(&mut text, place, &mut at);
            write_insert(&mut text, insert, &properties, source, &mut at);
            placed = true;
        }
        emit(&mut text, cut.start, &mut at);
        at = cut.end;
    }
    if !placed {
        emit(&mut text, place, &mut at);
        write_insert(&mut text, insert, &properties, source, &mut at);
    }
    text.push_str(&source[at..]);
    Ok(Merged {
        text,
        owned: Keywords {
            subject: owned_subject,
            hierarchical: owned_hierarchical,
        },
    })
}

fn write_insert(text: &mut String, insert: Insert, properties: &str, source: &str, at: &mut usize) {
    match insert {
        Insert::Before(_) => {
            text.push_str(properties);
        }
        Insert::OpenEmpty { end, .. } => {
            if properties.is_empty() {
                return;
            }
            // `<rdf:Description …/>` becomes `<rdf:Description …>…</rdf:Description>`.
            let open = &source[..end];
            let name_start = open.rfind("<").map_or(0, |i| i + 1);
            let name: String = source[name_start..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
                .collect();
            text.push('>');
            text.push_str(properties);
            text.push_str(&format!("\n  </{name}>"));
            *at = end;
        }
    }
}

/// What writing one sidecar did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// It was created or changed.
    Written,
    /// It already said the same.
    Unchanged,
}

/// What a sidecar export did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XmpReport {
    /// Sidecars created or changed.
    pub written: usize,
    /// Sidecars that already said the same.
    pub unchanged: usize,
    /// Sidecars that could not be read or written, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// The largest sidecar read: XMP packets are kilobytes; a file of this size is something else.
const MAX_SIDECAR_BYTES: u64 = 64 << 20;

/// Brings the sidecar at `sidecar` up to date with `merge`: returns what happened (`None` when
/// there was nothing to write: no keywords, and no sidecar or none of cliptag's in it) and the
/// keywords that are cliptag's now.
pub fn update(sidecar: &Path, merge: &Merge) -> Result<Option<(Written, Keywords)>, String> {
    // A pipe or a device in a sidecar's place is never read (reading a pipe would wait forever)
    // nor replaced.
    match std::fs::metadata(sidecar) {
        Ok(meta) if !meta.is_file() => {
            return Err("not a regular file: left alone".into());
        }
        Ok(meta) if meta.len() > MAX_SIDECAR_BYTES => {
            return Err(format!(
                "{} MB, too large for a sidecar: left alone",
                meta.len() >> 20
            ));
        }
        _ => {}
    }
    let existing = match std::fs::read(sidecar) {
        Ok(bytes) if crate::imaging::is_photo(&bytes) => {
            return Err("it is an image, not a sidecar: left alone".into());
        }
        Ok(bytes) => Some(
            String::from_utf8(bytes)
                .map_err(|_| "not a text file (not UTF-8): left alone".to_string())?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.to_string()),
    };
    let nothing_of_ours = merge.owned.is_empty()
        && existing
            .as_deref()
            .is_none_or(|text| !text.contains(OLD_CLIPTAG));
    if merge.wanted.is_empty() && nothing_of_ours {
        return Ok(None);
    }
    let merged = self::merge(existing.as_deref(), merge)?;
    if existing.as_deref() == Some(merged.text.as_str()) {
        return Ok(Some((Written::Unchanged, merged.owned)));
    }
    crate::export::write_atomically(sidecar, merged.text.as_bytes()).map_err(|e| match e {
        crate::Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    })?;
    Ok(Some((Written::Written, merged.owned)))
}

mod read;
#[cfg(test)]
mod tests;
