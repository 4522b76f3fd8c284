"""Per-stage parameter table, in the paper's (Keras-style) counting.

Keras counts BatchNorm's moving mean and variance as (non-trainable) weights; PyTorch keeps them
as buffers. ``keras`` below = trainable parameters + BN running mean/var, the figure the paper
reports (4,900,948 for the full model with L = 68, 2,048,710 for the encoder-only model).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParamRow:
    name: str
    trainable: int
    keras: int  # trainable + BatchNorm running statistics


def count(module: nn.Module) -> ParamRow:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    stats = sum(m.running_mean.numel() + m.running_var.numel()
                for m in module.modules() if isinstance(m, nn.BatchNorm2d))
    return ParamRow("", trainable, trainable + stats)


def stage_table(model: nn.Module) -> list[ParamRow]:
    """One row per encoder stage, decoder stage and head, then the total."""
    rows = []
    for name, child in _leaves(model):
        c = count(child)
        rows.append(ParamRow(name, c.trainable, c.keras))
    total = count(model)
    rows.append(ParamRow("total", total.trainable, total.keras))
    return rows


def _leaves(model: nn.Module):
    for name, child in model.named_children():
        if isinstance(child, (nn.ModuleDict, nn.ModuleList)) or name == "encoder":
            for sub, grand in _leaves(child):
                yield f"{name}.{sub}", grand
        else:
            yield name, child


def format_table(title: str, rows: list[ParamRow]) -> str:
    lines = [title, f"{'layer':<28}{'trainable':>12}{'+ BN stats':>12}"]
    for r in rows:
        if r.name == "total":
            lines.append("-" * 52)
        lines.append(f"{r.name:<28}{r.trainable:>12,}{r.keras:>12,}")
    return "\n".join(lines)
