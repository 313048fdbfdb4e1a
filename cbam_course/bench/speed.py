"""The speed layer's benchmarks: ``python -m cbam_course bench overhead|loop|pipeline``.

Each measures the thing and its baseline in the same process, interleaved round by round
(:func:`cbam_course.measure.interleave`), so that background load hits both alike and the printed
ratio stays meaningful on a busy laptop even when the absolute times do not.

- ``overhead``: the step time (forward + backward) of ``AttentionCNN(attention="cbam")`` over
  ``attention="none"``, as a learner runs it (eager, NCHW), and optionally in channels_last, with
  bfloat16 autocast, under ``torch.compile``, and with CBAM's PyTorch fused step instead of its
  compiled loops (``--pytorch-fused``). The models take turns of a few steps in a row, as a
  training loop runs them, with freed memory kept as ``accelerate`` keeps it on the CPU
  (``fast.cpu.keep_freed_memory``). The last line is ``overhead: N.NNx``.
- ``loop``: one model's steps in a row, alone in its process, with the allocator as it is (or
  ``--keep-freed-memory``): the time and the page faults per step of a training loop of your own.
- ``pipeline``: trains the Day 50 lesson's model for a fixed number of steps, interleaved: that
  lesson's pipeline (PIL transforms, a DataLoader with 2 workers, eager, its own modules) and the
  course's (batched tensor augmentation from memory, the fused CBAM, channels_last) in float32
  and, where the CPU has native bfloat16, under bfloat16 autocast as the laptop profile trains.
  Same model size, batch, optimizer and augmentation distribution. The last line is
  ``speedup: N.NNx`` for the laptop profile's set-up (``--amp off``: float32).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fast import accelerate
from ..fast.cpu import cpu_has_native_bfloat16, keep_freed_memory, machine_line
from ..measure import interleave
from ..models import AttentionCNN
from ..runtime import get_device
from ..day50 import CBAM_CNN as Day50CNN
from ..train.data import CIFAR10_MEAN, CIFAR10_STD, BatchLoader, ImageSet, make_standin
from ..train.cifar10 import load_cifar10

__all__ = ["COMMANDS", "measure_overhead", "measure_loop", "measure_pipeline"]


# ----------------------------------------------------------------------------------------------
# helpers


def _allocator_line(kept: bool) -> str:
    """What the benchmark's process does with freed memory (see fast.cpu.keep_freed_memory)."""
    return "allocator: " + ("freed memory kept for the next step (keep_freed_memory(), as accelerate() does)" if kept
                            else "as the C library sets it (page faults depend on the process's history)")


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


def day50_output_difference(width: int = 16, batch: int = 4, seed: int = 0) -> float:
    """Largest |difference| between the course's accelerated CBAM network and the Day 50 lesson's, same weights."""
    torch.manual_seed(seed)
    theirs = Day50CNN(width=width).eval()
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
    ``cbam-plain`` (the same CBAM without ``accelerate``: the plain formula), with
    ``with_pytorch_fused`` ``cbam-pytorch`` (``accelerate(loops=False)``: the fused step without numba's
    loops; NCHW float32 only, elsewhere it is ``cbam``'s path anyway), and with ``with_se`` ``se``
    (SE blocks in the same slots, for lesson 06's comparison). Keys ending in ``compile_s`` hold
    compile times when ``compiled``. ``amp`` runs under bfloat16 autocast. On a
    GPU each step ends with a synchronisation, so the time is the device's, not the launch's
    (there CBAM always takes the plain path, so ``cbam-plain`` is left out).
    """
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
    result.update({name: statistics.median(t) for name, t in times.items()})
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
    print("machine: " + machine_line(full=True))
    diff = day50_output_difference()
    print(f"outputs equal the Day 50 lesson's CBAM_CNN: max |difference| {diff:.1e} "
          f"({'ok' if diff <= 1e-5 else 'NOT EQUAL'}, tolerance 1e-5)")
    configs = [("eager NCHW", False, False, False)]
    if args.channels_last:
        configs.append(("eager channels_last", True, False, False))
    if args.amp:
        configs.append(("channels_last+bf16", True, False, True))
    if args.compile:
        configs.append(("torch.compile NCHW", False, True, False))
    print(f"{'config':<22}{'width':>6}{'none ms':>10}{'cbam ms':>10}{'overhead':>10}"
          f"{'plain ms':>13}{'plain overhead':>19}" + (f"{'se ms':>9}{'se overhead':>13}" if args.se else "")
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
    print("machine: " + machine_line(full=True))
    print(_allocator_line(kept))
    print(f"{args.attention}, width {args.width}, batch {args.batch}: {statistics.median(seconds) * 1e3:.1f} ms per step "
          f"(median of {args.steps}), page faults per step: median {int(statistics.median(faults))}, "
          f"most {max(faults)}")
    return 0


# ----------------------------------------------------------------------------------------------
# pipeline: the Day 50 lesson's training pipeline against the course's


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


def _day50_transform():
    import torchvision.transforms as transforms

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
    """Images per second of the Day 50 lesson's pipeline and the course's, ``steps`` training steps each.

    All train the same network (the Day 50 lesson's CBAM_CNN at ``width``; the course's AttentionCNN
    loads the same initial weights) with the Day 50 lesson's optimizer (Adam 1e-3, weight decay 1e-4) on
    the same data with the same augmentation distribution (random crop 32 with zero padding 4,
    horizontal flip with p=0.5, the Day 50 lesson's normalisation).

    - ``day50``: PIL transforms per image in a DataLoader with ``workers`` processes, that lesson's
      modules, float32;
    - ``course``: the course's BatchLoader (uint8 images in memory, augmented a batch at a time,
      no workers) and AttentionCNN with the fused CBAM, float32; with ``channels_last`` model
      and batches use that memory format (the same numbers, laid out for faster convolutions);
    - ``course-bf16`` (with ``bf16``): the same under bfloat16 CPU autocast, as the laptop
      profile trains where the CPU has native bfloat16 (the same operations, less precision).

    They run in turns of ``chunk`` steps, after a short warm-up each. Each turn starts a fresh
    iterator (as an epoch does), so the Day 50 pipeline's workers cannot prepare batches while another
    pipeline is being timed; it pays its workers' start-up once per turn instead of once
    per epoch (about 1% at the defaults). Returns images per second by name.
    """
    torch.manual_seed(seed)
    day50_model = Day50CNN(num_classes=10, width=width)
    criterion = nn.CrossEntropyLoss()
    dataset = _PILDataset(images, labels, _day50_transform())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                         drop_last=True)
    data = ImageSet(images, labels, description="benchmark images")
    pipelines = {"day50": (day50_model, lambda: iter(loader), False)}
    for name, use_amp in (("course", False), ("course-bf16", True)):
        if use_amp and not bf16:
            continue
        model = accelerate(AttentionCNN(num_classes=10, attention="cbam", width=width), keep_memory=False)
        model.load_state_dict(day50_model.state_dict())
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
            log(f"  {done['day50']:>4} steps: " + ", ".join(
                f"{name} {done[name] * batch / seconds[name]:.1f} img/s" for name in pipelines))
    return {name: steps * batch / seconds[name] for name in pipelines}


def _load_images(data_dir: str | None, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    if data_dir:
        train = load_cifar10(data_dir, train=True)
        return train.images, train.labels, train.description
    train, _ = make_standin(n_train=n, n_test=10, seed=seed)
    return train.images, train.labels, train.description


def _pipeline_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m cbam_course bench pipeline",
                                description="Train the Day 50 lesson's model with its pipeline and the course's, "
                                            "interleaved; print images per second and the speedup.")
    p.add_argument("--steps", type=_positive_int, default=60, help="timed training steps per pipeline (default 60)")
    p.add_argument("--chunk", type=_positive_int, default=20, help="steps per turn (default 20)")
    p.add_argument("--batch", type=_positive_int, default=128, help="batch size (default 128, the Day 50 lesson's)")
    p.add_argument("--width", type=_positive_int, default=64, help="first-block width (default 64, the Day 50 lesson's)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the Day 50 lesson's pipeline (default 2)")
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
    print(f"Pipeline: the Day 50 lesson's CBAM_CNN (width {args.width}), batch {args.batch}, Adam 1e-3; "
          f"{args.steps} timed steps each, in turns of {args.chunk}")
    print(f"data: {description} ({len(labels)} images, held in memory by both pipelines)")
    print("day50:  torchvision PIL transforms (RandomCrop 32 pad 4, flip, ToTensor, Normalize), "
          f"DataLoader with {args.workers} workers, that lesson's modules")
    bf16 = cpu_has_native_bfloat16() if args.amp == "auto" else args.amp == "on"
    print("course: BatchLoader (batched crop/flip/normalise on uint8 tensors, no workers), AttentionCNN "
          f"with the fused CBAM, channels_last {args.channels_last}; float32"
          + (", and again under bfloat16 CPU autocast (course-bf16)" if bf16 else ""))
    print("machine: " + machine_line(full=True))
    r = measure_pipeline(images, labels, steps=args.steps, chunk=args.chunk, batch=args.batch,
                         width=args.width, workers=args.workers, channels_last=args.channels_last == "on",
                         bf16=bf16, seed=args.seed)
    print(f"day50 pipeline:              {r['day50']:8.1f} images/s")
    print(f"course pipeline, float32:    {r['course']:8.1f} images/s  ({r['course'] / r['day50']:.2f}x the Day 50 lesson's)")
    if "course-bf16" in r:
        print(f"course pipeline, bfloat16:   {r['course-bf16']:8.1f} images/s  "
              f"({r['course-bf16'] / r['day50']:.2f}x the Day 50 lesson's; the laptop profile's set-up)")
    best = r.get("course-bf16", r["course"])
    print(f"speedup: {best / r['day50']:.2f}x")
    return 0


COMMANDS = {"overhead": _overhead_main, "loop": _loop_main, "pipeline": _pipeline_main}
