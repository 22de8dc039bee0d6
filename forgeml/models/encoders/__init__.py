"""Input encoders: one module per input feature, each turning its batch into a (B, width) vector.

Registries keyed by the names the config uses (``model.text.type``, ``model.image.type``);
adding an encoder is one class plus one registry line.
"""
