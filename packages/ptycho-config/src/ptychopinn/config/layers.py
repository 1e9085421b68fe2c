"""The layer plan: every layer of the network of METHOD.md §5 as plain data.

Both backends build their network from this plan, so that they have the same layers
and give every parameter the same canonical name and layout (INTERFACES.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .configs import ModelConfig

__all__ = [
    "ADD",
    "BASE_DECODER_FILTERS",
    "BASE_ENCODER_FILTERS",
    "CONV2D",
    "MAXPOOL2D",
    "OUTER_CHANNELS",
    "UPSAMPLE2D",
    "LayerPlan",
    "LayerSpec",
    "layer_plan",
]

CONV2D = "conv2d"
MAXPOOL2D = "maxpool2d"
UPSAMPLE2D = "upsample2d"
ADD = "add"

#: Base filters per level before ``n_filters_scale`` (METHOD.md §5); bottleneck is 8x8.
BASE_ENCODER_FILTERS: dict[int, tuple[int, ...]] = {
    64: (32, 64, 128),
    128: (16, 32, 64, 128),
    256: (8, 16, 32, 64, 128),
}
BASE_DECODER_FILTERS: dict[int, tuple[int, ...]] = {
    64: (64, 32),
    128: (128, 64, 32),
    256: (256, 128, 64, 32),
}
#: Decoder channels read by the probe_big outer branch (the last ones).
OUTER_CHANNELS = 4

#: Activation names used in ``LayerSpec.activation``; ``None`` = no activation.
PHASE_ACTIVATION = "pi_tanh"
OUTER_ACTIVATION = "swish"


@dataclass(frozen=True)
class LayerSpec:
    """One layer: canonical name, kind, channels, kernel (or pool/upsample factor), activation.

    ``kind`` is ``"conv2d"`` (3x3, 'same' padding, stride 1, with bias),
    ``"maxpool2d"`` (2x2, stride 2), ``"upsample2d"`` (x2, nearest) or ``"add"`` (adds
    the output of the earlier layer named by ``source``, then the activation: the skip
    of a residual block; no parameters). ``activation``
    is ``"relu"``, ``"sigmoid"``, ``"swish"``, ``"softplus"``, ``"pi_tanh"``
    (pi * tanh) or ``None``. ``stage`` is the block it belongs to (``"encoder"``,
    ``"bottleneck"`` (architecture ``resnet`` only), ``"decoder_amp"``, ``"decoder_phase"``, ``"amp_head"``, ``"phase_head"``,
    ``"amp_outer"``, ``"phase_outer"``).
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    activation: str | None
    stage: str = ""
    source: str | None = None

    @property
    def has_parameters(self) -> bool:
        """True for layers with weights (convolutions)."""
        return self.kind == CONV2D

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical shapes: ``<name>.weight`` (out, in, kh, kw) and ``<name>.bias`` (out,)."""
        if not self.has_parameters:
            return {}
        kh, kw = self.kernel_size
        return {
            f"{self.name}.weight": (self.out_channels, self.in_channels, kh, kw),
            f"{self.name}.bias": (self.out_channels,),
        }


@dataclass(frozen=True)
class LayerPlan:
    """The whole network as an ordered tuple of ``LayerSpec`` plus its shape facts.

    ``layers`` is in forward order: encoder, the residual trunk (architecture
    ``resnet``), then the amplitude branch (decoder, head, outer branch), then the
    phase branch. ``head_channels`` is C when object_big else 1.
    """

    N: int
    gridsize: int
    architecture: str
    in_channels: int
    head_channels: int
    encoder_filters: tuple[int, ...]
    decoder_filters: tuple[int, ...]
    outer_filters: int | None
    pad_object: bool
    probe_big: bool
    object_big: bool
    layers: tuple[LayerSpec, ...]

    def __iter__(self) -> Iterator[LayerSpec]:
        """Iterate over the layers in forward order."""
        return iter(self.layers)

    def __len__(self) -> int:
        """Return the number of layers (parameterised or not)."""
        return len(self.layers)

    def __getitem__(self, name: str) -> LayerSpec:
        """Return the layer with this canonical name."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r} in this plan")

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical names of all layers, in forward order."""
        return tuple(layer.name for layer in self.layers)

    @property
    def bottleneck_size(self) -> int:
        """Spatial side of the encoder output (8 for every supported N)."""
        return self.N // 2 ** len(self.encoder_filters)

    @property
    def decoder_channels(self) -> int:
        """Channels leaving each decoder (its last level's filters)."""
        return self.decoder_filters[-1]

    def conv_layers(self) -> tuple[LayerSpec, ...]:
        """The parameterised (conv2d) layers, in forward order."""
        return tuple(layer for layer in self.layers if layer.has_parameters)

    def stage(self, stage: str) -> tuple[LayerSpec, ...]:
        """The layers of one stage (e.g. ``"encoder"``, ``"amp_outer"``), in order."""
        return tuple(layer for layer in self.layers if layer.stage == stage)

    @property
    def stages(self) -> tuple[str, ...]:
        """Stage names in forward order, without repeats."""
        return tuple(dict.fromkeys(layer.stage for layer in self.layers))

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every canonical parameter and its shape: conv weights/biases, ``log_scale`` (), ``probe`` (N, N)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:
            shapes.update(layer.parameter_shapes())
        shapes["log_scale"] = ()
        shapes["probe"] = (self.N, self.N)
        return shapes

    def parameter_dtypes(self) -> dict[str, str]:
        """The dtype name of every canonical parameter (float32; the probe is complex64)."""
        return {
            name: ("complex64" if name == "probe" else "float32")
            for name in self.parameter_shapes()
        }

    def total_parameters(self, include_probe: bool = False) -> int:
        """Count parameter elements (conv weights, biases, log_scale; the probe's N*N if asked)."""
        total = 0
        for name, shape in self.parameter_shapes().items():
            if name == "probe" and not include_probe:
                continue
            total += math.prod(shape)
        return total

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-safe plain data (for manifests and reports)."""
        return {
            "N": self.N,
            "gridsize": self.gridsize,
            "architecture": self.architecture,
            "in_channels": self.in_channels,
            "head_channels": self.head_channels,
            "encoder_filters": list(self.encoder_filters),
            "decoder_filters": list(self.decoder_filters),
            "outer_filters": self.outer_filters,
            "pad_object": self.pad_object,
            "probe_big": self.probe_big,
            "object_big": self.object_big,
            "layers": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "in_channels": s.in_channels,
                    "out_channels": s.out_channels,
                    "kernel_size": list(s.kernel_size),
                    "activation": s.activation,
                    "stage": s.stage,
                    **({"source": s.source} if s.source is not None else {}),
                }
                for s in self.layers
            ],
        }


def _conv(name: str, cin: int, cout: int, activation: str | None, stage: str) -> LayerSpec:
    return LayerSpec(name, CONV2D, cin, cout, (3, 3), activation, stage)


def _up_block(prefix: str, cin: int, filters: int, stage: str) -> tuple[list[LayerSpec], int]:
    """Two relu 3x3 convs then nearest upsampling x2; returns the layers and out channels."""
    layers = [
        _conv(f"{prefix}.conv0", cin, filters, "relu", stage),
        _conv(f"{prefix}.conv1", filters, filters, "relu", stage),
        LayerSpec(f"{prefix}.up", UPSAMPLE2D, filters, filters, (2, 2), None, stage),
    ]
    return layers, filters


def _residual_trunk(source: str, channels: int, blocks: int) -> list[LayerSpec]:
    """``blocks`` residual blocks at the bottleneck: relu conv, conv, add the block input, relu.

    The decoders read the bottleneck only, so every output pixel depends on the whole
    pattern through it; 3x3 convolutions at 8x8 widen that global mixing (each block
    adds 4 px of receptive field at 1/8 resolution) without changing any shape.
    """
    layers: list[LayerSpec] = []
    for block in range(blocks):
        prefix = f"bottleneck.{block}"
        layers += [
            _conv(f"{prefix}.conv0", channels, channels, "relu", "bottleneck"),
            _conv(f"{prefix}.conv1", channels, channels, None, "bottleneck"),
            LayerSpec(f"{prefix}.add", ADD, channels, channels, (1, 1), "relu", "bottleneck",
                      source=source),
        ]  # fmt: skip
        source = f"{prefix}.add"
    return layers


def _branch(
    kind: str,
    head_activation: str,
    decoder_filters: tuple[int, ...],
    bottleneck: int,
    model: ModelConfig,
    head_channels: int,
    outer_filters: int,
) -> list[LayerSpec]:
    """One output branch (``kind`` is "amp" or "phase"): decoder, head and outer branch."""
    layers: list[LayerSpec] = []
    stage = f"decoder_{kind}"
    cin = bottleneck
    for level, filters in enumerate(decoder_filters):
        block, cin = _up_block(f"{stage}.{level}", cin, filters, stage)
        layers += block
    if model.pad_object:
        layers.append(
            _conv(
                f"{kind}_head", cin - OUTER_CHANNELS, head_channels, head_activation, f"{kind}_head"
            )
        )
        if model.probe_big:
            block, width = _up_block(
                f"{kind}_outer", OUTER_CHANNELS, outer_filters, f"{kind}_outer"
            )
            layers += block
            layers.append(
                _conv(f"{kind}_outer.out", width, head_channels, OUTER_ACTIVATION, f"{kind}_outer")
            )
    else:
        block, width = _up_block(f"{kind}_outer", cin, outer_filters, f"{kind}_outer")
        layers += block
        layers.append(
            _conv(f"{kind}_outer.out", width, head_channels, head_activation, f"{kind}_outer")
        )
    return layers


def layer_plan(model: ModelConfig) -> LayerPlan:
    """Return the layer plan of the network of METHOD.md §5 for this model config."""
    if not isinstance(model, ModelConfig):
        inner = getattr(model, "model", None)
        if not isinstance(inner, ModelConfig):
            raise TypeError(f"layer_plan needs a ModelConfig, got {type(model).__name__}")
        model = inner
    scale = model.n_filters_scale
    c = model.gridsize**2
    encoder_filters = tuple(f * scale for f in BASE_ENCODER_FILTERS[model.N])
    decoder_filters = tuple(f * scale for f in BASE_DECODER_FILTERS[model.N])
    head_channels = c if model.object_big else 1
    uses_outer = model.probe_big or not model.pad_object
    outer_filters = scale * 2048 // model.N

    layers: list[LayerSpec] = []
    cin = c
    for level, filters in enumerate(encoder_filters):
        layers.append(_conv(f"encoder.{level}.conv0", cin, filters, "relu", "encoder"))
        layers.append(_conv(f"encoder.{level}.conv1", filters, filters, "relu", "encoder"))
        layers.append(
            LayerSpec(f"encoder.{level}.pool", MAXPOOL2D, filters, filters, (2, 2), None, "encoder")
        )
        cin = filters
    bottleneck = cin
    if model.architecture == "resnet":
        layers += _residual_trunk(layers[-1].name, bottleneck, model.res_blocks)
    layers += _branch(
        "amp",
        model.amp_activation,
        decoder_filters,
        bottleneck,
        model,
        head_channels,
        outer_filters,
    )
    layers += _branch(
        "phase", PHASE_ACTIVATION, decoder_filters, bottleneck, model, head_channels, outer_filters
    )
    return LayerPlan(
        N=model.N,
        gridsize=model.gridsize,
        architecture=model.architecture,
        in_channels=c,
        head_channels=head_channels,
        encoder_filters=encoder_filters,
        decoder_filters=decoder_filters,
        outer_filters=outer_filters if uses_outer else None,
        pad_object=model.pad_object,
        probe_big=model.probe_big,
        object_big=model.object_big,
        layers=tuple(layers),
    )
