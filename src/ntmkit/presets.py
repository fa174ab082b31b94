"""``--preset paper``: the heads, controller size, optimiser and learning rate of the NTM paper's
Tables 1-3 for a task and model (the recipes ``*-paper`` hold the same settings as files)."""

from __future__ import annotations

from .options import UsageError, given, value
from .registry import model_kind

# The paper's Tables 1-3: (task, model) -> settings; "ntm-lstm" is the NTM with an LSTM controller.
# Heads count read/write pairs, as in the paper. The paper's optimiser: RMSProp (Graves 2013),
# momentum 0.9.
_PAPER_NTM = {  # task: (feed-forward heads, size, lr), (LSTM-controller heads, size, layers, lr)
    "copy": ((1, 100, 1e-4), (1, 100, 1, 1e-4)),
    "repeat_copy": ((1, 100, 1e-4), (1, 100, 1, 1e-4)),
    "associative_recall": ((4, 256, 1e-4), (1, 100, 1, 1e-4)),
    "ngrams": ((1, 100, 3e-5), (1, 100, 1, 3e-5)),
    "priority_sort": ((8, 512, 3e-5), (5, 100, 2, 3e-5)),
}
_PAPER_LSTM = {
    "copy": (256, 3e-5),
    "repeat_copy": (512, 3e-5),
    "associative_recall": (256, 1e-4),
    "ngrams": (128, 1e-4),
    "priority_sort": (128, 3e-5),
}


def _ntm_preset(task: str, controller: str) -> dict:
    ff, lstm = _PAPER_NTM[task]
    if controller == "lstm":
        heads, size, layers, lr = lstm
    else:
        (heads, size, lr), layers = ff, 1
    return {"read_heads": heads, "write_heads": heads, "controller_size": size, "controller_layers": layers,
            "learning_rate": lr}  # fmt: skip


def _lstm_preset(task: str, controller: str) -> dict:
    size, lr = _PAPER_LSTM[task]
    return {"controller_size": size, "controller_layers": 3, "learning_rate": lr}


# The models the paper's tables size, by name (the DNC paper gives no sizes for these tasks).
_PRESETS = {"ntm": _ntm_preset, "lstm": _lstm_preset}


def preset_settings(preset: str, task: str, model: str, controller: str | None) -> dict:
    """The flag values a preset stands for (``paper``: the paper's tables)."""
    if preset != "paper":
        raise UsageError(f"unknown --preset {preset!r}: use paper")
    if model not in _PRESETS:
        raise UsageError(
            f"--preset paper: the NTM paper gives no sizes for the {model_kind(model).label}: drop --preset and "
            f"set its sizes with flags"
        )
    return {"optimizer": "rmsprop", "momentum": 0.9, **_PRESETS[model](task, controller or "feedforward")}


def apply_preset(args) -> None:
    """Fill the flags left unset from ``--preset`` (explicit flags win)."""
    if getattr(args, "preset", None) is None:
        return
    settings = preset_settings(args.preset, value(args, "task"), value(args, "model"), given(args, "controller"))
    for name, v in settings.items():
        if getattr(args, name) is None:
            setattr(args, name, v)
