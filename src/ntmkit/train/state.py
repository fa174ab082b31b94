"""What a run carries from step to step and saves: the curriculum, the random streams, the state
object a checkpoint restores, and the held-out stop test on training-range data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

import torch

from .. import checkpoint as ckpt
from .. import distributed
from ..evaluate import evaluate
from ..models import MemoryModel
from ..optim import SpikeClip, make_optimizer
from ..registry import build_model, model_kind
from ..tasks import Task
from .config import RANK_SEED_STRIDE, TrainConfig, _plain, memory_size_choices


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
    from ..pretrained import load_pretrained, manifest, pretrained_path

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
