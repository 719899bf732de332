//! The CSV the answers export writes: RFC 4180 rows, with cells neutralised for spreadsheets.
//!
//! Pure: cells in, text out. Every row ends with CRLF (RFC 4180); a cell is quoted when it
//! holds a comma, a double quote, CR or LF, and a quote inside is doubled, so any text
//! (a contact's free-text answer included) reads back as the same cell.

use std::borrow::Cow;

/// The cell as written for a spreadsheet: a cell that starts with `=`, `+`, `-`, `@`, a tab
/// or CR gets a leading `'`.
///
/// Why: Excel, LibreOffice and Google Sheets run a cell starting with one of those as a
/// formula (CSV injection: `=HYPERLINK(...)` or `=cmd|...` typed into a survey answer by a
/// contact would run on the admin's machine when they open the export). A leading
/// apostrophe makes the spreadsheet show the rest as plain text, and a reader still sees the
/// value (`'+34 600 000 000` is a phone number at a glance), so a phone answer is neutralised
/// like any other rather than special-cased. Only the first character matters: a formula
/// must start the cell.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Appends one cell, neutralised and quoted as needed (no separator).
fn push_cell(out: &mut String, cell: &str) {
    let cell = neutralise(cell);
    if cell.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&cell);
    }
}

/// Appends one row (cells separated by commas, CRLF at the end).
pub fn push_row<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_cell(out, cell.as_ref());
    }
    out.push_str("\r\n");
}

/// One row as text.
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = String::new();
    push_row(&mut out, cells);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An RFC 4180 reader (the test's own, independent of the writer): the rows of `text`.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => cell.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut cell)),
                (false, '\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => cell.push(c),
            }
        }
        assert!(!quoted, "unterminated quote in {text:?}");
        assert!(cell.is_empty() && row.is_empty(), "no CRLF at the end");
        rows
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted_and_plain_cells_are_not() {
        assert_eq!(row(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(row(&["x,y"]), "\"x,y\"\r\n");
        assert_eq!(row(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(
            row(&["two\nlines", "cr\rhere"]),
            "\"two\nlines\",\"cr\rhere\"\r\n"
        );
        assert_eq!(row::<&str>(&[]), "\r\n");
    }

    #[test]
    fn formula_looking_cells_get_a_leading_apostrophe() {
        for (cell, want) in [
            ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
            ("+34 600 000 000", "'+34 600 000 000"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
        ] {
            assert_eq!(neutralise(cell), want);
        }
        for plain in ["Ana López", "a=b", "34600", "", "'quoted"] {
            assert_eq!(neutralise(plain), plain);
        }
        // Neutralised first, then quoted: the apostrophe is inside the quotes.
        assert_eq!(
            row(&["=HYPERLINK(\"http://x\",\"y\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n"
        );
        assert_eq!(row(&["\r\n"]), "\"'\r\n\"\r\n");
    }

    proptest! {
        #[test]
        fn a_reader_gets_back_every_cell_as_neutralised(
            rows in prop::collection::vec(
                prop::collection::vec("[a-z =+@\"',\r\n\t-]{0,8}|\\PC{0,6}", 1..5),
                1..4,
            )
        ) {
            let mut text = String::new();
            for r in &rows {
                push_row(&mut text, r);
            }
            let want: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|c| neutralise(c).into_owned()).collect())
                .collect();
            prop_assert_eq!(parse(&text), want);
        }
    }
}
