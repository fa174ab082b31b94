"""Training settings: :class:`TrainConfig` with every default, the checks that refuse bad ones, and
the task, model config and memory sizes they describe."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from .. import schedule
from ..errors import ConfigError
from ..registry import model_kind
from ..tasks import TASKS, Task

SEED_LIMIT = 2**63  # seeds lie in [0, 2**63): every stream's seed (seed + an offset) then fits a generator


RANK_SEED_STRIDE = 7919  # process r of a data-parallel run seeds its data with seed + r * stride


ENGINES = ("auto", "compiled", "eager")


@dataclass
class TrainConfig:
    """Every training setting with its default (the model's settings live in its config, e.g. NTMConfig)."""

    task: str = "copy"
    task_options: dict = field(default_factory=dict)
    model: str = "ntm"  # a name in ntmkit.registry.MODELS: "ntm", "dnc" or "lstm" (the baseline)
    model_options: dict = field(default_factory=dict)
    batch_size: int = 32
    optimizer: str = "adam"  # "adam", "amsgrad", "rmsprop" (Graves 2013), "rmsprop-torch" or "sgd"
    learning_rate: float | None = None  # None: the optimiser's own default
    momentum: float = 0.9
    clip_grad_norm: float = 10.0
    # A step whose gradient norm is over spike_clip x the median of the last spike_window steps'
    # norms is clipped to that (0: off); see ntmkit.optim.SpikeClip.
    spike_clip: float = 10.0
    spike_window: int = 100
    # Each sample's gradient reaching a memory model's state between time steps is bounded to this
    # norm in the backward pass (0: off); see ntmkit.models.sequence.bound_gradients.
    state_grad_clip: float = 0.0
    max_steps: int = 200_000
    max_seconds: float | None = None  # stop after this much training time in this run (a fixed budget)
    curriculum: bool = False  # measured on copy: training on the whole range converges more reliably
    curriculum_start: int = 5
    curriculum_step: int = 5
    curriculum_threshold: float | None = None  # widen when the training cost falls below this (None: 10x the
    # task's learned threshold, e.g. 0.1 bit errors per sequence on copy)
    curriculum_patience: int = 300  # ... or after this many steps at one range
    converge_threshold: float | None = None  # stop when a fresh evaluation's cost is below this (None: the
    # task's own threshold, e.g. 0.01 bit errors per sequence on copy)
    eval_sequences: int = 1000
    eval_interval: int = 50  # steps between held-out checks once training looks converged
    stop_when_learned: bool = True
    seed: int = 0
    device: str = "cpu"
    checkpoint_dir: str = "./ntm_checkpoints"
    # A new run starts from these weights (a checkpoint file or directory, or a shipped model's
    # name such as "priority_sort"; see init_source) with a fresh optimiser. A run that resumes
    # from checkpoint_dir ignores it.
    init_from: str | None = None
    init_optimizer: bool = False  # with init_from: carry its optimiser state on too (a recipe's next phase)
    train_log_dir: str | None = "./ntm_logs"
    report_interval: int = 200  # steps between checkpoints
    max_to_keep: int = 3
    log_interval: int = 10  # steps between progress/TensorBoard updates
    picture_interval: int = 500  # steps between TensorBoard pictures of the heads' weightings
    threads: int | None = 1
    max_bad_steps: int = 20  # this many non-finite steps in a row: restore the last checkpoint, halve the lr
    # Without a terminal (output to a file or a pipe), a plain progress line at most this often.
    print_seconds: float = 10.0
    # "compiled": torch.compile of the step before the first step; "auto": the same, but on a cold
    # compile cache train eagerly while a helper process compiles (the switch step then depends on
    # timing, so runs are not bit-reproducible); "eager": op by op
    engine: str = "auto"
    # Time steps per call of an unrolled compiled graph (1: the one-step graph alone). Each call into
    # a compiled graph has a fixed cost that K steps share; K steps take longer to compile.
    unroll: int = 1
    # "mixed": levels (copy: lengths) differ per sample inside a batch, padded to the longest.
    # "same": one level per batch, drawn from the same range, so no time is spent on padding.
    # Measured on copy: "same" learns in as few sequences as "mixed" and runs about twice as fast.
    batch_levels: str = "same"
    # Memory rows per batch: "auto" draws each batch's size from 3/16, 1/4, 3/8, 1/2, 3/4 and all
    # of N (those with at least memory_margin rows more than the batch needs; tasks that do not
    # state a need train at N), "full" always uses N, or a list of sizes. A machine that must
    # work in every size learns to use only the rows it needs, from wherever its heads start,
    # which is what makes it generalise to longer sequences (see the benchmarks page).
    memory_sizes: str | tuple[int, ...] = "auto"
    memory_margin: int = 4
    # The stop test: eval_sequences fresh sequences across the training range, and this share of
    # them again at the top of the range, must each score below the learned threshold.
    eval_top_share: float = 0.25
    # Once the stop test passes, train this many more steps (with the learning rate multiplied by
    # lr_after_learned) before stopping: a machine that has only just passed generalises less
    # far than one trained on (see the benchmarks page).
    steps_after_learned: int = 1000
    lr_after_learned: float = 0.1
    # (sequences, rate) pairs: once the run has seen that many sequences, the learning rate becomes
    # that rate (e.g. ((70_000, 3e-5), (100_000, 1e-5))). A resumed run takes the rate of the last
    # entry it has passed; a rate changed since (lr_after_learned, a recovery) holds until the next.
    lr_schedule: tuple[tuple[int, float], ...] = ()
    # (sequences, batch) pairs, per process like batch_size: once the run has seen that many
    # sequences, each step takes that batch (e.g. ((100_000, 32),): batch_size until then, 32 after;
    # a machine that found its solution at batch 1 refines it faster at batch 32, measured on
    # N-grams and associative recall). A resumed run takes the batch of the last entry it has passed.
    batch_schedule: tuple[tuple[int, int], ...] = ()


AUTO_MEMORY_FRACTIONS = (3 / 16, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1.0)


def memory_size_choices(spec: str | tuple[int, ...] | list[int], locations: int, min_size: int = 1) -> list[int]:
    """The memory sizes a run draws from: ``"auto"``, ``"full"`` or explicit sizes (each in
    [``min_size``, ``locations``])."""
    if spec == "auto":
        return sorted({max(min_size, round(locations * f)) for f in AUTO_MEMORY_FRACTIONS})
    if spec == "full":
        return [locations]
    if isinstance(spec, str):
        try:
            spec = tuple(int(v) for v in spec.split(","))
        except ValueError:
            raise ConfigError(f"memory sizes must be auto, full or comma-separated integers, got {spec!r}") from None
    sizes = sorted(set(int(v) for v in spec))
    if not sizes or sizes[0] < min_size or sizes[-1] > locations:
        raise ConfigError(
            f"memory sizes must lie in [{min_size}, {locations}] (the model's memory_locations), got "
            f"{list(spec)}: give smaller sizes or a larger --memory_locations"
        )
    return sizes


def draw_memory_size(choices: list[int], needed: int, generator: torch.Generator) -> int:
    """A memory size from ``choices`` with at least ``needed`` rows (the largest if none has)."""
    fits = [n for n in choices if n >= needed] or [choices[-1]]
    return fits[int(torch.randint(len(fits), (1,), generator=generator))]


def make_task(name: str, options: dict | None = None) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name](**(options or {}))


def model_config_for(kind: str, task: Task, options: dict) -> dict:
    """The config dict of model ``kind`` (a :data:`ntmkit.registry.MODELS` name) for ``task``."""
    return model_kind(kind).config(task.input_size, task.output_size, options)


def check_config(cfg: TrainConfig) -> tuple[Task, dict]:
    """Refuse bad settings before anything is written (the lock creates the checkpoint directory);
    returns the task and the model config the settings describe."""
    if cfg.batch_levels not in ("mixed", "same"):
        raise ConfigError(f"batch_levels must be 'mixed' or 'same', got {cfg.batch_levels!r}")
    if cfg.engine not in ENGINES:
        raise ConfigError(f"unknown engine {cfg.engine!r}: choose one of {', '.join(ENGINES)}")
    if isinstance(cfg.unroll, bool) or not isinstance(cfg.unroll, int) or cfg.unroll < 1:
        raise ConfigError(f"unroll must be an integer >= 1 (time steps per compiled call), got {cfg.unroll!r}")
    for kind in ("lr", "batch"):
        try:
            schedule.check(getattr(cfg, f"{kind}_schedule"), kind)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{kind}_schedule: {e}") from None
    if cfg.spike_clip < 0 or cfg.spike_window < 1:
        raise ConfigError(
            f"spike_clip must be >= 0 (0: off) and spike_window >= 1, got {cfg.spike_clip} and {cfg.spike_window}"
        )
    if not cfg.state_grad_clip >= 0:
        raise ConfigError(f"state_grad_clip must be >= 0 (0: off), got {cfg.state_grad_clip}")
    if cfg.state_grad_clip and not model_kind(cfg.model).has_memory:
        raise ConfigError(
            f"state_grad_clip bounds the gradients of a memory model's state; the {model_kind(cfg.model).label} "
            "has no memory: drop --state_grad_clip or use --model ntm or dnc"
        )
    if cfg.steps_after_learned < 0 or not cfg.lr_after_learned > 0:
        raise ConfigError(
            f"steps_after_learned must be >= 0 and lr_after_learned > 0, got "
            f"{cfg.steps_after_learned} and {cfg.lr_after_learned}"
        )
    if not 0 <= cfg.eval_top_share <= 1:
        raise ConfigError(f"eval_top_share must lie in [0, 1], got {cfg.eval_top_share}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < SEED_LIMIT:
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {cfg.seed!r}: give a smaller seed")
    task = make_task(cfg.task, cfg.task_options)
    return task, model_config_for(cfg.model, task, cfg.model_options)


def _plain(d):
    return json.loads(json.dumps(d, default=str))
