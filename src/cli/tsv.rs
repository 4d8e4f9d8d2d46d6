//! TSV as cliptag prints it: one line per row, fields separated by tabs. Inside a field a
//! backslash is written `\\`, a tab `\t`, a newline `\n`, a carriage return `\r`, any other
//! control character and every byte of a file name that is not valid UTF-8 `\xNN` (two hex
//! digits). The rule is PostgreSQL's text format's: every line is one row, and a field reads back
//! exactly.

use std::path::Path;

/// `text` as a TSV field.
pub fn field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_char(&mut out, c);
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push(c),
    }
}

/// A path as a TSV field: its bytes, escaped where they are not valid UTF-8.
pub fn path(path: &Path) -> String {
    let bytes = crate::store::path_bytes(path);
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_escapes_are_escaped() {
        assert_eq!(field("a\tb\nc\\d\re"), "a\\tb\\nc\\\\d\\re");
        assert_eq!(field("Café/Chats"), "Café/Chats");
        assert_eq!(field("bell\u{7}"), "bell\\x07");
    }

    #[cfg(unix)]
    #[test]
    fn invalid_utf8_in_a_name_is_written_as_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let name = Path::new(std::ffi::OsStr::from_bytes(b"/p/caf\xe9\tx.jpg"));
        assert_eq!(path(name), "/p/caf\\xe9\\tx.jpg");
    }
}
