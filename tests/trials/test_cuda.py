"""Trials on a CUDA device: data resident on the GPU, mixed precision, fused optimiser kernels.

Skipped where no CUDA device is visible.
"""

from __future__ import annotations

import math

import pytest
import torch

from aaf_search.config import DataConfig, OptimConfig, TrialConfig
from aaf_search.trials.data import load_data
from aaf_search.trials.loop import grad_scaler
from aaf_search.trials.models import build_model
from aaf_search.trials.optim import build_optimisers
from aaf_search.trials.plan import uniform_plan
from aaf_search.trials.runner import run_trial

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_an_mlp_with_a_trainable_activation_learns_digits_on_cuda(precision: str) -> None:
    config = TrialConfig(
        model="dnn3", epochs=6, device="cuda", precision=precision, plan=uniform_plan("coslu", shape="channel")
    )
    result = run_trial(config)
    assert result.device.startswith("cuda") and result.cpu_threads is None
    assert result.val_accuracy >= 0.85
    assert all(math.isfinite(report.train_loss) for report in result.history)


def test_a_conv_net_trains_with_augmentation_in_bf16_on_cuda() -> None:
    config = TrialConfig(
        model="resnet8",
        data=DataConfig(augment=True),
        epochs=3,
        device="cuda",
        precision="bf16",
        plan=uniform_plan("ahaf", shape="channel"),
    )
    result = run_trial(config)
    assert result.epochs_run == 3
    assert result.val_accuracy > 0.3  # well above chance (0.1) after three epochs


def test_auto_device_picks_the_gpu() -> None:
    assert run_trial(TrialConfig(model="dnn2", epochs=1)).device.startswith("cuda")


def test_cuda_optimisers_use_fused_kernels_and_fp16_scales_the_loss() -> None:
    data = load_data(DataConfig(), device="cuda")
    model = build_model("dnn2", input_shape=data.input_shape, num_classes=data.num_classes).cuda()
    for name in ("adam", "adamw", "sgd"):
        optimiser = build_optimisers(model, OptimConfig(name=name), epochs=1).main
        assert all(group["fused"] for group in optimiser.param_groups)
    assert grad_scaler(torch.device("cuda"), "fp16").is_enabled()
    assert not grad_scaler(torch.device("cuda"), "bf16").is_enabled()
