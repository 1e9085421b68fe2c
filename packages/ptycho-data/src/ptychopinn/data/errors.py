"""Error hierarchy of ptychopinn.data."""

from __future__ import annotations

from os import PathLike

__all__ = ["DataContractError"]


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
