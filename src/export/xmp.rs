//! XMP sidecars, so tags show up in digiKam, darktable and Lightroom: `dc:subject` (keywords) and
//! `lr:hierarchicalSubject` (`Animals|Dog`).
//!
//! An existing sidecar is merged, not replaced: every other field stays as it was, and keywords
//! that another tool (or the person) put there stay too. cliptag remembers which keywords it wrote
//! in its own `cliptag:subject` / `cliptag:hierarchicalSubject` bags, so a tag that no longer
//! applies is taken out on the next export without touching anyone else's keywords.

use std::path::{Path, PathBuf};

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::error::Error;
use crate::export::{ImageTags, write_atomically};
use crate::store::TagRow;

const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DC: &str = "http://purl.org/dc/elements/1.1/";
const LR: &str = "http://ns.adobe.com/lightroom/1.0/";
const CLIPTAG: &str = "urn:cliptag:ns:1.0/";

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
    /// `photo.xmp`, as Adobe's tools name them.
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

/// Flat keywords (each label's last level, once) and hierarchical ones (`Animals|Dog`).
pub fn keywords(tags: &[TagRow]) -> (Vec<String>, Vec<String>) {
    let mut subjects: Vec<String> = Vec::new();
    let mut hierarchy = Vec::new();
    for tag in tags.iter().filter(|t| t.source.applies()) {
        let leaf = tag
            .label
            .rsplit('/')
            .next()
            .unwrap_or(&tag.label)
            .to_string();
        if !subjects.contains(&leaf) {
            subjects.push(leaf);
        }
        if tag.label.contains('/') {
            hierarchy.push(tag.label.replace('/', "|"));
        }
    }
    (subjects, hierarchy)
}

/// The four bags cliptag manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bag {
    Subject,
    Hierarchical,
    OwnSubject,
    OwnHierarchical,
}

impl Bag {
    fn of(namespace: &[u8], local: &[u8]) -> Option<Self> {
        match (namespace, local) {
            (ns, b"subject") if ns == DC.as_bytes() => Some(Bag::Subject),
            (ns, b"hierarchicalSubject") if ns == LR.as_bytes() => Some(Bag::Hierarchical),
            (ns, b"subject") if ns == CLIPTAG.as_bytes() => Some(Bag::OwnSubject),
            (ns, b"hierarchicalSubject") if ns == CLIPTAG.as_bytes() => Some(Bag::OwnHierarchical),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Found {
    subject: Vec<String>,
    hierarchical: Vec<String>,
    own_subject: Vec<String>,
    own_hierarchical: Vec<String>,
}

impl Found {
    fn bag(&mut self, bag: Bag) -> &mut Vec<String> {
        match bag {
            Bag::Subject => &mut self.subject,
            Bag::Hierarchical => &mut self.hierarchical,
            Bag::OwnSubject => &mut self.own_subject,
            Bag::OwnHierarchical => &mut self.own_hierarchical,
        }
    }
}

/// The text of an entity reference such as `&amp;` or `&#x41;`.
fn entity(name: &str) -> Option<String> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
            char::from_u32(code)?
        }
    };
    Some(c.to_string())
}

/// Merges `subjects` and `hierarchy` into the sidecar text `existing` (or a new sidecar).
///
/// `dc:subject` becomes the keywords of other origin plus `subjects`; likewise
/// `lr:hierarchicalSubject`; everything else is copied unchanged.
pub fn merge(
    existing: Option<&str>,
    subjects: &[String],
    hierarchy: &[String],
) -> std::result::Result<String, String> {
    let source = existing.unwrap_or(EMPTY_SIDECAR);
    // First pass: what the managed bags hold now.
    let mut found = Found::default();
    {
        let mut reader = NsReader::from_str(source);
        let mut current: Option<Bag> = None;
        let mut depth = 0usize;
        let mut text: Option<String> = None;
        loop {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| format!("not valid XML: {e}"))?;
            let namespace = match &ns {
                ResolveResult::Bound(n) => n.as_ref().to_vec(),
                _ => Vec::new(),
            };
            match event {
                Event::Start(e) => {
                    if current.is_some() {
                        depth += 1;
                        if e.local_name().as_ref() == b"li" {
                            text = Some(String::new());
                        }
                    } else if let Some(bag) = Bag::of(&namespace, e.local_name().as_ref()) {
                        current = Some(bag);
                        depth = 0;
                    }
                }
                Event::Text(t) => {
                    if let Some(text) = text.as_mut() {
                        text.push_str(
                            &t.xml10_content()
                                .map_err(|e| format!("not valid XML: {e}"))?,
                        );
                    }
                }
                Event::CData(t) => {
                    if let Some(text) = text.as_mut() {
                        text.push_str(&String::from_utf8_lossy(&t.into_inner()));
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(text) = text.as_mut() {
                        let name = r.decode().map_err(|e| format!("not valid XML: {e}"))?;
                        text.push_str(
                            &entity(&name).ok_or_else(|| format!("unknown entity &{name};"))?,
                        );
                    }
                }
                Event::End(e) => {
                    if let Some(bag) = current {
                        if depth == 0 {
                            current = None;
                        } else {
                            depth -= 1;
                            if e.local_name().as_ref() == b"li"
                                && let Some(value) = text.take()
                            {
                                found.bag(bag).push(value);
                            }
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
    }

    let merged = |theirs: &[String], ours_before: &[String], ours: &[String]| -> Vec<String> {
        let mut out: Vec<String> = theirs
            .iter()
            .filter(|v| !ours_before.contains(v))
            .cloned()
            .collect();
        for v in ours {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        out
    };
    let new_subject = merged(&found.subject, &found.own_subject, subjects);
    let new_hierarchical = merged(&found.hierarchical, &found.own_hierarchical, hierarchy);

    // Second pass: copy everything but the managed bags (in any rdf:Description: Adobe's tools
    // spread namespaces over several), and write them anew at the end of the first one.
    let mut reader = NsReader::from_str(source);
    let mut writer = quick_xml::Writer::new(Vec::new());
    let mut skipping: Option<usize> = None;
    // For each open element: whether it is an rdf:Description.
    let mut open: Vec<bool> = Vec::new();
    let mut written = false;
    // Whitespace between elements is held back until the next event: it is dropped with a
    // managed bag that follows it, so that merging again gives the same text.
    let mut pending_space: Option<Event<'_>> = None;
    let write_err = |e: std::io::Error| format!("cannot write XML: {e}");
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not valid XML: {e}"))?;
        let namespace = match &ns {
            ResolveResult::Bound(n) => n.as_ref().to_vec(),
            _ => Vec::new(),
        };
        if let Some(level) = skipping {
            match &event {
                Event::Start(_) => skipping = Some(level + 1),
                Event::End(_) if level == 0 => skipping = None,
                Event::End(_) => skipping = Some(level - 1),
                Event::Eof => return Err("not valid XML: unexpected end".into()),
                _ => {}
            }
            continue;
        }
        if let Event::Text(t) = &event
            && t.iter().all(u8::is_ascii_whitespace)
        {
            if let Some(space) = pending_space.replace(event) {
                writer.write_event(space).map_err(write_err)?;
            }
            continue;
        }
        let in_description = open.last().copied().unwrap_or(false);
        let managed = |local: &[u8]| in_description && Bag::of(&namespace, local).is_some();
        match &event {
            Event::Start(e) | Event::Empty(e) if managed(e.local_name().as_ref()) => {
                pending_space = None;
                if matches!(event, Event::Start(_)) {
                    skipping = Some(0);
                }
                continue;
            }
            _ => {}
        }
        match event {
            Event::Start(e) => {
                if let Some(space) = pending_space.take() {
                    writer.write_event(space).map_err(write_err)?;
                }
                open.push(namespace == RDF.as_bytes() && e.local_name().as_ref() == b"Description");
                writer.write_event(Event::Start(e)).map_err(write_err)?;
            }
            Event::Empty(e) => {
                if let Some(space) = pending_space.take() {
                    writer.write_event(space).map_err(write_err)?;
                }
                let is_description =
                    namespace == RDF.as_bytes() && e.local_name().as_ref() == b"Description";
                if is_description && !written {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    writer.write_event(Event::Start(e)).map_err(write_err)?;
                    write_bags(
                        &mut writer,
                        &new_subject,
                        &new_hierarchical,
                        subjects,
                        hierarchy,
                    )
                    .map_err(write_err)?;
                    writer
                        .write_event(Event::End(BytesEnd::new(name)))
                        .map_err(write_err)?;
                    written = true;
                } else {
                    writer.write_event(Event::Empty(e)).map_err(write_err)?;
                }
            }
            Event::End(e) => {
                if open.pop() == Some(true) && !written {
                    write_bags(
                        &mut writer,
                        &new_subject,
                        &new_hierarchical,
                        subjects,
                        hierarchy,
                    )
                    .map_err(write_err)?;
                    written = true;
                }
                if let Some(space) = pending_space.take() {
                    writer.write_event(space).map_err(write_err)?;
                }
                writer.write_event(Event::End(e)).map_err(write_err)?;
            }
            Event::Eof => break,
            other => {
                if let Some(space) = pending_space.take() {
                    writer.write_event(space).map_err(write_err)?;
                }
                writer.write_event(other).map_err(write_err)?;
            }
        }
    }
    if let Some(space) = pending_space.take() {
        writer.write_event(space).map_err(write_err)?;
    }
    if !written {
        return Err("no rdf:Description to put the keywords in (not an XMP sidecar?)".into());
    }
    String::from_utf8(writer.into_inner()).map_err(|e| format!("cannot write XML: {e}"))
}

fn write_bag(
    writer: &mut quick_xml::Writer<Vec<u8>>,
    prefix: &str,
    namespace: &str,
    local: &str,
    values: &[String],
) -> std::io::Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let name = format!("{prefix}:{local}");
    let mut start = BytesStart::new(name.as_str());
    start.push_attribute((format!("xmlns:{prefix}").as_str(), namespace));
    writer.write_event(Event::Text(BytesText::new("\n   ")))?;
    writer.write_event(Event::Start(start))?;
    let mut bag = BytesStart::new("rdf:Bag");
    bag.push_attribute(("xmlns:rdf", RDF));
    writer.write_event(Event::Start(bag))?;
    for value in values {
        writer.write_event(Event::Start(BytesStart::new("rdf:li")))?;
        writer.write_event(Event::Text(BytesText::new(value)))?;
        writer.write_event(Event::End(BytesEnd::new("rdf:li")))?;
    }
    writer.write_event(Event::End(BytesEnd::new("rdf:Bag")))?;
    writer.write_event(Event::End(BytesEnd::new(name)))?;
    Ok(())
}

fn write_bags(
    writer: &mut quick_xml::Writer<Vec<u8>>,
    subject: &[String],
    hierarchical: &[String],
    own_subject: &[String],
    own_hierarchical: &[String],
) -> std::io::Result<()> {
    write_bag(writer, "dc", DC, "subject", subject)?;
    write_bag(writer, "lr", LR, "hierarchicalSubject", hierarchical)?;
    write_bag(writer, "cliptag", CLIPTAG, "subject", own_subject)?;
    write_bag(
        writer,
        "cliptag",
        CLIPTAG,
        "hierarchicalSubject",
        own_hierarchical,
    )
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

/// Writes or updates the sidecar of every photo given that has tags (or has a sidecar holding
/// keywords cliptag wrote earlier). A sidecar that cannot be written is reported, and the export
/// goes on with the others.
pub fn export(images: &[&ImageTags], naming: SidecarNaming) -> XmpReport {
    let mut report = XmpReport::default();
    for image in images {
        let sidecar = sidecar_path(&image.path, naming);
        let existing = match std::fs::read_to_string(&sidecar) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                report.failed.push((sidecar, e.to_string()));
                continue;
            }
        };
        if image.tags.is_empty() && existing.as_deref().is_none_or(|t| !t.contains(CLIPTAG)) {
            continue;
        }
        let (subjects, hierarchy) = keywords(&image.tags);
        let text = match merge(existing.as_deref(), &subjects, &hierarchy) {
            Ok(text) => text,
            Err(reason) => {
                report.failed.push((sidecar, reason));
                continue;
            }
        };
        if existing.as_deref() == Some(text.as_str()) {
            report.unchanged += 1;
            continue;
        }
        match write_atomically(&sidecar, text.as_bytes()) {
            Ok(()) => report.written += 1,
            Err(Error::Io { path, source }) => report.failed.push((path, source.to_string())),
            Err(other) => report.failed.push((sidecar, other.to_string())),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_names() {
        let p = Path::new("/photos/a.jpg");
        assert_eq!(
            sidecar_path(p, SidecarNaming::Appended),
            Path::new("/photos/a.jpg.xmp")
        );
        assert_eq!(
            sidecar_path(p, SidecarNaming::Replaced),
            Path::new("/photos/a.xmp")
        );
    }

    #[test]
    fn merging_twice_changes_nothing() {
        let subjects = vec!["Dog".to_string()];
        let hierarchy = vec!["Animals|Dog".to_string()];
        let once = merge(None, &subjects, &hierarchy).unwrap();
        assert_eq!(merge(Some(&once), &subjects, &hierarchy).unwrap(), once);
    }

    #[test]
    fn entities_resolve() {
        assert_eq!(entity("amp").as_deref(), Some("&"));
        assert_eq!(entity("#x41").as_deref(), Some("A"));
        assert_eq!(entity("#66").as_deref(), Some("B"));
        assert_eq!(entity("nbsp"), None);
    }
}
