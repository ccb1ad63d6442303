//! How a search box's words become a PostgreSQL `tsquery` (`simple`
//! configuration) that requires every word.
//!
//! Words are runs of letters and digits; every other character separates
//! them, so nothing of the caller's text reaches `to_tsquery` but those runs
//! and its operators (`& | ! <-> ( ) : * '`), quotes and backslashes cannot
//! be injected. Each word is matched as a prefix (`word:*`) only when it has
//! at least [`MIN_PREFIX_CHARS`] characters; a shorter one matches whole
//! words only: a one- or two-character prefix expands into every index term
//! that starts with it — "7" into 11,111 studio numbers among 100,000
//! studios — and the GIN index must read them all; as a whole word it is one
//! term. "pulse 7" finds "Studio Pulse 7" (not "Pulse 71"); "pulse 71" still
//! finds "Pulse 71", "pulse 712" also "Pulse 7120".
//!
//! Accents are not folded here: the SQL side folds both the indexed text and
//! the query with the same function.

/// Shortest word matched as a prefix.
pub const MIN_PREFIX_CHARS: usize = 3;
/// Most words a search uses; the rest are ignored.
pub const MAX_WORDS: usize = 8;

/// A `tsquery` requiring every word of `query`, lower-cased, at most
/// [`MAX_WORDS`]; `None` when `query` holds no word.
pub fn all_words_query(query: &str) -> Option<String> {
    let terms: Vec<String> = query
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_WORDS)
        .map(|word| {
            let word = word.to_lowercase();
            if word.chars().count() >= MIN_PREFIX_CHARS {
                format!("{word}:*")
            } else {
                word
            }
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_three_characters_or_more_match_as_prefixes() {
        assert_eq!(
            all_words_query("Montréal  yoga").as_deref(),
            Some("montréal:* & yoga:*")
        );
        assert_eq!(all_words_query("cal").as_deref(), Some("cal:*"));
    }

    #[test]
    fn shorter_words_match_whole_words_only_counting_characters_not_bytes() {
        assert_eq!(all_words_query("pulse 7").as_deref(), Some("pulse:* & 7"));
        assert_eq!(all_words_query("été").as_deref(), Some("été:*"));
        assert_eq!(all_words_query("Éa").as_deref(), Some("éa"));
    }

    #[test]
    fn tsquery_operators_quotes_and_backslashes_are_only_separators() {
        assert_eq!(all_words_query("a|b & !c").as_deref(), Some("a & b & c"));
        assert_eq!(
            all_words_query("abc|def:* <-> (ghi)").as_deref(),
            Some("abc:* & def:* & ghi:*")
        );
        assert_eq!(
            all_words_query("'yoga' \"flow\" \\x").as_deref(),
            Some("yoga:* & flow:* & x")
        );
        assert_eq!(all_words_query(" '&:* !()<-> "), None);
        assert_eq!(all_words_query(""), None);
    }

    #[test]
    fn at_most_eight_words_are_used() {
        let query = all_words_query("one two three four five six seven eight nine").unwrap();
        assert_eq!(query.matches(" & ").count(), MAX_WORDS - 1);
        assert!(!query.contains("nine"));
    }
}
