"""Implementations a learner might write: right ones written differently, and the usual mistakes.

tests/test_checks.py feeds each to its checker: every RIGHT_* must pass, every WRONG_* entry is
``(implementation, words the hint must contain)``. The mistakes are the ones public CBAM
re-implementations show.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import cbam_course
from cbam_course.variants import CBAMBasicBlock, ParallelCBAM, SpatialFirstCBAM


# ---------------------------------------------------------------- channel attention, right

class CAConv(nn.Module):
    """1x1 convolutions instead of Linear, AdaptiveMaxPool2d, nn.Sigmoid, other names."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.mx = nn.AdaptiveMaxPool2d(1)
        self.shared = nn.Sequential(nn.Conv2d(in_channels, in_channels // ratio, 1, bias=False), nn.ReLU(),
                                    nn.Conv2d(in_channels // ratio, in_channels, 1, bias=False))
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.shared(self.avg(x)) + self.shared(self.mx(x)))


class CATensorOps(nn.Module):
    """x.mean / amax reductions, separate layers (no Sequential), biases, torch.sigmoid."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.down = nn.Linear(in_channels, in_channels // ratio)
        self.up = nn.Linear(in_channels // ratio, in_channels)

    def mlp(self, v):
        return self.up(F.relu(self.down(v)))

    def forward(self, x):
        w = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        return x * w[:, :, None, None]


class CATorchMax(nn.Module):
    """torch.max twice over the two spatial axes, in-place multiply on a clone."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.fc1 = nn.Linear(in_channels, in_channels // ratio, bias=False)
        self.fc2 = nn.Linear(in_channels // ratio, in_channels, bias=False)

    def forward(self, x):
        b, c, _, _ = x.shape
        mx = torch.max(torch.max(x, dim=3)[0], dim=2)[0]
        avg = F.adaptive_avg_pool2d(x, 1).view(b, c)
        att = torch.sigmoid(self.fc2(F.relu(self.fc1(avg))) + self.fc2(F.relu(self.fc1(mx))))
        out = x.clone()
        out *= att.view(b, c, 1, 1)
        return out


class CARawMatrices(nn.Module):
    """Raw parameters used as v @ W, so stored transposed compared with nn.Linear."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        hidden = in_channels // ratio
        self.w_in = nn.Parameter(torch.randn(in_channels, hidden) * 0.1)
        self.w_out = nn.Parameter(torch.randn(hidden, in_channels) * 0.1)

    def forward(self, x):
        def mlp(v):
            return torch.relu(v @ self.w_in) @ self.w_out
        return x * torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3)))).unsqueeze(-1).unsqueeze(-1)


RIGHT_CHANNEL = [cbam_course.ChannelAttention, CAConv, CATensorOps, CATorchMax, CARawMatrices]


# ---------------------------------------------------------------- channel attention, wrong

class _CA(cbam_course.ChannelAttention):
    """The Day 50 lesson's __init__; subclasses change forward."""

    def mlp(self, v):
        return self.fc(v)

    def avg(self, x):
        return x.mean(dim=(2, 3))

    def max(self, x):
        return x.amax(dim=(2, 3))


class CASeparateMLPs(nn.Module):
    def __init__(self, in_channels, ratio=16):
        super().__init__()
        h = in_channels // ratio
        self.fc_avg = nn.Sequential(nn.Linear(in_channels, h, bias=False), nn.ReLU(), nn.Linear(h, in_channels, bias=False))
        self.fc_max = nn.Sequential(nn.Linear(in_channels, h, bias=False), nn.ReLU(), nn.Linear(h, in_channels, bias=False))

    def forward(self, x):
        w = torch.sigmoid(self.fc_avg(x.mean((2, 3))) + self.fc_max(x.amax((2, 3))))
        return x * w[:, :, None, None]


class CAAvgTwice(_CA):
    def forward(self, x):
        return x * torch.sigmoid(self.mlp(self.avg(x)) + self.mlp(self.avg(x)))[:, :, None, None]


class CAMaxTwice(_CA):
    def forward(self, x):
        return x * torch.sigmoid(self.mlp(self.max(x)) + self.mlp(self.max(x)))[:, :, None, None]


class CAAvgOnly(_CA):
    """The max branch dropped: SE's squeeze with CBAM's MLP."""

    def forward(self, x):
        return x * torch.sigmoid(self.mlp(self.avg(x)))[:, :, None, None]


class CASigmoidEachBranch(_CA):
    def forward(self, x):
        w = torch.sigmoid(self.mlp(self.avg(x))) + torch.sigmoid(self.mlp(self.max(x)))
        return x * w[:, :, None, None]


class CANoGate(_CA):
    def forward(self, x):
        return x * (self.mlp(self.avg(x)) + self.mlp(self.max(x)))[:, :, None, None]


class CASoftmax(_CA):
    def forward(self, x):
        return x * torch.softmax(self.mlp(self.avg(x)) + self.mlp(self.max(x)), dim=1)[:, :, None, None]


class CAWrongAxis(_CA):
    """Pools over the channels (dim=1) instead of over space."""

    def forward(self, x):
        w = torch.sigmoid(self.mlp(x.mean(dim=1)) + self.mlp(x.amax(dim=1)))
        return x * w


class CABatchAxis(_CA):
    """Pools over the batch as well as space: one attention vector for the whole batch."""

    def forward(self, x):
        w = torch.sigmoid(self.mlp(x.mean(dim=(0, 2, 3))) + self.mlp(x.amax(dim=(0, 2, 3))))
        return x * w[None, :, None, None]


class CAResidual(_CA):
    def forward(self, x):
        return x + x * torch.sigmoid(self.mlp(self.avg(x)) + self.mlp(self.max(x)))[:, :, None, None]


class CAReturnsAttention(_CA):
    def forward(self, x):
        return torch.sigmoid(self.mlp(self.avg(x)) + self.mlp(self.max(x))).view(*x.shape[:2], 1, 1)


class CARatioIgnored(nn.Module):
    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_channels, in_channels, bias=False), nn.ReLU(),
                                nn.Linear(in_channels, in_channels, bias=False))

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3))) + self.fc(x.amax((2, 3))))[:, :, None, None]


class CAFixedRatio(nn.Module):
    """Hard-codes ratio 16 whatever ratio is passed."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.inner = cbam_course.ChannelAttention(in_channels, 16)

    def forward(self, x):
        return self.inner(x)


class CASumBeforeMLP(_CA):
    def forward(self, x):
        return x * torch.sigmoid(self.mlp(self.avg(x) + self.max(x)))[:, :, None, None]


class CALightTimm(_CA):
    """timm's LightChannelAttn: one MLP pass on 0.5 * avg + 0.5 * max."""

    def forward(self, x):
        return x * torch.sigmoid(self.mlp(0.5 * self.avg(x) + 0.5 * self.max(x)))[:, :, None, None]


class CALayersInForward(nn.Module):
    """Creates its layers inside forward, so they are not registered (and change every call)."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.c, self.r = in_channels, ratio

    def forward(self, x):
        fc = nn.Sequential(nn.Linear(self.c, self.c // self.r), nn.ReLU(), nn.Linear(self.c // self.r, self.c))
        return x * torch.sigmoid(fc(x.mean((2, 3))) + fc(x.amax((2, 3))))[:, :, None, None]


class CAWeightedAvgTwice(_CA):
    """Not in the checker's table: found by perturbing only the max descriptor."""

    def forward(self, x):
        return x * torch.sigmoid(self.mlp(self.avg(x)) + 0.5 * self.mlp(self.avg(x)))[:, :, None, None]


class CANoAvgPool(nn.Module):
    """Forgot to pool one branch: the 1x1-conv MLP runs on every position, so the attention varies over space."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(in_channels, in_channels // ratio, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(in_channels // ratio, in_channels, 1, bias=False))

    def forward(self, x):
        return x * torch.sigmoid(self.mlp(x) + self.mlp(x.amax((2, 3), keepdim=True)))


class CACrashes(_CA):
    def forward(self, x):
        return x * self.fc(x)   # Linear on a 4-D tensor's last axis: shape error


WRONG_CHANNEL = [
    (CASeparateMLPs, "separate MLP"),
    (CAAvgTwice, "average descriptor twice"),
    (CAMaxTwice, "max descriptor twice"),
    (CAAvgOnly, "that is SE, not CBAM"),
    (CASigmoidEachBranch, "sigmoid to each branch"),
    (CANoGate, "no gate"),
    (CASoftmax, "softmax"),
    (CAWrongAxis, "raised RuntimeError"),
    (CABatchAxis, "dim 0 (the batch)"),
    (CAResidual, "residual"),
    (CAReturnsAttention, "shape of the attention map"),
    (CARatioIgnored, "ratio was ignored"),
    (CAFixedRatio, "ratio was ignored"),
    (CASumBeforeMLP, "added the two descriptors before the MLP"),
    (CASumBeforeMLP, "timm's LightChannelAttn"),
    (CALightTimm, "timm's LightChannelAttn"),
    (CALightTimm, "even without the ReLU it gives half the paper's logits"),
    (CALayersInForward, "not inside forward"),
    (CAWeightedAvgTwice, "only the max-pooled descriptor changes"),
    (CANoAvgPool, "the same at every position"),
    (CACrashes, "forward(x with shape"),
]


# ---------------------------------------------------------------- spatial attention

class SAFunctional(nn.Module):
    """A raw parameter and F.conv2d, amax, a bias, torch.sigmoid."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, 2, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.k = kernel_size

    def forward(self, x):
        pooled = torch.stack([x.mean(1), x.amax(1)], dim=1)
        return x * torch.sigmoid(F.conv2d(pooled, self.weight, self.bias, padding=self.k // 2))


class SASequential(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2), nn.Sigmoid())

    def forward(self, x):
        return x * self.net(torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], 1))


RIGHT_SPATIAL = [cbam_course.SpatialAttention, SAFunctional, SASequential]


class _SA(cbam_course.SpatialAttention):
    def mean(self, x):
        return x.mean(1, keepdim=True)

    def max(self, x):
        return x.amax(1, keepdim=True)


class SAMaxMean(_SA):
    def forward(self, x):
        return x * torch.sigmoid(self.conv(torch.cat([self.max(x), self.mean(x)], 1)))


class SAMeanTwice(_SA):
    def forward(self, x):
        return x * torch.sigmoid(self.conv(torch.cat([self.mean(x), self.mean(x)], 1)))


class SANoGate(_SA):
    def forward(self, x):
        return x * self.conv(torch.cat([self.mean(x), self.max(x)], 1))


class SASoftmax(_SA):
    def forward(self, x):
        logits = self.conv(torch.cat([self.mean(x), self.max(x)], 1))
        return x * torch.softmax(logits.flatten(1), 1).view_as(logits)


class SAResidual(_SA):
    def forward(self, x):
        return x + x * torch.sigmoid(self.conv(torch.cat([self.mean(x), self.max(x)], 1)))


class SAReturnsMap(_SA):
    def forward(self, x):
        return torch.sigmoid(self.conv(torch.cat([self.mean(x), self.max(x)], 1)))


class SAWrongAxis(_SA):
    """Pools over space instead of over the channels."""

    def forward(self, x):
        pooled = torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


class SAReLUGate(_SA):
    """Not in the checker's table: found because the factors leave (0, 1)."""

    def forward(self, x):
        return x * F.relu(self.conv(torch.cat([self.mean(x), self.max(x)], 1)))


class SAKernelIgnored(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.inner = cbam_course.SpatialAttention(7)

    def forward(self, x):
        return self.inner(x)


class SANoPadding(_SA):
    def __init__(self, kernel_size=7):
        super().__init__(kernel_size)
        self.conv.padding = (0, 0)


WRONG_SPATIAL = [
    (SAMaxMean, "[mean, max]"),
    (SAMeanTwice, "mean twice"),
    (SANoGate, "no gate"),
    (SASoftmax, "softmax"),
    (SAResidual, "residual"),
    (SAReturnsMap, "shape of the attention map"),
    (SAWrongAxis, "raised RuntimeError"),
    (SAKernelIgnored, "kernel_size was ignored"),
    (SAReLUGate, "sigmoid gate missing"),
    (SANoPadding, "kernel_size // 2"),
]


# ---------------------------------------------------------------- CBAM and the spatial-first variant

class CBAMOwnParts(nn.Module):
    """Built from the learner's own (right) parts, under other names."""

    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__()
        self.what = CAConv(in_channels, ratio)
        self.where = SAFunctional(kernel_size)

    def forward(self, x):
        return self.where(self.what(x))


class CBAMSpatialFirst(CBAMOwnParts):
    def forward(self, x):
        return self.what(self.where(x))


class CBAMParallel(CBAMOwnParts):
    def forward(self, x):
        pooled = torch.stack([x.mean(1), x.amax(1)], dim=1)
        where = torch.sigmoid(F.conv2d(pooled, self.where.weight, self.where.bias, padding=self.where.k // 2))
        return self.what(x) * where


class CBAMResidual(CBAMOwnParts):
    def forward(self, x):
        return x + self.where(self.what(x))


class CBAMChannelOnly(CBAMOwnParts):
    def forward(self, x):
        return self.what(x)


class CBAMRatioIgnored(nn.Module):
    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__()
        self.inner = cbam_course.CBAM(in_channels, 16, kernel_size)

    def forward(self, x):
        return self.inner(x)


class CBAMKernelIgnored(nn.Module):
    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__()
        self.inner = cbam_course.CBAM(in_channels, ratio, 7)

    def forward(self, x):
        return self.inner(x)


class CBAMWithWrongSpatial(CBAMOwnParts):
    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__(in_channels, ratio, kernel_size)
        self.where = SAMaxMean(kernel_size)


RIGHT_CBAM = [cbam_course.CBAM, CBAMOwnParts]
WRONG_CBAM = [
    (CBAMSpatialFirst, "spatial attention first"),
    (CBAMParallel, "in parallel"),
    (CBAMResidual, "residual"),
    (CBAMChannelOnly, "Only channel attention"),
    (CBAMRatioIgnored, "ratio was ignored"),
    (CBAMKernelIgnored, "kernel_size was ignored"),
    (CBAMWithWrongSpatial, "check_spatial_attention"),
]

class SpatialFirstKernelIgnored(nn.Module):
    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__()
        self.inner = SpatialFirstCBAM(in_channels, ratio, 7)

    def forward(self, x):
        return self.inner(x)


RIGHT_SPATIAL_FIRST = [SpatialFirstCBAM, CBAMSpatialFirst]
WRONG_SPATIAL_FIRST = [
    (cbam_course.CBAM, "standard CBAM order"),
    (CBAMParallel, "in parallel"),
    (SpatialFirstKernelIgnored, "kernel_size was ignored"),
]


# ---------------------------------------------------------------- the parallel arrangement (the course's reading of §4.1)

class ParallelFromScratch(nn.Module):
    """1x1 convolutions for the MLP, a raw kernel, logits added before one sigmoid."""

    def __init__(self, in_channels, ratio=16, kernel_size=7):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(in_channels, in_channels // ratio, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(in_channels // ratio, in_channels, 1, bias=False))
        self.kernel = nn.Parameter(torch.randn(1, 2, kernel_size, kernel_size) * 0.1)

    def forward(self, x):
        a = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        b = F.conv2d(pooled, self.kernel, padding=self.kernel.shape[-1] // 2)
        return x * torch.sigmoid(a + b)


class _ParallelParts(cbam_course.CBAM):
    def logits(self, x):
        ca, sa = self.channel_attention, self.spatial_attention
        a = (ca.fc(x.mean((2, 3))) + ca.fc(x.amax((2, 3))))[:, :, None, None]
        b = sa.conv(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1))
        return a, b


class ParallelSigmoidEach(_ParallelParts):
    def forward(self, x):
        a, b = self.logits(x)
        return x * (torch.sigmoid(a) + torch.sigmoid(b))


class ParallelSpatialFromRefined(_ParallelParts):
    def forward(self, x):
        a, _ = self.logits(x)
        _, b = self.logits(x * torch.sigmoid(a))
        return x * torch.sigmoid(a + b)


class ParallelReturnsMap(_ParallelParts):
    def forward(self, x):
        a, b = self.logits(x)
        return torch.sigmoid(a + b)


class ParallelResidual(_ParallelParts):
    def forward(self, x):
        a, b = self.logits(x)
        return x + x * torch.sigmoid(a + b)


class ParallelSigmoidOfMaps(_ParallelParts):
    """Another reading of §4.1: "the outputs" taken after each module's sigmoid, then a second sigmoid."""

    def forward(self, x):
        a, b = self.logits(x)
        return x * torch.sigmoid(torch.sigmoid(a) + torch.sigmoid(b))


class ParallelLogitProduct(_ParallelParts):
    """The branches' logits multiplied, as in BAM's released code (MODELS/bam.py), without its 1 +."""

    def forward(self, x):
        a, b = self.logits(x)
        return x * torch.sigmoid(a * b)


class ParallelLikeBAMCode(_ParallelParts):
    """BAM's released code: x * (1 + sigmoid(channel_att(x) * spatial_att(x)))."""

    def forward(self, x):
        a, b = self.logits(x)
        return x * (1 + torch.sigmoid(a * b))


class ParallelScaled(_ParallelParts):
    """Wrong in a way no hint names: the right map times 0.9."""

    def forward(self, x):
        a, b = self.logits(x)
        return 0.9 * x * torch.sigmoid(a + b)


RIGHT_PARALLEL = [ParallelCBAM, ParallelFromScratch]
WRONG_PARALLEL = [
    (CBAMParallel, "another reading of the parallel arrangement, not a plain mistake"),
    (ParallelSigmoidOfMaps, "another reading of §4.1"),
    (ParallelLogitProduct, "as BAM's released code does"),
    (ParallelLikeBAMCode, "multiplied the two branches' logits and added 1"),
    (ParallelScaled, "differs from the expected parallel CBAM (the course's reading)"),
    (ParallelSigmoidEach, "after their sigmoids"),
    (cbam_course.CBAM, "sequential CBAM"),
    (SpatialFirstCBAM, "spatial-first"),
    (ParallelSpatialFromRefined, "channel-refined"),
    (ParallelReturnsMap, "returns the attention map"),
    (ParallelResidual, "residual"),
]


# ---------------------------------------------------------------- CBAM in a ResNet BasicBlock

class BlockLikeLesson(nn.Module):
    """Lesson 04's CBAMBasicBlock: the official placement."""

    def __init__(self, in_channels, out_channels, stride=1, ratio=16):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.cbam = cbam_course.CBAM(out_channels, ratio)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def branch(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        return torch.relu(self.cbam(self.branch(x)) + self.shortcut(x))


class BlockOfficialStyle(nn.Module):
    """As the official code writes it: a `downsample` that may be None, in-place ReLU, out += residual,
    the learner's own CBAM parts."""

    def __init__(self, in_channels, out_channels, stride=1, ratio=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels))
        self.attention = CBAMOwnParts(out_channels, ratio)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.attention(self.body(x))
        out += residual
        return F.relu(out, inplace=True)


class BlockCBAMAfterAdd(BlockLikeLesson):
    def forward(self, x):
        return torch.relu(self.cbam(self.branch(x) + self.shortcut(x)))


class BlockCBAMAfterReLU(BlockLikeLesson):
    def forward(self, x):
        return self.cbam(torch.relu(self.branch(x) + self.shortcut(x)))


class BlockCBAMBeforeBN2(BlockLikeLesson):
    def forward(self, x):
        out = self.bn2(self.cbam(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return torch.relu(out + self.shortcut(x))


class BlockNoCBAM(BlockLikeLesson):
    def forward(self, x):
        return torch.relu(self.branch(x) + self.shortcut(x))


class BlockNoShortcut(BlockLikeLesson):
    def forward(self, x):
        return torch.relu(self.cbam(self.branch(x)))


class BlockNoFinalReLU(BlockLikeLesson):
    def forward(self, x):
        return self.cbam(self.branch(x)) + self.shortcut(x)


class BlockReLUBeforeAdd(BlockLikeLesson):
    def forward(self, x):
        return torch.relu(torch.relu(self.cbam(self.branch(x))) + self.shortcut(x))


class BlockStrideIgnored(BlockLikeLesson):
    def __init__(self, in_channels, out_channels, stride=1, ratio=16):
        super().__init__(in_channels, out_channels, 1, ratio)


class BlockRatioIgnored(BlockLikeLesson):
    def __init__(self, in_channels, out_channels, stride=1, ratio=16):
        super().__init__(in_channels, out_channels, stride, ratio)
        self.cbam = cbam_course.CBAM(out_channels, 16)


RIGHT_BLOCK = [CBAMBasicBlock, BlockLikeLesson, BlockOfficialStyle]
WRONG_BLOCK = [
    (BlockCBAMAfterAdd, "after the addition"),
    (BlockCBAMAfterReLU, "after the final ReLU"),
    (BlockCBAMBeforeBN2, "before the second BatchNorm"),
    (BlockNoCBAM, "not applied at all"),
    (BlockNoShortcut, "shortcut is missing"),
    (BlockNoFinalReLU, "no ReLU after the addition"),
    (BlockReLUBeforeAdd, "ReLU to the branch before the addition"),
    (BlockStrideIgnored, "take the stride"),
    (BlockRatioIgnored, "ratio was ignored"),
]


# ---------------------------------------------------------------- SE

class SEConvNoBias(nn.Module):
    """1x1 convolutions without biases, x.mean."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.excite = nn.Sequential(nn.Conv2d(in_channels, in_channels // ratio, 1, bias=False), nn.ReLU(inplace=True),
                                    nn.Conv2d(in_channels // ratio, in_channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x):
        return x * self.excite(x.mean((2, 3), keepdim=True))


class _SE(cbam_course.SEBlock):
    def mlp(self, v):
        return self.fc(v)


class SEMaxPool(_SE):
    def forward(self, x):
        return x * torch.sigmoid(self.mlp(x.amax((2, 3))))[:, :, None, None]


class SEWithMax(_SE):
    def forward(self, x):
        return x * torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))[:, :, None, None]


class SENoGate(_SE):
    def forward(self, x):
        return x * self.mlp(x.mean((2, 3)))[:, :, None, None]


class SENoReLU(_SE):
    def forward(self, x):
        return x * torch.sigmoid(self.fc[2](self.fc[0](x.mean((2, 3)))))[:, :, None, None]


class SETanhGate(_SE):
    def forward(self, x):
        return x * torch.tanh(self.mlp(x.mean((2, 3))))[:, :, None, None]


class SEResidual(_SE):
    def forward(self, x):
        return x + super().forward(x)


class SEReturnsAttention(_SE):
    def forward(self, x):
        return self.sigmoid(self.logits(x))


class SERatioIgnored(nn.Module):
    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.inner = cbam_course.SEBlock(in_channels, 16)

    def forward(self, x):
        return self.inner(x)


class SERawMatrices(nn.Module):
    """Raw parameters used as v @ W + b."""

    def __init__(self, in_channels, ratio=16):
        super().__init__()
        hidden = in_channels // ratio
        self.w1, self.b1 = nn.Parameter(torch.randn(in_channels, hidden)), nn.Parameter(torch.zeros(hidden))
        self.w2, self.b2 = nn.Parameter(torch.randn(hidden, in_channels)), nn.Parameter(torch.zeros(in_channels))

    def forward(self, x):
        s = x.mean((2, 3))
        e = torch.sigmoid(torch.relu(s @ self.w1 + self.b1) @ self.w2 + self.b2)
        return x * e[:, :, None, None]


RIGHT_SE = [cbam_course.SEBlock, SEConvNoBias, SERawMatrices]
WRONG_SE = [
    (SEMaxPool, "max pooling"),
    (SEWithMax, "max-pooled branch"),
    (SENoGate, "no gate"),
    (SENoReLU, "no ReLU"),
    (SEResidual, "residual"),
    (SETanhGate, "sigmoid gate missing"),
    (SEReturnsAttention, "shape of the attention map"),
    (SERatioIgnored, "ratio was ignored"),
]


# ---------------------------------------------------------------- stubs, as the exercises ship them

class StubInit(nn.Module):
    def __init__(self, in_channels=8, ratio=16, kernel_size=7):
        # YOUR CODE HERE
        raise NotImplementedError()


class StubForward(nn.Module):
    def __init__(self, in_channels=8, ratio=16, kernel_size=7):
        super().__init__()

    def forward(self, x):
        # YOUR CODE HERE
        raise NotImplementedError()


class StubBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, ratio=16):
        super().__init__()

    def forward(self, x):
        # YOUR CODE HERE
        raise NotImplementedError()


class StubBlockInit(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, ratio=16):
        # YOUR CODE HERE
        raise NotImplementedError()


def stub_function(*args):
    # YOUR CODE HERE
    raise NotImplementedError()
