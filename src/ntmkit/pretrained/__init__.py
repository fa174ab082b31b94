"""Trained models shipped inside the package: one checkpoint-format file per task, model only."""

from __future__ import annotations

from importlib import resources

from ..checkpoint import load
from ..errors import CheckpointError


def pretrained_path(task: str):
    return resources.files(__name__) / f"{task}.pt"


def load_pretrained(task: str = "copy") -> dict:
    """The shipped checkpoint dict for ``task`` (``model_kind``, ``model_config``, ``task``, ``model``)."""
    path = pretrained_path(task)
    if not path.is_file():
        raise CheckpointError(f"no pretrained model for task {task!r} ships with ntmkit: train one with "
                              f"'ntm train --task {task}'")
    with resources.as_file(path) as p:
        return load(p)


def load_model(task: str = "copy"):
    """The shipped model for ``task``, ready to run (eval mode)."""
    from ..train import build_model
    data = load_pretrained(task)
    model = build_model(data["model_kind"], data["model_config"])
    model.load_state_dict(data["model"])
    return model.eval()


def export(checkpoint: str, task: str, destination=None) -> str:
    """Write the model part of a training checkpoint as the shipped model for ``task``.

    Usage: ``python -m ntmkit.pretrained CHECKPOINT_OR_DIR TASK``.
    """
    from pathlib import Path

    import torch

    from ..checkpoint import stamp
    data = load(checkpoint)
    keep = {k: data[k] for k in ("model_kind", "model_config", "task", "model", "step", "sequences")}
    keep["train_config"] = data.get("train_config", {})
    dst = Path(destination) if destination else Path(__file__).parent / f"{task}.pt"
    torch.save(stamp(keep), dst)
    return str(dst)
