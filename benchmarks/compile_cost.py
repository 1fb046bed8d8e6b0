"""What compiling a family's fused kernels costs, and over how much training it pays for itself.

    python benchmarks/compile_cost.py [--families coslu lincomb ...] [--repeats 5]

For every family with a fused kernel, a fresh process with an empty Inductor cache directory times:

- ``cold``: the first fused forward and backward (Dynamo's trace, Inductor's code generation, the C++
  compiler) less a compiled call, as a new kernel costs a trial on a machine that never compiled it;
- ``warm``: the same after Dynamo's in-memory state is reset, so Inductor's on-disk cache answers, as a
  kernel costs a new worker process when an earlier process compiled it;
- ``eager`` and ``fused``: one forward and backward of a 128 x 32 x 32 x 32 channels-last input (a
  conv net's activation, 2^22 elements) on each path (fastest of ``--repeats`` timings), and from them
  the time the fused path saves per element and step.

``break-even`` is cold / saving: the element-steps (input elements of the kernel's calls in one
training step, times the steps of a trial) from which the fused path's saving repays a cold compile.
``fused.AUTO_AMORTISED`` holds these for "auto". Each process first compiles a small unrelated
function, so Inductor's once-per-process start-up (its C++ compiler probe, about 5 s) is not counted.
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


def child(family: str, repeats: int) -> dict[str, float]:
    """Run in a fresh process whose TORCHINDUCTOR_CACHE_DIR is empty; returns seconds and microseconds."""
    import torch

    from aaf_search import activations
    from aaf_search.activations import fused
    from aaf_search.trials.malloc import tune_malloc
    from aaf_search.trials.prefault import prefault_torch

    tune_malloc()
    prefault_torch()
    torch.compile(lambda t: t * 2 + 1, dynamic=True)(torch.ones(8))  # Inductor's start-up, not counted

    module = activations.create(family)
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
        for _ in range(repeats):
            best = min(best, sum(step(impl) for _ in range(calls)) / calls)
        return best

    fused_s = fastest("fused")
    eager_s = fastest("eager")
    torch._dynamo.reset()
    fused.clear_cache()
    again = step("fused")
    return {
        "cold": first - fused_s,
        "warm": again - fused_s,
        "eager_us": eager_s * 1e6,
        "fused_us": fused_s * 1e6,
    }


def measure(family: str, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aaf-compile-cost-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        command = [sys.executable, __file__, "--child", family, "--repeats", str(repeats)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{family}: the measuring process failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return

    import torch

    from aaf_search.activations import fused

    families = args.families or sorted(set(fused.families()) - {"lslu"})
    unknown = sorted(set(families) - set(fused.families()))
    if unknown:
        parser.error(f"no fused kernel for {', '.join(unknown)}; choose from: {', '.join(fused.families())}")
    kernels = torch.backends.cpu.get_cpu_capability()
    print(
        f"machine: {platform.machine()} ({kernels} kernels), {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; forward + backward of a {'x'.join(map(str, SHAPE))} channels-last float32 input"
    )
    columns = f"{'cold s':>8}{'warm s':>8}{'eager us':>10}{'fused us':>10}{'saved ns/el':>12}{'break-even':>12}"
    print(f"{'family':<16}{columns}")
    for family in families:
        r = measure(family, args.repeats)
        saved_ns = (r["eager_us"] - r["fused_us"]) * 1e3 / SIZE
        even = f"{r['cold'] / (saved_ns * 1e-9):.2e}" if saved_ns > 0 else "never"
        print(
            f"{family:<16}{r['cold']:>8.2f}{r['warm']:>8.2f}{r['eager_us']:>10.0f}{r['fused_us']:>10.0f}"
            f"{saved_ns:>12.2f}{even:>12}",
            flush=True,
        )
    print("(break-even: element-steps from which the fused path repays a cold compile)")


if __name__ == "__main__":
    main()
