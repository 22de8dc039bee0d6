"""The model-family registry: one line per family, naming the module that holds its options and code."""
from __future__ import annotations

import subprocess
import sys

import pytest

from forgeml.models import families


@pytest.mark.parametrize("name", list(families.FAMILIES))
def test_every_family_module_has_the_interface_and_a_matching_type(name: str) -> None:
    module = families.family_module(name)
    if hasattr(module, "resolve"):  # a choice among the others (auto): resolved with the config, never built
        assert families.config_class(name)().type == name
        section, why = module.resolve({"type": name}, ["number", "category"])
        assert section["type"] in families.FAMILIES and section["type"] != name and why
        return
    for function in ("build", "load", "describe"):
        assert callable(getattr(module, function)), f"{module.__name__} lacks {function}"
    options = families.config_class(name)()
    assert options.type == name
    assert isinstance(module.describe(options, {"number": 2}), str)


def test_reading_a_config_imports_no_model_library() -> None:
    code = ("import sys\nfrom forgeml.config import Config\n"
            "c = Config.from_dict({'target': 'y', 'model': {'type': 'gbm', 'num_leaves': 7}})\n"
            "assert c.model.num_leaves == 7\n"
            "heavy = sorted(m for m in sys.modules if m in ('torch', 'lightgbm', 'catboost', 'sklearn'))\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_config_union_is_the_registry() -> None:
    from forgeml.config import Config

    for name in families.FAMILIES:
        assert type(Config.from_dict({"target": "y", "model": {"type": name}}).model) is families.config_class(name)
    assert families.network_types() == ("mlp", "cnn", "rnn", "transformer", "pretrained")
    assert families.step_name("gbm") == "boosting round" and families.step_name("mlp") == "epoch"


def test_auto_is_the_default_and_a_family_option_under_it_names_the_families_that_have_it() -> None:
    from forgeml.config import Config, apply_overrides
    from forgeml.errors import ConfigError

    config = Config(target="y")
    assert config.model.type == "auto"
    with pytest.raises(ConfigError, match="model.num_leaves is an option of model.type gbm") as caught:
        apply_overrides(config, {"model.num_leaves": 15})
    assert "--model gbm" in str(caught.value)
    assert apply_overrides(config, {"model.num_leaves": 15, "model.type": "gbm"}).model.num_leaves == 15
    assert apply_overrides(config, {"model.preset": "fast"}).model.preset == "fast"  # auto's own option


def test_auto_chooses_the_ensemble_for_tables_and_one_network_for_images_or_torchrun(monkeypatch) -> None:
    from forgeml.models.auto import choose_family

    assert choose_family(["number", "category", "text", "date"])[0] == "ensemble"
    assert choose_family(["number", "image"])[0] == "mlp"
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert choose_family(["number"])[0] == "mlp"
