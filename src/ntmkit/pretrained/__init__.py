"""Trained models shipped inside the package: checkpoint-format files, model only, one per task for
the NTM (``copy.pt``) and per task and model for the others (``copy-dnc.pt``). A shipped model's
*name* is its file's stem (:func:`shipped_name`); the manifest is keyed by it."""

from __future__ import annotations

from importlib import resources

from ..checkpoint import load, trained_sequences
from ..errors import CheckpointError

DEFAULT_MODEL = "ntm"  # its shipped files keep the task's name alone


def shipped_name(task: str, model: str = DEFAULT_MODEL) -> str:
    """The name a shipped model of ``model`` for ``task`` goes by (``copy``, ``copy-dnc``)."""
    return task if model == DEFAULT_MODEL else f"{task}-{model}"


def pretrained_path(task: str):
    """The file of the shipped model called ``task`` (a task, or a name from :func:`shipped_name`)."""
    return resources.files(__name__) / f"{task}.pt"


def load_pretrained(task: str = "copy") -> dict:
    """The shipped checkpoint dict called ``task`` (``model_kind``, ``model_config``, ``task``, ``model``)."""
    path = pretrained_path(task)
    if not path.is_file():
        task_name, _, model = task.partition("-")
        flag = f" --model {model}" if model else ""
        raise CheckpointError(
            f"no pretrained model {task!r} ships with ntmkit: train one with 'ntm train --task {task_name}{flag}'"
        )
    with resources.as_file(path) as p:
        return load(p)


def load_model(task: str = "copy"):
    """The shipped model for ``task``, ready to run (eval mode)."""
    from ..registry import build_model

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

    from ..checkpoint import stamp, trained_sequences

    data = load(checkpoint)
    keep = {k: data[k] for k in ("model_kind", "model_config", "task", "model", "step")}
    keep["sequences"] = trained_sequences(data)  # with those of the runs it started from (--init_from)
    keep["train_config"] = data.get("train_config", {})
    dst = Path(destination) if destination else Path(__file__).parent / f"{task}.pt"
    torch.save(stamp(keep), dst)
    return str(dst)


def manifest() -> dict:
    """What each shipped model is: the command that made it and its measured cost."""
    import json

    path = resources.files(__name__) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def measure(checkpoint, sequences: int = 1000) -> dict:
    """A trained checkpoint (file or run directory) measured as :func:`record` measures a shipped model:
    its cost, cross-entropy and wrong bits per sequence on the manifest's two fresh sets of its training
    range (seeds 2024 and 5), so a re-made model can be put beside the shipped one's figures."""
    import torch

    from ..evaluate import evaluate
    from ..registry import build_model
    from ..tasks import TASKS

    data = load(checkpoint)
    t = TASKS[data["task"]["name"]](**data["task"]["options"])
    model = build_model(data["model_kind"], data["model_config"])
    model.load_state_dict(data["model"])
    model.eval()
    e = evaluate(model, t, sequences, torch.Generator().manual_seed(2024))
    other = evaluate(model, t, sequences, torch.Generator().manual_seed(5))
    return {
        "task": t.name,
        "cost_name": t.cost_name,
        "training_range_cost": round(e["cost"], 4),
        "cost_on_another_set": round(other["cost"], 4),
        "cross_entropy_bits": round(e["bits"], 4),
        "bit_errors": round(e["bit_errors"], 4),
        "sequences_trained": trained_sequences(data),
        "meets_target": max(e["cost"], other["cost"]) < t.learned_below,
    }


def record(task: str, command: str | None = None, sequences: int = 1000, note: str | None = None) -> dict:
    """Measure the shipped ``task`` model on fresh sequences of its training range and store the
    figures (its cost, cross-entropy bits per sequence, wrong bits per sequence), with the command
    that trained it, in manifest.json. It meets its task's target only if its cost is below it on
    that set and on a second fresh set. ``command`` and ``note`` default to the stored ones
    (``note=""`` drops it)."""
    import json
    from pathlib import Path

    import torch

    from ..evaluate import evaluate
    from ..tasks import TASKS

    data = load_pretrained(task)
    t = TASKS[data["task"]["name"]](**data["task"]["options"])
    model = load_model(task)
    e = evaluate(model, t, sequences, torch.Generator().manual_seed(2024))
    # A second fresh set: a model on the edge of its target meets it only if both sets do.
    other = evaluate(model, t, sequences, torch.Generator().manual_seed(5))
    path = Path(__file__).parent / "manifest.json"
    entries = json.loads(path.read_text()) if path.exists() else {}
    old = entries.get(task, {})
    entry = {
        "command": command or old.get("command", ""),
        "task_options": data["task"]["options"],
        "model_kind": data["model_kind"],
        "sequences_trained": data.get("sequences"),
        "cost_name": t.cost_name,
        "training_range_cost": round(e["cost"], 4),
        "cross_entropy_bits": round(e["bits"], 4),
        "bit_errors": round(e["bit_errors"], 4),
        "sequences": sequences,
        "cost_on_another_set": round(other["cost"], 4),
        "meets_target": max(e["cost"], other["cost"]) < t.learned_below,
        "target": t.learned_below,
    }
    note = old.get("note") if note is None else note  # "" drops a stored note
    if note:
        entry["note"] = note
    entries[task] = entry
    path.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return entry
