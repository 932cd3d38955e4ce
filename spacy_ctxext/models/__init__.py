"""The registered architectures (configs -> thinc Models), the thinc layers that run them,
and their settings. Kept import-light, as ``pipeline``: ``ctx_ner`` reads the settings
without loading torch; the torch modules are in ``models.pytorch``."""
