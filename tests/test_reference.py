"""The docs' config reference is generated from the config classes and must be current."""
from pathlib import Path

from forgeml.reference import reference

PAGE = Path(__file__).parents[1] / "docs" / "config.md"


def test_the_docs_hold_the_current_config_reference():
    page = PAGE.read_text(encoding="utf-8")
    assert reference() in page, "regenerate it: python -m forgeml.reference --write docs/config.md"


def test_every_config_option_is_documented():
    text = reference()
    for option in ("learning_rate", "early_stopping_patience", "outlier_action", "min_count", "scaling", "num_leaves"):
        assert f"`{option}`" in text


def test_write_keeps_the_pages_introduction(tmp_path):
    from forgeml.reference import MARKER, write

    page = tmp_path / "config.md"
    page.write_text("# Config\n\nIntro.\n\n" + MARKER + "\nstale table\n", encoding="utf-8")
    write(str(page))
    assert page.read_text(encoding="utf-8") == "# Config\n\nIntro.\n\n" + reference()
