"""SGD (momentum, Nesterov), Adam and AdamW over stacked parameters, each trial with its own hyperparameters.

Every parameter is seen as ``(K, n)`` (one row per trial, the fused model's ``trial_view``); learning rate,
momentum, weight decay and Nesterov are ``(K, 1)`` columns, so one update serves the whole group. The math is
torch.optim's (``_single_tensor_sgd`` / ``_single_tensor_adam``, without dampening or amsgrad), checked against
it member by member in tests/test_fused.py. ``active`` (K,) masks trials out by a learning rate of 0: a masked
trial's weights stay as they were (a diverged one's are not finite anyway), so a diverged or early-stopped
trial stops changing while the others go on; its moments are not used again.
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
        self.any_nesterov = any(hyper["nesterov"])
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
        """One update, in place, at per-trial ``lr`` (K,) for the trials where ``active`` (K,) is True."""
        lr = (lr * active).view(self.k, 1)  # a masked trial's step is 0 x its update: its weights stay
        self.step_count += active.to(self.step_count.dtype)
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            w, g = p.view(self.k, -1), p.grad.view(self.k, -1)
            views = {name: t.view(self.k, -1) for name, t in state.items()}
            if self.kind == "sgd":
                self._sgd(w, g, lr, views)
            else:
                self._adam(w, g, lr, views)

    def _sgd(self, w, g, lr, state) -> None:
        d = torch.addcmul(g, self.weight_decay, w)
        buf = state["momentum_buffer"].mul_(self.momentum).add_(d)  # from 0: torch's first-step clone
        d = torch.where(self.nesterov, d + self.momentum * buf, buf) if self.any_nesterov else buf
        w.addcmul_(-lr, d)

    def _adam(self, w, g, lr, state) -> None:
        b1, b2 = BETAS
        if self.kind == "adamw":
            w.mul_(1 - lr * self.weight_decay)
        else:
            g = torch.addcmul(g, self.weight_decay, w)
        m = state["exp_avg"].lerp_(g, 1 - b1)
        v = state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
        t = self.step_count.clamp(min=1).view(self.k, 1)
        step_size = lr / (1 - b1**t)
        denom = (v.sqrt() / (1 - b2**t).sqrt()).add_(EPS)
        w.addcmul_(-step_size, m / denom)

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
