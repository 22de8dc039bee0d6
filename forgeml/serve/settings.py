"""Server settings: one dataclass, validated once, shared by the app, the guard and the CLI."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forgeml.errors import ConfigError

MIB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    backend: str = "torch"
    max_batch_size: int = 64  # rows per forward pass
    max_wait_ms: float = 5.0  # how long the first request of a batch may wait for company
    max_rows: int = 1000  # rows in one JSON request
    max_body_bytes: int = 1 * MIB  # JSON requests
    max_csv_bytes: int = 100 * MIB  # CSV uploads, as sent and after gzip decompression (413 above)
    csv_chunk_rows: int = 4096
    max_csv_uploads: int = 2  # read or streamed at once (each holds up to max_csv_bytes of table); 503 above
    max_queue_rows: int | None = None  # rows waiting or running; 503 above. None: 8192, or more if max_rows/csv_chunk_rows need it
    timeout_ms: float = 10_000  # per request; then 504
    body_timeout_s: float = 30.0  # a client that sends no byte of its body for this long gets 408
    threads: int | None = 1  # torch/onnxruntime threads: the event loop needs the other core
    api_key_file: Path | None = None
    image_root: Path | None = None  # image features: paths accepted only inside this folder (else bytes only)
    device: str = "auto"  # language models: auto (a CUDA GPU when there is one), cpu or cuda
    max_new_tokens: int = 1024  # language models: the most tokens one request may ask for

    def __post_init__(self) -> None:
        from forgeml.serve.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}", where="--backend", hint=f"use one of {sorted(BACKENDS)}")
        for name in ("max_batch_size", "max_rows", "max_body_bytes", "max_csv_bytes", "csv_chunk_rows", "max_new_tokens",
                     "max_csv_uploads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1", where=f"--{name.replace('_', '-')}")
        if self.max_queue_rows is not None and self.max_queue_rows < max(self.max_rows, self.max_batch_size):
            raise ConfigError(f"max-queue-rows must hold at least one full request ({max(self.max_rows, self.max_batch_size)} rows)",
                              where="--max-queue-rows", hint="raise it, or lower --max-rows")
        if self.image_root is not None and not Path(self.image_root).is_dir():
            raise ConfigError("the image root is not a folder", where=f"--image-root {self.image_root}",
                              hint="give the folder whose images clients may name by path")
        if self.max_wait_ms < 0 or self.timeout_ms <= 0 or self.body_timeout_s <= 0:
            raise ConfigError("max-wait-ms must be ≥ 0, timeout-ms and body-timeout-s > 0", where="--max-wait-ms/--timeout-ms/--body-timeout-s")

    @property
    def queue_rows(self) -> int:
        """The admission limit in rows: room for a few of the largest requests and upload chunks."""
        return self.max_queue_rows if self.max_queue_rows is not None else max(8192, 4 * self.max_rows, 2 * self.csv_chunk_rows)
