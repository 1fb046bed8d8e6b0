"""Training-step time and saved-for-backward memory of every trainable activation, eager vs fused.

    python benchmarks/activations.py                       # every fused family, CPU (+ CUDA bf16 if present)
    python benchmarks/activations.py --quick               # fewer repeats, for a busy machine
    python benchmarks/activations.py --families coslu apa --repeats 9

One training step (forward, cross-entropy, backward, SGD step) of a 4-conv CIFAR-shaped network (input
3x32x32, batch 128; fp32 on CPU, bf16 autocast on CUDA; weights in channels-last format, as trials
train, or NCHW with ``--memory-format contiguous``) whose four activation slots all hold the same
family (shape "layer": one parameter set per slot; ``--shape channel``: one per channel, whose parameter
gradients are per-channel sums; families without that shape keep "layer"). Each family runs with the
eager reference modules and with the fused kernels (``aaf_search.activations.set_implementation``); the
same network with ReLU and with SiLU runs in the same session. Configurations are interleaved (one
timing block of each per round, for ``--repeats`` rounds) and the median per configuration is reported,
so a colleague's job on a shared CPU slows every configuration alike instead of one of them.

Saved memory is what autograd keeps for backward: the bytes of the unique storages packed by
``torch.autograd.graph.saved_tensors_hooks`` during one forward pass (so a tensor saved by two
operations, e.g. a ReLU output that the next conv also saves, counts once).

Allocation: as in trials, glibc keeps freed memory in the heap (``aaf_search.trials.malloc``), so a step
does not fault its tensors' pages in again; ``--malloc default`` measures with glibc's defaults. Also as
in trials, libtorch_cpu's read-only data is mapped before the first step (``aaf_search.trials.prefault``;
without it APA's and AGLU's log1p ran at a speed that depended on the families run before them).

Evaluation: the same network's forward in eval mode under ``torch.no_grad`` (a validation batch), timed
in the same rounds, eager and fused; "auto" takes the fused forward there for modules that trained on
it, from the sizes in ``fused.AUTO_FUSED_INFERENCE`` (all of this network's activations are above them).

Targets: fused time <= 1.15x the SiLU network's and saved memory <= SiLU's. The fused path
saves the activation parameters (a few bytes) besides the input, so "<= SiLU" is checked to 0.1 %.
The first-step column is the first step of a configuration in this process: for "fused" it includes
torch.compile (cold: no on-disk inductor cache yet; warm: cached by an earlier run).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aaf_search import activations
from aaf_search.activations import fused
from aaf_search.activations.lslu import LSLU
from aaf_search.trials.malloc import tune_malloc
from aaf_search.trials.prefault import prefault_torch

BATCH = 128  # images per step
IMAGE = (3, 32, 32)  # CIFAR-shaped input
CLASSES = 10
WIDTHS = (16, 32, 32, 64)  # output channels of the four 3x3 convs; a 2x2 max-pool after the 2nd and 4th
LR = 0.01  # SGD learning rate (the value is irrelevant to timing; a step must still update the weights)
TIME_TARGET = 1.15  # fused step time / SiLU step time must be at most this
FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
MEMORY_SLACK = 1.001  # fused saved memory / SiLU's: the saved activation parameters are a few bytes


class Net(nn.Module):
    """conv-act-conv-act-pool-conv-act-conv-act-pool-linear, every act built by ``make_act(channels)``."""

    def __init__(self, make_act: Callable[[int], nn.Module]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = IMAGE[0]
        for i, width in enumerate(WIDTHS):
            layers += [nn.Conv2d(channels, width, 3, padding=1), make_act(width)]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        side = IMAGE[1] // 4
        self.head = nn.Linear(channels * side * side, CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


@dataclass
class Config:
    """One network to time: an activation family under one implementation."""

    family: str
    impl: str  # "eager" or "fused"
    net: Net
    optimizer: torch.optim.Optimizer
    times: list[float] = field(default_factory=list)  # seconds per step, one entry per round
    eval_times: list[float] = field(default_factory=list)  # seconds per no-grad forward, one entry per round
    first_step: float = 0.0  # seconds of the very first step (compilation included)
    saved_bytes: int = 0

    @property
    def label(self) -> str:
        return f"{self.family}/{self.impl}"


@dataclass(frozen=True)
class Setting:
    """Where and how the steps run."""

    device: torch.device
    autocast: torch.dtype | None  # bf16 autocast on CUDA; None = plain fp32
    memory_format: torch.memory_format = torch.channels_last  # the format trials train in (trials/loop.py)
    shape: str = "layer"  # the families' parameter shape, where a family supports it

    @property
    def name(self) -> str:
        precision = "bf16 autocast" if self.autocast is not None else "fp32"
        layout = "channels-last" if self.memory_format == torch.channels_last else "NCHW"
        return f"{self.device.type} {precision}, {layout}, shape {self.shape}"


LSLU_SHELL = "silu+dwconv"
"""SiLU followed by LSLU's own depthwise conv and BatchNorm: what LSLU costs with its series replaced by SiLU."""


class LsluShell(LSLU):
    """LSLU with its element-wise series replaced by SiLU: its depthwise conv and BatchNorm, run as LSLU runs them."""

    def elementwise(self, x: Tensor) -> Tensor:
        return F.silu(x)


def make_config(family: str, impl: str, setting: Setting) -> Config:
    torch.manual_seed(0)

    def make_act(channels: int) -> nn.Module:
        if family == LSLU_SHELL:
            return LsluShell(param_shape=(1,), channels=channels)
        shape = setting.shape if setting.shape in activations.get(family).shapes else "layer"
        return activations.create(family, shape=shape, channels=channels)

    net = Net(make_act).to(setting.device, memory_format=setting.memory_format)
    return Config(family, impl, net, torch.optim.SGD(net.parameters(), lr=LR))


@contextmanager
def implementation(impl: str) -> Iterator[None]:
    fused.set_implementation(impl)
    try:
        yield
    finally:
        fused.set_implementation(None)


def step(config: Config, x: Tensor, y: Tensor, setting: Setting) -> None:
    with torch.autocast(setting.device.type, dtype=setting.autocast, enabled=setting.autocast is not None):
        loss = F.cross_entropy(config.net(x), y)
    loss.backward()
    config.optimizer.step()
    config.optimizer.zero_grad(set_to_none=True)


def evaluate(config: Config, x: Tensor, setting: Setting) -> None:
    """One validation batch: eval mode, no gradients."""
    config.net.eval()
    with (
        torch.no_grad(),
        torch.autocast(setting.device.type, dtype=setting.autocast, enabled=setting.autocast is not None),
    ):
        config.net(x)
    config.net.train()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_bytes(config: Config, x: Tensor, setting: Setting) -> int:
    """Bytes of the unique storages autograd saves for backward during one forward pass."""
    storages: dict[tuple[int, torch.device], int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[(storage.data_ptr(), t.device)] = storage.nbytes()
        return t

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        torch.autocast(setting.device.type, dtype=setting.autocast, enabled=setting.autocast is not None),
    ):
        loss = F.cross_entropy(config.net(x), torch.zeros(x.shape[0], dtype=torch.long, device=x.device))
    loss.backward()
    config.optimizer.zero_grad(set_to_none=True)
    return sum(storages.values())


def run(setting: Setting, families: Sequence[str], repeats: int, steps: int) -> list[Config]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, *IMAGE, generator=generator).to(setting.device)
    y = torch.randint(0, CLASSES, (BATCH,), generator=generator).to(setting.device)
    configs = [make_config("relu", "eager", setting), make_config("silu", "eager", setting)]
    if "lslu" in families:
        configs.append(make_config(LSLU_SHELL, "eager", setting))
    configs += [make_config(f, impl, setting) for f in families for impl in ("eager", "fused")]
    for config in configs:
        with implementation(config.impl):
            sync(setting.device)
            start = time.perf_counter()
            step(config, x, y, setting)  # the first step: allocations, and compilation for "fused"
            sync(setting.device)
            config.first_step = time.perf_counter() - start
            step(config, x, y, setting)
            config.saved_bytes = saved_bytes(config, x, setting)
            evaluate(config, x, setting)
        print(f"  warmed up {config.label:<22} first step {config.first_step:6.2f} s", file=sys.stderr)
    for round_ in range(repeats):
        for config in configs:
            with implementation(config.impl):
                sync(setting.device)
                start = time.perf_counter()
                for _ in range(steps):
                    step(config, x, y, setting)
                sync(setting.device)
                config.times.append((time.perf_counter() - start) / steps)
                start = time.perf_counter()
                for _ in range(steps):
                    evaluate(config, x, setting)
                sync(setting.device)
                config.eval_times.append((time.perf_counter() - start) / steps)
        print(f"  round {round_ + 1}/{repeats} done", file=sys.stderr)
    return configs


def report(setting: Setting, configs: list[Config]) -> None:
    median = {c.label: statistics.median(c.times) for c in configs}
    eval_median = {c.label: statistics.median(c.eval_times) for c in configs}
    relu_t, silu_t = median["relu/eager"], median["silu/eager"]
    silu_eval = eval_median["silu/eager"]
    relu_m = next(c.saved_bytes for c in configs if c.label == "relu/eager")
    silu_m = next(c.saved_bytes for c in configs if c.label == "silu/eager")
    print(f"\n{setting.name}: step time and saved-for-backward memory, medians over {len(configs[0].times)} rounds")
    header = (
        f"{'family':<15}{'impl':<7}{'ms/step':>9}{'xReLU':>8}{'xSiLU':>8}"
        f"{'saved MB':>10}{'xReLU':>8}{'xSiLU':>8}{'eval ms':>9}{'xSiLU':>7}{'1st step s':>12}  target"
    )
    print(header)
    print("-" * len(header))
    for c in configs:
        t, m = median[c.label], c.saved_bytes
        meets = ""
        if c.impl == "fused":
            misses = [
                name
                for name, ok in (("time", t <= TIME_TARGET * silu_t), ("memory", m <= MEMORY_SLACK * silu_m))
                if not ok
            ]
            meets = f"no ({', '.join(misses)})" if misses else "yes"
        print(
            f"{c.family:<15}{c.impl:<7}{1e3 * t:9.1f}{t / relu_t:8.2f}{t / silu_t:8.2f}"
            f"{m / 2**20:10.1f}{m / relu_m:8.2f}{m / silu_m:8.2f}"
            f"{1e3 * eval_median[c.label]:9.1f}{eval_median[c.label] / silu_eval:7.2f}{c.first_step:12.2f}  {meets}"
        )
    shell = next((c for c in configs if c.family == LSLU_SHELL), None)
    if shell is not None:
        # LSLU's depthwise conv and BatchNorm are part of the family, not of its activation: set apart
        # from the SiLU network, they show what the series itself costs.
        shell_t = median[shell.label]
        for c in configs:
            if c.family == "lslu":
                print(
                    f"lslu/{c.impl} against {LSLU_SHELL} (its conv and BatchNorm with SiLU in place of the series): "
                    f"time x{median[c.label] / shell_t:.2f}, memory x{c.saved_bytes / shell.saved_bytes:.2f}"
                )


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    # The vector ISA decides the transcendentals' cost (SLEEF's AVX-512 vs AVX2 code): runs on different ones differ.
    kernels = torch.backends.cpu.get_cpu_capability()
    text = f"CPU: {cpu} ({kernels} kernels), {torch.get_num_threads()} torch threads; torch {torch.__version__}"
    text += f"; Python {platform.python_version()}"
    if device.type == "cuda":
        text += f"; GPU: {torch.cuda.get_device_name(device)}"
    return text


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--families", nargs="+", default=fused.families(), choices=fused.families(), metavar="NAME")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median over them)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per configuration per round")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2 steps (overrides --repeats/--steps)")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all", help="all: CPU, and CUDA if present")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--memory-format",
        choices=tuple(FORMATS),
        default="channels_last",
        help="the network's weight format (default: channels_last, as trials train; the input stays NCHW)",
    )
    parser.add_argument(
        "--shape",
        choices=("layer", "channel"),
        default="layer",
        help="activation parameters per slot or per channel (families without 'channel' keep 'layer')",
    )
    parser.add_argument(
        "--malloc",
        choices=("tuned", "default"),
        default="tuned",
        help="tuned: glibc keeps freed memory, as trials run (aaf_search.trials.malloc); default: glibc's defaults",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 3, 2
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    malloc = "glibc defaults"
    if args.malloc == "tuned":
        malloc = "tuned (freed memory kept)" if tune_malloc() else "defaults (tuning unavailable here)"
    mapped = prefault_torch()
    pages = f"torch's read-only data mapped up front ({mapped / 2**20:.0f} MiB)" if mapped else "mapped on first touch"
    settings = []
    if args.device in ("all", "cpu"):
        settings.append(Setting(torch.device("cpu"), None, FORMATS[args.memory_format], args.shape))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        settings.append(Setting(torch.device("cuda"), torch.bfloat16, FORMATS[args.memory_format], args.shape))
    for setting in settings:
        print(f"{machine(setting.device)}; malloc: {malloc}; pages: {pages}")
        print(f"network: 4 conv {WIDTHS} + linear, input {BATCH}x{'x'.join(map(str, IMAGE))}, SGD step")
        report(setting, run(setting, args.families, args.repeats, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
