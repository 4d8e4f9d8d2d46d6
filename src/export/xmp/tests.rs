//! The sidecar merge against hand-written XMP.
use super::read::{entity, layout};
use super::*;

fn keywords(subject: &[&str], hierarchical: &[&str]) -> Keywords {
    Keywords {
        subject: subject.iter().map(|s| s.to_string()).collect(),
        hierarchical: hierarchical.iter().map(|s| s.to_string()).collect(),
    }
}

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
    let wanted = keywords(&["Dog"], &["Animals|Dog"]);
    let once = merge(
        None,
        &Merge {
            wanted: wanted.clone(),
            owned: Keywords::default(),
        },
    )
    .unwrap();
    assert_eq!(once.owned, wanted);
    let twice = merge(
        Some(&once.text),
        &Merge {
            wanted,
            owned: once.owned.clone(),
        },
    )
    .unwrap();
    assert_eq!(twice.text, once.text);
}

#[test]
fn an_empty_description_opens_to_take_keywords() {
    let text = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" xmp:Rating=\"3\"/></rdf:RDF></x:xmpmeta>";
    let merged = merge(
        Some(text),
        &Merge {
            wanted: keywords(&["Cat"], &[]),
            owned: Keywords::default(),
        },
    )
    .unwrap();
    assert!(merged.text.contains("xmp:Rating=\"3\">"), "{}", merged.text);
    assert!(
        merged.text.contains("<rdf:li>Cat</rdf:li>"),
        "{}",
        merged.text
    );
    assert!(
        merged.text.contains("</rdf:Description></rdf:RDF>"),
        "{}",
        merged.text
    );
}

fn merged_with(text: &str, wanted: Keywords) -> Merged {
    merge(
        Some(text),
        &Merge {
            wanted,
            owned: Keywords::default(),
        },
    )
    .unwrap()
}

const PERSONS: &str = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:subject><rdf:Bag><rdf:li>Tom &amp; &quot;Jerry&quot;</rdf:li><rdf:li>Caf&#xE9; &#x2615; &#x1F431;</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>";

#[test]
fn spaces_between_references_are_the_keywords_own() {
    let layout = layout(PERSONS).unwrap();
    assert_eq!(layout.found.subject, ["Tom & \"Jerry\"", "Café ☕ 🐱"]);
}

#[test]
fn a_sidecar_that_already_has_the_keywords_is_left_as_it_is() {
    let merged = merged_with(PERSONS, keywords(&["Tom & \"Jerry\""], &[]));
    assert_eq!(merged.text, PERSONS);
}

#[test]
fn characters_xml_cannot_hold_are_never_written() {
    let merged = merged_with(PERSONS, keywords(&["Bell\u{7}\u{FFFE}"], &[]));
    assert!(
        merged.text.contains("<rdf:li>Bell</rdf:li>"),
        "{}",
        merged.text
    );
    assert!(layout(&merged.text).is_ok());
}

#[test]
fn a_byte_order_mark_stays_and_moves_nothing() {
    let text = format!("\u{FEFF}{PERSONS}");
    let merged = merged_with(&text, keywords(&["Cat"], &[]));
    assert!(merged.text.starts_with('\u{FEFF}'));
    let again = layout(merged.text.trim_start_matches('\u{FEFF}')).unwrap();
    assert_eq!(
        again.found.subject,
        ["Tom & \"Jerry\"", "Café ☕ 🐱", "Cat"]
    );
}

#[test]
fn keywords_in_attribute_form_join_the_list_as_one_element() {
    let text = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" note=\" dc:subject='no'\" dc:subject=\"attr &amp; form\"/></rdf:RDF></x:xmpmeta>";
    let merged = merged_with(text, keywords(&["Cat"], &[]));
    let again = layout(&merged.text).unwrap();
    assert_eq!(
        again.found.subject,
        ["attr & form", "Cat"],
        "{}",
        merged.text
    );
    assert!(
        merged.text.contains("note=\" dc:subject='no'\""),
        "{}",
        merged.text
    );
    assert_eq!(
        merged.text.matches("dc:subject").count(),
        3,
        "{}",
        merged.text
    );
}

#[test]
fn entities_resolve() {
    assert_eq!(entity("amp").as_deref(), Some("&"));
    assert_eq!(entity("#x41").as_deref(), Some("A"));
    assert_eq!(entity("#66").as_deref(), Some("B"));
    assert_eq!(entity("nbsp"), None);
}
