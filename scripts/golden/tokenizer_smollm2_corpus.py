#!/usr/bin/env python3
"""Write the SmolLM2 tokenizer corpus and llama.cpp's tokenizations of it (golden data).

Usage (with the peer's Python, after shared/tools/setup-peer.sh):
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/tokenizer_smollm2_corpus.py \
        [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--peer ../shared/tools] [--out FILE]

The same corpus tokenized by Gemma 3 (the SentencePiece tokenizer's test):
    ... tokenizer_smollm2_corpus.py --model models/gemma-3-270m-q4_k_m.gguf \
        --out ziglama-model/tests/data/tokenizer/gemma3_corpus.json

Writes ziglama-model/tests/data/tokenizer/smollm2_corpus.json (or --out):
    {"model": ..., "cases": [{"text": T, "tokens": [...], "tokens_special": [...]}, ...]}
where "tokens" is llama_tokenize(T, add_special=true, parse_special=false) and
"tokens_special" the same with parse_special=true, both answered by llama.cpp through the
oracle's loader (shared/tools/peer.py). The corpus itself is built here, deterministically:
hand-written strings in several languages and scripts, emoji and ZWJ sequences, code, runs
of whitespace, digits, contractions and special-token text, plus seeded random mixes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "ziglama-model" / "tests" / "data" / "tokenizer" / "smollm2_corpus.json"

HAND = [
    # English, punctuation, contractions
    "Hello world", " Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they're right; we've done it, he's gone, she'd know, it'd work.",
    "I'M SURE YOU'LL SEE THEY'RE RIGHT", "don't DON'T Don'T 'tis o'clock rock'n'roll",
    "' era", "''", "'s 't 're 've 'm 'll 'd", "It's 5 o'clock'", "\"Quoted\" and 'single' and `back`",
    "e.g. i.e. etc... Mr. Smith!? Yes!!! No??? ...", "hyphen-ated words — em dash – en dash",
    "email@example.com https://example.org/path?q=1&r=two#frag", "C:\\Windows\\System32\\drivers",
    "CamelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case",
    # Other languages and scripts
    "Ceci est une phrase en français, avec des accents : é è à ù ç œ.",
    "Größenwahn und Straßenbahn: Übermäßig schön!", "¿Dónde está la biblioteca? ¡Aquí!",
    "Привет, мир! Как дела?", "нещо на Български", "Γειά σου Κόσμε· αλφάβητο",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "হ্যালো বিশ্ব", "สวัสดีชาวโลก",
    "你好，世界！我想在apple工作1314151天～", "こんにちは世界、カタカナとひらがな。", "안녕하세요 세계",
    "Xin chào thế giới", "Merhaba dünya, İstanbul ıĞüŞöÇ", "Zażółć gęślą jaźń", "გამარჯობა მსოფლიო",
    "Բարեւ աշխարհ", "ሰላም ልዑል", "வணக்கம் உலகம்", "កាន់តែពិសេសអាចខលចេញ", "ᐊᐃᓐᓇᐅᓯᖅ ᐃᓄᒃᑎᑐᑦ",
    "Ṫḧïṡ ïṡ ẅëïṙḋ ṫëẍṫ", "e\u0301 vs \u00e9 (combining acute)", "Z\u0335\u0321a\u0337\u0328l\u0336g\u0334o\u0338",
    "Ａｂｃ　全角スペース　ｘｙｚ", "ﬁ ﬂ ﬀ ligatures", "ℌ𝔢𝔩𝔩𝔬 𝕨𝕠𝕣𝕝𝕕 𝐛𝐨𝐥𝐝", "Ω ℧ K Å ℃ ℉",
    # Emoji
    "🦙", " this is 🦙.cpp", "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
    "👨‍👩‍👧‍👦 family", "👩🏽‍💻👨🏿‍🚀🧑🏻‍🔬", "🏳️‍🌈🏴‍☠️", "🇫🇷🇯🇵🇺🇸", "1️⃣2️⃣#️⃣", "❤️ vs ❤ vs ♥",
    "😀😃😄😁😆😅😂🤣", "👍🏻👍🏼👍🏽👍🏾👍🏿", "🙂‍↔️ 🐦‍🔥 🍋‍🟩", "text😀text😀text", "⌚⌛⏰⏳",
    # Code
    "def main():\n    print(\"hello\")\n\nif __name__ == \"__main__\":\n    main()\n",
    "fn main() {\n\tlet x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n\tprintln!(\"{x:?}\");\n}",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "<html><body class=\"x\"><p>Hi &amp; bye</p></body></html>",
    "for i in $(seq 1 10); do echo \"$i\" | grep -E '^[0-9]+$' >> out.txt; done",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    "x += 1; y -= 2; z *= 3; w /= 4; a %= 5; b <<= 1; c >>= 2; d &&= e || !f;",
    "if (a != b && c <= d || e >= f) { return a->b[c]; }",
    "    indented\n        more\n\tTabbed\n\t\tDouble\n", "/* comment */ // line\n# hash\n-- sql",
    "const re = /^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)$/i;", "λx. x + 1 ∀ε>0 ∃δ>0 ∑∫∏√∞≠≤≥",
    # Whitespace
    " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\t\n", "Hello\n\n\nworld", "a \n b",
    "  leading", "trailing  ", "   Hello", "    Hello\n    Hello", " (", "\n =", "\r\n", "line1\r\nline2\r\n",
    "a\u00a0b\u2003c\u3000d", "a\u2028b\u2029c", "\u200b zero\u200bwidth \u200d joiner \ufeff bom",
    "\x01\x02\x1f control\x7f", "tab\tseparated\tvalues\t", "\t\t\t\t", " \t \t ", "\n \n \n",
    # Digits
    "3", "33", "333", "3333", "33333", "333333", "3333333", "33333333", "333333333",
    "w048 7tuijk dsdfhu", "3.14159265358979", "1,234,567.89", "+1 (555) 123-4567", "2026-11-27T05:30:00Z",
    "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "０１２３４５", "²³¹ ½ ¼ ¾ ⅓", "Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ", "0x1F 0b1010 0o777 1e-9",
    "v1.2.3-beta+build.45", "$100.00 €50 £20 ¥1000 ₹500", "100% 50‰ 3°C",
    # Special-token text (SmolLM2's control tokens)
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    " <|im_start|> spaced <|im_end|> ", "<|im_start|><|im_end|><|endoftext|>", "<|im_start", "im_start|>",
    "<|im_start|<|im_end|>>", "<<|im_start|>>", "<|IM_START|>", "text<|endoftext|>more text",
    "<repo_name>ziglama<file_sep>src/lib.rs<filename>main.rs", "<gh_stars>100<issue_start>bug<issue_comment>ok<issue_closed>",
    "<jupyter_start><jupyter_text>md<jupyter_code>x=1<jupyter_output>1<empty_output><jupyter_script>",
    "<reponame>x", "<|endoftext|><|endoftext|>", "\n<|im_end|>\n", "<|im_end|>\n\n<|im_start|>",
    "<s></s><unk>[INST]", "<|eot_id|><|begin_of_text|>",
]


def random_mixes(n: int, seed: int) -> list[str]:
    """Seeded random strings over a pool of tricky pieces."""
    rng = random.Random(seed)
    pool = [
        " ", "  ", "\t", "\n", "\r\n", "'", "'s", "'LL", "a", "Z", "word", " word", "Wörd", "ñ",
        "1", "22", "333", "4444", ".", ",", "!?", "(", ")", "[", "]", "{", "}", "<", ">", "|", "/",
        "\\", "_", "-", "+", "=", "*", "&", "#", "@", "$", "%", "^", "~", "`", "\"", ";", ":",
        "é", "\u0301", "日本", "語", "한", "ก", "ا", "ש", "ж", "Ω", "ß", "İ", "ı", "🦙", "👍🏽",
        "👨‍👩‍👧", "\u200d", "\u00a0", "\u3000", "٣", "½", "Ⅻ", "€", "→", "∑", "<|im_start|>",
        "<|im_end|>", "<|endoftext|>", "<|", "|>", "\x0b", "\x0c", "ﬁ", "𝔢", "\ufe0f",
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 24)
        out.append("".join(rng.choice(pool) for _ in range(k)))
    return out


def repeats() -> list[str]:
    """Runs of one thing, of many lengths."""
    out = []
    for n in (1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 64):
        out.append(" " * n + "x")
        out.append("x" + " " * n)
        out.append("\n" * n)
        out.append("\t" * n + "y")
        out.append("1" * n)
    out += ["a" * 50, "ab" * 30, "!" * 20, "=" * 40, "-" * 80, "🦙" * 5, "あ" * 12]
    return out


def corpus() -> list[str]:
    cases = HAND + repeats() + random_mixes(140, 20261127)
    seen = set()
    unique = []
    for c in cases:
        if c not in seen:
            seen.add(c)
            unique.append(c)
    return unique


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--peer", default=str(REPO.parent / "shared" / "tools"), help="directory of peer.py")
    ap.add_argument("--out", default=str(OUT), help="the JSON file to write")
    args = ap.parse_args(argv)
    sys.path.insert(0, args.peer)
    import peer  # the oracle's loader (llama.cpp through llama-cpp-python)

    m = peer.load(args.model, n_ctx=64)
    cases = []
    for text in corpus():
        b = text.encode("utf-8")
        cases.append({
            "text": text,
            "tokens": m.tokenize(b, add_bos=True, special=False),
            "tokens_special": m.tokenize(b, add_bos=True, special=True),
        })
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": Path(args.model).name,
        "oracle": "llama.cpp via llama-cpp-python 0.3.36 (shared/tools/peer.py)",
        "tokens": "llama_tokenize(text, add_special=true, parse_special=false)",
        "tokens_special": "llama_tokenize(text, add_special=true, parse_special=true)",
        "cases": cases,
    }
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
