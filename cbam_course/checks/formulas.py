"""The judge's side of the checkers, part one: what the right answers compute, and what the
usual wrong ones compute.

The references are the Day 50 lesson's formulas (and SE's, and the course's readings of the
paper's arrangements), written out as functions of explicit weights. Each mistake table pairs a
hint with the function a learner's wrong code computes: when the learner's output matches one,
that hint is the feedback. A new mistake worth a hint goes into its table, with a wrong
implementation in ``tests/learner_impls.py``. Nothing here touches learner code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..i18n import N_

def mlp(v: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, b1=None, b2=None) -> torch.Tensor:
    """The shared MLP C -> C/r -> C with a ReLU between, on (B, C) descriptors."""
    return F.linear(F.relu(F.linear(v, w1, b1)), w2, b2)


def avg_pool(x):
    return x.mean(dim=(2, 3))


def max_pool(x):
    return x.amax(dim=(2, 3))


def gate(logits: torch.Tensor) -> torch.Tensor:
    """(B, C) logits -> (B, C, 1, 1) channel attention in (0, 1)."""
    return torch.sigmoid(logits)[:, :, None, None]


def channel_attention_reference(x, w1, w2):
    """Day 50 lesson: x * sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))), one MLP shared by both."""
    return x * gate(mlp(avg_pool(x), w1, w2) + mlp(max_pool(x), w1, w2))


def avg_branch_only(x, w1, w2):
    """Channel attention without the max branch, x * sigmoid(MLP(avgpool(x))): the ablation's 'avg'."""
    return x * gate(mlp(avg_pool(x), w1, w2))


def max_branch_only(x, w1, w2):
    """Channel attention without the average branch, x * sigmoid(MLP(maxpool(x)))."""
    return x * gate(mlp(max_pool(x), w1, w2))


def avg_branch_twice(x, w1, w2):
    """The average descriptor used in place of the max one, x * sigmoid(2 MLP(avgpool(x)))."""
    return x * gate(2 * mlp(avg_pool(x), w1, w2))


def spatial_pool(x, first=None, second=None):
    first = x.mean(dim=1, keepdim=True) if first is None else first
    second = x.amax(dim=1, keepdim=True) if second is None else second
    return torch.cat([first, second], dim=1)


def conv(pooled, wc):
    return F.conv2d(pooled, wc, padding=wc.shape[-1] // 2)


def spatial_attention_reference(x, wc):
    """Day 50 lesson: x * sigmoid(conv_kxk(cat[mean over channels, max over channels]))."""
    return x * torch.sigmoid(conv(spatial_pool(x), wc))


def cbam_reference(x, w1, w2, wc):
    """Day 50 lesson: channel attention, then spatial attention on its output."""
    return spatial_attention_reference(channel_attention_reference(x, w1, w2), wc)


def channel_stage_only(x, w1, w2, wc):
    """A two-stage module that applies channel attention alone (the spatial weights unused)."""
    return channel_attention_reference(x, w1, w2)


def spatial_stage_only(x, w1, w2, wc):
    """A two-stage module that applies spatial attention alone (the channel weights unused)."""
    return spatial_attention_reference(x, wc)


def channel_logits(x, w1, w2):
    return (mlp(avg_pool(x), w1, w2) + mlp(max_pool(x), w1, w2))[:, :, None, None]


def spatial_logits(x, wc):
    return conv(spatial_pool(x), wc)


def parallel_cbam_reference(x, w1, w2, wc):
    """The parallel arrangement as this course reads Woo et al. 2018 (arXiv v2, §4.1), which gives no
    equation, only that the outputs "are added and normalized with the sigmoid function": both branches
    see x, and their logits are added under one sigmoid, as in BAM's sigma(Mc + Ms) (Park et al., BMVC
    2018, arXiv:1807.06514): x * sigmoid(channel logits + spatial logits)."""
    return x * torch.sigmoid(channel_logits(x, w1, w2) + spatial_logits(x, wc))


def product_of_maps(x, w1, w2, wc):
    """Both maps computed from x, each through its own sigmoid, both multiplied into x."""
    return channel_attention_reference(x, w1, w2) * torch.sigmoid(spatial_logits(x, wc))


def se_reference(x, w1, b1, w2, b2):
    """Hu et al.: x * sigmoid(FC(ReLU(FC(avgpool(x)))))."""
    return x * gate(mlp(avg_pool(x), w1, w2, b1, b2))


CHANNEL_MISTAKES = [
    (N_("Your module returns the attention map, not the re-weighted features: end forward with "
        "`return x * attention`."),
     lambda x, w1, w2: gate(mlp(avg_pool(x), w1, w2) + mlp(max_pool(x), w1, w2)).expand_as(x)),
    (N_("The output does not change when the max-pooled descriptor changes: did you use the average "
        "descriptor twice? The second branch must pool with max (e.g. x.amax(dim=(2, 3)))."),
     avg_branch_twice),
    (N_("The output does not change when the average-pooled descriptor changes: did you use the max "
        "descriptor twice? The first branch must pool with the mean (e.g. x.mean(dim=(2, 3)))."),
     lambda x, w1, w2: x * gate(2 * mlp(max_pool(x), w1, w2))),
    (N_("Only the average-pooled descriptor is used (that is SE, not CBAM): add the max-pooled branch "
        "and sum the two MLP outputs before the sigmoid."),
     avg_branch_only),
    (N_("Only the max-pooled descriptor is used: add the average-pooled branch and sum the two MLP "
        "outputs before the sigmoid."),
     max_branch_only),
    (N_("You applied a sigmoid to each branch and then added them, so the attention reaches up to 2: add the "
        "two MLP outputs first, then apply one sigmoid: sigmoid(mlp(avg) + mlp(max))."),
     lambda x, w1, w2: x * (gate(mlp(avg_pool(x), w1, w2)) + gate(mlp(max_pool(x), w1, w2)))),
    (N_("There is no gate: the MLP outputs multiply x directly, so the factors can be negative or above 1. "
        "Apply torch.sigmoid to mlp(avg) + mlp(max)."),
     lambda x, w1, w2: x * (mlp(avg_pool(x), w1, w2) + mlp(max_pool(x), w1, w2))[:, :, None, None]),
    (N_("You used a softmax over the channels; CBAM gates each channel independently with a sigmoid "
        "(values in (0, 1) that need not sum to 1)."),
     lambda x, w1, w2: x * torch.softmax(mlp(avg_pool(x), w1, w2) + mlp(max_pool(x), w1, w2), 1)[:, :, None, None]),
    (N_("You added a residual (x + x * attention); channel attention returns x * attention only."),
     lambda x, w1, w2: x + channel_attention_reference(x, w1, w2)),
    (N_("You added the two descriptors before the MLP: mlp(avg + max). Because of the ReLU that is not "
        "the same as mlp(avg) + mlp(max): run the MLP on each descriptor, then add. (Pooling first is "
        "what timm's LightChannelAttn does on purpose, one MLP pass on 0.5 * avg + 0.5 * max: a cheaper "
        "variant, not the paper's channel attention.)"),
     lambda x, w1, w2: x * gate(mlp(avg_pool(x) + max_pool(x), w1, w2))),
    (N_("You ran the MLP once on 0.5 * avg + 0.5 * max: that is timm's LightChannelAttn "
        "(timm/layers/cbam.py), a deliberately cheaper variant, not the paper's channel attention; even "
        "without the ReLU it gives half the paper's logits (lesson 02 shows it). Run the MLP on each "
        "descriptor, then add: sigmoid(mlp(avg) + mlp(max))."),
     lambda x, w1, w2: x * gate(mlp(0.5 * avg_pool(x) + 0.5 * max_pool(x), w1, w2))),
    (N_("The MLP has no ReLU between its two layers: the Day 50 lesson's MLP is Linear(C, C/r) -> ReLU -> "
        "Linear(C/r, C)."),
     lambda x, w1, w2: x * gate(F.linear(F.linear(avg_pool(x), w1), w2) + F.linear(F.linear(max_pool(x), w1), w2))),
]

SPATIAL_MISTAKES = [
    (N_("Your module returns the attention map, not the re-weighted features: end forward with "
        "`return x * attention_map`."),
     lambda x, wc: torch.sigmoid(conv(spatial_pool(x), wc)).expand_as(x)),
    (N_("You concatenated [max, mean]; the Day 50 lesson concatenates [mean, max] (channel 0 of the "
        "convolution's input is the mean over channels, channel 1 the max), so its weights "
        "only fit that order. Write torch.cat([avg_out, max_out], dim=1)."),
     lambda x, wc: x * torch.sigmoid(conv(spatial_pool(x, x.amax(1, keepdim=True), x.mean(1, keepdim=True)), wc))),
    (N_("The max over channels is not used: did you use the mean twice? The second map is "
        "torch.max(x, dim=1, keepdim=True)[0] (or x.amax(dim=1, keepdim=True))."),
     lambda x, wc: x * torch.sigmoid(conv(spatial_pool(x, second=x.mean(1, keepdim=True)), wc))),
    (N_("The mean over channels is not used: did you use the max twice? The first map is "
        "torch.mean(x, dim=1, keepdim=True)."),
     lambda x, wc: x * torch.sigmoid(conv(spatial_pool(x, first=x.amax(1, keepdim=True)), wc))),
    (N_("You summed over the channels where the Day 50 lesson takes the mean: use "
        "torch.mean(x, dim=1, keepdim=True)."),
     lambda x, wc: x * torch.sigmoid(conv(spatial_pool(x, first=x.sum(1, keepdim=True)), wc))),
    (N_("There is no gate: the convolution's output multiplies x directly. Apply torch.sigmoid to it."),
     lambda x, wc: x * conv(spatial_pool(x), wc)),
    (N_("You used a softmax over positions; spatial attention gates each position independently "
        "with a sigmoid."),
     lambda x, wc: x * torch.softmax(conv(spatial_pool(x), wc).flatten(1), 1).view(x.shape[0], 1, *x.shape[2:])),
    (N_("You added a residual (x + x * map); spatial attention returns x * map only."),
     lambda x, wc: x + spatial_attention_reference(x, wc)),
]

CBAM_MISTAKES = [
    (N_("You applied spatial attention first: CBAM applies channel attention first, then spatial "
        "attention to its output (x = channel(x); x = spatial(x))."),
     lambda x, w1, w2, wc: channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)),
    (N_("Both attentions were computed from the input x (in parallel) and both multiply it; CBAM is "
        "sequential: the spatial attention sees the channel-refined features."),
     product_of_maps),
    (N_("This is the parallel arrangement as the course reads the paper's §4.1 (both branches from x, "
        "their logits added, one sigmoid); CBAM is sequential: channel attention first, then spatial "
        "attention on its output."),
     parallel_cbam_reference),
    (N_("Only channel attention is applied: pass its output through spatial attention too."),
     channel_stage_only),
    (N_("Only spatial attention is applied: apply channel attention first."),
     spatial_stage_only),
    (N_("You added a residual (x + CBAM(x)); the module returns the refined features only."),
     lambda x, w1, w2, wc: x + cbam_reference(x, w1, w2, wc)),
]

SPATIAL_FIRST_MISTAKES = [
    (N_("This is the standard CBAM order (channel, then spatial). The variant applies spatial "
        "attention first, then channel attention to its output."),
     lambda x, w1, w2, wc: cbam_reference(x, w1, w2, wc)),
    (N_("Both attentions were computed from the input x (in parallel) and both multiply it; the variant "
        "is sequential: the channel attention sees the spatially refined features."),
     product_of_maps),
    (N_("This is the parallel arrangement as the course reads the paper's §4.1 (both branches from x, "
        "their logits added, one sigmoid); the variant is sequential: spatial attention first, then "
        "channel attention on its output."),
     parallel_cbam_reference),
    (N_("Only spatial attention is applied: pass its output through channel attention too."),
     spatial_stage_only),
    (N_("You added a residual (x + block(x)); the module returns the refined features only."),
     lambda x, w1, w2, wc: x + channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)),
]

SE_MISTAKES = [
    (N_("Your module returns the attention map, not the re-weighted features: end forward with "
        "`return x * attention`."),
     lambda x, w1, b1, w2, b2: gate(mlp(avg_pool(x), w1, w2, b1, b2)).expand_as(x)),
    (N_("You squeezed with max pooling; SE squeezes with global average pooling."),
     lambda x, w1, b1, w2, b2: x * gate(mlp(max_pool(x), w1, w2, b1, b2))),
    (N_("You added a max-pooled branch (that is CBAM's channel attention); SE uses the average alone."),
     lambda x, w1, b1, w2, b2: x * gate(mlp(avg_pool(x), w1, w2, b1, b2) + mlp(max_pool(x), w1, w2, b1, b2))),
    (N_("There is no gate: apply torch.sigmoid to the excitation before scaling."),
     lambda x, w1, b1, w2, b2: x * mlp(avg_pool(x), w1, w2, b1, b2)[:, :, None, None]),
    (N_("You used a softmax over the channels; SE gates each channel with a sigmoid."),
     lambda x, w1, b1, w2, b2: x * torch.softmax(mlp(avg_pool(x), w1, w2, b1, b2), 1)[:, :, None, None]),
    (N_("There is no ReLU between the two fully connected layers."),
     lambda x, w1, b1, w2, b2: x * gate(F.linear(F.linear(avg_pool(x), w1, b1), w2, b2))),
    (N_("You added a residual (x + x * attention); SE returns x * attention only."),
     lambda x, w1, b1, w2, b2: x + se_reference(x, w1, b1, w2, b2)),
]


# The paper gives no equation for the parallel arrangement, so some "mistakes" below are other
# readings of §4.1. They still fail: the exercise asks for the course's reading, and says why.
PARALLEL_MISTAKES = [
    (N_("You multiplied both sigmoid maps into x, x * Mc(x) * Ms(x). That is another reading of the "
        "parallel arrangement, not a plain mistake: the paper gives no equation for it (§4.1, arXiv v2, "
        "says only that the two modules' outputs \"are added and normalized with the sigmoid function\") "
        "and the official code has none. This exercise asks for the course's reading, which adds the "
        "branches' logits before one sigmoid, as BAM's formula sigma(Mc + Ms) does: "
        "x * sigmoid(channel_logits + spatial_logits), with channel_logits = mlp(avg) + mlp(max) of "
        "shape (B, C, 1, 1) and spatial_logits = conv([mean; max]) of shape (B, 1, H, W). Lesson 04, "
        "section 2, gives the evidence for that reading."),
     product_of_maps),
    (N_("You added the two sigmoid maps and applied a second sigmoid, x * sigmoid(Mc(x) + Ms(x)). That "
        "is another reading of §4.1, not a plain mistake: it takes \"the outputs of the two attention "
        "modules\" after their own sigmoids. The course's reading takes them before, as BAM's formula "
        "sigma(Mc + Ms) does (there Mc and Ms have no sigmoid of their own): add the logits, then one "
        "sigmoid: x * sigmoid(channel_logits + spatial_logits)."),
     lambda x, w1, w2, wc: x * torch.sigmoid(torch.sigmoid(channel_logits(x, w1, w2))
                                             + torch.sigmoid(spatial_logits(x, wc)))),
    (N_("You multiplied the two branches' logits, as BAM's released code does (BAM.forward in "
        "MODELS/bam.py computes 1 + sigmoid(channel_att(x) * spatial_att(x))). That is another way to "
        "merge them, not a plain mistake, but BAM's paper adds them, sigma(Mc + Ms), and so does the "
        "course's reading of CBAM's §4.1, which this exercise asks for: "
        "x * sigmoid(channel_logits + spatial_logits)."),
     lambda x, w1, w2, wc: x * torch.sigmoid(channel_logits(x, w1, w2) * spatial_logits(x, wc))),
    (N_("You multiplied the two branches' logits and added 1, as BAM's released code does (BAM.forward "
        "in MODELS/bam.py computes 1 + sigmoid(channel_att(x) * spatial_att(x))). That is another way to "
        "merge them, not a plain mistake, but BAM's paper adds them, sigma(Mc + Ms), and so does the "
        "course's reading of CBAM's §4.1, which this exercise asks for: "
        "x * sigmoid(channel_logits + spatial_logits), with no 1 + in front."),
     lambda x, w1, w2, wc: x * (1 + torch.sigmoid(channel_logits(x, w1, w2) * spatial_logits(x, wc)))),
    (N_("You added the two maps after their sigmoids, so the attention reaches up to 2: add the logits first, "
        "then apply one sigmoid: x * sigmoid(channel_logits + spatial_logits)."),
     lambda x, w1, w2, wc: x * (torch.sigmoid(channel_logits(x, w1, w2)) + torch.sigmoid(spatial_logits(x, wc)))),
    (N_("You averaged the two maps after their sigmoids: add the logits first, then apply one sigmoid: "
        "x * sigmoid(channel_logits + spatial_logits)."),
     lambda x, w1, w2, wc: x * 0.5 * (torch.sigmoid(channel_logits(x, w1, w2)) + torch.sigmoid(spatial_logits(x, wc)))),
    (N_("This is the sequential CBAM (channel, then spatial on its output). In the parallel arrangement "
        "both branches see the input x."),
     cbam_reference),
    (N_("This is the spatial-first CBAM (spatial, then channel on its output). In the parallel "
        "arrangement both branches see the input x."),
     lambda x, w1, w2, wc: channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)),
    (N_("The spatial branch pools the channel-refined features x * Mc(x); in the parallel arrangement "
        "both branches pool the input x itself."),
     lambda x, w1, w2, wc: x * torch.sigmoid(channel_logits(x, w1, w2) + spatial_logits(
         channel_attention_reference(x, w1, w2), wc))),
    (N_("Your module returns the attention map, not the re-weighted features: end forward with "
        "`return x * torch.sigmoid(channel_logits + spatial_logits)`."),
     lambda x, w1, w2, wc: torch.sigmoid(channel_logits(x, w1, w2) + spatial_logits(x, wc))),
    (N_("There is no gate: the summed logits multiply x directly. Apply one torch.sigmoid to "
        "channel_logits + spatial_logits."),
     lambda x, w1, w2, wc: x * (channel_logits(x, w1, w2) + spatial_logits(x, wc))),
    (N_("Only the channel branch is used: add the spatial branch's logits before the sigmoid."),
     channel_stage_only),
    (N_("Only the spatial branch is used: add the channel branch's logits before the sigmoid."),
     spatial_stage_only),
    (N_("You added a residual (x + x * attention); the module returns x * attention only."),
     lambda x, w1, w2, wc: x + parallel_cbam_reference(x, w1, w2, wc)),
]


def batch_norm(t, g, b):
    """Every BatchNorm of the checked block gets weight g, bias b, running mean 0, variance 1 (eval)."""
    return F.batch_norm(t, torch.zeros_like(g), torch.ones_like(g), g, b, training=False, eps=1e-5)


def basic_block_reference(x, w, stride, cbam=True):
    """ResNet's BasicBlock with CBAM where the official code puts it (Jongchan/attention-module,
    MODELS/model_resnet.py): relu(cbam(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x))."""
    out = block_branch(x, w, stride, cbam)
    return F.relu(out + block_shortcut(x, w, stride))


def block_branch(x, w, stride, cbam=True, where="after_bn2"):
    g, b = w["bn_g"], w["bn_b"]
    out = F.relu(batch_norm(F.conv2d(x, w["conv1"], stride=stride, padding=1), g, b))
    out = F.conv2d(out, w["conv2"], padding=1)
    if where == "before_bn2":
        return batch_norm(cbam_reference(out, w["fc1"], w["fc2"], w["conv"]), g, b)
    out = batch_norm(out, g, b)
    return cbam_reference(out, w["fc1"], w["fc2"], w["conv"]) if cbam else out


def block_shortcut(x, w, stride):
    if "shortcut" not in w:
        return x
    return batch_norm(F.conv2d(x, w["shortcut"], stride=stride), w["bn_g"], w["bn_b"])


def cbam_of(w):
    return lambda t: cbam_reference(t, w["fc1"], w["fc2"], w["conv"])


BLOCK_MISTAKES = [
    (N_("CBAM is applied after the addition, so it also scales the shortcut. The official code applies "
        "it to the residual branch, after the second BatchNorm and before `out + shortcut(x)`."),
     lambda x, w, s: F.relu(cbam_of(w)(block_branch(x, w, s, cbam=False) + block_shortcut(x, w, s)))),
    (N_("CBAM is applied after the final ReLU, so it also scales the shortcut. Apply it to the residual "
        "branch, after the second BatchNorm and before the addition."),
     lambda x, w, s: cbam_of(w)(F.relu(block_branch(x, w, s, cbam=False) + block_shortcut(x, w, s)))),
    (N_("CBAM is applied before the second BatchNorm; the official code applies it after bn2, just "
        "before the addition: out = cbam(bn2(conv2(out)))."),
     lambda x, w, s: F.relu(block_branch(x, w, s, where="before_bn2") + block_shortcut(x, w, s))),
    (N_("CBAM is not applied at all: call it on the residual branch, after the second BatchNorm and "
        "before the addition."),
     lambda x, w, s: basic_block_reference(x, w, s, cbam=False)),
    (N_("The shortcut is missing: the block returns relu(branch + shortcut(x)), where the shortcut is x "
        "itself, or a 1x1 convolution and BatchNorm when the shape changes."),
     lambda x, w, s: F.relu(block_branch(x, w, s))),
    (N_("There is no ReLU after the addition: the block ends with relu(out + shortcut(x))."),
     lambda x, w, s: block_branch(x, w, s) + block_shortcut(x, w, s)),
    (N_("You applied a ReLU to the branch before the addition; ResNet's BasicBlock adds first, then "
        "applies the ReLU: relu(out + shortcut(x))."),
     lambda x, w, s: F.relu(F.relu(block_branch(x, w, s)) + block_shortcut(x, w, s))),
    (N_("There is no ReLU between the two convolutions: out = relu(bn1(conv1(x)))."),
     lambda x, w, s: F.relu(cbam_reference(batch_norm(F.conv2d(batch_norm(F.conv2d(x, w["conv1"], stride=s, padding=1),
                                                             w["bn_g"], w["bn_b"]), w["conv2"], padding=1),
                                                    w["bn_g"], w["bn_b"]), w["fc1"], w["fc2"], w["conv"])
                            + block_shortcut(x, w, s))),
]

AVG_ONLY_MISTAKES = [
    (N_("With pooling='avg' the max branch is still there: the switch is ignored. In 'avg' mode compute "
        "sigmoid(mlp(avg)) only; 'avg+max' adds mlp(max) before the sigmoid."),
     channel_attention_reference),
    (N_("With pooling='avg' you ran the average through the MLP twice (mlp(avg) + mlp(avg)): the ablation "
        "removes the max branch, it does not replace it with a second average."),
     avg_branch_twice),
    (N_("With pooling='avg' only the max-pooled descriptor is used: 'avg' keeps the average branch and "
        "drops the max branch, not the other way round."),
     max_branch_only),
    (N_("With pooling='avg' your module returns the attention map, not the re-weighted features: end "
        "forward with `return x * attention`."),
     lambda x, w1, w2: gate(mlp(avg_pool(x), w1, w2)).expand_as(x)),
    (N_("With pooling='avg' there is no gate: apply torch.sigmoid to mlp(avg) before scaling x."),
     lambda x, w1, w2: x * mlp(avg_pool(x), w1, w2)[:, :, None, None]),
    (N_("With pooling='avg' you added a residual (x + x * attention); return x * attention only."),
     lambda x, w1, w2: x + x * gate(mlp(avg_pool(x), w1, w2))),
]

BOTH_MISTAKES = [
    (N_("With pooling='avg+max' only the average is used: is the test of `pooling` inverted, or does it "
        "compare with another string? 'avg+max' is the paper's channel attention, "
        "sigmoid(mlp(avg) + mlp(max))."),
     avg_branch_only),
    (N_("With pooling='avg+max' you summed the descriptors before the MLP, mlp(avg + max): twice the "
        "logits of timm's LightChannelAttn (one MLP pass on 0.5 * avg + 0.5 * max), a cheaper variant, "
        "not the paper's sigmoid(mlp(avg) + mlp(max))."),
     lambda x, w1, w2: x * gate(mlp(avg_pool(x) + max_pool(x), w1, w2))),
    (N_("With pooling='avg+max' you ran the MLP on 0.5 * avg + 0.5 * max: that is timm's "
        "LightChannelAttn, a cheaper variant, not the paper's sigmoid(mlp(avg) + mlp(max))."),
     lambda x, w1, w2: x * gate(mlp(0.5 * avg_pool(x) + 0.5 * max_pool(x), w1, w2))),
] + CHANNEL_MISTAKES
