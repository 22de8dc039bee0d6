"""``--nproc-per-node / --nnodes / --node-rank / --rdzv-endpoint``: any forgeml training command
re-run under torchrun (``torch.distributed.run``), not under a launcher of our own.

The command calls ``launch_if_asked`` first. Outside torchrun with more than one process asked
for, it hands torchrun the same command line (``-m forgeml.cli <the same arguments>``) and waits;
inside torchrun's workers (``TORCHELASTIC_RUN_ID`` is set) it returns at once and the command
runs as one rank of the job (``train.distributed.DistContext``).

One host: torchrun's ``--standalone`` rendezvous on a free local port. Several hosts: the static
rendezvous — node rank 0 listens on ``--rdzv-endpoint`` and is global rank 0, the one that
writes the run. Whatever goes wrong becomes one ``ForgeError`` line: a rank that failed (its
own message is printed above it by the rank), a rendezvous nobody answered within the timeout.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from forgeml.errors import ConfigError, ForgeError


class DistributedError(ForgeError):
    """The distributed job could not start or one of its ranks failed."""


@dataclass(frozen=True)
class LaunchOptions:
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_timeout: int = 300

    @property
    def wanted(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    def validate(self) -> "LaunchOptions":
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ConfigError("--nproc-per-node and --nnodes must be at least 1")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ConfigError(f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT", hint="the address of the host started with --node-rank 0, e.g. 10.0.0.1:29500")
        if not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(f"--node-rank {self.node_rank} is outside 0..{self.nnodes - 1}", hint="number the hosts 0 to --nnodes minus 1; host 0 hosts the rendezvous")
        if self.rdzv_endpoint and not self.rdzv_endpoint.rpartition(":")[2].isdigit():
            raise ConfigError(f"--rdzv-endpoint {self.rdzv_endpoint!r} has no port", hint="write HOST:PORT, e.g. 10.0.0.1:29500")
        return self


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def torchrun_args(options: LaunchOptions, command: list[str]) -> list[str]:
    if options.nnodes == 1:
        rendezvous = ["--standalone"]
    else:
        rendezvous = ["--nnodes", str(options.nnodes), "--node-rank", str(options.node_rank), "--rdzv-backend", "static",
                      "--rdzv-endpoint", options.rdzv_endpoint, "--rdzv-conf", f"timeout={options.rdzv_timeout}"]
    return [*rendezvous, "--nproc-per-node", str(options.nproc_per_node), "--max-restarts", "0",
            "--module", "forgeml.cli", *command]


def launch_if_asked(options: LaunchOptions, command: list[str] | None = None) -> bool:
    """Run ``command`` (default: this process's arguments) under torchrun; True if it did."""
    if under_torchrun() or not options.validate().wanted:
        return False
    import logging

    # before torch loads: c10d logs each retried connection with a thirty-line C++ stack trace,
    # then raises the same error, which we turn into one line below. TORCH_CPP_LOG_LEVEL=INFO
    # brings the logs back.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(torchrun_args(options, command if command is not None else sys.argv[1:]))
    os.environ["FORGEML_NNODES"] = str(options.nnodes)  # the ranks compare it across hosts
    # Each rank pins its own torch threads (cores shared among the host's ranks); this only
    # silences torchrun's notice about OMP_NUM_THREADS.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its failure lines repeat what we say
    try:
        run(args)
    except ChildFailedError as exc:
        raise DistributedError(_describe_failures(exc), hint="fix the cause and run the same command again; with --resume it continues from the last checkpoint") from None
    except Exception as exc:  # noqa: BLE001 - the rendezvous reports a silent peer as several torch error types
        if _is_rendezvous_failure(exc):
            raise DistributedError(_describe_rendezvous(options, exc), where=options.rdzv_endpoint or "localhost",
                                   hint="start every host with the same --nnodes and --rdzv-endpoint (host 0's address) and check that the port is reachable") from None
        raise
    return True


def _describe_failures(exc) -> str:
    rank, first = exc.get_first_failure()  # the others were most likely stopped by torchrun because of it
    how = f"was killed by signal {-first.exitcode}" if first.exitcode < 0 else f"exited with code {first.exitcode}"
    others = len(exc.failures) - 1
    tail = f"; torchrun then stopped {others} other rank{'s' if others > 1 else ''}" if others else ""
    return f"the distributed job ended: rank {rank} {how} (its own message, if any, is above){tail}"


def _is_rendezvous_failure(exc: BaseException) -> bool:
    import torch.distributed as dist
    from torch.distributed.elastic.rendezvous import RendezvousError

    return isinstance(exc, (RendezvousError, dist.DistError)) or "timed out" in str(exc).lower() or "timeout" in str(exc).lower()


def _describe_rendezvous(options: LaunchOptions, exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    if options.node_rank == 0:
        return (f"rendezvous timed out after {options.rdzv_timeout} s: not all {options.nnodes} hosts joined "
                f"(torch: {detail[:160]})")
    return f"rendezvous timed out after {options.rdzv_timeout} s: host 0 did not answer (torch: {detail[:160]})"


def with_torchrun_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The torchrun options of every training command (``forgeml train``, ``forgeml lm train``),
    declared once: ``--nproc-per-node``, ``--nnodes``, ``--node-rank``, ``--rdzv-endpoint`` and
    ``--rdzv-timeout`` are added to ``command``'s signature for typer (after its own options),
    and reach the command as one ``launch: LaunchOptions`` argument. The command then starts with
    ``if launch_if_asked(launch): return``."""
    from forgeml.cli_options import NodeRank, Nnodes, NprocPerNode, RdzvEndpoint, RdzvTimeout

    keyword = inspect.Parameter.KEYWORD_ONLY
    added = [inspect.Parameter("nproc_per_node", keyword, default=NprocPerNode, annotation=int),
             inspect.Parameter("nnodes", keyword, default=Nnodes, annotation=int),
             inspect.Parameter("node_rank", keyword, default=NodeRank, annotation=int),
             inspect.Parameter("rdzv_endpoint", keyword, default=RdzvEndpoint, annotation=Optional[str]),
             inspect.Parameter("rdzv_timeout", keyword, default=RdzvTimeout, annotation=int)]
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "launch"]

    @functools.wraps(command)
    def run(**options: Any) -> Any:
        launch = LaunchOptions(*(options.pop(parameter.name) for parameter in added))
        return command(**options, launch=launch)

    run.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
    return run


def refuse_one_process_models(source: Path, model: Optional[str], preset: Optional[str], settings: list[str], *, private: bool = False) -> None:
    """The ensemble fits its members in one process. Asked for with several processes, it is refused
    here, once, before torchrun starts N ranks that would each print the refusal and then the
    launcher its own line. The model comes from --model/--preset/--set model.type=, or config.yaml.
    ``private`` (--privacy-epsilon): DP-SGD trains in one process too (forgeml/train/privacy.py)."""
    if private:
        from forgeml.train.privacy_checks import one_process_only

        raise one_process_only("--privacy-epsilon")
    from forgeml.config_base import parse_settings

    chosen = parse_settings(settings).get("model.type", "ensemble" if preset else model)
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
