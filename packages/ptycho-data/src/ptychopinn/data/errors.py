"""Error hierarchy of ptychopinn.data."""

from __future__ import annotations

from os import PathLike

__all__ = ["DataContractError", "TrainingCollapsedError", "TrainingStalledWarning"]


class DataContractError(ValueError):
    """Input data violates the data contract; the message names file, key, expected and found."""

    def __init__(
        self,
        source: str | PathLike[str] | None,
        key: str | None,
        expected: str,
        found: str,
    ) -> None:
        self.source = str(source) if source is not None else "<in-memory data>"
        self.key = key
        self.expected = expected
        self.found = found
        where = f"{self.source}" + (f", key {key!r}" if key is not None else "")
        super().__init__(f"{where}: expected {expected}, found {found}")


class TrainingCollapsedError(RuntimeError):
    """Training stopped: the network's output became constant (``ptychopinn.data.health``).

    ``verdict`` is the :class:`~ptychopinn.data.health.CollapseVerdict` with the
    measured numbers; ``epoch`` is the 1-based epoch; the message names both and
    what to try. Both backends raise this one class.
    """

    def __init__(self, message: str, verdict: object = None, epoch: int | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.epoch = epoch


class TrainingStalledWarning(UserWarning):
    """Training stopped early: the monitored loss did not move for ``stall_patience`` epochs."""
