"""Optional dependencies: a missing extra is one line naming what to install, never a traceback.

"Missing" is simulated the way an install without the extra looks to Python: in a fresh
``python -m forgeml.cli`` process, the meta-path finder of installed packages is swapped for one
blind to the blocked modules, so the packages this test environment has are not in the way.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from forgeml.errors import MissingExtraError
from forgeml.extras import EXTRAS, import_optional, missing_packages, require_extra

ROOT = Path(__file__).resolve().parents[1]

BLOCKED_CLI = """
import importlib.machinery, runpy, sys

BLOCKED = set(sys.argv[1].split(","))

class NotInstalled(importlib.machinery.PathFinder):
    # the finder of installed packages, blind to the blocked ones: find_spec answers None and
    # import raises ModuleNotFoundError, as where the package was never installed
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split(".")[0] in BLOCKED else super().find_spec(name, path, target)

sys.meta_path[:] = [NotInstalled if finder is importlib.machinery.PathFinder else finder for finder in sys.meta_path]
sys.argv = ["forgeml", *sys.argv[2:]]
runpy.run_module("forgeml.cli", run_name="__main__", alter_sys=True)
"""


def without(blocked: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200", "FORGEML_RUNS_DIR": str(cwd / "runs")}
    return subprocess.run([sys.executable, "-c", BLOCKED_CLI, ",".join(blocked), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(("blocked", "args", "expected"), [
    (["fastapi", "uvicorn"], ["serve", "runs/some-run/bundle"],
     "error: forgeml serve: needs fastapi and uvicorn, which are not installed — pip install 'forgeml[serve]'"),
    (["python_multipart", "multipart"], ["serve", "bundle"], "needs python-multipart, which is not installed — pip install 'forgeml[serve]'"),
    (["onnxruntime"], ["serve", "bundle", "--backend", "onnx"],
     "error: forgeml serve --backend onnx: needs onnxruntime, which is not installed — pip install 'forgeml[onnx]'"),
    (["jinja2"], ["ui"], "error: forgeml ui: needs jinja2, which is not installed — pip install 'forgeml[serve]'"),
    (["onnx", "onnxscript"], ["export", "bundle", "--format", "onnx"],
     "error: forgeml export --format onnx: needs onnx and onnxscript, which are not installed — pip install 'forgeml[onnx]'"),
], ids=["serve", "multipart", "serve-onnx", "ui", "export-onnx"])
def test_a_command_without_its_extra_says_which_to_install(tmp_path, blocked, args, expected):
    line = one_line(without(blocked, *args, cwd=tmp_path))
    assert expected in line


def test_a_tracker_without_its_extra_fails_before_a_run_exists(tmp_path, make_mixed):
    make_mixed(rows=40).to_csv(tmp_path / "mixed.csv", index=False)
    line = one_line(without(["mlflow"], "train", "mixed.csv", "--target", "label", "--log", "mlflow", cwd=tmp_path))
    assert line == "error: --log mlflow: needs mlflow, which is not installed — pip install 'forgeml[mlflow]'"
    assert not (tmp_path / "runs").exists() or not any(p.is_dir() for p in (tmp_path / "runs").iterdir())


def test_the_core_trains_and_predicts_with_every_extra_missing(tmp_path, make_mixed):
    """What `make demo` installs (forgeml alone) is enough for train → predict."""
    every = sorted({name for extra in EXTRAS.values() for module in extra.modules for name in module.split("|")})
    make_mixed(rows=60).to_csv(tmp_path / "mixed.csv", index=False)
    trained = without(every, "train", "mixed.csv", "--target", "label", "--set", "train.epochs=2", "--set",
                      "train.progress=false", "--set", "train.bagging_folds=1", "--threads", "1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    predicted = without(every, "predict", "latest", "mixed.csv", "-o", "out.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("label_prediction,")


def test_import_optional_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    from forgeml.features.text import import_transformers

    with pytest.raises(MissingExtraError) as caught:
        import_transformers()
    assert str(caught.value) == ("model.text.type: pretrained: needs transformers, which is not installed"
                                 " — pip install 'forgeml[pretrained]'")
    assert import_optional("json", "serve", needed_by="x").dumps(1) == "1"  # an installed module is returned


def test_require_extra_passes_when_installed_and_checks_only_the_named_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "jinja2", None)
    assert missing_packages("serve") == ["jinja2"]
    require_extra("serve", needed_by="forgeml serve", modules=("fastapi", "uvicorn"))  # jinja2 not asked for
    with pytest.raises(MissingExtraError, match=r"forgeml\[serve\]"):
        require_extra("serve", needed_by="forgeml ui")


def test_extras_match_pyproject():
    """Every extra the messages name exists in pyproject with the packages named for it, so
    the pip command a user is told to run installs what was missing."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]

    def packages(name: str) -> set[str]:
        found = set()
        for requirement in extras[name]:
            spec = requirement.split(";")[0].strip()
            if spec.startswith("forgeml["):
                found |= {p for inner in spec[len("forgeml["):-1].split(",") for p in packages(inner.strip())}
            else:
                found.add(spec.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower())
        return found

    for name, extra in EXTRAS.items():
        assert name in extras, f"pyproject has no extra {name!r}"
        assert set(extra.modules.values()) <= packages(name), name
