"""Plain torch: the context net (encoder, empty-token vector, head, memory, channel table),
building and saving it, position extension, autocast and the int8 copy, the memories."""
