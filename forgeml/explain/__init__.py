"""Explanations of single predictions and of the model as a whole (``forgeml explain``,
``Pipeline.explain``, ``POST /v1/explain``).

Each model family has its method, one module each, behind ``methods.METHODS`` (keyed by family):
integrated gradients for the torch networks (Sundararajan et al., 2017, "Axiomatic attribution
for deep networks", through Captum), exact tree contributions for LightGBM and CatBoost
(Lundberg et al., 2020, TreeSHAP), coefficient × (value − baseline) for the linear and n-gram
models, and the weighted average of the members' attributions for the ensemble. Every method
answers in the same unit — the model's raw output for the explained class or target — and maps
its own columns back to the user's input features, so members can be averaged and the report,
the JSON and the server never care which method ran. Nothing is imported at ``import forgeml``.
"""
