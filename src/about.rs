//! What cliptag says about itself: its version and the commit it was built from (also
//! `cliptag --version`), where to report a problem, and the licences of what is built into it.

/// cliptag's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit cliptag was built from ("unknown" when built outside a git checkout).
pub const COMMIT: &str = env!("CLIPTAG_COMMIT");
/// `cliptag --version`'s text after the program's name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CLIPTAG_COMMIT"),
    ")"
);
/// Where a person reports a problem.
pub const REPORT_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/issues");
/// cliptag's own licence.
pub const LICENCE: &str = env!("CARGO_PKG_LICENSE");
/// Every crate built into cliptag, one line per licence ("MIT OR Apache-2.0: a 1.0, b 2.0"),
/// made by the build from Cargo's resolution of its dependencies.
pub const CRATE_LICENCES: &str = include_str!(concat!(env!("OUT_DIR"), "/licences.txt"));

/// A model's licence as its model card states it (the `license:` line of the YAML front matter
/// in the folder's `README.md`), or, for the models cliptag suggests, as their publishers state
/// it; `None` where neither says.
pub fn model_licence(repo: Option<&str>, folder: Option<&std::path::Path>) -> Option<String> {
    if let Some(card) = folder.and_then(|f| std::fs::read_to_string(f.join("README.md")).ok())
        && let Some(licence) = card_licence(&card)
    {
        return Some(licence);
    }
    let repo = repo?;
    let known = [
        ("openai/clip-", "MIT"),
        ("laion/CLIP-", "MIT"),
        ("google/siglip", "Apache-2.0"),
    ];
    known
        .iter()
        .find(|(prefix, _)| repo.starts_with(prefix))
        .map(|(_, licence)| licence.to_string())
}

/// The `license:` value of a model card's front matter.
fn card_licence(card: &str) -> Option<String> {
    let front = card.strip_prefix("---")?;
    let end = front.find("\n---")?;
    front[..end].lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("license:")?
            .trim()
            .trim_matches('"');
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_card_names_its_licence() {
        let card =
            "---\nlanguage: en\nlicense: apache-2.0\ntags:\n- clip\n---\n# Model\nlicense: no\n";
        assert_eq!(card_licence(card).as_deref(), Some("apache-2.0"));
        assert_eq!(card_licence("# No front matter\nlicense: mit\n"), None);
        assert_eq!(
            model_licence(Some("openai/clip-vit-base-patch32"), None).as_deref(),
            Some("MIT")
        );
        assert_eq!(model_licence(Some("someone/else"), None), None);
    }

    #[test]
    fn the_build_lists_the_crates_built_in_with_their_licences() {
        // Crates cliptag uses directly, each on its licence's line.
        for (name, licence) in [
            ("candle-core", "MIT OR Apache-2.0"),
            ("egui", "MIT OR Apache-2.0"),
        ] {
            let line = CRATE_LICENCES
                .lines()
                .find(|l| l.contains(&format!(" {name} ")) || l.contains(&format!(": {name} ")))
                .unwrap_or_else(|| panic!("{name} is not listed:\n{CRATE_LICENCES}"));
            assert!(line.starts_with(&format!("{licence}:")), "{line}");
        }
        // Test-only crates are not built into the app.
        assert!(!CRATE_LICENCES.contains("egui_kittest"), "{CRATE_LICENCES}");
        assert!(COMMIT == "unknown" || COMMIT.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
