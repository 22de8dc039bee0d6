"""``forgeml compress``: a smaller or faster bundle made from a trained one (quantisation,
structured pruning, distillation), with a before/after trade-off table. See ``methods`` for the
registry and the interface each method follows; ``run.compress_bundle`` is the Python entry point."""
