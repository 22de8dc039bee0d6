"""The model-family registry: one line per family, naming the module that holds its options and code."""
from __future__ import annotations

import subprocess
import sys

import pytest

from forgeml.models import families


@pytest.mark.parametrize("name", list(families.FAMILIES))
def test_every_family_module_has_the_interface_and_a_matching_type(name: str) -> None:
    module = families.family_module(name)
    for function in ("build", "load", "describe"):
        assert callable(getattr(module, function)), f"{module.__name__} lacks {function}"
    options = families.config_class(name)()
    assert options.type == name
    assert isinstance(module.describe(options, {"number": 2}), str)


def test_reading_a_config_imports_neither_torch_nor_lightgbm() -> None:
    code = ("import sys\nfrom forgeml.config import Config\n"
            "c = Config.from_dict({'target': 'y', 'model': {'type': 'gbm', 'num_leaves': 7}})\n"
            "assert c.model.num_leaves == 7\n"
            "assert 'torch' not in sys.modules and 'lightgbm' not in sys.modules, sorted(m for m in sys.modules if m in ('torch', 'lightgbm'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_config_union_is_the_registry() -> None:
    from forgeml.config import Config

    for name in families.FAMILIES:
        assert type(Config.from_dict({"target": "y", "model": {"type": name}}).model) is families.config_class(name)
    assert families.network_types() == ("mlp", "cnn", "rnn", "transformer", "pretrained")
    assert families.step_name("gbm") == "boosting round" and families.step_name("mlp") == "epoch"
