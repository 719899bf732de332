//! WhatsApp's documented limits, in characters (Unicode scalar values, as Meta counts them),
//! and [`fit`], the cut that keeps a text within one. The one home of these numbers: the survey
//! definition's validator checks a definition against them at publish time, and the Graph API
//! renderer ([`super::graph`]) enforces them again before every request.

use std::borrow::Cow;

pub const TEXT_BODY: usize = 4096;
/// Interactive (buttons and list) body; Meta's interactive object documents 1,024.
pub const INTERACTIVE_BODY: usize = 1024;
pub const HEADER_TEXT: usize = 60;
pub const FOOTER_TEXT: usize = 60;
pub const BUTTONS: usize = 3;
pub const BUTTON_TITLE: usize = 20;
pub const BUTTON_ID: usize = 256;
pub const LIST_BUTTON: usize = 20;
pub const LIST_SECTIONS: usize = 10;
pub const LIST_ROWS: usize = 10;
pub const SECTION_TITLE: usize = 24;
pub const ROW_ID: usize = 200;
pub const ROW_TITLE: usize = 24;
pub const ROW_DESCRIPTION: usize = 72;
pub const TEMPLATE_NAME: usize = 512;
pub const TEMPLATE_PARAMETER: usize = 32_768;
/// A question's short label (not sent on WhatsApp: prechat's own limit, one line in a list).
pub const LABEL: usize = 60;

/// Cuts `value` to at most `max` characters, counted as WhatsApp counts them (Unicode scalar
/// values, not bytes), on a character boundary. A cut text ends with `…` (within the limit) so
/// the reader sees it was shortened; a text that fits is returned as it is.
pub fn fit(value: &str, max: usize) -> Cow<'_, str> {
    if max == 0 {
        return Cow::Borrowed("");
    }
    let Some((cut, _)) = value.char_indices().nth(max - 1) else {
        return Cow::Borrowed(value);
    };
    if value[cut..].chars().nth(1).is_none() {
        return Cow::Borrowed(value); // exactly `max` characters
    }
    let mut out = value[..cut].trim_end().to_owned();
    out.push('…');
    Cow::Owned(out)
}

/// The first `max` characters, without the ellipsis.
pub fn fit_plain(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((cut, _)) => value[..cut].trim_end(),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_counts_characters_and_cuts_on_a_char_boundary() {
        let long = "é".repeat(5000); // 2 bytes each: counted as characters
        let cut = fit(&long, 4096);
        assert_eq!(cut.chars().count(), 4096);
        assert!(cut.ends_with("é…"), "{}", &cut[cut.len() - 10..]);
        let emoji = "😀".repeat(30); // 4 bytes each
        let emoji = fit(&emoji, 20);
        assert_eq!(emoji, format!("{}…", "😀".repeat(19)));
        assert!(matches!(fit(&"x".repeat(20), 20), Cow::Borrowed(_)));
        assert_eq!(fit("short", 20), "short");
        assert_eq!(
            fit("Customer service now", 10),
            "Customer…",
            "no space before the mark"
        );
        assert_eq!(fit("abc", 0), "");
    }
}
