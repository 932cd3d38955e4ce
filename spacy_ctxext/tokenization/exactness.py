"""Which tokenizers give a word the same pieces alone as in any text (``word_cache``).

Judged from the tokenizer's ``to_str()`` JSON, part by part, against the components known
to work within whitespace-delimited words; anything else (byte-level BPE, SentencePiece's
Metaspace, a Replace or Strip normalizer, an unknown component) is not exact.

Why these: BERT's normalizer maps character by character (control characters out, any
whitespace to ' ', spaces around CJK characters, lowercase, accents stripped), and no
Unicode normal form composes a character with a preceding ' '; the splitters cut at every
Unicode whitespace character (so at each ' ' a word ends), and the later pre-tokenizers
and the models (WordPiece, WordLevel, BPE without dropout) work on one pre-token at a
time. tests/tokenization/test_word_cache.py checks the claim on hard and random texts.
"""

from typing import Any, Dict, List, Optional

__all__ = ["is_exact"]

NORMALIZERS = {"BertNormalizer", "Lowercase", "StripAccents", "NFD", "NFKD", "NFC", "NFKC"}
# The first pre-tokenizer must split at every whitespace character; later ones then
# split only within what it made.
SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
WITHIN_WORDS = SPLITTERS | {"Punctuation", "Digits"}
MODELS = {"WordPiece", "WordLevel", "BPE"}


def is_exact(config: Dict[str, Any]) -> bool:
    """Whether a tokenizer (its ``to_str()`` JSON) gives each word the pieces it has in
    any text: checked part by part against the components known to work word by word."""
    if config.get("truncation") is not None or config.get("padding") is not None:
        return False
    normalizers = _parts(config.get("normalizer"), "normalizers")
    pre_tokenizers = _parts(config.get("pre_tokenizer"), "pretokenizers")
    model = config.get("model") or {}
    return (
        all(n.get("type") in NORMALIZERS for n in normalizers)
        and bool(pre_tokenizers)
        and pre_tokenizers[0].get("type") in SPLITTERS
        and all(p.get("type") in WITHIN_WORDS for p in pre_tokenizers)
        and model.get("type") in MODELS
        and model.get("dropout") is None  # BPE dropout: other pieces on every call
        and all(_within_words(token) for token in config.get("added_tokens") or [])
    )


def _parts(component: Optional[Dict[str, Any]], key: str) -> List[Dict[str, Any]]:
    if component is None:
        return []
    if component.get("type") == "Sequence":
        return [part for inner in component.get(key, []) for part in _parts(inner, key)]
    return [component]


def _within_words(token: Dict[str, Any]) -> bool:
    """An added token is matched in the raw text before any split: it must never hold or
    swallow (lstrip, rstrip) the whitespace the words are cut at."""
    content = token.get("content", "")
    return (
        bool(content)
        and not any(c.isspace() for c in content)
        and not (token.get("lstrip") or token.get("rstrip"))
    )
