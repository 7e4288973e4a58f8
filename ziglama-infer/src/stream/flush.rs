//! Flush policies: when streamed text is handed to the consumer.

/// Where a stream may hand text over: after every token, or only at natural breaks so a
/// consumer (a terminal, a speech synthesizer, a network peer) receives whole words, whole
/// sentences or whole lines.
///
/// Whatever the policy, the chunks concatenate to the same text; the policy only decides
/// where the cuts fall. At the end of the stream everything left is handed over.
///
/// ```
/// use ziglama_infer::stream::{ChunkAssembler, FlushPolicy};
///
/// let mut words = ChunkAssembler::new(FlushPolicy::WordBoundary);
/// assert_eq!(words.push("Hel"), None);
/// assert_eq!(words.push("lo wor"), Some("Hello ".to_string()));
/// assert_eq!(words.push("ld"), None);
/// assert_eq!(words.finish(), Some("world".to_string()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlushPolicy {
    /// Hand over whatever text each token completes.
    #[default]
    EveryToken,
    /// Hand over text up to the end of the last word break: after a whitespace character,
    /// and after each CJK character or CJK punctuation mark (those scripts write words
    /// without spaces).
    WordBoundary,
    /// Hand over text up to the end of the last sentence: after whitespace that follows
    /// `.`, `!`, `?` or `…` (closing quotes and brackets may come between), right after
    /// `。`, `！`, `？`, and after a newline.
    SentenceBoundary,
    /// Hand over text up to the last newline: the natural breaks of lists, code and
    /// paragraphs.
    Newline,
}

impl FlushPolicy {
    /// Every policy, for tests and option lists.
    pub const ALL: [FlushPolicy; 4] = [
        FlushPolicy::EveryToken,
        FlushPolicy::WordBoundary,
        FlushPolicy::SentenceBoundary,
        FlushPolicy::Newline,
    ];

    /// The end of the last break in `text`, given the character before it (`None` at the
    /// start of the stream; whitespace at the start of `text` is a sentence break when that
    /// character is final punctuation); 0 if there is none.
    ///
    /// ```
    /// use ziglama_infer::stream::FlushPolicy;
    /// let text = "Dr. Who? Yes. Then";
    /// assert_eq!(FlushPolicy::SentenceBoundary.last_break(text, None), 14);
    /// assert_eq!(FlushPolicy::WordBoundary.last_break(text, None), 14);
    /// assert_eq!(FlushPolicy::Newline.last_break(text, None), 0);
    /// assert_eq!(FlushPolicy::EveryToken.last_break(text, None), text.len());
    /// // A sentence end split across pushes: the '.' came before.
    /// assert_eq!(FlushPolicy::SentenceBoundary.last_break(" Next", Some('.')), 1);
    /// ```
    pub fn last_break(self, text: &str, before: Option<char>) -> usize {
        match self {
            FlushPolicy::EveryToken => text.len(),
            FlushPolicy::Newline => text.rfind('\n').map_or(0, |i| i + 1),
            FlushPolicy::WordBoundary => text
                .char_indices()
                .rev()
                .find(|&(_, c)| c.is_whitespace() || is_cjk(c))
                .map_or(0, |(i, c)| i + c.len_utf8()),
            FlushPolicy::SentenceBoundary => {
                let mut after_terminator = before.is_some_and(ends_sentence);
                let mut last = 0;
                for (i, c) in text.char_indices() {
                    let end = i + c.len_utf8();
                    if c == '\n' || matches!(c, '。' | '！' | '？') {
                        last = end;
                        after_terminator = c != '\n';
                    } else if c.is_whitespace() && after_terminator {
                        last = end;
                        after_terminator = false;
                    } else if matches!(c, '.' | '!' | '?' | '…') {
                        after_terminator = true;
                    } else if !(after_terminator && is_closing(c)) {
                        after_terminator = false;
                    }
                }
                last
            }
        }
    }
}

/// Whether `c` may end a sentence (so that whitespace after it is a sentence break).
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

/// Closing quotes and brackets that may follow a sentence's final punctuation.
fn is_closing(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»' | '」' | '』')
}

/// CJK ideographs, kana and CJK or full-width punctuation: each is a word break.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{30FF}'      // CJK symbols and punctuation, hiragana, katakana
        | '\u{3400}'..='\u{4DBF}'    // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'    // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}'    // CJK compatibility ideographs
        | '\u{FF00}'..='\u{FFEF}'    // half-width and full-width forms
        | '\u{20000}'..='\u{3FFFF}') // CJK extensions B and later
}

/// Collects text and hands it over in chunks at the breaks of a [`FlushPolicy`].
///
/// The chunks, followed by what [`finish`](Self::finish) returns, concatenate to the text
/// pushed. A chunk is never empty.
#[derive(Clone, Debug, Default)]
pub struct ChunkAssembler {
    policy: FlushPolicy,
    pending: String,
    /// The last character handed over.
    last_released: Option<char>,
}

impl ChunkAssembler {
    /// An assembler applying `policy`.
    pub fn new(policy: FlushPolicy) -> ChunkAssembler {
        ChunkAssembler {
            policy,
            ..ChunkAssembler::default()
        }
    }

    /// The policy.
    pub fn policy(&self) -> FlushPolicy {
        self.policy
    }

    /// Adds text; returns the chunk it completes, if any.
    pub fn push(&mut self, text: &str) -> Option<String> {
        if text.is_empty() {
            return None;
        }
        if self.policy == FlushPolicy::EveryToken && self.pending.is_empty() {
            self.last_released = text.chars().next_back();
            return Some(text.to_string());
        }
        self.pending.push_str(text);
        // The whole pending text is searched again (it is short: the text since the last
        // break), so the breaks found do not depend on how the text was cut into pushes.
        let cut = match self.policy.last_break(&self.pending, self.last_released) {
            0 => return None,
            n => n,
        };
        let rest = self.pending.split_off(cut);
        let chunk = std::mem::replace(&mut self.pending, rest);
        self.last_released = chunk.chars().next_back();
        Some(chunk)
    }

    /// Ends the text: returns whatever is pending, if anything.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let chunk = std::mem::take(&mut self.pending);
        self.last_released = chunk.chars().next_back();
        Some(chunk)
    }

    /// The text held until the next break.
    pub fn pending(&self) -> &str {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(policy: FlushPolicy, pieces: &[&str]) -> Vec<String> {
        let mut a = ChunkAssembler::new(policy);
        let mut out: Vec<String> = pieces.iter().filter_map(|p| a.push(p)).collect();
        out.extend(a.finish());
        out
    }

    #[test]
    fn breaks_per_policy() {
        let pieces = [
            "One", " two.", " Three", "!\n", "Four", "?", " 五六", "。七",
        ];
        assert_eq!(
            chunks(FlushPolicy::SentenceBoundary, &pieces),
            ["One two. ", "Three!\n", "Four? ", "五六。", "七"]
        );
        assert_eq!(
            chunks(FlushPolicy::Newline, &pieces),
            ["One two. Three!\n", "Four? 五六。七"]
        );
        assert_eq!(
            chunks(FlushPolicy::WordBoundary, &pieces),
            ["One ", "two. ", "Three!\n", "Four? 五六", "。七"]
        );
        assert_eq!(chunks(FlushPolicy::EveryToken, &pieces), pieces);
    }

    #[test]
    fn quotes_after_a_full_stop() {
        assert_eq!(
            chunks(
                FlushPolicy::SentenceBoundary,
                &["He said \"no.\"", " Then 3.14 left."]
            ),
            ["He said \"no.\" ", "Then 3.14 left."]
        );
    }
}
