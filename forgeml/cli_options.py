"""Options several commands share, declared once: the run registry folder, the bundle argument's
help, and the distributed options every training command takes (``forgeml train``, ``forgeml lm
train``). typer only, and no other forgeml module: every command module (runs, serve, export,
ui, tune, lm) reads it, so it sits at the bottom of the layers (ARCHITECTURE.md) rather than in
``train/``, which the serving and export commands have no business importing."""
from __future__ import annotations

import typer

BUNDLE_HELP = "Bundle folder (runs/<id>/bundle), or a run id or unique run-id prefix from `forgeml runs list`."
RunsDir = typer.Option(None, "--runs-dir", help="Run registry folder (default: ./runs or $FORGEML_RUNS_DIR).")
NprocPerNode = typer.Option(1, "--nproc-per-node", help="Processes on this host, run by torchrun (gloo on CPU, nccl on CUDA).")
Nnodes = typer.Option(1, "--nnodes", help="Hosts in the job; every host runs the same command with its own --node-rank.")
NodeRank = typer.Option(0, "--node-rank", help="This host's number, 0..nnodes-1; host 0 hosts the rendezvous and writes the run.")
RdzvEndpoint = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of host 0 (needed with --nnodes > 1).")
RdzvTimeout = typer.Option(300, "--rdzv-timeout", help="Seconds to wait for every host to join.")

