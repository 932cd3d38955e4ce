"""Building the net from a pretrained encoder: the fallback to eager attention."""

import pytest

from spacy_ctxext.models.pytorch.net_loading import with_attention


def test_only_attention_errors_fall_back_to_eager():
    def build(error):
        calls = []

        def run(source, attn_implementation, **kwargs):
            calls.append(attn_implementation)
            if attn_implementation != "eager":
                raise error
            return "model"

        return run, calls

    refused = ValueError("Tiny does not support torch.nn.functional.scaled_dot_product_attention")
    run, calls = build(refused)
    with pytest.warns(UserWarning, match="using eager"):
        assert with_attention(run, "path", "sdpa", {}) == "model"
    assert calls == ["sdpa", "eager"]
    run, calls = build(ValueError("rope_scaling: missing 'factor'"))
    with pytest.raises(ValueError, match="factor"):
        with_attention(run, "path", "sdpa", {})
    assert calls == ["sdpa"]  # eager would not fix it: no retry, no misleading warning
