"""``forgeml ui``: a server-rendered dashboard of the run registry (list, run page, compare)."""
