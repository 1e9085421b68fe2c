"""Hypothesis strategies that generate valid configs."""

from hypothesis import assume
from hypothesis import strategies as st

from ptychopinn.config import ExecutionConfig, InferenceConfig, ModelConfig, TrainingConfig
from ptychopinn.config.configs import (
    ACCELERATORS,
    AMP_ACTIVATIONS,
    ARCHITECTURES,
    BACKENDS,
    GRADIENT_CLIP_ALGORITHMS,
    LOGGERS,
    MODEL_TYPES,
    PRECISIONS,
    STITCH_WEIGHTS,
    STRATEGIES,
    SUPPORTED_N,
)

positive = st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
paths = st.text(alphabet="abcXYZ019_-./", min_size=1, max_size=20)
maybe_paths = st.none() | paths
maybe_count = st.none() | st.integers(1, 10**6)

models = st.builds(
    ModelConfig,
    N=st.sampled_from(SUPPORTED_N),
    gridsize=st.integers(1, 4),
    n_filters_scale=st.integers(1, 4),
    model_type=st.sampled_from(MODEL_TYPES),
    amp_activation=st.sampled_from(AMP_ACTIVATIONS),
    object_big=st.booleans(),
    probe_big=st.booleans(),
    probe_mask=st.booleans(),
    pad_object=st.booleans(),
    probe_scale=positive,
    gaussian_smoothing_sigma=non_negative,
    architecture=st.sampled_from(ARCHITECTURES),
    res_blocks=st.integers(1, 6),
)


@st.composite
def trainings(draw):
    model = draw(models)
    weights = {
        k: draw(non_negative)
        for k in ("nll_weight", "mae_weight", "realspace_mae_weight", "realspace_weight")
    }
    assume(model.model_type == "supervised" or sum(weights.values()) > 0)
    return TrainingConfig(
        model=model,
        train_data_file=draw(maybe_paths),
        test_data_file=draw(maybe_paths),
        batch_size=draw(st.integers(1, 4096)),
        nepochs=draw(st.integers(1, 10**4)),
        learning_rate=draw(positive),
        nphotons=draw(positive),
        n_groups=draw(maybe_count),
        n_subsample=draw(maybe_count),
        subsample_seed=draw(st.none() | st.integers(0, 2**32)),
        neighbor_count=draw(st.integers(max(1, model.gridsize**2 - 1), 64)),
        positions_provided=draw(st.booleans()),
        probe_trainable=draw(st.booleans()),
        intensity_scale_trainable=draw(st.booleans()),
        validation_fraction=draw(st.floats(0.0, 0.99)),
        lr_patience=draw(st.integers(0, 100)),
        lr_factor=draw(st.floats(0.01, 0.99)),
        min_lr=draw(non_negative),
        output_dir=draw(paths),
        backend=draw(st.sampled_from(BACKENDS)),
        seed=draw(st.integers(0, 2**32)),
        **weights,
    )


@st.composite
def inferences(draw):
    model = draw(models)
    return InferenceConfig(
        model=model,
        model_path=draw(maybe_paths),
        test_data_file=draw(maybe_paths),
        n_groups=draw(maybe_count),
        n_subsample=draw(maybe_count),
        subsample_seed=draw(st.none() | st.integers(0, 2**32)),
        neighbor_count=draw(st.integers(max(1, model.gridsize**2 - 1), 64)),
        output_dir=draw(paths),
        backend=draw(st.sampled_from(BACKENDS)),
        seed=draw(st.integers(0, 2**32)),
        stitch_crop=draw(st.integers(1, model.N)),
        stitch_weight=draw(st.sampled_from(STITCH_WEIGHTS)),
    )


@st.composite
def executions(draw):
    accelerator = draw(st.sampled_from(ACCELERATORS))
    precision = draw(st.sampled_from(PRECISIONS))
    assume(not (accelerator == "cpu" and precision == "16-mixed"))
    num_workers = draw(st.integers(0, 16))
    return ExecutionConfig(
        accelerator=accelerator,
        devices=draw(
            st.just("auto")
            | st.integers(1, 8)
            | st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True)
        ),
        num_nodes=draw(st.integers(1, 4)),
        strategy=draw(st.sampled_from(STRATEGIES)),
        precision=precision,
        deterministic=draw(st.booleans()),
        num_workers=num_workers,
        pin_memory=draw(st.booleans()),
        persistent_workers=draw(st.booleans()) and num_workers > 0,
        gradient_clip_val=draw(st.none() | positive),
        gradient_clip_algorithm=draw(st.sampled_from(GRADIENT_CLIP_ALGORITHMS)),
        accumulate_grad_batches=draw(st.integers(1, 64)),
        logger=draw(st.sampled_from(LOGGERS)),
        enable_progress_bar=draw(st.booleans()),
        enable_checkpointing=draw(st.booleans()),
        early_stop_patience=draw(st.none() | st.integers(1, 100)),
        inference_batch_size=draw(st.integers(1, 4096)),
        jit_compile=draw(st.booleans()),
        collapse_check=draw(st.booleans()),
        stall_patience=draw(st.none() | st.integers(1, 100)),
        stall_tolerance=draw(non_negative),
    )
