"""The README's config reference is generated from the config classes and must be current."""
from pathlib import Path

from forgeml.reference import reference


def test_readme_holds_the_current_config_reference():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert reference() in readme, "run `python -m forgeml.reference` and paste it into README.md"


def test_every_config_option_is_documented():
    text = reference()
    for option in ("learning_rate", "early_stopping_patience", "outlier_action", "min_count", "scaling", "num_leaves"):
        assert f"`{option}`" in text
