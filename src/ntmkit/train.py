"""Training: data, forward, loss, backward, clip, step, log, checkpoint.

Everything task-specific comes from the task object; everything model-specific from the model
registry. A run resumes exactly from its latest checkpoint (model, optimiser, curriculum, step
and random-number states).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, cast

import torch

from . import checkpoint as ckpt
from . import distributed, schedule
from .engine import compiler_available
from .errors import ConfigError, NTMError
from .evaluate import evaluate
from .models import MemoryModel
from .optim import SpikeClip, clip_grad_norm, make_optimizer, set_grad_scale
from .registry import build_model, model_kind
from .tasks import TASKS, Task
from .warmup import BackgroundCompile, cache_is_warm, warm_spec

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


@dataclass
class Curriculum:
    """Widens the training range each time the current one is learned.

    ``level`` is the largest difficulty (copy: length) in the current range; it starts at
    ``start`` and grows by ``step`` whenever the running mean of the training cost falls below
    ``threshold``, until it reaches ``maximum``. A range that is not learned within ``patience``
    steps is widened anyway: a machine stuck on short sequences (for example one that found a
    solution that does not use its memory) gets harder ones rather than more of the same.

    The running mean may be a 0-dim tensor (costs fed as tensors stay on their device); it is
    only read on the host while the range can still widen.
    """

    level: int
    maximum: int
    step: int = 5
    threshold: float = 0.1
    patience: int = 300
    ema: float | torch.Tensor | None = None
    steps_at_level: int = 0

    def update(self, cost: float | torch.Tensor) -> bool:
        """Record one batch's cost (float64 tensors keep float arithmetic); True if the range widened."""
        self.ema = cost if self.ema is None else 0.9 * self.ema + 0.1 * cost
        self.steps_at_level += 1
        if self.level < self.maximum and (
            self.steps_at_level >= self.patience or (self.steps_at_level >= 20 and float(self.ema) < self.threshold)
        ):
            self.level = min(self.maximum, self.level + self.step)
            self.ema, self.steps_at_level = None, 0
            return True
        return False

    @property
    def complete(self) -> bool:
        return self.level >= self.maximum

    def state_dict(self) -> dict:
        state = dataclasses.asdict(self)
        state["ema"] = None if self.ema is None else float(self.ema)
        return state


@dataclass
class Streams:
    """The run's random-number streams. ``data`` draws the training sequences (each process its
    own), ``eval`` the stop test's, ``level`` each batch's level and memory size (shared by all
    processes, so data-parallel processes run batches of one shape), ``picture`` the logged
    pictures (never the training data)."""

    data: torch.Generator
    eval: torch.Generator
    level: torch.Generator
    picture: torch.Generator

    @classmethod
    def seeded(cls, seed: int, rank: int) -> Streams:
        def stream(offset: int) -> torch.Generator:
            return torch.Generator().manual_seed(seed + offset)

        return cls(stream(RANK_SEED_STRIDE * rank), stream(1_000_003 + RANK_SEED_STRIDE * rank), stream(17), stream(23))

    def state_dict(self, device: torch.device, collective: bool) -> dict:
        """Every stream (and the global torch ones); ``collective``: every process's data streams."""
        state: dict = {"torch": torch.get_rng_state(), "data": self.data.get_state(), "eval": self.eval.get_state()}
        if device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(device)
        if collective:
            states = zip(distributed.gather(state["data"]), distributed.gather(state["eval"]))
            state["ranks"] = [{"data": d, "eval": e} for d, e in states]
        state["level"] = self.level.get_state()
        return state

    def load_state_dict(self, state: dict, rank: int, device: torch.device) -> None:
        torch.set_rng_state(state["torch"])
        if device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
        ranks = state.get("ranks", [])
        if rank < len(ranks):  # the same number of processes as before: continue each stream
            self.data.set_state(ranks[rank]["data"])
            self.eval.set_state(ranks[rank]["eval"])
        elif rank == 0:
            self.data.set_state(state["data"])
            self.eval.set_state(state["eval"])
        if "level" in state:
            self.level.set_state(state["level"])


@dataclass
class TrainState:
    """Everything a run carries from one step to the next; saved in and restored from checkpoints."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    curriculum: Curriculum
    streams: Streams
    spikes: SpikeClip
    step: int = 0
    sequences: int = 0
    elapsed: float = 0.0  # training seconds over every run of this directory
    skipped: int = 0  # non-finite steps not applied
    learned_at: dict | None = None  # step, sequences and seconds at which the stop test first passed
    sequences_before: int = 0  # what the weights had seen before this run (--init_from)

    def checkpoint(self, cfg: TrainConfig, model_config: dict, device, world_size: int, collective: bool) -> dict:
        """The checkpoint payload (``collective``: gather every process's data streams)."""
        return {
            "model_kind": cfg.model,
            "model_config": model_config,
            "task": {"name": cfg.task, "options": dict(cfg.task_options)},
            "train_config": _plain(dataclasses.asdict(cfg)),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "step": self.step,
            "sequences": self.sequences,
            "sequences_before": self.sequences_before,
            "elapsed": self.elapsed,
            "skipped_steps": self.skipped,
            "learned_at": self.learned_at,
            "grad_norms": self.spikes.state_dict(),
            "rng": self.streams.state_dict(device, collective),
            "world_size": world_size,
        }

    def restore(self, data: dict, rank: int, device, learning_rate: float | None) -> None:
        """Continue from a checkpoint (``learning_rate``: asked for explicitly, e.g. to fine-tune)."""
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if learning_rate is not None:
            self.set_learning_rate(learning_rate)
        self.curriculum = Curriculum(**data["curriculum"])
        self.step, self.sequences = data["step"], data["sequences"]
        self.elapsed, self.skipped = data.get("elapsed", 0.0), data.get("skipped_steps", 0)
        self.learned_at = data.get("learned_at")
        self.sequences_before = data.get("sequences_before", 0)
        norms = data.get("grad_norms", {})
        history, clipped = norms.get("history", ()), norms.get("clipped", 0)
        self.spikes = SpikeClip(self.spikes.factor, self.spikes.window, history, clipped)
        self.streams.load_state_dict(data["rng"], rank, device)

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def scale_learning_rate(self, factor: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] *= factor


def init_source(spec: str) -> tuple[dict, str]:
    """The checkpoint dict a new run starts from, and where it came from: ``spec`` is a checkpoint
    file, a checkpoint directory (its latest), or the name of a shipped model (``priority_sort``)."""
    from .pretrained import load_pretrained, manifest, pretrained_path

    path = Path(spec)
    if path.exists():
        try:
            if path.is_dir():
                found, data = ckpt.load_newest_good(path, rename=False)
                return data, str(found)
            return ckpt.load_file(path), str(path)
        except ckpt.CheckpointError as e:
            raise ckpt.CheckpointError(f"--init_from {spec}: {e}") from None
    if "/" not in spec and pretrained_path(spec).is_file():
        return load_pretrained(spec), f"the shipped model {spec!r}"
    raise ckpt.CheckpointError(
        f"--init_from {spec}: no such checkpoint file or directory, and no shipped model of that name "
        f"(shipped: {', '.join(sorted(manifest()))})"
    )


def build_state(cfg: TrainConfig, task: Task, model_config: dict, device, rank: int) -> TrainState:
    """A fresh run's state: the model (seeded), its optimiser, the curriculum and the streams."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, model_config).to(device)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.learning_rate, cfg.momentum)
    streams = Streams.seeded(cfg.seed, rank)
    start = min(task.max_level, cfg.curriculum_start) if cfg.curriculum else task.max_level
    threshold = 10 * task.learned_below if cfg.curriculum_threshold is None else cfg.curriculum_threshold
    curriculum = Curriculum(
        max(start, task.min_level), task.max_level, cfg.curriculum_step, threshold, cfg.curriculum_patience
    )
    return TrainState(model, optimizer, curriculum, streams, SpikeClip(cfg.spike_clip, cfg.spike_window))


def memory_sizes_for(cfg: TrainConfig, task: Task, model: torch.nn.Module) -> list[int] | None:
    """The memory sizes training draws from (None: the model's own memory, and models without one)."""
    if not model_kind(cfg.model).has_memory or task.memory_needed(task.max_level) <= 0:
        return None
    memory_model = cast(MemoryModel, model)
    n = memory_model.config.memory_locations
    sizes = memory_size_choices(cfg.memory_sizes, n, memory_model.cell.min_locations)
    return None if sizes == [n] else sizes


class StepResult(NamedTuple):
    """One training step's outcome, as tensors on the training device (nothing read on the host)."""

    loss: torch.Tensor
    grad_norm: torch.Tensor
    metrics: dict[str, torch.Tensor]  # the task's per-batch scores and ``cost``


def train_step(run: Run, state: TrainState) -> StepResult:
    """Draw a batch, run forward and backward, clip; the caller decides whether to apply the step."""
    cfg, task, streams, level_top = run.cfg, run.task, state.streams, state.curriculum.level
    state.model.train()
    if cfg.batch_levels == "same":
        level = int(torch.randint(min(task.min_level, level_top), level_top + 1, (1,), generator=streams.level))
        batch = task.make_batch(run.batch_size, streams.data, level=level).to(run.device)
    else:
        batch = task.make_batch(run.batch_size, streams.data, max_level=level_top).to(run.device)
        level = int(batch.levels.max())
    if run.memory_sizes is None:
        logits, _ = run.train_model(batch.inputs)
    else:
        rows = draw_memory_size(run.memory_sizes, task.memory_needed(level) + cfg.memory_margin, streams.level)
        logits, _ = run.train_model(batch.inputs, memory_locations=rows)
    loss = task.loss(logits, batch)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()  # under torchrun, DistributedDataParallel averages the gradients here
    grad_norm = clip_grad_norm(run.params, cfg.clip_grad_norm)
    metrics = task.metrics(logits.detach(), batch)
    metrics["cost"] = task.cost(metrics)
    return StepResult(loss.detach(), grad_norm, metrics)


class TrainingDiverged(NTMError):
    """The weights became NaN or infinite and no good checkpoint can bring them back."""


def train(cfg: TrainConfig, progress: bool = True, on_step=None) -> dict:
    """Train (or resume) a model; returns a summary dict.

    Resumes from the latest checkpoint in ``cfg.checkpoint_dir`` when one exists; its model
    and task settings must match ``cfg`` (see :func:`check_matches`). The directory is locked
    for the run (:class:`ntmkit.checkpoint.DirectoryLock`): a second run on it stops at once.
    SIGINT and SIGTERM both end the run after the current step with a checkpoint (the summary's
    ``signal`` says which). The log directory is locked with it, so two runs never share a log.
    A damaged latest checkpoint is reported and the newest good one resumed
    (:func:`ntmkit.checkpoint.load_newest_good`); non-finite state is never saved.
    """
    task, model_config = check_config(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # data-parallel: process 0 holds the lock for all
        return _train(cfg, task, model_config, progress, on_step)
    with ckpt.RunLock(cfg.checkpoint_dir, cfg.train_log_dir):
        return _train(cfg, task, model_config, progress, on_step)


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


@dataclass
class Run:
    """What the loop needs beside the state: the settings, the task, this process's place, the
    model as trained (wrapped for data-parallel runs) and the memory sizes to draw from."""

    cfg: TrainConfig
    task: Task
    model_config: dict
    device: torch.device
    rank: int
    world_size: int
    train_model: torch.nn.Module
    memory_sizes: list[int] | None
    converge_threshold: float
    params: list[torch.nn.Parameter]
    batch_size: int  # this process's batch now (cfg.batch_size, or the batch_schedule's entry passed)
    pending_compile: BackgroundCompile | None = None  # the helper compiling the step ("auto" engine)
    compiled_from: int | None = None  # the step at which training went over to the compiled step

    @property
    def main_process(self) -> bool:
        return self.rank == 0

    def save(self, state: TrainState, collective: bool = True) -> bool:
        """Write a checkpoint; False (nothing written) if the weights or optimiser state are not finite."""
        payload = state.checkpoint(self.cfg, self.model_config, self.device, self.world_size, collective)
        if ckpt.non_finite_part(payload) is not None:
            return False
        if self.main_process:
            ckpt.save(self.cfg.checkpoint_dir, state.step, payload, self.cfg.max_to_keep)
        return True


def _train(cfg: TrainConfig, task: Task, model_config: dict, progress: bool, on_step) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = distributed.process_device(torch.device(cfg.device))
    joined_here = not distributed.active()
    rank, world_size = distributed.setup(device)
    data = None
    if ckpt.has_checkpoints(cfg.checkpoint_dir):
        data = ckpt.load_newest_good(cfg.checkpoint_dir, rename=rank == 0)[1]
    if data is not None:
        check_matches(data, cfg.model, model_config, cfg.task, cfg.task_options, cfg.checkpoint_dir, cfg.optimizer)
    state = build_state(cfg, task, model_config, device, rank)
    if data is None and cfg.init_from is not None:
        source, where = init_source(cfg.init_from)
        check_matches(source, cfg.model, model_config, cfg.task, {}, where)  # a new run: task options may differ
        state.model.load_state_dict(source["model"])
        state.sequences_before = ckpt.trained_sequences(source)
        if cfg.init_optimizer and "optimizer" in source:
            saved_with = source.get("train_config", {}).get("optimizer")
            if saved_with not in (None, cfg.optimizer):
                raise ConfigError(
                    f"{where} was trained with the {saved_with} optimiser, not {cfg.optimizer}: start this phase with "
                    f"a fresh optimiser (fresh_optimizer = true) or keep {saved_with}"
                )
            state.optimizer.load_state_dict(source["optimizer"])
            if cfg.learning_rate is not None:
                state.set_learning_rate(cfg.learning_rate)
    memory_sizes = memory_sizes_for(cfg, task, state.model)
    batch = schedule.value_at(cfg.batch_schedule, 0 if data is None else data["sequences"], cfg.batch_size)
    pending, compiled_from = _compile(cfg, state.model, model_config, memory_sizes, device, world_size, batch)
    if cfg.state_grad_clip:  # check_config refused it for a model without memory
        cast(MemoryModel, state.model).bound_state_gradients(cfg.state_grad_clip)
    if data is not None:
        state.restore(data, rank, device, cfg.learning_rate)
    if (lr := schedule.passed(cfg.lr_schedule, -1, state.sequences)) is not None:
        state.set_learning_rate(lr)  # the entry the run has passed, fresh or resumed
    converge = task.learned_below if cfg.converge_threshold is None else cfg.converge_threshold
    params = [p for p in state.model.parameters() if p.requires_grad]
    wrapped = distributed.wrap(state.model)
    run = Run(cfg, task, model_config, device, rank, world_size, wrapped, memory_sizes, converge, params, batch)
    run.pending_compile, run.compiled_from = pending, compiled_from
    try:
        outcome = _loop(run, state, progress, on_step)
        outcome.compiled_from = run.compiled_from
    finally:
        if run.pending_compile is not None:
            run.pending_compile.close()
    if joined_here and world_size > 1:
        # DistributedDataParallel's reducer keeps the gloo process group (and its threads) alive:
        # free it before leaving the group, or those threads are torn down at interpreter exit,
        # which can abort the process after a complete run.
        del run
        gc.collect()
        distributed.teardown()
    return _summary(cfg, state, outcome, task, rank, world_size)


def _compile(cfg: TrainConfig, model, model_config: dict, memory_sizes, device, world_size: int, batch: int):
    """Compile a memory model's step for training (at this process's ``batch``) as the engine says.
    Returns the helper process compiling it in the background ("auto" on a cold cache) or None, and
    the step from which training runs compiled (0: from the start; None: not yet, or never)."""
    # torch.compile's CPU and CUDA back ends are the ones measured here; other devices (mps) run eager.
    if cfg.engine == "eager" or device.type not in ("cpu", "cuda") or not compiler_available():
        return None, None
    if not model_kind(cfg.model).has_memory:
        return None, None
    vary = memory_sizes is not None
    spec = warm_spec(
        cfg.model,
        model_config,
        batch,
        max(memory_sizes) if vary else None,
        vary,
        torch.get_num_threads(),
        cfg.unroll,
    )
    if cfg.engine == "auto" and device.type == "cpu" and world_size == 1 and not cache_is_warm(spec):
        return BackgroundCompile(spec), None
    cast(MemoryModel, model).compile_step(vary_memory=vary, unroll=cfg.unroll)
    return None, 0


def _switch_when_compiled(run: Run, state: TrainState, log: RunLog) -> None:
    """Once the helper has filled the compile cache, compile here (from the cache) and go on compiled;
    if it failed, compile here from scratch (its error is reported)."""
    helper = run.pending_compile
    if helper is None or (done := helper.poll()) is None:
        return
    if not done:
        log.warn(f"compiling in a helper process failed ({helper.error()}); compiling here")
    helper.close()
    run.pending_compile = None
    run.compiled_from = state.step
    cast(MemoryModel, state.model).compile_step(vary_memory=run.memory_sizes is not None, unroll=run.cfg.unroll)


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


def _loop(run: Run, state: TrainState, progress: bool, on_step) -> Outcome:
    """Step until the budget, the step limit, a signal or the stop rule ends the run; save on the way out."""
    cfg, task = run.cfg, run.task
    outcome = Outcome()
    log = RunLog(cfg, task, state, progress and run.main_process, run.main_process)
    run_start = time.perf_counter()  # max_seconds is a budget for this run alone
    t_start = run_start - state.elapsed  # "seconds" in logs count every run of this directory
    bad_in_a_row = 0
    first_step = state.step
    with StopSignals() as signals:
        try:
            while not (_finished(state, cfg, outcome) or signals.raised):
                _switch_when_compiled(run, state, log)
                result = train_step(run, state)
                late = cfg.max_seconds is not None and time.perf_counter() - run_start >= cfg.max_seconds
                finite, cost, outcome.interrupted, outcome.time_up = _agree(result, signals.raised, late)
                state.step += 1
                if outcome.first_step_time is None:
                    outcome.first_step_time = time.time()
                if not finite:
                    state.skipped += 1  # second line of defence: never apply a non-finite update
                    bad_in_a_row += 1
                    log.skipped(state)
                    if bad_in_a_row >= cfg.max_bad_steps:
                        _recover(run, state, bad_in_a_row, log)
                        outcome.recoveries, bad_in_a_row = outcome.recoveries + 1, 0
                    continue
                bad_in_a_row = 0
                _clip_spike(run, state, result.grad_norm)
                set_grad_scale(state.optimizer, result.metrics["target_bits"])  # the loss is their mean
                state.optimizer.step()
                state.sequences += run.batch_size * run.world_size
                _follow_schedules(run, state, state.sequences - run.batch_size * run.world_size, log)
                widened = state.curriculum.update(cost)
                if on_step is not None:
                    on_step(state.step, state.model)
                log.step(state, result, widened, time.perf_counter() - t_start)
                if _stop_test_due(run, state) and _run_stop_test(run, state, outcome, log, t_start):
                    if cfg.steps_after_learned == 0:
                        break
                    state.scale_learning_rate(cfg.lr_after_learned)
                if state.step % cfg.report_interval == 0:
                    state.elapsed = time.perf_counter() - t_start
                    if not run.save(state):  # non-finite weights: never written; back to the last good ones
                        _recover(run, state, 0, log)
                        outcome.recoveries += 1
            stopping = outcome.interrupted or (run.world_size == 1 and signals.raised)
            checked_at = outcome.final_eval["step"] if outcome.final_eval is not None else None
            if _final_check_due(state, cfg, stopping, first_step, checked_at):
                # the held-out check once more, to report the machine that is kept (a run that ended
                # at its step limit or time budget gets one too, unless its last check was just now)
                outcome.final_eval = _stop_test_once(run, state)
        finally:
            outcome.interrupted = outcome.interrupted or signals.raised
            outcome.signal = signals.name
            state.elapsed = time.perf_counter() - t_start
            # Leaving on an exception, the other processes may sit in another collective: a gather
            # now would wait for them for ever. Process 0 then saves what it has, without the
            # others' data streams (a resume redraws theirs from their seeds).
            failing = sys.exc_info()[0] is not None and run.world_size > 1
            if state.step > 0:
                outcome.unsaved = not run.save(state, collective=not failing)
            log.close()
    if outcome.unsaved:
        last = ckpt.latest(cfg.checkpoint_dir)
        kept = f"the last good checkpoint is {last}" if last is not None else "no checkpoint was written"
        raise TrainingDiverged(
            f"the weights at step {state.step} are NaN or infinite and were not saved ({kept}): lower "
            f"--learning_rate and run again"
        )
    return outcome


def _clip_spike(run: Run, state: TrainState, grad_norm: torch.Tensor) -> None:
    """Scale the (already clipped) gradients down to the spike bound, if this step's norm is a spike.
    Data-parallel, every process sees the same averaged gradients, so all decide alike."""
    norm = float(grad_norm)
    bound = state.spikes.limit(norm)
    if bound is None:
        return
    grads = [p.grad for p in run.params if p.grad is not None]
    torch._foreach_mul_(grads, bound / min(norm, run.cfg.clip_grad_norm))


def _polished(state: TrainState, cfg: TrainConfig) -> bool:
    """The steps after learning are done."""
    return state.learned_at is not None and state.step >= state.learned_at["step"] + cfg.steps_after_learned


def _final_check_due(
    state: TrainState, cfg: TrainConfig, stopping: bool, first_step: int, checked_at: int | None
) -> bool:
    """Whether the run ends with a held-out check: a learned run after its steps after learning, and
    a run that trained in this sitting and ended at its step limit or time budget (not stopped by a
    signal), unless a check was made at this very step. Data-parallel, only agreed state decides, as
    every process takes part in the check."""
    if state.learned_at is not None and cfg.steps_after_learned and _polished(state, cfg):
        return True
    return state.step > first_step and not stopping and checked_at != state.step


def _follow_schedules(run: Run, state: TrainState, before: int, log: RunLog) -> None:
    """Set the learning rate and the batch of the schedule entries that this step, from ``before``
    sequences seen, has just passed. A new batch size compiles the step once more."""
    if (lr := schedule.passed(run.cfg.lr_schedule, before, state.sequences)) is not None:
        state.set_learning_rate(lr)
        log.note(f"learning rate {lr:.3g} from {state.sequences:,} sequences (--lr_schedule)")
    if (batch := schedule.passed(run.cfg.batch_schedule, before, state.sequences)) is not None:
        run.batch_size = batch
        log.note(f"batch {batch * run.world_size} from {state.sequences:,} sequences (--batch_schedule)")


def _finished(state: TrainState, cfg: TrainConfig, outcome: Outcome) -> bool:
    return state.step >= cfg.max_steps or outcome.interrupted or outcome.time_up or _polished(state, cfg)


def _agree(result: StepResult, interrupted: bool, out_of_time: bool) -> tuple[bool, float | torch.Tensor, bool, bool]:
    """Whether the step is finite, its cost for the curriculum, and whether to stop. One host read
    a step; data-parallel, one collective, so that every process makes the same decisions (the
    cost is then the mean over the processes)."""
    finite = torch.isfinite(result.loss) & torch.isfinite(result.grad_norm)
    cost = result.metrics["cost"].double()  # float64: the running mean's arithmetic is the host's
    if not distributed.active():
        return bool(finite), cost, interrupted, out_of_time
    ok, mean_cost, stop, late = distributed.mean([float(finite), float(cost), float(interrupted), float(out_of_time)])
    return ok >= 1, mean_cost, stop > 0, late > 0


def _stop_test_due(run: Run, state: TrainState) -> bool:
    """Whether to run the held-out stop test now: not yet learned, the whole range in training, at
    an eval interval, and the running training cost within ten times the threshold."""
    c = state.curriculum
    return (
        run.cfg.stop_when_learned
        and state.learned_at is None
        and c.complete
        and state.step % run.cfg.eval_interval == 0
        and c.ema is not None
        and float(c.ema) < 10 * run.converge_threshold
    )


def _stop_test_once(run: Run, state: TrainState) -> dict:
    """The held-out stop test on the machine as it is now, stamped with the step it scored."""
    cfg = run.cfg
    result = stop_test(
        state.model, run.task, cfg.eval_sequences, cfg.eval_top_share, state.streams.eval, run.world_size, run.device
    )
    return {**result, "step": state.step}


def _run_stop_test(run: Run, state: TrainState, outcome: Outcome, log: RunLog, t_start: float) -> bool:
    """Run the stop test; True (and ``learned_at`` set) when it passes."""
    outcome.final_eval = result = _stop_test_once(run, state)
    log.stop_test(result, state.sequences)
    passed = result["cost"] < run.converge_threshold and result.get("top", result)["cost"] < run.converge_threshold
    if passed:
        state.learned_at = {
            "step": state.step,
            "sequences": state.sequences,
            "seconds": round(time.perf_counter() - t_start, 3),
        }
    return passed


def _recover(run: Run, state: TrainState, count: int, log: RunLog) -> None:
    """Many non-finite steps in a row (``count``), or non-finite weights at a save (``count`` 0): go
    back to the last good checkpoint and halve the lr. Non-finite weights with no checkpoint to go
    back to cannot be helped: :class:`TrainingDiverged`."""
    lowered = [group["lr"] * 0.5 for group in state.optimizer.param_groups]
    last = None
    if ckpt.has_checkpoints(run.cfg.checkpoint_dir):
        last, good = ckpt.load_newest_good(run.cfg.checkpoint_dir, rename=run.main_process)
        state.model.load_state_dict(good["model"])
        state.optimizer.load_state_dict(good["optimizer"])
    elif not all(bool(torch.isfinite(p).all()) for p in state.model.parameters()):
        raise TrainingDiverged(
            f"the weights became NaN or infinite by step {state.step}, before any checkpoint was saved: lower "
            f"--learning_rate (it is {state.optimizer.param_groups[0]['lr']:.3g}) and run again"
        )
    for group, lr in zip(state.optimizer.param_groups, lowered):
        group["lr"] = lr
    where = f"restored {last.name}" if last is not None else "no checkpoint yet to restore"
    what = f"{count} non-finite steps in a row" if count else "non-finite weights (not saved)"
    if run.main_process:
        log.warn(
            f"{what} at step {state.step}: {where}, learning rate lowered to "
            f"{state.optimizer.param_groups[0]['lr']:.3g}"
        )


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


class StopSignals:
    """Ctrl-C, and what a scheduler or ``docker stop`` sends before killing: note it, so that the
    loop finishes its step, saves and exits (handlers installed only in the main thread)."""

    def __init__(self):
        self.raised = False
        self.name: str | None = None  # "SIGINT" or "SIGTERM", once one came
        self._old: dict = {}

    def _note(self, signum, frame):
        self.raised = True
        self.name = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if _main_thread():
            self._old = {sig: signal.signal(sig, self._note) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class RunLog:
    """Metrics, TensorBoard, the progress and pictures. The step metrics are summed on the device
    and read once per ``log_interval`` (one host synchronisation per interval); a row is the mean
    over the steps since the last one. Progress is a bar on a terminal, and otherwise (output to a
    file or a pipe) a plain line at most every ``print_seconds``; its rate is measured over the
    time since the last update, counted from the start of this sitting (never 0 after a resume)."""

    KEYS = ("loss", "bits", "bit_errors", "cost", "grad_norm")

    def __init__(self, cfg: TrainConfig, task: Task, state: TrainState, progress: bool, main: bool):
        self.cfg, self.task = cfg, task
        self.writer = _open_writer(cfg.train_log_dir) if main else None
        self.file = (
            open(Path(cfg.train_log_dir) / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())
            if cfg.train_log_dir and main
            else None
        )
        terminal = sys.stderr.isatty()  # where the bar draws
        self.bar = _progress_bar(progress and terminal, state.step)
        self.lines = progress and not terminal  # plain progress lines instead of the bar
        self.sums: torch.Tensor | None = None
        self.count = 0
        self.last_time, self.last_sequences = time.perf_counter(), state.sequences

    def step(self, state: TrainState, result: StepResult, widened: bool, seconds: float) -> None:
        m = result.metrics
        values = torch.stack([result.loss, m["bits"], m["bit_errors"], m["cost"], result.grad_norm]).double()
        self.sums = values if self.sums is None else self.sums + values
        self.count += 1
        if state.step % self.cfg.log_interval == 0 or widened:
            self._write(state, seconds)
        if self.writer is not None and self.cfg.picture_interval and state.step % self.cfg.picture_interval == 0:
            level, stream = state.curriculum.level, state.streams.picture
            _log_picture(self.writer, state.model, self.task, level, stream, state.sequences)

    def _write(self, state: TrainState, seconds: float) -> None:
        assert self.sums is not None
        means = distributed.mean((self.sums / self.count).tolist())  # the interval's one host read
        self.sums, self.count = None, 0
        row = {"step": state.step, "sequences": state.sequences, "seconds": round(seconds, 3)}
        row.update(zip(self.KEYS, means))
        row["level"] = state.curriculum.level
        if self.writer is not None:
            _log_scalars(self.writer, row)
        if self.file is not None:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        now = time.perf_counter()
        if self.bar is None and not (self.lines and now - self.last_time >= self.cfg.print_seconds):
            return
        rate = (state.sequences - self.last_sequences) / max(now - self.last_time, 1e-9)
        levels = f"{self.task.level_name} {self.task.min_level}-{state.curriculum.level}"
        if self.bar is not None:
            self.bar.update(state.step - self.bar.n)
            self.bar.set_postfix_str(
                f"loss {row['loss']:.4f} | bit errors/seq {row['bit_errors']:.2f} | {rate:.0f} seq/s | {levels}"
            )
        else:
            print(
                f"step {state.step} | {state.sequences:,} sequences | loss {row['loss']:.4f} | "
                f"cost {row['cost']:.4f} | {rate:.0f} seq/s | {levels}",
                flush=True,
            )
        self.last_time, self.last_sequences = now, state.sequences

    def skipped(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/skipped_steps", state.skipped, state.sequences)

    def stop_test(self, result: dict, sequences: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar("eval/bit_errors_per_sequence", result["bit_errors"], sequences)
            self.writer.add_scalar("eval/cross_entropy_bits_per_sequence", result["bits"], sequences)
            self.writer.add_scalar("eval/cost", result["cost"], sequences)
            if "top" in result:
                self.writer.add_scalar("eval/cost_at_top_level", result["top"]["cost"], sequences)

    def note(self, message: str) -> None:
        if self.bar is not None:  # the progress's own run: not --quiet, and process 0
            self.bar.write(message)
        elif self.lines:
            print(message, flush=True)

    def warn(self, message: str) -> None:
        (self.bar.write if self.bar is not None else print)(f"warning: {message}")

    def close(self) -> None:
        for thing in (self.bar, self.writer, self.file):
            if thing is not None:
                thing.close()


def stop_test(
    model: torch.nn.Module,
    task: Task,
    sequences: int,
    top_share: float,
    generator: torch.Generator,
    world_size: int = 1,
    device="cpu",
) -> dict:
    """The held-out check that decides "learned": training-range data only.

    ``sequences`` fresh sequences with levels across the training range, and ``top_share`` of
    that many again at the top level (so the longest sequences are checked as well, not only
    their share of a uniform mix). Returns the range's scores with the top level's under
    ``"top"``; with several processes each scores its part and the means are shared.
    """
    keys = ("bits", "bit_errors", "perfect", "cost")

    def run(n: int, level: int | None) -> dict:
        result = evaluate(model, task, -(-n // world_size), generator, level=level, device=device)
        for k, v in zip(keys, distributed.mean([result[k] for k in keys])):
            result[k] = v
        result["sequences"] *= world_size
        return result

    result = run(sequences, None)
    top = round(sequences * top_share)
    if top > 0:
        result["top"] = {"level": task.max_level, **run(top, task.max_level)}
    return result


def check_matches(
    data: dict, kind: str, model_config: dict, task: str, task_options: dict, where, optimizer: str | None = None
) -> None:
    """Refuse to resume a checkpoint whose model, task or optimiser differs from the settings given."""
    if data["model_kind"] != kind:
        raise ckpt.CheckpointError(
            f"the checkpoint in {where} holds a {data['model_kind']!r} model, not {kind!r}: "
            f"use another --checkpoint_dir or --model {data['model_kind']}"
        )
    if data["task"]["name"] != task:
        raise ckpt.CheckpointError(
            f"the checkpoint in {where} was trained on task {data['task']['name']!r}, not "
            f"{task!r}: use another --checkpoint_dir"
        )
    stored = model_kind(kind).normalise(data["model_config"])  # newer settings at their defaults
    for name, value in model_config.items():
        if stored.get(name) != value:
            raise ckpt.CheckpointError(
                f"the checkpoint in {where} has {name}={stored.get(name)!r} but "
                f"{value!r} was asked for: drop the flag or use another --checkpoint_dir"
            )
    for name, value in task_options.items():
        if name in data["task"]["options"] and data["task"]["options"][name] != value:
            raise ckpt.CheckpointError(
                f"the checkpoint in {where} has task setting {name}="
                f"{data['task']['options'][name]!r} but {value!r} was asked for: drop the "
                f"flag or use another --checkpoint_dir"
            )
    saved_with = data.get("train_config", {}).get("optimizer")
    if optimizer is not None and saved_with is not None and saved_with != optimizer:
        raise ckpt.CheckpointError(
            f"the checkpoint in {where} was trained with --optimizer {saved_with}, not {optimizer} (given, or the "
            f"task's recommended setting): resume it with --optimizer {saved_with} or use another --checkpoint_dir"
        )


def _plain(d):
    return json.loads(json.dumps(d, default=str))


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _open_writer(log_dir):
    if not log_dir:
        return None
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional at run time; metrics.jsonl is always written
        return None
    return SummaryWriter(log_dir)


def _log_picture(writer, model, task: Task, level: int, generator: torch.Generator, sequences: int) -> None:
    """The heads' weightings on one example of the hardest level trained so far."""
    from .plots import weightings_figure

    batch = task.make_batch(1, generator, level=level)
    fig = weightings_figure(model, batch.to(next(model.parameters()).device))
    if fig is not None:
        writer.add_figure("weightings", fig, sequences)


def _log_scalars(writer, row: dict) -> None:
    x = row["sequences"]
    writer.add_scalar("train/loss", row["loss"], x)
    writer.add_scalar("train/bit_errors_per_sequence", row["bit_errors"], x)
    writer.add_scalar("train/cross_entropy_bits_per_sequence", row["bits"], x)
    writer.add_scalar("train/cost", row["cost"], x)
    writer.add_scalar("train/grad_norm", row["grad_norm"], x)
    writer.add_scalar("train/curriculum_level", row["level"], x)


def _progress_bar(enabled: bool, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    # No total: a run ends when the task is learned, long before the step limit, so an ETA
    # computed from the limit would be meaningless.
    return tqdm(initial=initial, unit="step", dynamic_ncols=True, mininterval=0.5)
