"""Shared test settings: a small, deterministic torch on the CI's 2 cores."""

from __future__ import annotations

import os

import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
