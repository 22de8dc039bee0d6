"""Each mistake is one error line naming what and how to fix it; nothing is written or changed."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.compress.conftest import tree_digest

# name → (arguments after the bundle, words the error line must hold)
CASES = {
    "gbm_quantize": ("gbm", ["--quantize", "int8"], ["network families", "gbm", "--distill"]),
    "gbm_prune": ("gbm", ["--prune", "0.5"], ["pruning", "gbm", "--distill"]),
    "prune_too_much": ("mlp", ["--prune", "1.5"], ["--prune 1.5", "between 0 and 1"]),
    "prune_nothing": ("mlp", ["--prune", "0"], ["--prune 0", "between 0 and 1"]),
    "prune_negative": ("mlp", ["--prune=-0.2"], ["between 0 and 1"]),
    "unstructured": ("mlp", ["--prune", "0.5", "--unstructured"], ["stores them densely", "--structured"]),
    "int4": ("mlp", ["--quantize", "int4"], ["'int4'", "--quantize int8"]),
    "no_method": ("mlp", [], ["choose one compression method"]),
    "two_methods": ("mlp", ["--quantize", "int8", "--prune", "0.5"], ["cannot be combined"]),
    "missing_bundle": ("missing", ["--quantize", "int8"], ["bundle not found"]),
    "output_exists": ("mlp", ["--quantize", "int8", "-o", "{taken}"], ["already exists", "-o OUT"]),
    "data_missing": ("mlp", ["--prune", "0.5", "--data", "{nowhere}"], ["data file not found", "--data"]),
}


@pytest.fixture(scope="module")
def outcomes(mlp_bundle, gbm_bundle, tmp_path_factory, cli):
    bundles = {"mlp": mlp_bundle, "gbm": gbm_bundle}
    before = {name: tree_digest(path) for name, path in bundles.items()}
    folder = tmp_path_factory.mktemp("bad")
    taken = folder / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")

    def run(case):
        which, args, _ = CASES[case]
        bundle = bundles.get(which, folder / "no-such-bundle")
        args = [a.format(taken=taken, nowhere=folder / "nowhere.csv") for a in args]
        return cli("compress", bundle, *args, "-o" if "-o" not in args else "--runs-dir", folder / case if "-o" not in args else folder, cwd=folder)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(CASES, pool.map(run, CASES)))
    assert (taken / "keep.txt").read_text() == "mine" and sorted(p.name for p in taken.iterdir()) == ["keep.txt"]
    assert {name: tree_digest(path) for name, path in bundles.items()} == before
    return results, folder


@pytest.mark.parametrize("case", list(CASES))
def test_one_error_line(outcomes, case):
    results, folder = outcomes
    result = results[case]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:"), result
    for words in CASES[case][2]:
        assert words in lines[0], lines[0]
    assert not (folder / case).exists()


def test_pruning_a_bundle_without_training_rows_asks_for_data(saved_bundle, tmp_path, cli):
    """The session's shared bundle was fitted on a DataFrame: it records no file to fine-tune on."""
    result = cli("compress", saved_bundle, "--prune", "0.5", "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode != 0 and "needs the training rows" in result.stderr and "--data PATH" in result.stderr, result
    assert not (tmp_path / "out").exists()


def test_an_int8_bundle_is_not_compressed_again(quantized, tmp_path):
    from forgeml.compress.errors import CompressError
    from forgeml.compress.run import compress_bundle

    result, _ = quantized
    for method, options in (("prune", {"amount": 0.5, "structured": True}), ("quantize", {"dtype": "int8"})):
        with pytest.raises(CompressError, match="already int8-quantised") as caught:
            compress_bundle(result.path, method, options, output=tmp_path / method)
        assert "compress the bundle it was made from" in caught.value.hint and not (tmp_path / method).exists()


def test_the_table_says_when_the_data_file_is_not_the_training_one(mlp_bundle, compress_csv, tmp_path):
    import pandas as pd

    from forgeml.compress.run import compress_bundle

    other = tmp_path / "other.csv"
    frame = pd.read_csv(compress_csv)
    frame.assign(label=frame["label"].sample(frac=1, random_state=1).to_numpy()).to_csv(other, index=False)  # labels shuffled
    result = compress_bundle(mlp_bundle, "quantize", {"dtype": "int8"}, data=other, output=tmp_path / "int8")
    assert "has changed since, or is not the training file" in result.table["note"]
    assert "Note: the source scores" in (result.path / "report.html").read_text()
