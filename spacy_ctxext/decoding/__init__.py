"""From tag scores to entities: the BIO scheme, the constrained Viterbi, and tags with
their confidences, per batch of docs (numpy, no torch)."""
