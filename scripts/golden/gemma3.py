#!/usr/bin/env python3
"""Golden data for the `gemma3` architecture tests (ziglama-model/tests/gemma3.rs), from llama.cpp.

The same records as scripts/golden/llama_smollm2.py (last-position logits, greedy continuations
of up to 128 tokens with the top-2 gap at every step) for twelve prompts, two of them long
enough that prompt plus continuation run past 700 tokens, beyond Gemma 3's 512-position
sliding window: `long_essay` (689 prompt tokens; the window slides during decoding) and
`long_code` (1,180 prompt tokens; the window slides inside the prompt batch).

Run with the peer's Python:
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/gemma3.py MODEL.gguf OUT_DIR
"""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_smollm2 import record  # noqa: E402

ESSAY = """The history of lighthouses is, in a quiet way, the history of trade itself. Long before \
anyone drew accurate charts of the coasts, sailors relied on fires lit on headlands to tell them \
where the land began and where the harbour lay. The most famous of the ancient lights stood on the \
island of Pharos at Alexandria, a tower so tall and so celebrated that its name became the word for \
lighthouse in several languages. For centuries it guided grain ships from the Nile delta across the \
eastern Mediterranean, and travellers described a mirror at its summit that reflected the sun by day \
and the fire by night.

After the fall of the great empires, many coastal lights went dark, and for a long time the work of \
guiding ships passed to monasteries, guilds and local lords, who kept small fires burning for a fee \
paid by passing merchants. The lights were unreliable: wood and coal were expensive, keepers were \
poorly paid, and a storm could extinguish an open flame in minutes. Shipwrecks were common, and in \
some places wreckers were suspected of showing false lights to lure vessels onto the rocks, so that \
they could plunder the cargo that washed ashore.

The modern lighthouse was born in the eighteenth and nineteenth centuries, when engineers learned to \
build towers that could stand on exposed reefs in the open sea. Building such a tower was an \
extraordinary undertaking. Workers could land on the rock only at low tide and in calm weather, and \
each block of granite had to be cut on shore, numbered, shipped out and fitted into its neighbours \
with dovetail joints so that the whole structure would behave like a single stone. Some towers took \
years to complete, and the men who built them often lived in barracks on the rock, cut off from the \
mainland for weeks at a time.

At the same time, the light itself was transformed. Oil lamps with circular wicks gave a steadier and \
brighter flame than candles or coal. Polished reflectors gathered the light into a beam, and then \
Augustin Fresnel designed a lens made of concentric rings of glass prisms, which could bend almost \
all of the light from a single lamp into a narrow, powerful beam visible more than twenty miles away. \
By rotating the lens on a bed of mercury, keepers could make each lighthouse flash in its own \
pattern, so that a navigator who counted the seconds between flashes could tell exactly which light \
he was looking at.

The life of a keeper was one of routine and vigilance. Every evening the lamp had to be lit at sunset, \
the wick trimmed through the night, the clockwork that turned the lens wound every few hours, and \
the glass cleaned of soot each morning. In fog, keepers sounded horns or bells for hours on end. Many \
stations were so remote that supplies arrived only once a month, and families raised children on \
islands with no other inhabitants. Logbooks from those years record storms, shipwrecks, rescues and \
the slow passing of the seasons, and they give a rare picture of ordinary people doing essential \
work far from anyone who could see it.

In the twentieth century electricity, automatic lamp changers and radio beacons made the keepers \
unnecessary, and one by one the stations were automated. Today satellite navigation tells a ship its \
position to within a few metres, and yet the lighthouses still shine, partly as a backup and partly \
because sailors trust what they can see with their own eyes. Looking back over this long history, \
the most important lesson is"""

CODE = """use std::collections::HashMap;
use std::fmt;

/// A token of a small arithmetic language.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Number(f64),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    LParen,
    RParen,
    Comma,
    Assign,
}

/// An error found while reading or evaluating an expression.
#[derive(Debug, PartialEq)]
pub enum Error {
    UnexpectedChar(char, usize),
    UnexpectedEnd,
    UnexpectedToken(Token),
    UnknownVariable(String),
    UnknownFunction(String),
    WrongArity { name: String, expected: usize, found: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnexpectedChar(c, at) => write!(f, "unexpected character {c:?} at {at}"),
            Error::UnexpectedEnd => write!(f, "unexpected end of input"),
            Error::UnexpectedToken(t) => write!(f, "unexpected token {t:?}"),
            Error::UnknownVariable(name) => write!(f, "unknown variable {name}"),
            Error::UnknownFunction(name) => write!(f, "unknown function {name}"),
            Error::WrongArity { name, expected, found } => {
                write!(f, "{name} takes {expected} arguments, found {found}")
            }
        }
    }
}

/// Splits `source` into tokens.
pub fn lex(source: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\\t' | '\\n' => i += 1,
            '+' => { tokens.push(Token::Plus); i += 1; }
            '-' => { tokens.push(Token::Minus); i += 1; }
            '*' => { tokens.push(Token::Star); i += 1; }
            '/' => { tokens.push(Token::Slash); i += 1; }
            '^' => { tokens.push(Token::Caret); i += 1; }
            '(' => { tokens.push(Token::LParen); i += 1; }
            ')' => { tokens.push(Token::RParen); i += 1; }
            ',' => { tokens.push(Token::Comma); i += 1; }
            '=' => { tokens.push(Token::Assign); i += 1; }
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let value = text.parse().map_err(|_| Error::UnexpectedChar(c, start))?;
                tokens.push(Token::Number(value));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(Error::UnexpectedChar(other, i)),
        }
    }
    Ok(tokens)
}

/// An evaluator holding variables between statements.
#[derive(Default)]
pub struct Calculator {
    variables: HashMap<String, f64>,
}

impl Calculator {
    /// Evaluates one statement: an expression, or `name = expression`.
    pub fn eval(&mut self, source: &str) -> Result<f64, Error> {
        let tokens = lex(source)?;
        let mut parser = Parser { tokens: &tokens, pos: 0, vars: &self.variables };
        if let [Token::Ident(name), Token::Assign, ..] = tokens.as_slice() {
            parser.pos = 2;
            let value = parser.expression()?;
            self.variables.insert(name.clone(), value);
            return Ok(value);
        }
        parser.expression()
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    vars: &'a HashMap<String, f64>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// expression := term (('+' | '-') term)*
    fn expression(&mut self) -> Result<f64, Error> {
"""

PROMPTS = [
    ("hello", "Hello, my name is"),
    ("capital", "The capital of France is"),
    ("story", "Once upon a time, in a small village by the sea, there lived"),
    ("science", "Photosynthesis is the process by which plants"),
    ("code_py", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("french", "La tour Eiffel est un monument situé à Paris. Elle a été construite"),
    ("japanese", "日本の首都は東京です。東京は"),
    ("chat_simple", "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"),
    ("chat_poem", "<start_of_turn>user\nWrite a short poem about the ocean.<end_of_turn>\n<start_of_turn>model\n"),
    ("list", "Here are five tips for staying healthy:\n1."),
    ("long_essay", ESSAY),
    ("long_code", CODE),
]

if __name__ == "__main__":
    record(sys.argv[1], sys.argv[2], PROMPTS)
