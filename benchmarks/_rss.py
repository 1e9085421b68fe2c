"""Peak-RSS measurement of an inference pass, shared by the backend benchmarks."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile

from ptychopinn.data import save_npz, simulate

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the parent.
HWM = (
    "def hwm():\n"
    "    line = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
    "    return int(line.split()[1]) / 1024\n"
)


def run_on_measured_scan(n_patterns: int, body: str) -> list[str]:
    """Run ``body`` in a fresh Python process and return its last stdout line, split.

    The scan (``n_patterns`` simulated 'lines' patterns, N=64) is written here, in the
    parent, without its ground truth -- what a beamline records -- so neither the
    simulation nor the truth counts; ``body`` sees ``PATH`` (the NPZ) and ``hwm()``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        scan = simulate("lines", n_images=n_patterns, N=64, object_size=640, seed=0)
        path = save_npz(dataclasses.replace(scan, object=None, Y=None), os.path.join(tmp, "s.npz"))
        del scan
        code = f"PATH = {str(path)!r}\n" + HWM + body
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
    return out.stdout.strip().splitlines()[-1].split()
