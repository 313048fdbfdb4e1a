"""Benchmarks behind the course's speed claims: ``python -m cbam_course bench {overhead,loop,pipeline,...}``.

Each benchmark measures the thing and its baseline in the same process, interleaved round by
round, so that background load hits both alike and the printed ratio stays meaningful on a busy
laptop even when the absolute times do not. ``docs/performance.md`` holds the results and the
exact commands that produced them.

- ``overhead``: the step time (forward + backward) of ``AttentionCNN(attention="cbam")`` over
  ``attention="none"``, as a learner runs it (eager, NCHW), and optionally in channels_last, with
  bfloat16 autocast, under ``torch.compile``, and with CBAM's PyTorch fused step instead of its
  compiled loops (``--pytorch-fused``). The models take turns of a few steps in a row,
  as a training loop runs them, with freed memory kept as ``accelerate`` keeps it on the CPU
  (``fast.cpu.keep_freed_memory``). The last line is ``overhead: N.NNx``.
- ``loop``: one model's steps in a row, alone in its process, with the allocator as it is (or
  ``--keep-freed-memory``): the time and the page faults per step of a training loop of your own.
- ``pipeline``: trains the seed's model for a fixed number of steps, interleaved: the seed's
  pipeline (PIL transforms, a DataLoader with 2 workers, eager, the seed's own modules) and the
  course's (batched tensor augmentation from memory, the fused CBAM, channels_last) in float32
  and, where the CPU has native bfloat16, under bfloat16 autocast as the laptop profile trains.
  Same model size, batch, optimizer and augmentation distribution. The last line is
  ``speedup: N.NNx`` for the laptop profile's set-up (``--amp off``: float32).
- ``laptop``: the laptop profile end to end on real CIFAR-10 (``--data DIR``), timed from
  before the data is loaded to the last evaluation; prints the test accuracy with and without
  flip test-time augmentation.
- ``full``: the same for the full profile (meant for a GPU), and the epoch and wall time at
  which the test accuracy first reached ``--target`` (default: the seed's 91.11%).

``overhead --device cuda`` measures the overhead on a GPU; ``tools/gpu_bench.sh`` runs the GPU
measurements of ``docs/performance.md`` in one go on a lent machine.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import time
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..measure import interleave
from ..seed import CBAM_CNN as SeedCBAM_CNN
from . import accelerate
from .cpu import cpu_has_native_bfloat16, keep_freed_memory

__all__ = ["main", "measure_overhead", "measure_loop", "measure_pipeline", "machine_line"]


# ----------------------------------------------------------------------------------------------
# helpers


def machine_line() -> str:
    """One line that says where and when a number was measured."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = "n/a"
    if hasattr(os, "getloadavg"):
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    caps = [f"kernels {torch.backends.cpu.get_cpu_capability()}"]  # AVX2 under ATEN_CPU_CAPABILITY=avx2
    caps += [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "NUMBA_CPU_NAME") if os.environ.get(k)]
    return (f"machine: {model}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, {gpu}, "
            f"{', '.join(caps)}; torch {torch.__version__}; {now}; load average {load}")


def _allocator_line(kept: bool) -> str:
    """What the benchmark's process does with freed memory (see fast.cpu.keep_freed_memory)."""
    return "allocator: " + ("freed memory kept for the next step (keep_freed_memory(), as accelerate() does)" if kept
                            else "as the C library sets it (page faults depend on the process's history)")


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,32, got {text!r}") from None
    if not values or min(values) < 16:
        raise argparse.ArgumentTypeError(f"widths must be at least 16 (CBAM's ratio), got {text!r}")
    return values


# ----------------------------------------------------------------------------------------------
# overhead: CBAM's step time over no attention


def seed_output_difference(width: int = 16, batch: int = 4, seed: int = 0) -> float:
    """Largest |difference| between the course's accelerated CBAM network and the seed's, same weights."""
    from ..models import AttentionCNN

    torch.manual_seed(seed)
    theirs = SeedCBAM_CNN(width=width).eval()
    ours = accelerate(AttentionCNN(attention="cbam", width=width), keep_memory=False).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(batch, 3, 32, 32)
    with torch.no_grad():
        return float((ours(x) - theirs(x)).abs().max())


def measure_overhead(width: int, batch: int = 64, rounds: int = 20, channels_last: bool = False,
                     compiled: bool = False, amp: bool = False, with_plain: bool = True,
                     seed: int = 0, device: str | torch.device = "cpu", with_se: bool = False,
                     block: int = 4, with_pytorch_fused: bool = False) -> dict[str, float]:
    """Median seconds of one training step (forward + backward, no optimizer) per model, the
    models taking turns of ``block`` steps in a row (the first of each turn not timed).

    Models: ``none``, ``cbam`` (the course's CBAM, fused on the CPU) and, with ``with_plain``,
    ``cbam-plain`` (the same CBAM without ``accelerate``: the seed's operations), with
    ``with_pytorch_fused`` ``cbam-pytorch`` (``accelerate(loops=False)``: the fused step without numba's
    loops; NCHW float32 only, elsewhere it is ``cbam``'s path anyway), and with ``with_se`` ``se``
    (SE blocks in the same slots, for lesson 06's comparison). Keys ending in ``compile_s`` hold
    compile times when ``compiled``. ``amp`` runs under bfloat16 autocast. On a
    GPU each step ends with a synchronisation, so the time is the device's, not the launch's
    (there CBAM always takes the plain path, so ``cbam-plain`` is left out).
    """
    from ..models import AttentionCNN

    device = torch.device(device)
    torch.manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    def network(attention: str, fast: bool = True, loops: bool = True) -> nn.Module:
        model = AttentionCNN(attention=attention, width=width).to(device)
        return accelerate(model, loops=loops, keep_memory=False) if fast else model

    models = {"none": network("none"), "cbam": network("cbam")}
    if with_se:
        models["se"] = network("se")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if with_plain and not compiled and device.type == "cpu":  # compiled, both paths are the same graph to inductor
        models["cbam-plain"] = network("cbam", fast=False)
    if with_pytorch_fused and not (compiled or channels_last or amp) and device.type == "cpu":  # else the same path
        models["cbam-pytorch"] = network("cbam", loops=False)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        models = {n: m.to(memory_format=torch.channels_last) for n, m in models.items()}
    result: dict[str, float] = {}
    runs = {}
    for name, model in models.items():
        model.train()
        fn = torch.compile(model) if compiled else model

        def step(model=model, fn=fn):
            model.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(fn(x), y)
            loss.backward()
            sync()

        if compiled:
            t0 = time.perf_counter()
            step()
            result[f"{name} compile_s"] = time.perf_counter() - t0
        runs[name] = step
    times = interleave(runs, rounds, block=block)
    result.update({name: _median(t) for name, t in times.items()})
    return result


def _overhead_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m cbam_course bench overhead",
                                description="CBAM's training-step time over the same CNN without attention.")
    p.add_argument("--widths", type=_int_list, default=[64, 32], help="first-block widths (default 64,32)")
    p.add_argument("--batch", type=_positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--rounds", type=_positive_int, default=20, help="timed steps per model (default 20)")
    p.add_argument("--channels-last", action="store_true", help="also measure in channels_last memory format")
    p.add_argument("--amp", action="store_true",
                   help="also measure in the laptop profile's set-up: channels_last and bfloat16 CPU autocast")
    p.add_argument("--compile", action="store_true", help="also measure under torch.compile (slow to compile)")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    p.add_argument("--se", action="store_true", help="also measure SE blocks in the same slots")
    p.add_argument("--pytorch-fused", action="store_true",
                   help="also measure CBAM's fused step without numba's compiled loops (accelerate(model, loops=False))")
    p.add_argument("--block", type=_positive_int, default=4,
                   help="steps in a row per model and turn, the first not timed (default 4; 1: alternate every step)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave the allocator as it is (default: keep_freed_memory(), as accelerate() on the CPU)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..runtime import get_device

    try:
        device = get_device(args.device)
    except ValueError as err:
        print(f"error: {err}")
        return 2
    turns = (f"in turns of {args.block} steps per model (the first not timed)" if args.block > 1
             else "alternating models every step")
    kept = device.type == "cpu" and not args.default_malloc and keep_freed_memory()
    print(f"CBAM overhead: one training step (forward + backward) at batch {args.batch}, 32x32 inputs, "
          f"median of {args.rounds} steps {turns}, on {device.type}")
    if device.type == "cpu":
        print(_allocator_line(kept))
    print(machine_line())
    diff = seed_output_difference()
    print(f"outputs equal the seed's CBAM_CNN: max |difference| {diff:.1e} "
          f"({'ok' if diff <= 1e-5 else 'NOT EQUAL'}, tolerance 1e-5)")
    configs = [("eager NCHW", False, False, False)]
    if args.channels_last:
        configs.append(("eager channels_last", True, False, False))
    if args.amp:
        configs.append(("channels_last+bf16", True, False, True))
    if args.compile:
        configs.append(("torch.compile NCHW", False, True, False))
    print(f"{'config':<22}{'width':>6}{'none ms':>10}{'cbam ms':>10}{'overhead':>10}"
          f"{'seed-ops ms':>13}{'seed-ops overhead':>19}" + (f"{'se ms':>9}{'se overhead':>13}" if args.se else "")
          + (f"{'pytorch-fused ms':>18}{'overhead':>10}" if args.pytorch_fused else ""))
    headline = None
    for label, cl, comp, amp in configs:
        for width in args.widths:
            r = measure_overhead(width, args.batch, args.rounds, channels_last=cl, compiled=comp, amp=amp,
                                 device=device, with_se=args.se, block=args.block,
                                 with_pytorch_fused=args.pytorch_fused)
            ratio = r["cbam"] / r["none"]
            plain = (f"{r['cbam-plain'] * 1e3:13.1f}{r['cbam-plain'] / r['none']:18.2f}x"
                     if "cbam-plain" in r else f"{'-':>13}{'-':>19}")
            se = f"{r['se'] * 1e3:9.1f}{r['se'] / r['none']:12.2f}x" if "se" in r else ""
            pf = (f"{r['cbam-pytorch'] * 1e3:18.1f}{r['cbam-pytorch'] / r['none']:9.2f}x" if "cbam-pytorch" in r
                  else f"{'-':>18}{'-':>10}" if args.pytorch_fused else "")
            print(f"{label:<22}{width:>6}{r['none'] * 1e3:10.1f}{r['cbam'] * 1e3:10.1f}{ratio:9.2f}x{plain}{se}{pf}")
            if comp:
                print(f"{'':<22}{'':>6}  compile + first step: none {r['none compile_s']:.0f} s, "
                      f"cbam {r['cbam compile_s']:.0f} s")
            if headline is None:
                headline = (ratio, label, width)
    ratio, label, width = headline
    print(f"overhead: {ratio:.2f}x ({label}, width {width})")
    return 0


# ----------------------------------------------------------------------------------------------
# loop: one model, step after step, as a training loop of one's own runs it


def measure_loop(attention: str, width: int = 64, batch: int = 64, steps: int = 30,
                 seed: int = 0) -> tuple[list[float], list[int]]:
    """Seconds and page faults (minor: memory taken back from the system) of ``steps``
    training steps (forward + backward) of one AttentionCNN in a row, after 3 untimed ones.
    Where the system does not count page faults (Windows) they are all 0."""
    from ..models import AttentionCNN

    try:
        import resource
    except ImportError:  # Windows
        resource = None
    torch.manual_seed(seed)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    model = accelerate(AttentionCNN(attention=attention, width=width), keep_memory=False)

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0

    seconds, page_faults = [], []
    for i in range(3 + steps):
        f0, t0 = faults(), time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if i >= 3:
            seconds.append(time.perf_counter() - t0)
            page_faults.append(faults() - f0)
    return seconds, page_faults


def _loop_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cbam_course bench loop",
        description="One model's training steps in a row, in this process alone, as a loop of your own runs "
                    "them: the time and page faults per step. Compare models by running it once per model.")
    p.add_argument("--attention", default="cbam", choices=["none", "se", "cbam"], help="default cbam")
    p.add_argument("--width", type=_positive_int, default=64, help="first-block width (default 64)")
    p.add_argument("--batch", type=_positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--steps", type=_positive_int, default=30, help="timed steps (default 30)")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--keep-freed-memory", action="store_true", help="call keep_freed_memory() first, as accelerate() does")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = args.keep_freed_memory and keep_freed_memory()
    seconds, faults = measure_loop(args.attention, args.width, args.batch, args.steps)
    print(machine_line())
    print(_allocator_line(kept))
    print(f"{args.attention}, width {args.width}, batch {args.batch}: {_median(seconds) * 1e3:.1f} ms per step "
          f"(median of {args.steps}), page faults per step: median {int(_median(faults))}, "
          f"most {max(faults)}")
    return 0


# ----------------------------------------------------------------------------------------------
# pipeline: the seed's training pipeline against the course's


class _PILDataset(torch.utils.data.Dataset):
    """uint8 images held in memory, handed out as PIL images, as torchvision's CIFAR10 does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, 32, 32, 3), like CIFAR10.data
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def _seed_transform():
    import torchvision.transforms as transforms

    from ..train.data import CIFAR10_MEAN, CIFAR10_STD

    return transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ])


def _forever(make_iter: Callable[[], object]):
    while True:
        yield from make_iter()


def measure_pipeline(images: torch.Tensor, labels: torch.Tensor, steps: int = 60, chunk: int = 20,
                     batch: int = 128, width: int = 64, workers: int = 2, channels_last: bool = True,
                     bf16: bool = False, seed: int = 0,
                     log: Callable[[str], None] | None = print) -> dict[str, float]:
    """Images per second of the seed's pipeline and the course's, ``steps`` training steps each.

    All train the same network (the seed's CBAM_CNN at ``width``; the course's AttentionCNN
    loads the same initial weights) with the seed's optimizer (Adam 1e-3, weight decay 1e-4) on
    the same data with the same augmentation distribution (random crop 32 with zero padding 4,
    horizontal flip with p=0.5, the seed's normalisation).

    - ``seed``: PIL transforms per image in a DataLoader with ``workers`` processes, the seed's
      modules, float32;
    - ``course``: the course's BatchLoader (uint8 images in memory, augmented a batch at a time,
      no workers) and AttentionCNN with the fused CBAM, float32; with ``channels_last`` model
      and batches use that memory format (the same numbers, laid out for faster convolutions);
    - ``course-bf16`` (with ``bf16``): the same under bfloat16 CPU autocast, as the laptop
      profile trains where the CPU has native bfloat16 (the same operations, less precision).

    They run in turns of ``chunk`` steps, after a short warm-up each. Each turn starts a fresh
    iterator (as an epoch does), so the seed's workers cannot prepare batches while another
    pipeline is being timed; the seed pays its workers' start-up once per turn instead of once
    per epoch (about 1% at the defaults). Returns images per second by name.
    """
    from ..train.data import BatchLoader, ImageSet
    from ..models import AttentionCNN

    torch.manual_seed(seed)
    seed_model = SeedCBAM_CNN(num_classes=10, width=width)
    criterion = nn.CrossEntropyLoss()
    dataset = _PILDataset(images, labels, _seed_transform())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                         drop_last=True)
    data = ImageSet(images, labels, description="benchmark images")
    pipelines = {"seed": (seed_model, lambda: iter(loader), False)}
    for name, use_amp in (("course", False), ("course-bf16", True)):
        if use_amp and not bf16:
            continue
        model = accelerate(AttentionCNN(num_classes=10, attention="cbam", width=width), keep_memory=False)
        model.load_state_dict(seed_model.state_dict())
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        course_loader = BatchLoader(data, batch_size=batch, shuffle=True, augment=True, drop_last=True,
                                    seed=seed, channels_last=channels_last)
        pipelines[name] = (model, lambda cl=course_loader: _forever(lambda: iter(cl)), use_amp)
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-4)
                  for name, (m, _, _) in pipelines.items()}

    def train(name, n):
        model, make_batches, use_amp = pipelines[name]
        opt = optimizers[name]
        model.train()
        batches = make_batches()
        for _ in range(n):
            x, y = next(batches)
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_amp):
                loss = criterion(model(x), y)
            loss.backward()
            opt.step()
        del batches  # a DataLoader iterator shuts its workers down

    for name in pipelines:  # warm-up
        train(name, min(chunk, 3))
    seconds = {name: 0.0 for name in pipelines}
    done = {name: 0 for name in pipelines}
    while min(done.values()) < steps:
        for name in pipelines:
            n = min(chunk, steps - done[name])
            t0 = time.perf_counter()
            train(name, n)
            seconds[name] += time.perf_counter() - t0
            done[name] += n
        if log:
            log(f"  {done['seed']:>4} steps: " + ", ".join(
                f"{name} {done[name] * batch / seconds[name]:.1f} img/s" for name in pipelines))
    return {name: steps * batch / seconds[name] for name in pipelines}


def _load_images(data_dir: str | None, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    from ..train.data import load_cifar10, make_standin

    if data_dir:
        train = load_cifar10(data_dir, train=True)
        return train.images, train.labels, train.description
    train, _ = make_standin(n_train=n, n_test=10, seed=seed)
    return train.images, train.labels, train.description


def _pipeline_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m cbam_course bench pipeline",
                                description="Train the seed's model with the seed's pipeline and the course's, "
                                            "interleaved; print images per second and the speedup.")
    p.add_argument("--steps", type=_positive_int, default=60, help="timed training steps per pipeline (default 60)")
    p.add_argument("--chunk", type=_positive_int, default=20, help="steps per turn (default 20)")
    p.add_argument("--batch", type=_positive_int, default=128, help="batch size (default 128, the seed's)")
    p.add_argument("--width", type=_positive_int, default=64, help="first-block width (default 64, the seed's)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the seed's pipeline (default 2)")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default: the generated stand-in)")
    p.add_argument("--n-images", type=_positive_int, default=5000, help="stand-in size (default 5000)")
    p.add_argument("--channels-last", choices=("on", "off"), default="on",
                   help="the course's model and batches in channels_last memory format (default on)")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="also time the course under bfloat16 CPU autocast, as the laptop profile trains "
                        "(auto: where the CPU has native bfloat16); the speedup line then reports it")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.width < 16:
        p.error("--width must be at least 16 (CBAM's ratio)")
    images, labels, description = _load_images(args.data, args.n_images, args.seed)
    print(f"Pipeline: the seed's CBAM_CNN (width {args.width}), batch {args.batch}, Adam 1e-3; "
          f"{args.steps} timed steps each, in turns of {args.chunk}")
    print(f"data: {description} ({len(labels)} images, held in memory by both pipelines)")
    print("seed:   torchvision PIL transforms (RandomCrop 32 pad 4, flip, ToTensor, Normalize), "
          f"DataLoader with {args.workers} workers, the seed's modules")
    bf16 = cpu_has_native_bfloat16() if args.amp == "auto" else args.amp == "on"
    print("course: BatchLoader (batched crop/flip/normalise on uint8 tensors, no workers), AttentionCNN "
          f"with the fused CBAM, channels_last {args.channels_last}; float32"
          + (", and again under bfloat16 CPU autocast (course-bf16)" if bf16 else ""))
    print(machine_line())
    r = measure_pipeline(images, labels, steps=args.steps, chunk=args.chunk, batch=args.batch,
                         width=args.width, workers=args.workers, channels_last=args.channels_last == "on",
                         bf16=bf16, seed=args.seed)
    print(f"seed pipeline:               {r['seed']:8.1f} images/s")
    print(f"course pipeline, float32:    {r['course']:8.1f} images/s  ({r['course'] / r['seed']:.2f}x the seed's)")
    if "course-bf16" in r:
        print(f"course pipeline, bfloat16:   {r['course-bf16']:8.1f} images/s  "
              f"({r['course-bf16'] / r['seed']:.2f}x the seed's; the laptop profile's set-up)")
    best = r.get("course-bf16", r["course"])
    print(f"speedup: {best / r['seed']:.2f}x")
    return 0


# ----------------------------------------------------------------------------------------------
# laptop / full: a profile end to end, on real CIFAR-10


def _profile_main(name: str, argv: list[str]) -> int:
    """``bench laptop`` (the CPU profile, time-budgeted) and ``bench full`` (the GPU profile).

    It trains through :func:`~cbam_course.train.run.train_model` with the profile's own choices
    (set-up chosen by measurement, recipe, budget, final test with flip TTA), so the figure it
    prints is what a learner's lesson 05 gets; options only override them, for ablations."""
    defaults = {"laptop": ("cpu", 80.0), "full": (None, 91.11)}
    default_device, default_target = defaults[name]
    p = argparse.ArgumentParser(prog=f"python -m cbam_course bench {name}",
                                description=f"The {name} profile end to end, as train_model runs it: load "
                                            "CIFAR-10, train within the time budget (if any), test once with "
                                            "and without flip TTA, and say how much of the budget was used.")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default: $CBAM_COURSE_DATA or data/)")
    p.add_argument("--attention", choices=("none", "se", "cbam"), default="cbam")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds for everything, loading and evaluation included (default: the profile's; 0: none)")
    p.add_argument("--width", type=_positive_int, default=None, help="default: the profile's")
    p.add_argument("--recipe", default=None, help="default: the profile's")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs the schedule plans for (default: the profile's); a time budget may stop it sooner")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a recipe field, e.g. --set batch_size=512 --set label_smoothing=0.2 (repeatable)")
    p.add_argument("--device", default=default_device,
                   help=f"cpu, cuda or mps (default: {default_device or 'the best at hand'})")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="bfloat16/float16 autocast (auto: the profile's choice, by measurement on a CPU)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="channels_last memory format (auto: the profile's choice, by measurement on a CPU)")
    p.add_argument("--target", type=float, default=default_target,
                   help=f"report the first epoch whose validation accuracy reaches this (default {default_target})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None, help="folder for checkpoint.pt and metrics.json (optional)")
    p.add_argument("--quick", action="store_true", help="the generated stand-in, a few steps (smoke test)")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..runtime import get_device
    from ..train.data import DataError
    from ..train.recipes import get_profile, get_recipe
    from ..train.run import load_profile_data, train_model

    profile = get_profile("quick" if args.quick else name)
    budget = args.time_budget if args.time_budget is not None else profile.time_budget
    budget = None if budget == 0 else budget  # --time-budget 0: the planned epochs, however long
    try:
        overrides = _recipe_overrides(args.set)
        recipe = get_recipe(args.recipe or profile.recipe, **overrides)
        device = get_device(args.device)
    except (TypeError, ValueError) as err:
        print(f"error: {err}")
        return 2
    amp = None if args.amp == "auto" else args.amp == "on"
    channels_last = None if args.channels_last == "auto" else args.channels_last == "on"
    print(f"{name.capitalize()} profile: {args.attention}, width {args.width or profile.width}, recipe {recipe.name} "
          f"({', '.join(f'{k}={v}' for k, v in overrides.items()) or 'as defined'}), "
          f"{args.epochs or profile.epochs} planned epochs, on {device.type}; "
          + (f"budget {budget:.0f} s wall, loading and evaluation included" if budget else "no time budget"))
    print(machine_line())
    try:
        train_data, test_data = load_profile_data(profile, args.data, args.seed)
    except DataError as err:
        print(f"error: {' '.join(str(err).split())}")
        return 1
    t_loaded = time.perf_counter()
    print(f"data: {len(train_data)} training and {len(test_data)} test images "
          f"({'the generated stand-in' if train_data.is_standin else 'real images'}); "
          f"loaded in {t_loaded - t_start:.1f} s")
    if budget is not None and budget <= t_loaded - t_start:
        print(f"error: no epoch fits in the {budget:.0f} s budget (loading took {t_loaded - t_start:.1f} s); "
              f"give it a larger --time-budget.")
        return 1
    trainer = train_model(args.attention, profile=profile, recipe=recipe, epochs=args.epochs, width=args.width,
                          data=(train_data, test_data), out_dir=args.out, seed=args.seed,
                          time_budget=None if budget is None else budget - (t_loaded - t_start), device=device,
                          progress=False, live_plot=False, amp=amp, channels_last=channels_last)
    t_end = time.perf_counter()
    h = trainer.history
    if not h.epochs or h.test is None:
        print(f"error: no epoch fits in the {budget:.0f} s budget (loading took "
              f"{t_loaded - t_start:.0f} s); give it a larger --time-budget.")
        return 1
    print(f"trained {trainer.step} steps ({trainer.step * recipe.batch_size / len(trainer.train_loader.data):.2f} "
          f"passes over {len(trainer.train_loader.data)} images, {trainer.epoch} evaluations on the "
          f"{'validation split' if h.eval_split == 'val' else 'test set'}); set-up: "
          f"{'channels_last' if trainer.channels_last else 'NCHW'}, "
          f"{'autocast ' + str(trainer.amp_dtype).split('.')[-1] if trainer.amp else 'float32'}, "
          f"{torch.get_num_threads()} threads")
    wall, reached = t_loaded - t_start, None
    for e in h.epochs:
        wall += e["seconds"]
        if reached is None and e[f"{h.eval_split}_acc"] >= args.target:
            reached = (e["epoch"], wall)
        print(f"  epoch {e['epoch']}: train acc {e['train_acc']:.2f}%, {h.eval_split} acc "
              f"{e[f'{h.eval_split}_acc']:.2f}%, {e['seconds']:.1f} s ({wall:.0f} s wall), {e['steps']} steps, "
              f"lr {e['lr']:.4f}")
    if reached:
        print(f"target {args.target:.2f}% first reached ({h.eval_split}) at epoch {reached[0]}, {reached[1]:.0f} s wall")
    else:
        print(f"target {args.target:.2f}% not reached on {h.eval_split} (best {max(h.eval_acc):.2f}%)")
    print(f"test accuracy without TTA: {h.test['acc']:.2f}%")
    if h.test.get("tta_acc") is not None:
        print(f"test accuracy with flip TTA: {h.test['tta_acc']:.2f}%")
    lr = trainer.optimizer.param_groups[0]["lr"]
    print(f"wall time: {t_end - t_start:.1f} s"
          + (f" of the {budget:.0f} s budget ({100 * (t_end - t_start) / budget:.1f}% used)" if budget else "")
          + f"; last learning rate {lr:.2g} ({lr / recipe.lr:.1%} of the peak)")
    return 0


def _recipe_overrides(pairs: list[str]) -> dict:
    """``["batch_size=512", "label_smoothing=0.2"]`` -> typed Recipe field overrides."""
    import dataclasses

    from ..train.recipes import Recipe

    fields = {f.name: f.type for f in dataclasses.fields(Recipe)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in fields or key == "name":
            raise ValueError(f"--set {pair!r}: use FIELD=VALUE with one of the recipe's fields: "
                             f"{', '.join(k for k in fields if k != 'name')}.")
        kind = fields[key] if isinstance(fields[key], str) else fields[key].__name__
        out[key] = (value.lower() in ("1", "true", "yes", "on") if kind == "bool" else
                    int(value) if kind == "int" else float(value) if kind == "float" else value)
    return out


def _laptop_main(argv: list[str]) -> int:
    return _profile_main("laptop", argv)


def _full_main(argv: list[str]) -> int:
    return _profile_main("full", argv)


# ----------------------------------------------------------------------------------------------

_COMMANDS = {"overhead": _overhead_main, "loop": _loop_main, "pipeline": _pipeline_main, "laptop": _laptop_main,
             "full": _full_main}
USAGE = ("usage: python -m cbam_course bench {overhead,loop,pipeline,laptop,full} [options]  "
         "(--help after one for its options)")


def main(argv: list[str] | None = None) -> int:
    """``python -m cbam_course bench ...``: run one benchmark; returns the exit code."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE + "\n\n" + (__doc__ or "").split("\n\n", 2)[2] if argv else USAGE,
              file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command = argv[0]
    if command not in _COMMANDS:
        print(f"error: unknown benchmark {command!r}. {USAGE}", file=sys.stderr)
        return 2
    return _COMMANDS[command](argv[1:])
