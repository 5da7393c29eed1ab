"""The PyTorch peer of bench_train_step (bench/train_step.c) on the GPU: one insitu training step
of cnn3 (batch 64, FashionMNIST-shaped input) and ResNet-18 CIFAR (batch 128), dense and generated,
in FP32 and TF32, channels-first, via autograd and cuDNN.

What one step computes, as train/trainer.c does it:
- dense (the teacher stage): forward, cross-entropy, backward, RAdam (lr 0.002, weight decay 5e-4
  added to the gradient).
- generated (the distillation stage), e.g. 2-44-8-8-8 = Bi-Bc-qb-qu-qv: every conv's factors
  Wb, U, V (or the free Wc where level 1 is off) quantized by insitu's quantizer (per tensor, max-abs
  with the 81 clip candidates 1% apart, the least squared error; straight-through inside the clip,
  kernels/cpu/quantize.c), W = V·{U_j·Wb_j} generated (SPEC §2; the level rules of
  ist_gen_shape_make in kernels/shapes.c), then the conv; the classifier in 8 bits; the dense
  teacher's forward in eval mode; the KD loss β·T²·KL + (1−β)·CE (β 0.9, T 3); backward; the
  orthogonality penalty (λ 0.01) on the latent factors; RAdam.
- conv execution "auto" (insitu's default) runs a generated conv as 1×1 (U) → grouped k×k (Wb) →
  1×1 (V) where that needs at most half the multiply-adds of the dense conv (models/layers.c);
  "materialize" always generates W and calls conv2d.

Timing: CUDA events around each step after warm-up steps, the median; peak memory:
torch.cuda.max_memory_allocated over the case (models, optimizer state, activations). Prints one
line per case: RESULT model setting precision batch median_ms img_per_s peak_bytes, and with
--json a JSON object per case as well. --device cpu runs the same logic on the CPU (a check of the
script, not a benchmark)."""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The method's constants, as insitu's defaults (train/main.c, models/, kernels/cpu/).
QUANT_CANDIDATES = 81  # clip candidates max|x|·(1 − k/100), k = 0..80
QUANT_CANDIDATE_STEP = 0.01
FC_BITS_QUANTIZED = 8  # the classifier of a quantized model (SPEC §2, model-level accounting)
FACTORED_MAX_MAC_SHARE = 0.5  # auto: factored where it needs at most this share of the MACs
LR, WEIGHT_DECAY = 0.002, 5e-4
KD_BETA, KD_TEMPERATURE, LAMBDA_ORT = 0.9, 3.0, 0.01
BN_EPS, BN_MOMENTUM = 1e-5, 0.1


def quant_scale(x, bits):
    """insitu's clip scale of x (detached): the candidate with the least squared error, the first
    such (argmin returns the first minimum), without a host synchronization."""
    mx = x.abs().max()
    levels = float(2 ** (bits - 1) - 1)
    k = torch.arange(QUANT_CANDIDATES, device=x.device, dtype=x.dtype)
    cand = mx * (1.0 - QUANT_CANDIDATE_STEP * k)
    cand[0] = mx
    cand = cand.clamp_min(torch.finfo(x.dtype).tiny)  # mx = 0: every candidate gives q = 0
    flat = x.reshape(1, -1)
    q = torch.clamp(torch.round(flat * (levels / cand)[:, None]), -levels, levels) * (cand / levels)[:, None]
    err = ((q - flat) ** 2).sum(dim=1)
    return cand[torch.argmin(err)], levels


class Quantize(torch.autograd.Function):
    """y = q(x); the gradient passes straight through, inside the clip when `clip` (the conv
    factors: ist_cpu_quantize_backward), everywhere when not (the classifier: models/layers.c)."""

    @staticmethod
    def forward(ctx, x, bits, clip):
        if bits >= 32:
            return x.clone()
        if bits == 1:
            a = x.abs().mean()
            ctx.save_for_backward(x, a)
            ctx.clip = False
            return torch.where(x >= 0, a, -a)
        s, levels = quant_scale(x.detach(), bits)
        ctx.save_for_backward(x, s)
        ctx.clip = clip
        return torch.clamp(torch.round(x * (levels / s)), -levels, levels) * (s / levels)

    @staticmethod
    def backward(ctx, dy):
        if not getattr(ctx, "clip", False):
            return dy, None, None
        x, s = ctx.saved_tensors
        return dy * (x.abs() <= s).to(dy.dtype), None, None


def quantize(x, bits, clip=True):
    return x if bits >= 32 else Quantize.apply(x, bits, clip)


class Conv(nn.Module):
    """A conv of the model: dense, or generated with the setting (bi, bc, qb, qu, qv) (SPEC §2)."""

    def __init__(self, ci, co, k, stride, pad, h, w, setting, exec_mode):
        super().__init__()
        self.ci, self.co, self.k, self.stride, self.pad = ci, co, k, stride, pad
        self.setting = setting
        k2, kk = k * k, ci * k * k
        if setting is None:
            self.weight = nn.Parameter(torch.randn(co, ci, k, k) * (2.0 / kk) ** 0.5)
            return
        bi, bc, self.qb, self.qu, self.qv = setting
        # ist_gen_shape_make (kernels/shapes.c)
        self.l1 = k > 1 and 0 < bi < min(ci, k2)
        self.l2 = 0 < bc < min(co, kk)
        self.nb = bc if self.l2 else co
        self.bi = bi
        if self.l1:
            self.wb = nn.Parameter(torch.randn(self.nb, bi, k2) * k2 ** -0.5)
            self.u = nn.Parameter(torch.randn(self.nb, ci, bi) * ci ** -0.5)
        else:
            self.wc = nn.Parameter(torch.randn(self.nb, kk) * kk ** -0.5)
        if self.l2:
            self.v = nn.Parameter(torch.randn(co, bc) * bc ** -0.5)
        # ist_gconv_macs_factored / _materialized (per output pixel)
        ho = (h + 2 * pad - k) // stride + 1
        wo = (w + 2 * pad - k) // stride + 1
        in_per_out = h * w / (ho * wo)
        macs = self.nb * bi * (ci * in_per_out + k2) if self.l1 else self.nb * kk
        macs += co * self.nb if self.l2 else 0
        self.factored = exec_mode == "factored" or (exec_mode == "auto" and macs <= FACTORED_MAX_MAC_SHARE * co * kk)

    def generated_weight(self):
        if self.l1:
            wc = torch.bmm(quantize(self.u, self.qu), quantize(self.wb, self.qb)).reshape(self.nb, -1)
        else:
            wc = quantize(self.wc, self.qb)
        w = quantize(self.v, self.qv) @ wc if self.l2 else wc
        return w.reshape(self.co, self.ci, self.k, self.k)

    def ortho(self):
        """‖Wb_j·Wb_jᵀ − I‖² + ‖Ũ_jᵀ·Ũ_j − I‖² summed over j, plus ‖ṼᵀṼ − I‖² (kernels/cpu/ortho.c)."""

        def unit_cols(a):
            a = a / a.norm(dim=-2, keepdim=True)
            return ((a.transpose(-1, -2) @ a - torch.eye(a.shape[-1], device=a.device)) ** 2).sum()

        loss = 0.0
        if self.l1:
            eye = torch.eye(self.bi, device=self.wb.device)
            loss = loss + ((self.wb @ self.wb.transpose(1, 2) - eye) ** 2).sum() + unit_cols(self.u)
        if self.l2:
            loss = loss + unit_cols(self.v)
        return loss

    def forward(self, x):
        if self.setting is None:
            return F.conv2d(x, self.weight, stride=self.stride, padding=self.pad)
        if not self.factored:
            return F.conv2d(x, self.generated_weight(), stride=self.stride, padding=self.pad)
        k, nb = self.k, self.nb
        if self.l1:
            ut = quantize(self.u, self.qu).transpose(1, 2).reshape(nb * self.bi, self.ci, 1, 1)
            t = F.conv2d(x, ut)
            t = F.conv2d(t, quantize(self.wb, self.qb).reshape(nb, self.bi, k, k), stride=self.stride,
                         padding=self.pad, groups=nb)
        else:
            t = F.conv2d(x, quantize(self.wc, self.qb).reshape(nb, self.ci, k, k), stride=self.stride,
                         padding=self.pad)
        if self.l2:
            t = F.conv2d(t, quantize(self.v, self.qv).reshape(self.co, nb, 1, 1))
        return t


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class Net(nn.Module):
    def convs(self):
        return [m for m in self.modules() if isinstance(m, Conv)]

    def ortho(self):
        return sum(c.ortho() for c in self.convs() if c.setting is not None and (c.l1 or c.l2))

    def classify(self, x):
        bits = self.fc_bits
        return F.linear(x, quantize(self.fc.weight, bits, clip=False), quantize(self.fc.bias, bits, clip=False))


class Cnn3(Net):
    """SPEC §5: C32K5S2 – C32K5S1 – C32K5S1 – AvgPool to 3×3 – FC10, BN and ReLU after each conv."""

    in_shape = (1, 28, 28)

    def __init__(self, setting, exec_mode):
        super().__init__()
        convs, h = [], 28
        for i in range(3):
            ci, stride = (1, 2) if i == 0 else (32, 1)
            convs.append(Conv(ci, 32, 5, stride, 2, h, h, setting, exec_mode))
            h = (h + 4 - 5) // stride + 1
        self.conv = nn.ModuleList(convs)
        self.bn = nn.ModuleList([bn(32) for _ in range(3)])
        self.fc = nn.Linear(32 * 9, 10)
        self.fc_bits = FC_BITS_QUANTIZED if setting and min(setting[2:]) < 32 else 32

    def forward(self, x):
        for c, b in zip(self.conv, self.bn):
            x = F.relu(b(c(x)))
        return self.classify(F.adaptive_avg_pool2d(x, 3).flatten(1))


class Block(nn.Module):
    """ResNet's BasicBlock with a 1×1 conv + BN shortcut where stride or width changes."""

    def __init__(self, ci, co, stride, h, setting, exec_mode):
        super().__init__()
        self.conv1 = Conv(ci, co, 3, stride, 1, h, h, setting, exec_mode)
        ho = (h - 1) // stride + 1
        self.bn1 = bn(co)
        self.conv2 = Conv(co, co, 3, 1, 1, ho, ho, setting, exec_mode)
        self.bn2 = bn(co)
        self.down = None
        if stride != 1 or ci != co:
            self.down = Conv(ci, co, 1, stride, 0, h, h, setting, exec_mode)
            self.down_bn = bn(co)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down_bn(self.down(x)) if self.down is not None else x))


class ResNet18Cifar(Net):
    """SPEC §5: 3×3 stem 3→64 (stride 1, no max-pool), stages of two BasicBlocks (64, 128, 256,
    512; stride 2 first in stages 2–4), global average pool, FC."""

    in_shape = (3, 32, 32)

    def __init__(self, setting, exec_mode):
        super().__init__()
        self.stem = Conv(3, 64, 3, 1, 1, 32, 32, setting, exec_mode)
        self.stem_bn = bn(64)
        blocks, ci, h = [], 64, 32
        for i, co in enumerate((64, 128, 256, 512)):
            for j in range(2):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(Block(ci, co, stride, h, setting, exec_mode))
                ci, h = co, (h - 1) // stride + 1
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)
        self.fc_bits = FC_BITS_QUANTIZED if setting and min(setting[2:]) < 32 else 32

    def forward(self, x):
        x = self.blocks(F.relu(self.stem_bn(self.stem(x))))
        return self.classify(x.mean(dim=(2, 3)))


MODELS = {"cnn3": (Cnn3, 64), "resnet18-cifar": (ResNet18Cifar, 128)}


def kd_loss(student, teacher, labels):
    """β·T²·KL(q_T ‖ p_T) + (1−β)·CE(y, p_1), mean over the batch (kernels/cpu/kd_loss.c)."""
    t = KD_TEMPERATURE
    kl = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean",
                  log_target=True)
    return KD_BETA * t * t * kl + (1 - KD_BETA) * F.cross_entropy(student, labels)


def set_precision(precision):
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32  # on by default in PyTorch: FP32 must turn it off


def run_case(model_name, setting_name, precision, batch, steps, warmup, exec_mode, device):
    cls, default_batch = MODELS[model_name]
    batch = batch or default_batch
    setting = None if setting_name == "dense" else tuple(int(v) for v in setting_name.split("-"))
    set_precision(precision)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = cls(setting, exec_mode).to(device)
    teacher = cls(None, exec_mode).to(device).eval() if setting else None
    opt = torch.optim.RAdam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    x = torch.randn(batch, *cls.in_shape, device=device)
    y = torch.arange(batch, device=device) % 10

    def step():
        opt.zero_grad(set_to_none=False)
        logits = model(x)
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
            loss = kd_loss(logits, t_logits, y) + LAMBDA_ORT * model.ortho()
        else:
            loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()

    times = []
    for s in range(warmup + steps):
        if cuda:
            t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0.record()
            step()
            t1.record()
            if s >= warmup:
                times.append((t0, t1))
        else:
            c0 = time.perf_counter()
            step()
            if s >= warmup:
                times.append((time.perf_counter() - c0) * 1e3)
    if cuda:
        torch.cuda.synchronize()
        times = [a.elapsed_time(b) for a, b in times]
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = 0
    ms = statistics.median(times)
    return {"model": model_name, "setting": setting_name, "precision": precision, "batch": batch, "median_ms": ms,
            "img_per_s": batch / ms * 1e3, "peak_bytes": peak, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "conv_exec": exec_mode}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default="cnn3,resnet18-cifar")
    ap.add_argument("--settings", default="dense,2-44-8-8-8")
    ap.add_argument("--precisions", default="fp32,tf32")
    ap.add_argument("--batch", type=int, default=0, help="0: the model's (cnn3 64, resnet18-cifar 128)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--conv-exec", default="auto", choices=["auto", "materialize", "factored"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cuDNN's algorithm search off")
    ap.add_argument("--json", action="store_true", help="a JSON line per case too")
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_step_torch.py: no CUDA device (PyTorch sees none)")
    torch.backends.cudnn.benchmark = not a.no_cudnn_benchmark
    for m in a.models.split(","):
        for s in a.settings.split(","):
            for p in a.precisions.split(","):
                r = run_case(m, s, p, a.batch, a.steps, a.warmup, a.conv_exec, device)
                print(f"RESULT {m} {s} {p} {r['batch']} {r['median_ms']:.4f} {r['img_per_s']:.1f} {r['peak_bytes']}",
                      flush=True)
                if a.json:
                    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
