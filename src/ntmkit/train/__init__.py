"""Training: data, forward, loss, backward, clip, step, log, checkpoint.

Everything task-specific comes from the task object; everything model-specific from the model
registry. A run resumes exactly from its latest checkpoint (model, optimiser, curriculum, step
and random-number states). One job a file: :mod:`.config` the settings and their checks,
:mod:`.state` what a checkpoint restores, :mod:`.loop` the loop, :mod:`.log` metrics and progress,
:mod:`.summary` how a run ended.
"""

from .config import (
    AUTO_MEMORY_FRACTIONS,
    ENGINES,
    RANK_SEED_STRIDE,
    SEED_LIMIT,
    TrainConfig,
    check_config,
    draw_memory_size,
    make_task,
    memory_size_choices,
    model_config_for,
)
from .log import RunLog, _progress_bar
from .loop import Run, StopSignals, TrainingDiverged, _switch_when_compiled, train, train_step
from .state import (
    Curriculum,
    StepResult,
    Streams,
    TrainState,
    build_state,
    check_matches,
    init_source,
    memory_sizes_for,
    stop_test,
)
from .summary import Outcome

__all__ = [
    "AUTO_MEMORY_FRACTIONS",
    "ENGINES",
    "RANK_SEED_STRIDE",
    "SEED_LIMIT",
    "Curriculum",
    "Outcome",
    "Run",
    "RunLog",
    "StepResult",
    "StopSignals",
    "Streams",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "_progress_bar",
    "_switch_when_compiled",
    "build_state",
    "check_config",
    "check_matches",
    "draw_memory_size",
    "init_source",
    "make_task",
    "memory_size_choices",
    "memory_sizes_for",
    "model_config_for",
    "stop_test",
    "train",
    "train_step",
]
