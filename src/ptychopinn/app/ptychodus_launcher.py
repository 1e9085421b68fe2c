"""``ptychopinn ptychodus [ptychodus arguments]``: ptychodus with ptychopinn registered.

ptychodus (1.7) builds its reconstructor list inside ``ModelCore.__init__`` and has no
plugin entry point for reconstructors (``docs/ptychodus-plugin-proposal.md`` proposes
one). Rather than asking users to edit ``ptychodus/model/core.py``, the launcher
replaces, for the life of the process, the name ``ProcessingCore`` that
``ptychodus.model.core`` constructs with a subclass whose constructor appends
:class:`~ptychopinn.app.ptychodus.PtychoPINNReconstructorLibrary` to the libraries
ptychodus hands it. Everything else is ptychodus's own: its public ``ProcessingCore``
constructor, its built-in libraries (PtychoPINN's included, untouched and in their
order), its command line (GUI, ``-b train``/``-b reconstruct``, ``-s``, ...) and its
exit codes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["main", "registered"]


def _developer_mode(core_module: Any) -> bool:
    # The same test ModelCore.is_developer_mode_enabled makes (its module logger's level).
    return logging.getLogger(core_module.__name__).getEffectiveLevel() <= logging.DEBUG


@contextmanager
def registered() -> Iterator[type]:
    """While active, every ptychodus ``ModelCore`` lists ptychopinn's library last.

    Yields the ``ProcessingCore`` subclass in use. Nested or repeated use is harmless:
    the library is added once per ``ProcessingCore``.
    """
    import ptychodus.model.core as core

    from .ptychodus import PtychoPINNReconstructorLibrary

    original = core.ProcessingCore

    class ProcessingCoreWithPtychoPINNApp(original):  # type: ignore[misc, valid-type]
        """ptychodus's ProcessingCore, with ptychopinn's reconstructor library appended."""

        def __init__(
            self,
            task_manager: Any,
            settings_registry: Any,
            product_api: Any,
            algorithm_libraries: Sequence[Any],
        ) -> None:
            libraries = list(algorithm_libraries)
            if not any(isinstance(lib, PtychoPINNReconstructorLibrary) for lib in libraries):
                libraries.append(
                    PtychoPINNReconstructorLibrary(settings_registry, _developer_mode(core))
                )
            super().__init__(task_manager, settings_registry, product_api, libraries)

    core.ProcessingCore = ProcessingCoreWithPtychoPINNApp
    try:
        yield ProcessingCoreWithPtychoPINNApp
    finally:
        core.ProcessingCore = original


def main(argv: Sequence[str] | None = None) -> int:
    """Run ptychodus's own ``main`` (GUI or ``-b`` batch) with ptychopinn registered."""
    from .logs import quiet_framework_environment

    # Inherited by the spawned training/reconstruction processes: no TensorFlow
    # cuInit error line on a CPU-only machine.
    quiet_framework_environment(os.environ)
    import ptychodus.__main__ as ptychodus_main

    arguments = list(sys.argv[1:] if argv is None else argv)
    saved = sys.argv
    # ptychodus parses sys.argv itself (and hands the rest to Qt): give it its own.
    sys.argv = ["ptychodus", *arguments]
    try:
        with registered():
            return int(ptychodus_main.main())
    finally:
        sys.argv = saved


if __name__ == "__main__":
    sys.exit(main())
