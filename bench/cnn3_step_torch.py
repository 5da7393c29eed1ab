"""The PyTorch peer of bench_cnn3_step: the same cnn3 training step (dense, and generated with
quantized factors, straight-through gradients and the orthogonality penalty) via autograd.
A case is "setting:exec": exec "materialize" builds W and calls conv2d; "auto" runs a conv as
1x1 (U) -> grouped kxk (Wb) -> 1x1 (V) where that needs at most half the multiply-adds, the same
rule as insitu. Prints one 'RESULT case median_ms' line per case."""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def quantize(x, bits):
    if bits >= 32:
        return x
    n = 2 ** (bits - 1) - 1
    s = x.detach().abs().max().clamp_min(1e-30)
    return x + (torch.round(x / s * n) * s / n - x).detach()


class GenConv(nn.Module):
    """W = V · {U_j · Wb_j} (SPEC §2) with the level switches of the C implementation."""

    def __init__(self, ci, co, k, stride, setting, exec_mode):
        super().__init__()
        bi, bc, self.qb, self.qu, self.qv = setting
        self.ci, self.co, self.k, self.stride = ci, co, k, stride
        kk = ci * k * k
        self.l1 = k > 1 and bi < min(ci, k * k)
        self.l2 = bc < min(co, kk)
        nb = bc if self.l2 else co
        self.nb, self.bi = nb, bi
        in_per_out = stride * stride  # input pixels per output pixel ("same" padding)
        macs = nb * bi * (ci * in_per_out + k * k) if self.l1 else nb * kk
        macs += co * nb if self.l2 else 0
        self.factored = exec_mode == "auto" and macs <= 0.5 * co * kk
        if self.l1:
            self.wb = nn.Parameter(torch.randn(nb, bi, k * k) * 0.1)
            self.u = nn.Parameter(torch.randn(nb, ci, bi) * 0.1)
        else:
            self.wc = nn.Parameter(torch.randn(nb, kk) * 0.1)
        if self.l2:
            self.v = nn.Parameter(torch.randn(co, bc) * 0.1)

    def weight(self):
        if self.l1:
            wc = torch.bmm(quantize(self.u, self.qu), quantize(self.wb, self.qb)).reshape(self.u.shape[0], -1)
        else:
            wc = quantize(self.wc, self.qb)
        w = quantize(self.v, self.qv) @ wc if self.l2 else wc
        return w.reshape(self.co, self.ci, self.k, self.k)

    def ortho(self):
        def cols(a):
            a = a / a.norm(dim=-2, keepdim=True)
            eye = torch.eye(a.shape[-1])
            return ((a.transpose(-1, -2) @ a - eye) ** 2).sum()

        loss = 0.0
        if self.l1:
            eye = torch.eye(self.wb.shape[1])
            loss = loss + ((self.wb @ self.wb.transpose(1, 2) - eye) ** 2).sum() + cols(self.u)
        if self.l2:
            loss = loss + cols(self.v)
        return loss

    def forward(self, x):
        if not self.factored:
            return F.conv2d(x, self.weight(), stride=self.stride, padding=self.k // 2)
        k, nb = self.k, self.nb
        if self.l1:
            ut = quantize(self.u, self.qu).transpose(1, 2).reshape(nb * self.bi, self.ci, 1, 1)
            t = F.conv2d(x, ut)
            t = F.conv2d(t, quantize(self.wb, self.qb).reshape(nb, self.bi, k, k), stride=self.stride,
                         padding=k // 2, groups=nb)
        else:
            t = F.conv2d(x, quantize(self.wc, self.qb).reshape(nb, self.ci, k, k), stride=self.stride, padding=k // 2)
        if self.l2:
            t = F.conv2d(t, quantize(self.v, self.qv).reshape(self.co, nb, 1, 1))
        return t


class Cnn3(nn.Module):
    def __init__(self, setting, exec_mode):
        super().__init__()
        convs = []
        for i in range(3):
            ci, stride = (1, 2) if i == 0 else (32, 1)
            convs.append(GenConv(ci, 32, 5, stride, setting, exec_mode) if setting
                         else nn.Conv2d(ci, 32, 5, stride, 2, bias=False))
        self.convs = nn.ModuleList(convs)
        self.bns = nn.ModuleList([nn.BatchNorm2d(32) for _ in range(3)])
        self.fc = nn.Linear(288, 10)
        self.fc_bits = 8 if setting else 32

    def forward(self, x):
        for c, b in zip(self.convs, self.bns):
            x = F.relu(b(c(x)))
        x = F.adaptive_avg_pool2d(x, 3).flatten(1)
        return F.linear(x, quantize(self.fc.weight, self.fc_bits), quantize(self.fc.bias, self.fc_bits))

    def ortho(self):
        return sum(c.ortho() for c in self.convs if isinstance(c, GenConv))


def time_setting(case, batch, steps, warmup):
    name, exec_mode = case.split(":")
    setting = None if name == "dense" else tuple(int(v) for v in name.split("-"))
    torch.manual_seed(0)
    model = Cnn3(setting, exec_mode)
    opt = torch.optim.RAdam(model.parameters(), lr=0.002, weight_decay=5e-4)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.arange(batch) % 10
    times = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        if setting:
            loss = loss + 0.01 * model.ortho()
        loss.backward()
        opt.step()
        if s >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--settings", default="dense:auto,2-16-4-4-4:materialize,2-16-4-4-4:auto")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for name in a.settings.split(","):
        print(f"RESULT {name} {time_setting(name, a.batch, a.steps, a.warmup):.3f}", flush=True)


if __name__ == "__main__":
    main()
