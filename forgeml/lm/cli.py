"""``forgeml lm train | generate | eval``. Only typer at module level: ``forgeml --help`` stays fast."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import RunsDir
from forgeml.train.launch import LaunchOptions, launch_if_asked, with_torchrun_options

lm_app = typer.Typer(no_args_is_help=True, help="Language models: pretrain a GPT on a text corpus, generate, evaluate.")

def _console():
    from rich.console import Console

    return Console()


@lm_app.command("train")
@with_torchrun_options
def train(
    corpus: Path = typer.Argument(..., help="A folder of .txt/.md/.rst/.py/.jsonl files (searched recursively) or one text file."),
    preset: str = typer.Option("small", help="Model size: tiny (tests), mini (~1M), small (~14M), base (~34M)."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="An LM config YAML (as saved in a run) instead of --preset."),
    set_: list[str] = typer.Option([], "--set", help="Override an option: --set model.n_layer=4, --set train.learning_rate=3e-4."),
    steps: Optional[int] = typer.Option(None, help="Optimizer steps (train.max_steps)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop after this many seconds of training (saves a bundle)."),
    batch_tokens: Optional[int] = typer.Option(None, "--batch-tokens", help="Tokens per optimizer step, over all processes."),
    micro_batch: Optional[int] = typer.Option(None, "--micro-batch", help="Sequences per forward pass (memory)."),
    precision: Optional[str] = typer.Option(None, help="fp32 or bf16."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model (falls back to eager if it cannot)."),
    device: Optional[str] = typer.Option(None, help="auto (a CUDA GPU when there is one; the default), cpu or cuda."),
    strategy: Optional[str] = typer.Option(None, help="ddp (default) or fsdp, under torchrun."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="BPE vocabulary size."),
    glob: Optional[list[str]] = typer.Option(None, "--glob", help="File patterns taken from a folder (repeat); default *.txt *.md *.rst *.py *.jsonl."),
    encoding: Optional[str] = typer.Option(None, help="Text encoding; default: UTF-8, else detected per file."),
    name: Optional[str] = typer.Option(None, help="Run name (default: the corpus's name)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the latest interrupted run of this name from its checkpoint."),
    threads: Optional[int] = typer.Option(None, help="torch threads per process."),
    runs_dir: Optional[Path] = RunsDir,
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Token cache (default: $FORGEML_CACHE_DIR or ~/.cache/forgeml)."),
    launch: LaunchOptions = LaunchOptions(),
) -> None:
    """Pretrain a GPT on a corpus; writes runs/<id>/ with metrics.jsonl and the bundle."""
    if launch_if_asked(launch):
        return
    from forgeml.config_base import parse_settings, set_dotted
    from forgeml.lm.config import LMConfig
    from forgeml.lm.run import run_lm_training
    from forgeml.runs.registry import RunRegistry

    overrides = parse_settings(set_)
    flags = {"train.max_steps": steps, "train.time_budget_s": time_budget, "train.batch_tokens": batch_tokens,
             "train.micro_batch": micro_batch, "train.precision": precision, "train.compile": compile_ or None,
             "train.strategy": strategy, "corpus.vocab_size": vocab_size, "corpus.globs": glob or None,
             "corpus.encoding": encoding, "train.threads": threads, "train.device": device}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    overrides["corpus.path"] = str(corpus)
    if config_file is not None:
        base = LMConfig.from_yaml(config_file).model_dump(mode="json")
        for dotted, value in overrides.items():
            set_dotted(base, dotted, value)
        config = LMConfig.from_dict(base, source=str(config_file))
    else:
        config = LMConfig.from_preset(preset, overrides)
    result = run_lm_training(config, corpus, registry=RunRegistry(runs_dir), name=name or corpus.stem, resume=resume, cache_dir=cache_dir)
    if result is None:
        return
    m = result.metrics
    console = _console()
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(result.corpus.get("skipped", {}).items()))
    console.print(f"corpus: {result.corpus['files']} files, {result.corpus['documents']} documents, "
                  f"{result.corpus['train_tokens']:,} train / {result.corpus['val_tokens']:,} validation tokens"
                  + (f"; skipped {skipped}" if skipped else ""))
    console.print(f"model: {m['params']:,} parameters, {m['flops_per_token']:,} FLOPs/token; {m['steps']} steps, {m['tokens']:,} tokens")
    if m.get("val_loss") is not None:
        bpb = f", {m['val_bits_per_byte']:.3f} bits/byte" if m.get("val_bits_per_byte") else ""
        console.print(f"validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_ppl']:.2f}{bpb}")
    if m.get("tokens_per_s"):
        console.print(f"speed: {m['tokens_per_s']:,.0f} tokens/s, MFU {m['mfu']:.1%} of the measured matmul peak")
    console.print(f"run: {result.run_id}\nbundle: {result.bundle_path}")


def _bundle_path(bundle: str, runs_dir: Optional[Path]) -> Path:
    path = Path(bundle)
    if path.exists():
        return path
    from forgeml.errors import RunError
    from forgeml.runs.registry import RunRegistry

    try:
        return RunRegistry(runs_dir).get(bundle).dir / "bundle"
    except RunError:
        return path  # not a run id either: let the bundle loader say "bundle not found"


@lm_app.command("generate")
def generate(
    bundle: str = typer.Argument(..., help="LM bundle folder (runs/<id>/bundle) or run id."),
    prompt: list[str] = typer.Option([""], "--prompt", "-p", help="Text to continue; repeat for a batch of prompts."),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", help="Tokens to generate per prompt."),
    temperature: float = typer.Option(0.8, help="0 = greedy; higher = more varied."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample only from the k most likely tokens."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling: the smallest set of tokens with this much probability."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", help="> 1 discourages repeating tokens already in the text."),
    stop: list[str] = typer.Option([], "--stop", help="End the completion where this string appears (repeat)."),
    seed: Optional[int] = typer.Option(None, help="Same seed, same text."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the whole context per token (slow; for comparison)."),
    device: str = typer.Option("auto", help="auto (a CUDA GPU when there is one), cpu or cuda."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Run registry folder, to find a run id."),
) -> None:
    """Continue one prompt (streamed as it is generated) or several (as a batch)."""
    from forgeml.lm.bundle import load_lm
    from forgeml.lm.generate import SamplingOptions
    from forgeml.lm.generate import generate as generate_batch
    from forgeml.lm.generate import stream

    options = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   repetition_penalty=repetition_penalty, stop=tuple(stop), seed=seed, use_cache=not no_cache)
    SamplingOptions(**options).validate()  # before loading the model: a bad option fails at once
    lm = load_lm(_bundle_path(bundle, runs_dir), device=device)
    if len(prompt) == 1:
        sys.stdout.write(prompt[0])
        sys.stdout.flush()
        for piece in stream(lm, prompt[0], **options):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        return
    for number, (text, completion) in enumerate(zip(prompt, generate_batch(lm, prompt, **options)), start=1):
        sys.stdout.write(f"--- {number}\n{text}{completion}\n")


@lm_app.command("eval")
def evaluate(
    bundle: str = typer.Argument(..., help="LM bundle folder (runs/<id>/bundle) or run id."),
    heldout: Path = typer.Argument(..., help="Held-out text: a file or a folder of text files."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Run registry folder, to find a run id."),
) -> None:
    """Loss (nats/token), perplexity and bits per byte on held-out text."""
    from forgeml.lm.bundle import load_lm
    from forgeml.lm.evaluate import evaluate_text

    result = evaluate_text(load_lm(_bundle_path(bundle, runs_dir)), heldout)
    _console().print(f"{heldout}: {result['tokens']:,} tokens, {result['bytes']:,} bytes\n"
                     f"loss {result['loss']:.4f} nats/token\nperplexity {result['perplexity']:.2f}\nbits per byte {result['bits_per_byte']:.4f}")


def register(app: typer.Typer) -> None:
    app.add_typer(lm_app, name="lm")
