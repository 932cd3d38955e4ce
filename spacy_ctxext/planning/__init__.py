"""Where each wordpiece goes: windows (core + context) cut from a doc, windows packed by a
wordpiece budget, and the numpy plan of a batch of padded encoder rows."""
