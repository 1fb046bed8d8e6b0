"""What compiling a family's fused kernels costs, and over how much training it pays for itself.

    python benchmarks/compile_cost.py [--families coslu lincomb ...] [--repeats 5]

For every family with a fused kernel and each way of compiling it on the CPU (``stored``: traced and
compiled into a file by ``kernel_store``, the default; ``dynamo``: ``torch.compile``, as with
``AAF_KERNEL_STORE=0``), two fresh processes share an empty cache directory and time:

- ``cold`` (the first process): the first fused forward and backward (tracing, Inductor's code
  generation, the C++ compiler) less a compiled call, as a new kernel costs a trial on a machine that
  never compiled it;
- ``warm`` (the second process): the same, now that the first process left its files, as a kernel costs
  a new worker process or trial once the machine has compiled it;
- ``eager`` and ``fused`` (first process, stored path): one forward and backward of a 128 x 32 x 32 x 32
  channels-last input (a conv net's activation, 2^22 elements) on each path (fastest of ``--repeats``
  timings), and from them the time the fused path saves per element and step.

``break-even`` is the stored path's cold / saving: the element-steps (input elements of the kernel's
calls in one training step, times the steps of a trial) from which the fused path's saving repays a cold
compile. ``fused.AUTO_AMORTISED`` holds these for "auto". Each process first compiles a small unrelated
function, so the once-per-process start-up (importing the compiler, its C++ compiler probe: about 5 s)
is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

SHAPE = (128, 32, 32, 32)  # the 4-conv network's largest activation (benchmarks/activations.py), channels-last
SIZE = math.prod(SHAPE)
ELEMENTS_PER_TIMING = 12_000_000
PATHS = ("stored", "dynamo")


def child(family: str, phase: str, repeats: int) -> dict[str, float]:
    """Time one ``phase`` (cold or warm) in this fresh process; returns seconds and microseconds."""
    import torch
    import torch._inductor.standalone_compile  # imported by the first stored kernel: start-up, not counted

    from aaf_search import activations
    from aaf_search.activations import fused
    from aaf_search.trials.malloc import tune_malloc
    from aaf_search.trials.prefault import prefault_torch

    tune_malloc()
    prefault_torch()
    torch.compile(lambda t: t * 2 + 1, dynamic=True)(torch.ones(8))  # Inductor's start-up, not counted

    module = activations.create(family, channels=SHAPE[1]) if family == "lslu" else activations.create(family)
    x = torch.randn(SHAPE).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    grad = torch.ones(SHAPE).contiguous(memory_format=torch.channels_last)

    def step(impl: str) -> float:
        fused.set_implementation(impl)  # type: ignore[arg-type]
        started = time.perf_counter()
        module(x).backward(grad)
        return time.perf_counter() - started

    first = step("fused")
    calls = max(3, ELEMENTS_PER_TIMING // SIZE)

    def fastest(impl: str) -> float:
        best = float("inf")
        for _ in range(repeats if phase == "cold" else 1):
            best = min(best, sum(step(impl) for _ in range(calls)) / calls)
        return best

    fused_s = fastest("fused")
    result = {phase: first - fused_s, "fused_us": fused_s * 1e6}
    if phase == "cold":
        result["eager_us"] = fastest("eager") * 1e6
    return result


def measure(family: str, path: str, repeats: int) -> dict[str, float]:
    """Both phases of one family on one path, in two processes that share a fresh cache directory."""
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="aaf-compile-cost-") as cache:
        env = {
            **os.environ,
            "TORCHINDUCTOR_CACHE_DIR": cache,
            "AAF_KERNEL_CACHE_DIR": os.path.join(cache, "aaf_kernels"),
            "AAF_KERNEL_STORE": "1" if path == "stored" else "0",
        }
        for phase in ("cold", "warm"):
            command = [sys.executable, __file__, "--child", family, "--phase", phase, "--repeats", str(repeats)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{family} ({path}, {phase}): the measuring process failed:\n{done.stderr[-2000:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            result.update(measured if phase == "cold" else {"warm": measured["warm"]})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("cold", "warm"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.phase, args.repeats)))
        return

    import torch

    from aaf_search.activations import fused

    families = args.families or fused.families()
    unknown = sorted(set(families) - set(fused.families()))
    if unknown:
        parser.error(f"no fused kernel for {', '.join(unknown)}; choose from: {', '.join(fused.families())}")
    kernels = torch.backends.cpu.get_cpu_capability()
    print(
        f"machine: {platform.machine()} ({kernels} kernels), {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; forward + backward of a {'x'.join(map(str, SHAPE))} channels-last float32 input"
    )
    compile_columns = "".join(f"{f'{phase} {path}':>14}" for path in PATHS for phase in ("cold", "warm"))
    print(f"{'family':<16}{compile_columns}{'eager us':>10}{'fused us':>10}{'saved ns/el':>12}{'break-even':>12}")
    for family in families:
        runs = {path: measure(family, path, args.repeats) for path in PATHS}
        stored = runs["stored"]
        saved_ns = (stored["eager_us"] - stored["fused_us"]) * 1e3 / SIZE
        even = f"{stored['cold'] / (saved_ns * 1e-9):.2e}" if saved_ns > 0 else "never"
        seconds = "".join(f"{runs[path][phase]:>14.2f}" for path in PATHS for phase in ("cold", "warm"))
        print(
            f"{family:<16}{seconds}{stored['eager_us']:>10.0f}{stored['fused_us']:>10.0f}{saved_ns:>12.2f}{even:>12}",
            flush=True,
        )
    print("(seconds before the first call returns, less a compiled call; break-even: element-steps from which")
    print(" the fused path repays a cold compile on the stored path)")


if __name__ == "__main__":
    main()
