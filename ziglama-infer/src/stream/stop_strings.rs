//! Stop strings: ending the text where one of the caller's strings appears, even when it
//! spans several tokens, without ever showing part of it.
//!
//! The rule that picks the stop string is on [`StopStrings`].

/// A stop string found in the text.
///
/// ```
/// use ziglama_infer::stream::{StopStringMatch, StopStrings};
/// let stops = StopStrings::new(["\n\n", "User:"]);
/// assert_eq!(stops.find_in("Hi.\nUser: no"), Some(StopStringMatch { index: 1, start: 4 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StopStringMatch {
    /// The stop string's index in the list the matcher was built from.
    pub index: usize,
    /// Its byte offset in the whole text: the text before it is `&text[..start]`.
    pub start: usize,
}

/// Watches a text stream for stop strings and releases only text that cannot be the start of
/// one.
///
/// Push text as it is decoded; each push returns the text now known not to belong to a stop
/// string. A suffix that could still grow into a stop string is held back. When a stop
/// string completes, the push returns the text before it, and the matcher ignores everything
/// after.
///
/// # Which stop string, and where
///
/// Generation stops as soon as the text contains a stop string, so the match is the one that
/// *ends* first in the text; among matches ending at the same place, the one that starts
/// first (the longest), and among equal ones the first in the list. This depends only on the
/// text, not on how it was cut into pieces, so a streamed and a whole generation agree, and
/// the text before the match never contains a stop string. [`find_in`](Self::find_in) applies
/// the rule to a whole text.
///
/// llama.cpp's server, after each token, takes among the stop strings now complete the one
/// that *starts* first. The two rules differ only when two stop strings overlap and complete
/// within the same token (stops `abcd` and `bc`, one token `abcd`: llama.cpp cuts before
/// `abcd`, ziglama before `bc`); llama.cpp's choice then depends on the tokenization (had
/// `abc` and `d` been two tokens, it too would have stopped at `bc`), ziglama's does not.
///
/// Empty stop strings are ignored (they would stop every generation before it starts).
///
/// ```
/// use ziglama_infer::stream::StopStrings;
///
/// let mut stops = StopStrings::new(["</answer>"]);
/// assert_eq!(stops.push("42 </an"), "42 "); // "</an" may be the stop string's start
/// assert_eq!(stops.push("swer> and more"), "");
/// assert_eq!(stops.matched().map(|m| (m.index, m.start)), Some((0, 3)));
/// assert_eq!(stops.push("ignored"), "");
///
/// let mut stops = StopStrings::new(["</answer>"]);
/// assert_eq!(stops.push("a </a"), "a ");
/// assert_eq!(stops.push("b> <"), "</ab> ");
/// assert_eq!(stops.finish(), "<"); // no stop string: the held text is released
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopStrings {
    /// `(index in the caller's list, text)`, empty strings left out.
    stops: Vec<(usize, String)>,
    /// The longest stop string's length in bytes.
    max_len: usize,
    /// Text pushed but not released (a possible start of a stop string).
    held: String,
    /// Bytes released so far (the offset of `held` in the whole text).
    released: usize,
    matched: Option<StopStringMatch>,
    /// The text released by the last call.
    out: String,
}

impl StopStrings {
    /// A matcher for these stop strings (empty ones are ignored).
    pub fn new<I, S>(stops: I) -> StopStrings
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let stops: Vec<(usize, String)> = stops
            .into_iter()
            .map(Into::into)
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let max_len = stops.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
        StopStrings {
            stops,
            max_len,
            ..StopStrings::default()
        }
    }

    /// Whether there is no (non-empty) stop string to look for.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// The stop string with this index in the list given to [`new`](Self::new).
    pub fn get(&self, index: usize) -> Option<&str> {
        self.stops
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s.as_str())
    }

    /// The first stop string in `text`, by the rule above ([`StopStrings`]).
    ///
    /// ```
    /// use ziglama_infer::stream::StopStrings;
    /// // "bc" ends before "abcd" does, even though "abcd" starts first.
    /// let m = StopStrings::new(["abcd", "bc"]).find_in("xabcd").unwrap();
    /// assert_eq!((m.index, m.start), (1, 2));
    /// // Ending together, the longer one wins.
    /// let m = StopStrings::new(["c", "bc"]).find_in("abc").unwrap();
    /// assert_eq!((m.index, m.start), (1, 1));
    /// ```
    pub fn find_in(&self, text: &str) -> Option<StopStringMatch> {
        let mut best: Option<(usize, StopStringMatch)> = None;
        for (index, stop) in &self.stops {
            if let Some(start) = text.find(stop.as_str()) {
                let end = start + stop.len();
                let better = match best {
                    None => true,
                    Some((e, m)) => end < e || (end == e && start < m.start),
                };
                if better {
                    best = Some((
                        end,
                        StopStringMatch {
                            index: *index,
                            start,
                        },
                    ));
                }
            }
        }
        best.map(|(_, m)| m)
    }

    /// Pushes the next text and returns the text released by it (possibly empty).
    ///
    /// After a match, returns the text before the stop string once and then nothing.
    pub fn push(&mut self, text: &str) -> &str {
        self.out.clear();
        if self.matched.is_some() {
            return &self.out;
        }
        self.held.push_str(text);
        if let Some(m) = self.find_in(&self.held) {
            self.out.push_str(&self.held[..m.start]);
            self.matched = Some(StopStringMatch {
                index: m.index,
                start: self.released + m.start,
            });
            self.released += m.start;
            self.held.clear();
            return &self.out;
        }
        let keep_from = self.possible_start(&self.held);
        self.out.push_str(&self.held[..keep_from]);
        self.held.drain(..keep_from);
        self.released += keep_from;
        &self.out
    }

    /// Ends the text: releases what is held back (nothing after a match).
    pub fn finish(&mut self) -> &str {
        self.out.clear();
        if self.matched.is_none() {
            std::mem::swap(&mut self.out, &mut self.held);
            self.released += self.out.len();
        }
        &self.out
    }

    /// The stop string found, if any.
    pub fn matched(&self) -> Option<StopStringMatch> {
        self.matched
    }

    /// The text held back because a stop string may start in it.
    pub fn held(&self) -> &str {
        &self.held
    }

    /// The offset of the longest suffix of `text` that is a proper beginning of a stop
    /// string (`text.len()` if none is).
    fn possible_start(&self, text: &str) -> usize {
        let mut from = text.len().saturating_sub(self.max_len.saturating_sub(1));
        while !text.is_char_boundary(from) {
            from += 1;
        }
        text[from..]
            .char_indices()
            .map(|(i, _)| from + i)
            .find(|&at| {
                let tail = &text[at..];
                self.stops.iter().any(|(_, s)| s.starts_with(tail))
            })
            .unwrap_or(text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` and returns the released text and the match.
    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<StopStringMatch>) {
        let mut m = StopStrings::new(stops.iter().copied());
        let mut text = String::new();
        for p in pieces {
            text.push_str(m.push(p));
        }
        text.push_str(m.finish());
        (text, m.matched())
    }

    #[test]
    fn stop_at_the_very_start() {
        let (text, m) = run(&["###"], &["#", "##", " more"]);
        assert_eq!(text, "");
        assert_eq!(m, Some(StopStringMatch { index: 0, start: 0 }));
    }

    #[test]
    fn unfinished_prefix_at_the_end_is_released() {
        let (text, m) = run(&["STOP"], &["go ", "ST", "O"]);
        assert_eq!((text.as_str(), m), ("go STO", None));
    }

    #[test]
    fn overlapping_candidates() {
        // "aab": the first candidate "aa" fails at "b", but "ab" starting one later matches.
        assert_eq!(
            run(&["aac", "ab"], &["x", "a", "a", "b", "y"]),
            (
                "xa".to_string(),
                Some(StopStringMatch { index: 1, start: 2 })
            )
        );
        // Self-overlapping stop string.
        assert_eq!(
            run(&["abab"], &["aba", "a", "bab"]),
            (
                "aba".to_string(),
                Some(StopStringMatch { index: 0, start: 3 })
            )
        );
    }

    #[test]
    fn multi_byte_characters() {
        let (text, m) = run(&["終わり"], &["日本", "終", "わ", "り", "x"]);
        assert_eq!((text.as_str(), m.map(|m| m.start)), ("日本", Some(6)));
        let (text, m) = run(&["😀😀"], &["a😀", "b😀", "😀"]);
        assert_eq!((text.as_str(), m.map(|m| m.index)), ("a😀b", Some(0)));
    }

    #[test]
    fn empty_stop_strings_are_ignored() {
        let m = StopStrings::new(["", "x"]);
        assert_eq!(m.get(1), Some("x"));
        assert_eq!(m.get(0), None);
        assert_eq!(run(&[""], &["abc"]), ("abc".to_string(), None));
    }
}
