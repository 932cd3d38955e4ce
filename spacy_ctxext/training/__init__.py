"""Training data: the whole-document reader, the CoNLL converter and gazetteers built from a
training split."""
