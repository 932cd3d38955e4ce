"""The encoder's tokenizer as planning reads it: backend, specials and padding id."""

from transformers import AutoTokenizer

from spacy_ctxext.tokenization.encoder_tokenizer import EncoderTokenizer
from spacy_ctxext.tokenization.wordpieces import special_tokens


def test_reads_the_backend_specials_and_padding_once(tiny_bert):
    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert, use_fast=True)
    tokenizer = EncoderTokenizer(hf_tokenizer)
    assert tokenizer.backend is tokenizer.backend  # one copy, not one per batch
    assert tokenizer.backend.truncation is None  # whole documents, never cut
    assert tokenizer.specials == special_tokens(tokenizer.backend)
    assert tokenizer.specials == ([hf_tokenizer.cls_token_id], [hf_tokenizer.sep_token_id])
    assert tokenizer.pad_id == hf_tokenizer.pad_token_id


def test_a_tokenizer_without_padding_pads_with_0(tiny_bert):
    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert, use_fast=True)
    hf_tokenizer.pad_token = None
    assert hf_tokenizer.pad_token_id is None
    assert EncoderTokenizer(hf_tokenizer).pad_id == 0
