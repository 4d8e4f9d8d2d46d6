//! Reading a sidecar: the keyword lists its top-level descriptions hold (as elements or in
//! attribute form) and where they lie in the text, so that merging rewrites those and nothing else.

use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{Bag, Container, Insert, Layout, RDF};

/// The text of an entity reference such as `&amp;` or `&#x41;`.
pub(super) fn entity(name: &str) -> Option<String> {
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

/// An open element while reading.
struct Open {
    is_rdf: bool,
    is_description: bool,
    /// Whether it is a description directly under `rdf:RDF`.
    top: bool,
}

/// Keywords a top-level description holds in attribute form (`<rdf:Description
/// dc:subject="Cat">`, a single literal): read as the list they are, and the attribute cut, so
/// that the list is written once, as an element, with cliptag's keywords beside them.
fn attribute_keywords(
    reader: &NsReader<&[u8]>,
    tag: &quick_xml::events::BytesStart<'_>,
    source: &str,
    at: usize,
    layout: &mut Layout,
) -> Result<(), String> {
    for attribute in tag.attributes().with_checks(false) {
        let attribute = attribute.map_err(|e| format!("not valid XML: {e}"))?;
        let (ns, local) = reader.resolver().resolve_attribute(attribute.key);
        let ResolveResult::Bound(ns) = ns else {
            continue;
        };
        let list = match Bag::of(ns.as_ref(), local.as_ref()) {
            Some(Bag::Subject) => &mut layout.found.subject,
            Some(Bag::Hierarchical) => &mut layout.found.hierarchical,
            _ => continue,
        };
        // As an XML reader (exiftool among them) reads an attribute's value.
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("not valid XML: {e}"))?;
        list.push(value.into_owned());
        let key = std::str::from_utf8(attribute.key.as_ref()).unwrap_or_default();
        if let Some(span) = attribute_span(&source[at..], key) {
            layout.cut.push(at + span.start..at + span.end);
        }
    }
    Ok(())
}

/// Where the attribute `key` (with the space before it) lies in the start tag at the beginning
/// of `text`, read attribute by attribute so that a value holding the same words is never taken
/// for it.
fn attribute_span(text: &str, key: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    // Past `<` and the element's name.
    let mut i = 1;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' && bytes[i] != b'/'
    {
        i += 1;
    }
    loop {
        let space = i;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' || bytes[i] == b'/' {
            return None;
        }
        let name_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = &text[name_start..i];
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'=') {
            i += 1;
        }
        let quote = *bytes.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        i += 1;
        while i < bytes.len() && bytes[i] != quote {
            i += 1;
        }
        i += 1;
        if name == key {
            return Some(space..i.min(bytes.len()));
        }
    }
}

pub(super) fn layout(source: &str) -> Result<Layout, String> {
    let bad = |e: quick_xml::Error| format!("not valid XML: {e}");
    let mut reader = NsReader::from_str(source);
    let mut layout = Layout::default();
    let mut open: Vec<Open> = Vec::new();
    // The managed property being read: its bag, its start and where its `rdf:li` text goes.
    let mut current: Option<(Bag, usize, usize)> = None;
    let mut value: Option<String> = None;
    let mut space_before: Option<Range<usize>> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let (ns, event) = reader.read_resolved_event().map_err(bad)?;
        let namespace = match &ns {
            ResolveResult::Bound(n) => n.as_ref().to_vec(),
            _ => Vec::new(),
        };
        let after = reader.buffer_position() as usize;
        let is_rdf = namespace == RDF.as_bytes();
        let parent_top = open.last().is_some_and(|o| o.top);
        let parent_rdf = open.last().is_some_and(|o| o.is_rdf);
        match &event {
            // Whitespace between elements is layout; inside a keyword (`Tom &amp; Jerry` reads
            // as text, a reference, text) it is the keyword's own.
            Event::Text(t) if value.is_none() && t.iter().all(u8::is_ascii_whitespace) => {
                space_before = Some(before..after);
                continue;
            }
            Event::Start(e) => {
                let local = e.local_name();
                if current.is_none()
                    && parent_top
                    && let Some(bag) = Bag::of(&namespace, local.as_ref())
                {
                    let start = space_before.take().map_or(before, |s| s.start);
                    current = Some((bag, start, open.len()));
                } else if current.is_some() && is_rdf && local.as_ref() == b"li" {
                    value = Some(String::new());
                } else if let Some((bag, _, depth)) = current
                    && is_rdf
                    && open.len() == depth + 1
                    && let Some(kind) = Container::of(local.as_ref())
                {
                    match bag {
                        Bag::Subject => layout.containers.0 = kind,
                        Bag::Hierarchical => layout.containers.1 = kind,
                        Bag::OldOwnSubject | Bag::OldOwnHierarchical => {}
                    }
                }
                let is_description = is_rdf && local.as_ref() == b"Description";
                if is_description && parent_rdf {
                    attribute_keywords(&reader, e, source, before, &mut layout)?;
                }
                open.push(Open {
                    is_rdf: is_rdf && local.as_ref() == b"RDF",
                    is_description,
                    top: is_description && parent_rdf,
                });
            }
            Event::Empty(e) => {
                let local = e.local_name();
                if is_rdf && local.as_ref() == b"Description" && parent_rdf {
                    attribute_keywords(&reader, e, source, before, &mut layout)?;
                }
                if current.is_none() && parent_top && Bag::of(&namespace, local.as_ref()).is_some()
                {
                    // An empty managed property: cut it too.
                    let start = space_before.take().map_or(before, |s| s.start);
                    layout.cut.push(start..after);
                } else if is_rdf
                    && local.as_ref() == b"Description"
                    && parent_rdf
                    && layout.insert.is_none()
                {
                    layout.insert = Some(Insert::OpenEmpty {
                        slash: after - 2,
                        end: after,
                    });
                }
            }
            Event::Text(t) => {
                if let Some(value) = value.as_mut() {
                    value.push_str(
                        &t.xml10_content()
                            .map_err(|e| format!("not valid XML: {e}"))?,
                    );
                }
            }
            Event::CData(t) => {
                if let Some(value) = value.as_mut() {
                    value.push_str(&String::from_utf8_lossy(t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(value) = value.as_mut() {
                    let name = r.decode().map_err(|e| format!("not valid XML: {e}"))?;
                    value.push_str(
                        &entity(&name).ok_or_else(|| format!("unknown entity &{name};"))?,
                    );
                }
            }
            Event::End(e) => {
                let closed = open.pop().ok_or("not valid XML: an end tag too many")?;
                if let Some((bag, start, depth)) = current {
                    if open.len() == depth {
                        layout.cut.push(start..after);
                        current = None;
                    } else if e.local_name().as_ref() == b"li"
                        && let Some(text) = value.take()
                    {
                        let list = match bag {
                            Bag::Subject => &mut layout.found.subject,
                            Bag::Hierarchical => &mut layout.found.hierarchical,
                            Bag::OldOwnSubject => &mut layout.old_owned.subject,
                            Bag::OldOwnHierarchical => &mut layout.old_owned.hierarchical,
                        };
                        list.push(text);
                    }
                } else if closed.top && closed.is_description && layout.insert.is_none() {
                    layout.insert = Some(Insert::Before(
                        space_before.as_ref().map_or(before, |s| s.start),
                    ));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        space_before = None;
    }
    if !open.is_empty() {
        return Err("not valid XML: the file ends inside an element".into());
    }
    Ok(layout)
}
