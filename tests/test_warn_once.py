"""WarnOnce: one warning per process, whatever the number of calls."""

import warnings

from spacy_ctxext.warn_once import WarnOnce


class DemoWarning(UserWarning):
    pass


def test_a_warning_is_shown_the_first_time_only():
    once = WarnOnce(DemoWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            once.warn(f"call {i}", stacklevel=1)
    assert [str(w.message) for w in caught] == ["call 0"]
    assert caught[0].category is DemoWarning and caught[0].filename == __file__
    assert once.shown
    # A fresh instance starts over (as tests reset the modules' ones).
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        WarnOnce(DemoWarning).warn("new")
    assert [str(w.message) for w in again] == ["new"]
