"""SGD (momentum, Nesterov), Adam and AdamW over stacked parameters, each trial with its own hyperparameters.

Every parameter is seen as ``(K, n)`` (one row per trial, :meth:`FusedSequential.trial_view`); learning rate,
momentum, weight decay and Nesterov are ``(K, 1)`` columns, so one update serves the whole group. The math is
torch.optim's (``_single_tensor_sgd`` / ``_single_tensor_adam``, without dampening or amsgrad), checked against
it member by member in tests/test_fused.py. ``active`` (K,) masks trials out: a masked trial's parameters,
moments and step count are left as they were, so a diverged or early-stopped trial stops changing while the
others go on.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which the engine uses
EPS = 1e-8


class FusedOptimizer:
    """One optimizer kind for the whole group; hyperparameters per trial."""

    def __init__(self, params: list[torch.Tensor], kind: str, k: int, hyper: dict[str, list[float]]):
        self.params, self.kind, self.k = params, kind, k
        dtype, device = params[0].dtype, params[0].device

        def column(name: str) -> torch.Tensor:
            return torch.tensor(hyper[name], dtype=dtype, device=device).view(k, 1)

        self.momentum, self.weight_decay = column("momentum"), column("weight_decay")
        self.nesterov = column("nesterov").bool()
        self.step_count = torch.zeros(k, dtype=dtype, device=device)
        self.state: list[dict[str, torch.Tensor]] = [self._fresh(p) for p in params]

    def _fresh(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.kind == "sgd":
            return {"momentum_buffer": torch.zeros_like(p)}
        return {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: torch.Tensor, active: torch.Tensor) -> None:
        """One update at per-trial ``lr`` (K,) for the trials where ``active`` (K,) is True."""
        lr, on = lr.view(self.k, 1), active.view(self.k, 1)
        self.step_count += active.to(self.step_count.dtype)
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            w, g = p.view(self.k, -1), p.grad.view(self.k, -1)
            views = {name: t.view(self.k, -1) for name, t in state.items()}
            if self.kind == "sgd":
                new_w, new_state = self._sgd(w, g, lr, views)
            else:
                new_w, new_state = self._adam(w, g, lr, views)
            w.copy_(torch.where(on, new_w, w))
            for name, t in new_state.items():
                views[name].copy_(torch.where(on, t, views[name]))

    def _sgd(self, w, g, lr, state):
        d = g + self.weight_decay * w
        buf = self.momentum * state["momentum_buffer"] + d  # equals torch's first-step clone: the buffer is 0
        d = torch.where(self.nesterov, d + self.momentum * buf, buf)
        return w - lr * d, {"momentum_buffer": buf}

    def _adam(self, w, g, lr, state):
        b1, b2 = BETAS
        if self.kind == "adamw":
            w = w * (1 - lr * self.weight_decay)
        else:
            g = g + self.weight_decay * w
        m = state["exp_avg"].lerp(g, 1 - b1)
        v = state["exp_avg_sq"] * b2 + (1 - b2) * g * g
        t = self.step_count.clamp(min=1).view(self.k, 1)
        step_size = lr / (1 - b1**t)
        denom = v.sqrt() / (1 - b2**t).sqrt() + EPS
        return w - step_size * (m / denom), {"exp_avg": m, "exp_avg_sq": v}

    def state_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step_count, "state": self.state}

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("kind") != self.kind or len(sd.get("state", ())) != len(self.state):
            raise ValueError("another optimizer or other parameters")
        for mine, saved in zip(self.state, sd["state"], strict=True):
            for name, t in mine.items():
                if saved[name].shape != t.shape:
                    raise ValueError(f"{name} of shape {tuple(saved[name].shape)}, expected {tuple(t.shape)}")
                t.copy_(saved[name])
        self.step_count.copy_(sd["step"])
