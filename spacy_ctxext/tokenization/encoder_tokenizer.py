"""The encoder's HF tokenizer with what planning reads from it: its Rust backend without
truncation, the special tokens around each window and the padding id."""

from typing import TYPE_CHECKING, List, Optional, Tuple

from tokenizers import Tokenizer

from .wordpieces import load_backend, special_tokens

if TYPE_CHECKING:  # transformers loads only when an encoder is built
    # The base class: the fast one moved in transformers 5 (tokenization_utils_tokenizers).
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

Specials = Tuple[List[int], List[int]]
"""The special token ids before and after each window (e.g. [CLS] and [SEP])."""


class EncoderTokenizer:
    """An HF fast tokenizer (``hf_tokenizer``, what is saved) and what windows are
    planned with: ``backend``, ``specials`` and ``pad_id``, each read once."""

    def __init__(self, hf_tokenizer: "PreTrainedTokenizerBase") -> None:
        self.hf_tokenizer = hf_tokenizer
        self._backend: Optional[Tokenizer] = None
        self._specials: Optional[Specials] = None

    @property
    def backend(self) -> Tokenizer:
        """The Rust tokenizer without truncation (``load_backend``), copied once."""
        if self._backend is None:
            self._backend = load_backend(self.hf_tokenizer)
        return self._backend

    @property
    def specials(self) -> Specials:
        """The special token ids before and after each window."""
        if self._specials is None:
            self._specials = special_tokens(self.backend)
        return self._specials

    @property
    def pad_id(self) -> int:
        """The tokenizer's padding id; 0 for a tokenizer without one (the mask hides it)."""
        return int(self.hf_tokenizer.pad_token_id or 0)
