"""Options several commands share, declared once: the run registry folder, and the distributed
options every training command takes (``forgeml train``, ``forgeml lm train``). typer only:
imported by the CLI at start-up."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

BUNDLE_HELP = "Bundle folder (runs/<id>/bundle), or a run id or unique run-id prefix from `forgeml runs list`."
RunsDir = typer.Option(None, "--runs-dir", help="Run registry folder (default: ./runs or $FORGEML_RUNS_DIR).")
NprocPerNode = typer.Option(1, "--nproc-per-node", help="Processes on this host, run by torchrun (gloo on CPU, nccl on CUDA).")
Nnodes = typer.Option(1, "--nnodes", help="Hosts in the job; every host runs the same command with its own --node-rank.")
NodeRank = typer.Option(0, "--node-rank", help="This host's number, 0..nnodes-1; host 0 hosts the rendezvous and writes the run.")
RdzvEndpoint = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of host 0 (needed with --nnodes > 1).")
RdzvTimeout = typer.Option(300, "--rdzv-timeout", help="Seconds to wait for every host to join.")


def relaunched_under_torchrun(nproc_per_node: int, nnodes: int, node_rank: int, rdzv_endpoint: Optional[str], rdzv_timeout: int) -> bool:
    """The prologue of every training command: with more than one process asked for (and not
    yet inside torchrun), run this same command under torchrun and return True once the job has
    ended; the command then returns. Otherwise False, and the command runs here (as one rank)."""
    from forgeml.train.launch import LaunchOptions, launch_if_asked

    return launch_if_asked(LaunchOptions(nproc_per_node, nnodes, node_rank, rdzv_endpoint, rdzv_timeout))


def refuse_one_process_models(source: Path, model: Optional[str], preset: Optional[str], settings: list[str], *, private: bool = False) -> None:
    """The ensemble fits its members in one process. Asked for with several processes, it is refused
    here, once, before torchrun starts N ranks that would each print the refusal and then the
    launcher its own line. The model comes from --model/--preset/--set model.type=, or config.yaml.
    ``private`` (--privacy-epsilon): DP-SGD trains in one process too (forgeml/train/privacy.py)."""
    from forgeml.errors import ConfigError

    if private:
        from forgeml.train.privacy_checks import one_process_only

        raise one_process_only("--privacy-epsilon")
    chosen = "ensemble" if preset else model
    for item in settings:
        key, _, value = item.partition("=")
        if key.strip() == "model.type":
            chosen = value.strip()
    if chosen is None and source.suffix.lower() in (".yaml", ".yml") and source.is_file():
        import yaml

        try:
            section = (yaml.safe_load(source.read_text(encoding="utf-8")) or {}).get("model") or {}
            chosen = section.get("type") if isinstance(section, dict) else None
        except (OSError, UnicodeDecodeError, AttributeError, yaml.YAMLError):
            return  # the config's own reading says what is wrong with it
    if chosen == "ensemble":
        raise ConfigError("the ensemble trains in one process", where="model.type: ensemble",
                          hint="drop --nproc-per-node/--nnodes, or train one network family (--model mlp) data-parallel")
