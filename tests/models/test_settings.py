"""EncoderSettings: defaults, the checks at add_pipe, and the one window check."""

import pytest

from spacy_ctxext.models.settings import POSITION_EXTENSIONS, EncoderSettings
from spacy_ctxext.planning.windows import check_window


def test_check_window_counts_special_tokens():
    check_window(12, 4, n_special=2)
    with pytest.raises(ValueError, match=r"window of 12 wordpieces \(10 after 2 special"):
        check_window(12, 5, n_special=2)
    with pytest.raises(ValueError, match="at least one wordpiece"):
        check_window(2, 0, n_special=2)


def test_check_window():
    check_window(10, 4)
    check_window(10, 0)
    check_window(1, 0)
    with pytest.raises(ValueError, match="context"):
        check_window(10, 5)
    with pytest.raises(ValueError, match="context"):
        check_window(10, 7)
    with pytest.raises(ValueError, match="context"):
        check_window(10, -1)
    with pytest.raises(ValueError, match="window"):
        check_window(0, 0)


def test_check_window_counts_positions():
    check_window(128, 8, n_special=2, positions=128)
    with pytest.raises(ValueError, match=r"window=129 needs more positions .*\(128\)"):
        check_window(129, 8, n_special=2, positions=128)


def test_position_settings_are_checked():
    for method in POSITION_EXTENSIONS:
        EncoderSettings(position_extension=method)
    EncoderSettings(rope_scaling={"rope_type": "linear", "factor": 2.0})
    with pytest.raises(ValueError) as err:
        EncoderSettings(position_extension="bogus")
    message = str(err.value)
    assert "bogus" in message
    for method in ("none", "copy", "interpolate"):
        assert repr(method) in message
    with pytest.raises(ValueError, match="rope_scaling"):
        EncoderSettings(rope_scaling="yarn")


@pytest.mark.parametrize(
    "bad",
    [
        {"mixed_precision": "float8"},
        {"batch_wordpieces": 0},
        {"window": 64, "context": 32},
        {"window": 256, "max_position_embeddings": 128},
    ],
)
def test_bad_settings_fail_before_any_model_is_loaded(bad):
    with pytest.raises(ValueError):
        EncoderSettings(**bad)


def test_fitted_fills_window_sizes_from_the_encoder():
    fitted = EncoderSettings().fitted(positions=512, n_special=2)
    assert (fitted.window, fitted.context) == (512, 64)
    kept = EncoderSettings(window=256, context=16).fitted(positions=512, n_special=2)
    assert (kept.window, kept.context) == (256, 16)
    with pytest.raises(ValueError, match="needs more positions"):
        EncoderSettings(window=1024).fitted(positions=512, n_special=2)


def test_configured_usage_names_only_set_usage_settings():
    settings = EncoderSettings(window=256, batch_wordpieces=100, max_position_embeddings=512)
    assert settings.configured_usage() == {
        "window": 256,
        "isolate_sentences": False,
        "batch_wordpieces": 100,
        "mixed_precision": "bfloat16",
        "cpu_precision": "auto",
        "retrieved_passages": 0,
        "passage_pieces": 32,
    }


def test_attrs_round_trip():
    settings = EncoderSettings(name="x", window=64, context=4, rope_scaling={"factor": 2.0})
    assert EncoderSettings(**settings.to_attrs()) == settings
