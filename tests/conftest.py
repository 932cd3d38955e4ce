"""Offline fixtures: tiny random BERT encoders saved with ``save_pretrained``."""

import string
from pathlib import Path

import pytest
import spacy
import torch
from spacy.training import Example

WORDS = (
    "the a an of in on at to and or is was were be by for with from as that this it he she they "
    "we you i mr ms dr new york london paris berlin germany france john mary smith peter reuters "
    "said says told company bank government president minister world cup team city university "
    "monday tuesday sunday year years million percent market shares police people"
).split()


def write_vocab(path: Path) -> Path:
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits
    pieces += list(chars) + list(string.punctuation)
    pieces += ["##" + c for c in chars]
    pieces += [w for w in WORDS if w not in pieces]
    path.write_text("\n".join(pieces) + "\n", encoding="utf8")
    return path


def save_tiny_bert(folder: Path, max_position_embeddings: int = 128, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = write_vocab(folder / "vocab.txt")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=max_position_embeddings,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT with 128 positions and a small WordPiece vocab."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="session")
def tiny_bert_64(tmp_path_factory) -> str:
    """The same encoder with only 64 positions, for position-extension tests."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny_bert_64"), max_position_embeddings=64))


STORY = "Mary told Peter about Paris and the bank in London . "
ZERO_PIECE_CHARS = ["\u200b", "\x01", "\x07", "\u0301", "\u00ad", "\x00"]
SCRIPTS = [
    "Mary 😀 met 👩‍👩‍👧 in Paris 🇫🇷 .",
    "東京で John Smith に会った 。北京 和 上海",
    "مرحبا بكم في London . שלום עולם Paris",
    "Mary\x00Smith \x00 visited\x00 Berlin \x00",
    "Пётр met Ἀθῆναι and 서울 near ∑∞ in Paris",
]
TRAIN_DATA = [
    ("John Smith visited New York on Monday .", [(0, 10, "PER"), (19, 27, "LOC")]),
    ("Reuters said the bank in London lost money .", [(0, 7, "ORG"), (25, 31, "LOC")]),
    ("Mary told Peter about Paris .", [(0, 4, "PER"), (10, 15, "PER"), (22, 27, "LOC")]),
]


def make_nlp(encoder_path, **encoder_settings):
    nlp = spacy.blank("en")
    config = {"model": {"encoder": {"name": encoder_path, **encoder_settings}}}
    nlp.add_pipe("ctx_ner", config=config)
    return nlp


def make_examples(nlp, data=TRAIN_DATA):
    return [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in data]


def entities(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def assert_valid(doc, labels=("LOC", "ORG", "PER")):
    """Every token tagged B/I/O with a known label; entities are in-range, valid BIO runs."""
    for i, token in enumerate(doc):
        assert token.ent_iob_ in ("B", "I", "O"), (i, token.text, token.ent_iob_)
        if token.ent_iob_ == "I":
            prev = doc[i - 1]
            assert i > 0 and prev.ent_iob_ in ("B", "I") and prev.ent_type_ == token.ent_type_
        assert (token.ent_type_ in labels) == (token.ent_iob_ != "O")
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc) and ent.label_ in labels
    group = doc.spans["ctx_ner"]
    assert len(group.attrs["scores"]) == len(group)


@pytest.fixture(scope="session")
def trained(tiny_bert):
    """A ctx_ner overfit on three sentences (the test asserts it gets there)."""
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    steps = 0
    while steps < 100 and any(entities(nlp(text)) != ents for text, ents in TRAIN_DATA):
        nlp.update(examples, sgd=optimizer)
        steps += 1
    return nlp, steps


@pytest.fixture(scope="session")
def trained_nlp(trained):
    """The session's overfit ctx_ner, without its step count."""
    return trained[0]


@pytest.fixture(scope="module")
def saved(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model"
    trained_nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def odd_texts():
    return {
        "empty": "",
        "whitespace": " \n\t  \r\n ",
        "long_token": "ab" * 100_000,
        "zero_pieces": "Mary " + " ".join(ZERO_PIECE_CHARS) + " Paris \u200b\u0301 .",
        "no_punctuation": " ".join(STORY.replace(" .", "").split() * 500),
        **{f"script_{i}": text for i, text in enumerate(SCRIPTS)},
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on two busy cores, OpenMP's two threads make this tiny encoder
    ~10x slower (1M characters: 17 s instead of 1.7 s while a training runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield threads
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fresh(tiny_bert):
    """An initialized, untrained ctx_ner for tests that update or fail (its weights may move)."""
    nlp = make_nlp(tiny_bert)
    nlp.initialize(lambda: make_examples(nlp))
    return nlp
