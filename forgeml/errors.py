"""One exception hierarchy for every mistake a user can make.

Each error carries what went wrong, where (file, column, row) and what to do, so the CLI
can print one clear line instead of a traceback. Raise these where the problem is known;
the CLI catches ``ForgeError`` once.
"""
from __future__ import annotations


class ForgeError(Exception):
    """Base class: a problem the user can fix. ``hint`` says how."""

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None):
        self.message = message
        self.hint = hint
        self.where = where
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" — {self.hint}"
        return text


class DataError(ForgeError):
    """The input data cannot be read or does not fit the task (empty, not a table, bad target)."""


class SchemaError(DataError):
    """Columns at predict time do not match what the model was trained on."""


class ConfigError(ForgeError):
    """The configuration is invalid: unknown option, bad value, impossible combination."""


class BundleError(ForgeError):
    """A model bundle is missing, corrupted, badly signed or not a forgeml bundle."""


class CheckpointError(ForgeError):
    """No checkpoint to resume from, or one that does not match the run."""


class NotFittedError(ForgeError):
    """A pipeline was used before ``fit`` or ``load``."""


class RunError(ForgeError):
    """A run id or run directory that does not exist in the registry."""


class MissingExtraError(ConfigError):
    """An optional package is not installed; the hint names the extra: ``pip install 'forgeml[serve]'``."""


class DataNote(UserWarning):
    """What cleaning did to the data (rows dropped, values made missing, files skipped), told
    while ``Pipeline.fit`` runs; the CLI prints the same notes as ``data: …`` lines."""


class StudyError(ForgeError):
    """A tuning study cannot go on: a storage URL of the wrong scheme or out of reach, a study of
    another family, target or search space under that name, no trial finished in the budget."""
