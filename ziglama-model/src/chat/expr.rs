//! Just enough of jinja2's expression grammar to rewrite operators minijinja evaluates
//! differently from Python (see [`super::concat`] and [`super::markup`]): a lexer, bracket
//! matching, the operands of a binary operator by jinja2's precedence, and edits (text
//! inserted before or after tokens, tokens replaced) applied to a tag.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A name or keyword.
    Name,
    /// A number literal.
    Number,
    /// A string literal.
    Str,
    /// An operator or separator.
    Op,
    /// `(`, `[` or `{`.
    Open,
    /// `)`, `]` or `}`.
    Close,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// The precedence level whose operands are looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Operands of `~` (jinja2's `parse_concat`): they end at `~` and everything looser.
    Concat,
    /// Operands of `+` and `-` (jinja2's `parse_math1`): they end at `+`, `-` and
    /// everything looser, but contain `~`.
    Math1,
    /// Operands of `*`, `/`, `//` and `%` (jinja2's `parse_math2`): they end at those,
    /// `~`, `+`, `-` and everything looser.
    Math2,
}

/// Words that end an operand: the operator keywords of expressions. (Statement keywords
/// such as `elif`, `set` or `include` are keywords only as the first word of a statement,
/// which always ends an operand; elsewhere `call` or `filter` are plain names.)
const KEYWORDS: &[&str] = &["in", "not", "and", "or", "if", "else", "recursive"];

/// Operators that end an operand at every level (comparisons and separators).
const LOOSE_OPS: &[&str] = &["==", "!=", "<", ">", "<=", ">=", ",", ":", "="];

/// The body of a tag (between its delimiters and whitespace-control marks), tokenized.
pub(crate) struct Expr<'a> {
    tag: &'a str,
    is_statement: bool,
    tokens: Vec<Token>,
    matching: Vec<usize>,
    /// (byte offset in the tag, order at that offset, text, end of the text it replaces).
    edits: Vec<(usize, u8, String, Option<usize>)>,
}

impl<'a> Expr<'a> {
    /// Parses a `{{ ... }}` or `{% ... %}` tag; `None` if the lexer does not understand it
    /// or its brackets do not balance (it is then left as it is).
    pub(crate) fn parse(tag: &'a str, is_statement: bool) -> Option<Self> {
        let body_start = 2 + usize::from(tag.get(2..)?.starts_with(['-', '+']));
        let mut body_end = tag.len().checked_sub(2)?;
        if body_end > body_start && tag[..body_end].ends_with(['-', '+']) {
            body_end -= 1;
        }
        if body_end < body_start {
            return None;
        }
        let tokens = tokenize(&tag[body_start..body_end], body_start)?;
        let matching = match_brackets(&tokens)?;
        Some(Self {
            tag,
            is_statement,
            tokens,
            matching,
            edits: Vec::new(),
        })
    }

    /// The number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The text of token `i`.
    pub(crate) fn text(&self, i: usize) -> &'a str {
        &self.tag[self.tokens[i].start..self.tokens[i].end]
    }

    /// The kind of token `i`.
    pub(crate) fn kind(&self, i: usize) -> Kind {
        self.tokens[i].kind
    }

    /// Whether token `i` can end an operand (so that a `+` or `-` after it is binary).
    fn is_operand_end(&self, i: usize) -> bool {
        match self.tokens[i].kind {
            Kind::Name => !KEYWORDS.contains(&self.text(i)),
            Kind::Number | Kind::Str | Kind::Close => true,
            Kind::Op | Kind::Open => false,
        }
    }

    /// Whether token `i` is the binary operator `op` (an operator after an operator, an
    /// opening bracket or a keyword is unary: `-x`, `f(*args)`).
    pub(crate) fn is_binary(&self, i: usize, op: &str) -> bool {
        self.tokens[i].kind == Kind::Op && self.text(i) == op && i > 0 && self.is_operand_end(i - 1)
    }

    /// Whether token `i` ends an operand of `level` when met at the operand's own depth.
    fn is_boundary(&self, i: usize, level: Level) -> bool {
        let t = &self.tokens[i];
        if i == 0 && self.is_statement && t.kind == Kind::Name {
            return true;
        }
        let word = self.text(i);
        match t.kind {
            Kind::Name => {
                let after_is = i > 0 && self.text(i - 1) == "is";
                let after_is_not = i > 1 && self.text(i - 1) == "not" && self.text(i - 2) == "is";
                KEYWORDS.contains(&word) && !after_is && !after_is_not
            }
            Kind::Op if matches!(word, "+" | "-") => self.is_binary(i, word),
            Kind::Op if word == "~" => level != Level::Math1,
            Kind::Op if matches!(word, "*" | "/" | "//" | "%") => {
                level == Level::Math2 && self.is_binary(i, word)
            }
            Kind::Op => LOOSE_OPS.contains(&word),
            _ => false,
        }
    }

    /// The tokens (first, last) of the operand left of operator token `k`.
    pub(crate) fn left_operand(&self, k: usize, level: Level) -> Option<(usize, usize)> {
        let mut first = k;
        let mut i = k;
        while i > 0 {
            let j = i - 1;
            match self.tokens[j].kind {
                Kind::Open => break,
                Kind::Close => {
                    first = self.matching[j];
                    i = self.matching[j];
                    continue;
                }
                _ if self.is_boundary(j, level) => break,
                _ => {}
            }
            first = j;
            i = j;
        }
        (first < k).then(|| (first, k - 1))
    }

    /// The tokens (first, last) of the operand right of operator token `k`.
    pub(crate) fn right_operand(&self, k: usize, level: Level) -> Option<(usize, usize)> {
        let mut last = k;
        let mut i = k + 1;
        while i < self.tokens.len() {
            match self.tokens[i].kind {
                Kind::Close => break,
                Kind::Open => {
                    last = self.matching[i];
                    i = self.matching[i] + 1;
                    continue;
                }
                _ if self.is_boundary(i, level) => break,
                _ => {}
            }
            last = i;
            i += 1;
        }
        (last > k).then_some((k + 1, last))
    }

    /// Rewrites every chain of the binary operators `ops` (of one precedence `level`,
    /// left-associative) that holds `target`: each `a target b` becomes `function(a, b)`,
    /// keeping the order of evaluation (`a * b % c - d` with target `%` at `Math2`:
    /// `function(a * b , c) - d`).
    pub(crate) fn rewrite_chains(
        &mut self,
        level: Level,
        ops: &[&str],
        target: &str,
        function: &str,
    ) {
        let n = self.len();
        let is_op = |e: &Self, i: usize| ops.iter().any(|op| e.is_binary(i, op));
        let mut done = vec![false; n];
        for k in 0..n {
            if done[k] || !is_op(self, k) {
                continue;
            }
            let Some((first, _)) = self.left_operand(k, level) else {
                continue;
            };
            let mut chain = Vec::new();
            let mut op = k;
            while let Some((_, last)) = self.right_operand(op, level) {
                done[op] = true;
                chain.push((op, last));
                match last + 1 {
                    next if next < n && is_op(self, next) => op = next,
                    _ => break,
                }
            }
            let targets: Vec<(usize, usize)> = chain
                .into_iter()
                .filter(|&(op, _)| self.text(op) == target)
                .collect();
            if targets.is_empty() {
                continue;
            }
            self.insert_before(first, 1, format!("{function}(").repeat(targets.len()));
            for (op, last) in targets {
                self.replace(op, ",");
                self.insert_after(last, 0, ")");
            }
        }
    }

    /// The last token of the operand of a unary operator at `k` (jinja2's `parse_unary`
    /// without filters: a literal, name or bracketed group, then attributes, subscripts
    /// and calls, or another unary minus or plus).
    pub(crate) fn unary_operand_end(&self, k: usize) -> Option<usize> {
        let n = self.tokens.len();
        let mut i = k + 1;
        if i >= n {
            return None;
        }
        match self.tokens[i].kind {
            Kind::Op if matches!(self.text(i), "-" | "+") => return self.unary_operand_end(i),
            Kind::Name if KEYWORDS.contains(&self.text(i)) => return None,
            Kind::Name | Kind::Number | Kind::Str => {}
            Kind::Open => i = self.matching[i],
            _ => return None,
        }
        loop {
            let next = i + 1;
            if next >= n {
                return Some(i);
            }
            match (self.tokens[next].kind, self.text(next)) {
                (Kind::Op, ".") if next + 1 < n && self.tokens[next + 1].kind == Kind::Name => {
                    i = next + 1;
                }
                (Kind::Open, "[" | "(") => i = self.matching[next],
                _ => return Some(i),
            }
        }
    }

    /// Inserts `text` before token `i`; `order` sorts insertions at one place (lower
    /// first).
    pub(crate) fn insert_before(&mut self, i: usize, order: u8, text: impl Into<String>) {
        let pos = self.tokens[i].start;
        self.edits.push((pos, order, text.into(), None));
    }

    /// Inserts `text` after token `i`.
    pub(crate) fn insert_after(&mut self, i: usize, order: u8, text: impl Into<String>) {
        let pos = self.tokens[i].end;
        self.edits.push((pos, order, text.into(), None));
    }

    /// Replaces token `i` by `text`.
    pub(crate) fn replace(&mut self, i: usize, text: impl Into<String>) {
        let t = self.tokens[i];
        self.edits
            .push((t.start, u8::MAX, text.into(), Some(t.end)));
    }

    /// The tag with the edits applied.
    pub(crate) fn finish(mut self) -> String {
        self.edits.sort_by_key(|e| (e.0, e.1));
        let mut out = String::with_capacity(self.tag.len() + self.edits.len() * 16);
        let mut at = 0;
        for (pos, _, text, skip_to) in &self.edits {
            if *pos > at {
                out.push_str(&self.tag[at..*pos]);
                at = *pos;
            }
            out.push_str(text);
            if let Some(end) = skip_to {
                at = at.max(*end);
            }
        }
        out.push_str(&self.tag[at..]);
        out
    }
}

/// Splits an expression into tokens (offsets shifted by `base`); `None` if it holds
/// something this lexer does not know.
fn tokenize(s: &str, base: usize) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next()?;
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let kind = if c == '\'' || c == '"' {
            i += 1;
            loop {
                match bytes.get(i)? {
                    b'\\' => i += 2,
                    &b if b == c as u8 => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            Kind::Str
        } else if c.is_ascii_digit() {
            while i < s.len() {
                let b = bytes[i];
                let exp_sign = (b == b'+' || b == b'-') && matches!(bytes[i - 1], b'e' | b'E');
                if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            Kind::Number
        } else if c.is_alphabetic() || c == '_' {
            while let Some(ch) = s[i..].chars().next() {
                if ch.is_alphanumeric() || ch == '_' {
                    i += ch.len_utf8();
                } else {
                    break;
                }
            }
            Kind::Name
        } else if matches!(c, '(' | '[' | '{') {
            i += 1;
            Kind::Open
        } else if matches!(c, ')' | ']' | '}') {
            i += 1;
            Kind::Close
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            if matches!(two, "**" | "//" | "==" | "!=" | "<=" | ">=") {
                i += 2;
            } else if "+-*/%~<>=,:.|!".contains(c) {
                i += 1;
            } else {
                return None;
            }
            Kind::Op
        };
        tokens.push(Token {
            kind,
            start: base + start,
            end: base + i.min(s.len()),
        });
    }
    Some(tokens)
}

/// For each bracket token, the index of its partner; `None` if brackets do not balance.
fn match_brackets(tokens: &[Token]) -> Option<Vec<usize>> {
    let mut matching = vec![usize::MAX; tokens.len()];
    let mut stack = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Open => stack.push(i),
            Kind::Close => {
                let open = stack.pop()?;
                matching[open] = i;
                matching[i] = open;
            }
            _ => {}
        }
    }
    stack.is_empty().then_some(matching)
}
