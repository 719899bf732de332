//! Country facts the survey needs without a network call: the country of a phone number's
//! calling code, the language usually spoken there, and country names as contacts write them.
//!
//! A compact table instead of the `phonenumber` crate: we only need the calling code prefix
//! (not national numbering plans), and the table keeps the Lambda small and the build fast.

use super::text::normalise;

/// (calling code, ISO 3166-1 alpha-2, usual language, English name, Spanish name).
/// Shared calling codes (1: US/CA/..., 7: RU/KZ) map to their largest country.
const COUNTRIES: &[(&str, &str, &str, &str, &str)] = &[
    ("1", "US", "en", "united states", "estados unidos"),
    ("1", "CA", "en", "canada", "canada"),
    ("7", "RU", "ru", "russia", "rusia"),
    ("20", "EG", "ar", "egypt", "egipto"),
    ("27", "ZA", "en", "south africa", "sudafrica"),
    ("30", "GR", "el", "greece", "grecia"),
    ("31", "NL", "nl", "netherlands", "paises bajos"),
    ("32", "BE", "nl", "belgium", "belgica"),
    ("33", "FR", "fr", "france", "francia"),
    ("34", "ES", "es", "spain", "espana"),
    ("36", "HU", "hu", "hungary", "hungria"),
    ("39", "IT", "it", "italy", "italia"),
    ("40", "RO", "ro", "romania", "rumania"),
    ("41", "CH", "de", "switzerland", "suiza"),
    ("43", "AT", "de", "austria", "austria"),
    ("44", "GB", "en", "united kingdom", "reino unido"),
    ("45", "DK", "da", "denmark", "dinamarca"),
    ("46", "SE", "sv", "sweden", "suecia"),
    ("47", "NO", "no", "norway", "noruega"),
    ("48", "PL", "pl", "poland", "polonia"),
    ("49", "DE", "de", "germany", "alemania"),
    ("51", "PE", "es", "peru", "peru"),
    ("52", "MX", "es", "mexico", "mexico"),
    ("53", "CU", "es", "cuba", "cuba"),
    ("54", "AR", "es", "argentina", "argentina"),
    ("55", "BR", "pt", "brazil", "brasil"),
    ("56", "CL", "es", "chile", "chile"),
    ("57", "CO", "es", "colombia", "colombia"),
    ("58", "VE", "es", "venezuela", "venezuela"),
    ("60", "MY", "ms", "malaysia", "malasia"),
    ("61", "AU", "en", "australia", "australia"),
    ("62", "ID", "id", "indonesia", "indonesia"),
    ("63", "PH", "en", "philippines", "filipinas"),
    ("64", "NZ", "en", "new zealand", "nueva zelanda"),
    ("65", "SG", "en", "singapore", "singapur"),
    ("66", "TH", "th", "thailand", "tailandia"),
    ("81", "JP", "ja", "japan", "japon"),
    ("82", "KR", "ko", "south korea", "corea del sur"),
    ("84", "VN", "vi", "vietnam", "vietnam"),
    ("86", "CN", "zh", "china", "china"),
    ("90", "TR", "tr", "turkey", "turquia"),
    ("91", "IN", "en", "india", "india"),
    ("92", "PK", "ur", "pakistan", "pakistan"),
    ("212", "MA", "ar", "morocco", "marruecos"),
    ("234", "NG", "en", "nigeria", "nigeria"),
    ("254", "KE", "en", "kenya", "kenia"),
    ("351", "PT", "pt", "portugal", "portugal"),
    ("353", "IE", "en", "ireland", "irlanda"),
    ("358", "FI", "fi", "finland", "finlandia"),
    ("380", "UA", "uk", "ukraine", "ucrania"),
    ("502", "GT", "es", "guatemala", "guatemala"),
    ("503", "SV", "es", "el salvador", "el salvador"),
    ("504", "HN", "es", "honduras", "honduras"),
    ("505", "NI", "es", "nicaragua", "nicaragua"),
    ("506", "CR", "es", "costa rica", "costa rica"),
    ("507", "PA", "es", "panama", "panama"),
    ("591", "BO", "es", "bolivia", "bolivia"),
    ("593", "EC", "es", "ecuador", "ecuador"),
    ("595", "PY", "es", "paraguay", "paraguay"),
    ("598", "UY", "es", "uruguay", "uruguay"),
    (
        "809",
        "DO",
        "es",
        "dominican republic",
        "republica dominicana",
    ),
    ("966", "SA", "ar", "saudi arabia", "arabia saudita"),
    (
        "971",
        "AE",
        "ar",
        "united arab emirates",
        "emiratos arabes unidos",
    ),
    ("972", "IL", "he", "israel", "israel"),
];

/// Other common ways of writing a country (normalised form, ISO code).
const ALIASES: &[(&str, &str)] = &[
    ("usa", "US"),
    ("us", "US"),
    ("eeuu", "US"),
    ("ee uu", "US"),
    ("ee.uu", "US"),
    ("united states of america", "US"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("england", "GB"),
    ("inglaterra", "GB"),
    ("deutschland", "DE"),
    ("holland", "NL"),
    ("holanda", "NL"),
    ("brasil", "BR"),
    ("espagne", "ES"),
];

/// The country of an E.164 number's digits (no `+`), by longest calling-code prefix.
pub fn country_of_phone(digits: &str) -> Option<&'static str> {
    // Three, two, then one-digit prefixes; NANP (1) is resolved to US except the Dominican
    // Republic's 809 area code, which the table lists as "809".
    if let Some(rest) = digits.strip_prefix('1') {
        if rest.starts_with("809") || rest.starts_with("829") || rest.starts_with("849") {
            return Some("DO");
        }
        return Some("US");
    }
    for len in [3, 2, 1] {
        let prefix = digits.get(..len)?;
        if let Some(c) = COUNTRIES.iter().find(|c| c.0 == prefix) {
            return Some(c.1);
        }
    }
    None
}

/// Every country the table knows, as (ISO 3166-1 alpha-2, calling code), in table order: the
/// choices of the web form's country and phone pickers, so they offer what the validators accept.
pub fn countries() -> impl Iterator<Item = (&'static str, &'static str)> {
    // The table lists the Dominican Republic under its first area code (for
    // `country_of_phone`); its calling code is NANP's 1.
    COUNTRIES
        .iter()
        .map(|c| (c.1, if c.1 == "DO" { "1" } else { c.0 }))
}

/// The usual language of a country.
pub fn language_of_country(iso: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|c| c.1.eq_ignore_ascii_case(iso))
        .map(|c| c.2)
}

/// Recognises a country written as an ISO code or a name (English or Spanish, any case or
/// accents). Returns the ISO 3166-1 alpha-2 code.
pub fn parse_country(input: &str) -> Option<&'static str> {
    let n = normalise(input);
    if n.is_empty() {
        return None;
    }
    if n.len() == 2 {
        if let Some(c) = COUNTRIES.iter().find(|c| c.1.eq_ignore_ascii_case(&n)) {
            return Some(c.1);
        }
    }
    if let Some(c) = COUNTRIES.iter().find(|c| c.3 == n || c.4 == n) {
        return Some(c.1);
    }
    ALIASES.iter().find(|a| a.0 == n).map(|a| a.1)
}

/// The country named at the end of a postal address ("..., Madrid, Spain").
pub fn country_of_address(address: &str) -> Option<&'static str> {
    address
        .rsplit([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .take(2)
        .find_map(parse_country)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_prefixes_resolve_to_countries_and_languages() {
        assert_eq!(country_of_phone("34612345678"), Some("ES"));
        assert_eq!(country_of_phone("5215512345678"), Some("MX"));
        assert_eq!(country_of_phone("16505551234"), Some("US"));
        assert_eq!(country_of_phone("18095551234"), Some("DO"));
        assert_eq!(country_of_phone("351912345678"), Some("PT"));
        assert_eq!(country_of_phone("99999"), None);
        assert_eq!(country_of_phone(""), None);
        assert_eq!(language_of_country("MX"), Some("es"));
        assert_eq!(language_of_country("zz"), None);
    }

    #[test]
    fn country_names_codes_and_addresses() {
        assert_eq!(parse_country("España"), Some("ES"));
        assert_eq!(parse_country(" spain "), Some("ES"));
        assert_eq!(parse_country("mx"), Some("MX"));
        assert_eq!(parse_country("EE.UU."), Some("US"));
        assert_eq!(parse_country("EEUU"), Some("US"));
        assert_eq!(parse_country("Narnia"), None);
        assert_eq!(
            country_of_address("Calle Mayor 1, 28013 Madrid, Spain"),
            Some("ES")
        );
        assert_eq!(country_of_address("somewhere"), None);
    }
}
