"""Texts to benchmark on: deterministic synthetic English, or the docs of a corpus."""

import random
from itertools import islice
from pathlib import Path
from typing import List, Optional

import spacy

from ..training.conll import read_conll
from ..training.readers import read_docbin

COMMON = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no out up "
    "into them more about time only said year new after market government people first last week"
).split()
NAMES = (
    "John Smith|Mary|Peter Jones|London|Paris|New York|Berlin|Germany|Reuters|the United Nations|"
    "Microsoft|Tuesday|the World Cup|European|Anna Petrova|Tokyo|Dr. Brown|Goldman Sachs"
).split("|")


def synthetic_text(n_words: int, seed: int) -> str:
    """Deterministic English-like text: sentences, capitalised names, paragraphs."""
    rng = random.Random(seed)
    words: List[str] = []
    while len(words) < n_words:
        words.extend(rng.choice(NAMES).split() if rng.random() < 0.1 else [rng.choice(COMMON)])
    words = words[:n_words]
    paragraphs, sentences, i = [], [], 0
    while i < n_words:
        sent = words[i : i + rng.randint(6, 25)]
        i += len(sent)
        if len(sent) > 4 and rng.random() < 0.3:
            sent[len(sent) // 2] += ","
        sentences.append((sent[0][:1].upper() + sent[0][1:] + " " + " ".join(sent[1:])).strip())
        if rng.random() < 0.2 or i >= n_words:
            paragraphs.append(". ".join(sentences) + ".")
            sentences = []
    return "\n\n".join(paragraphs)


def load_texts(docs: Optional[str], n_docs: Optional[int], words: int, seed: int) -> List[str]:
    """The texts of a .spacy DocBin or CoNLL file, else ``n_docs`` (120) synthetic ones."""
    if docs is None:
        return [synthetic_text(words, seed + i) for i in range(n_docs or 120)]
    vocab = spacy.blank("en").vocab
    path = Path(docs)
    corpus = read_docbin(path, vocab) if path.suffix == ".spacy" else None
    return [doc.text for doc in islice(corpus or read_conll(path, vocab), n_docs)]
