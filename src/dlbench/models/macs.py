"""Multiply-accumulates of one forward pass, by torch's own FLOP formulas, without importing ``torch._dynamo``
where the count is small.

torch's ``FlopCounterMode`` imports dynamo (1.3-1.5 s on a 2-core CPU) twice over: torch wraps every dispatch
mode's handler in ``torch._disable_dynamo``, and every Python meta kernel (``add``, ``relu``, ``addmm``, batch
norm ... on the meta device) is wrapped the same way. Neither compiles anything here; the import is the cost.
So a small count runs a real forward pass on the CPU instead, on zeros in place of the meta model's weights, and
:class:`MacCounter` counts with torch's ``flop_registry`` under ``FlopCounterMode``'s rules (the same ops skipped,
the same decompositions, the same formulas), so the number is the one torch's counter gives. A count too large
for that (weights, input, or MACs past :data:`CPU_MACS`), one that meets an op whose kernel depends on the device
(attention: the CPU has fused kernels the meta device has not), one that fails on the CPU, and every count in a
process that has imported dynamo anyway (torchvision does; so does building an optimizer), runs on the meta
device under ``FlopCounterMode`` as before.
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

CPU_PARAMS = 25_000_000  # a larger model's forward pass is costlier than the import it saves
CPU_INPUT = 3 * 256 * 256  # input elements: keeps activations to tens of MB
CPU_MACS = 1_000_000_000  # about 0.1 s of CPU time; a larger count stops and runs on meta


class _NotOnCpu(Exception):
    """This count belongs on the meta device."""


def _size_queries() -> frozenset:
    aten = torch.ops.aten
    return frozenset(
        {
            aten.sym_is_contiguous.default,
            aten.is_contiguous.default,
            aten.is_contiguous.memory_format,
            aten.is_strides_like_format.default,
            aten.is_non_overlapping_and_dense.default,
            aten.size.default,
            aten.sym_size.default,
            aten.stride.default,
            aten.sym_stride.default,
            aten.storage_offset.default,
            aten.sym_storage_offset.default,
            aten.numel.default,
            aten.sym_numel.default,
            aten.dim.default,
            torch.ops.prim.layout.default,
        }
    )


class MacCounter(TorchDispatchMode):
    """FLOPs of every op torch's ``flop_registry`` knows, as ``FlopCounterMode`` counts them (its total)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing is compiled under this mode; wrapping its handler would import dynamo

    def __init__(self, budget: int | None = None):
        super().__init__()
        from torch.utils.flop_counter import flop_registry

        self.registry, self.flops, self.budget, self.skip = flop_registry, 0, budget, _size_queries()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.skip:  # size and stride queries of non-standard tensors: answered by the next handler
            return NotImplemented
        if "attention" in func.name():
            raise _NotOnCpu(func.name())
        # FlopCounterMode's rule, kept as it is: every op (the registry holds packets) is first decomposed
        if func not in self.registry and func is not torch.ops.prim.device.default:
            with self:
                out = func.decompose(*args, **kwargs)
                if out is not NotImplemented:
                    return out
        out = func(*args, **kwargs)
        if func._overloadpacket in self.registry:
            self.flops += self.registry[func._overloadpacket](*args, **kwargs, out_val=out)
            if self.budget is not None and self.flops > 2 * self.budget:
                raise _NotOnCpu("over budget")
        return out


def forward_flops(model: nn.Module, input_shape) -> int:
    """FLOPs of one eval-mode forward pass of ``model`` on one image, no gradients (the model is left as given)."""
    was_training = model.training
    model.eval()
    try:
        return _on_cpu(model, input_shape) if _fits_cpu(model, input_shape) else _on_meta(model, input_shape)
    except _NotOnCpu:
        return _on_meta(model, input_shape)
    finally:
        model.train(was_training)


def _fits_cpu(model: nn.Module, input_shape) -> bool:
    if _dynamo_loaded():  # loaded anyway: the meta device costs nothing more
        return False
    tensors = [*model.parameters(), *model.buffers()]
    if not tensors or any(t.device.type != "meta" for t in tensors):
        return False
    return sum(t.numel() for t in tensors) <= CPU_PARAMS and torch.Size(input_shape).numel() <= CPU_INPUT


def _dynamo_loaded() -> bool:
    return "torch._dynamo" in sys.modules


def _on_cpu(model: nn.Module, input_shape) -> int:
    """Count on the CPU with zeros in place of every weight and buffer (nothing drawn from the random generator);
    the model's own meta tensors are back in place afterwards, however this ends."""
    swapped = [(m, kind, k, t) for m in model.modules() for kind in ("_parameters", "_buffers")
               for k, t in getattr(m, kind).items() if t is not None]  # fmt: skip
    try:
        for m, kind, k, t in swapped:
            zero = torch.zeros(
                t.shape, dtype=t.dtype
            )  # not a broadcast zero: oneDNN would copy it every call
            getattr(m, kind)[k] = nn.Parameter(zero, t.requires_grad) if kind == "_parameters" else zero
        counter = MacCounter(budget=CPU_MACS)
        with torch.no_grad(), counter:
            model(torch.zeros(1, *input_shape))
        return counter.flops
    except _NotOnCpu:
        raise
    except Exception as exc:  # the meta device gives the error (and its wording) the counts have always given
        raise _NotOnCpu(str(exc)) from exc
    finally:
        for m, kind, k, t in swapped:
            getattr(m, kind)[k] = t


def _on_meta(model: nn.Module, input_shape) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, *input_shape, device="meta"))
    return counter.get_total_flops()
