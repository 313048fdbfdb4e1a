"""cbam_course.fast: the same maths, made fast for training on a CPU. Opt-in.

Nothing in the lessons needs this layer to understand CBAM: ``CBAM(x)`` runs the formula in
``attention.py``. Training is another matter. On a CPU the plain modules make a training step
markedly longer than the same network's without attention, for under 1% of its FLOPs, because
every element-wise step reads and writes a whole feature map (docs/performance.md, section 1). :func:`accelerate` swaps in
implementations that compute the same outputs and gradients with far fewer passes over memory:

- ``fused.py``: CBAM's forward and backward written out by hand in PyTorch (any CPU, also
  channels_last and bfloat16 autocast), and SE's bfloat16 squeeze as a matrix product;
- ``kernels.py``: CBAM's step as four loops compiled by numba, for contiguous float32/float64
  inputs, used where numba is installed (``pip install -e .[fast]``);
- ``cpu.py``: keeping freed memory between steps (glibc) and detecting native bfloat16;
- ``setup.py``: choosing a CPU run's memory layout, number format and threads by timing them.

``train_model`` and the benchmarks (``cbam_course.bench``, above this layer) call
:func:`accelerate`; nothing else does. ``tests/fast/`` holds the accelerated modules equal to the
plain ones. docs/performance.md has the measurements.
"""
from __future__ import annotations

import torch.nn as nn

__all__ = ["accelerate"]


def accelerate(model: nn.Module, *, loops: bool = True, keep_memory: bool = True) -> nn.Module:
    """Give every ``CBAM`` and ``SEBlock`` inside ``model`` its fast implementation; returns ``model``.

    The modules keep their parameters, names and state_dict (only their class changes, to a
    subclass whose ``forward`` computes the same function faster on the CPU), so checkpoints,
    optimizers and :func:`~cbam_course.record_attention` work as before. On a GPU, under
    ``torch.compile`` and with hooks on a CBAM's two halves the plain formula runs. ``loops=False``
    keeps CBAM off numba's compiled loops (the PyTorch fused step only). When the model's
    parameters are on the CPU, ``keep_memory`` also calls :func:`~cbam_course.fast.cpu.keep_freed_memory`,
    a process-wide setting that saves a training loop its page faults (benchmarks of the
    allocator itself turn it off).
    """
    from ..attention import CBAM, SEBlock
    from .cpu import keep_freed_memory
    from .modules import FastCBAM, FastSEBlock

    for module in model.modules():
        if type(module) is CBAM or type(module) is FastCBAM:
            module.__class__ = FastCBAM
            module.use_loops = loops
        elif type(module) is SEBlock:
            module.__class__ = FastSEBlock
    if keep_memory and all(p.device.type == "cpu" for p in model.parameters()):
        keep_freed_memory()
    return model
