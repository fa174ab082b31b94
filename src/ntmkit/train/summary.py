"""How a run ended (:class:`Outcome`) and the summary it leaves: summary.json and the dict ``train`` returns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint as ckpt
from .. import schedule
from ..tasks import Task
from .config import TrainConfig
from .state import TrainState


@dataclass
class Outcome:
    """How the loop ended."""

    interrupted: bool = False
    time_up: bool = False
    final_eval: dict | None = None  # the last held-out check; its "step" says which machine it scored
    recoveries: int = 0
    compiled_from: int | None = None  # the step from which training ran compiled (None: eager)
    first_step_time: float | None = None  # time.time() when the first step of this run was done
    signal: str | None = None  # the signal that ended the run (SIGINT, SIGTERM), if one did
    unsaved: bool = False  # the last save was refused: the state was not finite


def _stored_final_eval(path: Path, step: int) -> dict | None:
    """The held-out check in an earlier summary.json of this run, if it was taken at ``step``."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return old.get("final_eval") if isinstance(old, dict) and old.get("step") == step else None


def _summary(cfg: TrainConfig, state: TrainState, outcome: Outcome, task: Task, rank: int, world_size: int) -> dict:
    """Write summary.json (process 0) and return what the run did."""
    learned = state.learned_at is not None
    if outcome.final_eval is None and cfg.train_log_dir:
        # A sitting that trained no step (a finished run started again) keeps the check it has.
        outcome.final_eval = _stored_final_eval(Path(cfg.train_log_dir) / "summary.json", state.step)
    if rank == 0 and cfg.train_log_dir:
        summary = {
            "task": cfg.task,
            "model": cfg.model,
            "seed": cfg.seed,
            "learned": learned,
            "learned_at": state.learned_at,
            "time_up": outcome.time_up,
            "interrupted": outcome.interrupted,
            "step": state.step,
            "sequences": state.sequences,
            "seconds": round(state.elapsed, 3),
            "final_eval": outcome.final_eval,
            "compiled_from_step": outcome.compiled_from,
            "first_step_time": outcome.first_step_time,
            "signal": outcome.signal,
        }
        (Path(cfg.train_log_dir) / "summary.json").write_text(json.dumps(summary, indent=1))
    return {
        "rank": rank,
        "world_size": world_size,
        "batch_size": schedule.value_at(cfg.batch_schedule, state.sequences, cfg.batch_size) * world_size,
        "step": state.step,
        "sequences": state.sequences,
        "seconds": state.elapsed,
        "learned": learned,
        "learned_at": state.learned_at,
        "interrupted": outcome.interrupted,
        "signal": outcome.signal,
        "time_up": outcome.time_up,
        "final_eval": outcome.final_eval,
        "skipped_steps": state.skipped,
        "spikes_clipped": state.spikes.clipped,
        "recoveries": outcome.recoveries,
        "learning_rate": state.optimizer.param_groups[0]["lr"],
        "level": state.curriculum.level,
        "model": state.model,
        "task": task,
        "checkpoint": str(ckpt.latest(cfg.checkpoint_dir)),
    }
