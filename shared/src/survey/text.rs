//! Text helpers of the survey: matching user replies (case- and accent-insensitive) and
//! rendering `{{variable}}` placeholders in survey texts.

use std::collections::BTreeMap;

/// Folds a reply for comparison: lower case, accents removed, punctuation at the ends dropped,
/// inner whitespace collapsed. "  ¡Sí! " and "si" compare equal.
pub fn normalise(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars().flat_map(char::to_lowercase) {
        out.push(fold_accent(c));
    }
    let trimmed = out.trim_matches(|c: char| c.is_whitespace() || is_edge_punct(c));
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_edge_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | '!' | '?' | '¡' | '¿' | ';' | ':' | '"' | '\'' | '*' | '_' | '~'
    )
}

/// Maps the accented letters of the Latin alphabets our surveys use to their base letter.
/// Small and explicit instead of a Unicode decomposition table: replies are short and the
/// survey languages are Latin-script.
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ś' | 'š' | 'ş' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        'ł' => 'l',
        'ř' => 'r',
        'ť' | 'ţ' => 't',
        'ğ' => 'g',
        other => other,
    }
}

/// Replaces `{{name}}` placeholders with values from `vars`; unknown names become empty so a
/// missing field never shows raw braces to a contact.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                rest = &after[end + 2..];
                match vars.get(name).filter(|v| !v.is_empty()) {
                    Some(v) => out.push_str(v),
                    // An empty value must not leave a gap: "Hi {{name}}!" -> "Hi!".
                    None => {
                        let gap_follows = rest.is_empty()
                            || rest
                                .starts_with(|c: char| c.is_whitespace() || ",.!?;:".contains(c));
                        if gap_follows && out.ends_with(' ') {
                            out.pop();
                        }
                    }
                }
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholder names used in a template (for validation).
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                names.push(after[..end].trim().to_owned());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    names
}

/// Number of characters as WhatsApp counts them for its limits.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_folds_case_accents_punctuation_and_spaces() {
        assert_eq!(normalise("  ¡Sí! "), "si");
        assert_eq!(normalise("Atención   al Cliente."), "atencion al cliente");
        assert_eq!(normalise("ÉLÈVE"), "eleve");
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("?!"), "");
    }

    #[test]
    fn render_fills_known_and_blanks_unknown() {
        let mut vars = BTreeMap::new();
        vars.insert("contact.first_name".to_owned(), "Ana".to_owned());
        assert_eq!(render("Hi {{contact.first_name}}!", &vars), "Hi Ana!");
        assert_eq!(
            render("Hi {{ contact.first_name }}, ok", &vars),
            "Hi Ana, ok"
        );
        assert_eq!(render("Hi {{contact.nick}}!", &vars), "Hi!");
        assert_eq!(render("broken {{contact", &vars), "broken {{contact");
        assert_eq!(
            render("Hola {{contact.nick}} y bienvenido", &vars),
            "Hola y bienvenido"
        );
        assert_eq!(
            render("Bonjour Ana !", &vars),
            "Bonjour Ana !",
            "authored spacing is kept"
        );
        assert_eq!(placeholders("{{a}} and {{ b.c }}"), vec!["a", "b.c"]);
    }

    proptest::proptest! {
        #[test]
        fn render_and_normalise_never_panic(s in "\\PC{0,80}") {
            let _ = normalise(&s);
            let _ = render(&s, &BTreeMap::new());
            let _ = placeholders(&s);
        }
    }
}
