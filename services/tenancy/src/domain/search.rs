//! How a studio search's words become a `tsquery`.
//!
//! Each word is matched as a prefix (`word:*`) only when it has at least
//! [`MIN_PREFIX_CHARS`] characters; a shorter one matches whole words only.
//! A one- or two-character prefix expands into every index term that starts
//! with it — "7" into 11,111 studio numbers among 100,000 studios — and the
//! GIN index must read them all; as a whole word it is one term. "pulse 7"
//! finds "Studio Pulse 7" (not "Pulse 71"); "pulse 71" still finds "Pulse
//! 71", "pulse 712" also "Pulse 7120".

pub use fitflow_api::search::{MAX_WORDS, MIN_PREFIX_CHARS};

/// A `tsquery` (`simple` configuration) requiring every word of `query`:
/// words are runs of letters and digits (everything else separates them),
/// lower-cased, at most [`MAX_WORDS`]. Nothing of the caller's text reaches
/// `to_tsquery` but those runs, so its operators cannot be injected. `None`
/// when `query` holds no word. (The rule lives in `fitflow_api::search`,
/// which scheduling's class type search shares.)
pub fn studio_query(query: &str) -> Option<String> {
    fitflow_api::search::all_words_query(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_three_characters_or_more_match_as_prefixes() {
        assert_eq!(
            studio_query("Montréal  yoga").as_deref(),
            Some("montréal:* & yoga:*")
        );
        assert_eq!(studio_query("cal").as_deref(), Some("cal:*"));
        assert_eq!(
            studio_query("pulse 712").as_deref(),
            Some("pulse:* & 712:*")
        );
    }

    #[test]
    fn shorter_words_match_whole_words_only() {
        assert_eq!(studio_query("pulse 7").as_deref(), Some("pulse:* & 7"));
        assert_eq!(
            studio_query("harbour 12").as_deref(),
            Some("harbour:* & 12")
        );
        assert_eq!(
            studio_query("St Laurent").as_deref(),
            Some("st & laurent:*")
        );
        // Characters, not bytes: "été" is three letters and a prefix.
        assert_eq!(studio_query("été").as_deref(), Some("été:*"));
        assert_eq!(studio_query("Éa").as_deref(), Some("éa"));
    }

    #[test]
    fn operators_are_dropped_and_a_query_without_words_searches_nothing() {
        assert_eq!(studio_query("a|b & !c").as_deref(), Some("a & b & c"));
        assert_eq!(studio_query("abc|def:*").as_deref(), Some("abc:* & def:*"));
        assert_eq!(studio_query(" '&:* "), None);
        assert_eq!(studio_query(""), None);
    }

    #[test]
    fn at_most_eight_words_are_used() {
        let query = studio_query("one two three four five six seven eight nine").unwrap();
        assert_eq!(query.matches(" & ").count(), MAX_WORDS - 1);
        assert!(!query.contains("nine"));
    }
}
