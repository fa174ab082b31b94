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

import torch

from . import checkpoint as ckpt
from . import distributed
from .engine import compiler_available
from .errors import ConfigError
from .evaluate import evaluate
from .model import NTM, LSTMBaseline, NTMConfig
from .optim import make_optimizer
from .tasks import TASKS, Task

MODELS = ("ntm", "lstm")
RANK_SEED_STRIDE = 7919  # process r of a data-parallel run seeds its data with seed + r * stride
ENGINES = ("compiled", "eager")


@dataclass
class TrainConfig:
    """Every training setting with its default (the model's settings live in NTMConfig)."""

    task: str = "copy"
    task_options: dict = field(default_factory=dict)
    model: str = "ntm"  # "ntm" or "lstm" (the baseline)
    model_options: dict = field(default_factory=dict)
    batch_size: int = 32
    optimizer: str = "adam"  # "adam", "rmsprop" (Graves 2013) or "rmsprop-torch"
    learning_rate: float | None = None  # None: the optimiser's own default
    momentum: float = 0.9
    clip_grad_norm: float = 10.0
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
    train_log_dir: str | None = "./ntm_logs"
    report_interval: int = 200  # steps between checkpoints
    max_to_keep: int = 3
    log_interval: int = 10  # steps between progress/TensorBoard updates
    picture_interval: int = 500  # steps between TensorBoard pictures of the heads' weightings
    threads: int | None = 1
    max_bad_steps: int = 20  # this many non-finite steps in a row: restore the last checkpoint, halve the lr
    engine: str = "compiled"  # "compiled" (torch.compile of the step) or "eager"
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


def build_model(kind: str, config: dict) -> torch.nn.Module:
    """Rebuild a model from its kind and config dict (as stored in a checkpoint)."""
    if kind == "ntm":
        return NTM.from_config(NTMConfig.from_dict(config))
    if kind == "lstm":
        return LSTMBaseline(**config)
    raise ValueError(f"unknown model {kind!r}: choose one of {', '.join(MODELS)}")


def model_config_for(kind: str, task: Task, options: dict) -> dict:
    if kind == "ntm":
        return NTMConfig(task.input_size, task.output_size, **options).to_dict()
    if kind == "lstm":
        return {"input_size": task.input_size, "output_size": task.output_size, **options}
    raise ValueError(f"unknown model {kind!r}: choose one of {', '.join(MODELS)}")


@dataclass
class Curriculum:
    """Widens the training range each time the current one is learned.

    ``level`` is the largest difficulty (copy: length) in the current range; it starts at
    ``start`` and grows by ``step`` whenever the running mean of training bit errors per
    sequence falls below ``threshold``, until it reaches ``maximum``. A range that is not
    learned within ``patience`` steps is widened anyway: a machine stuck on short sequences
    (for example one that found a solution that does not use its memory) gets harder ones
    rather than more of the same.
    """

    level: int
    maximum: int
    step: int = 5
    threshold: float = 0.1
    patience: int = 300
    ema: float | None = None
    steps_at_level: int = 0

    def update(self, bit_errors: float) -> bool:
        """Record one batch's bit errors per sequence; return True if the range widened."""
        self.ema = bit_errors if self.ema is None else 0.9 * self.ema + 0.1 * bit_errors
        self.steps_at_level += 1
        learned = self.steps_at_level >= 20 and self.ema < self.threshold
        if self.level < self.maximum and (learned or self.steps_at_level >= self.patience):
            self.level = min(self.maximum, self.level + self.step)
            self.ema, self.steps_at_level = None, 0
            return True
        return False

    @property
    def complete(self) -> bool:
        return self.level >= self.maximum

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)


def _rng_state(generator: torch.Generator, eval_generator: torch.Generator, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state(), "eval": eval_generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def train(cfg: TrainConfig, progress: bool = True, on_step=None) -> dict:
    """Train (or resume) a model; returns a summary dict.

    Resumes from the latest checkpoint in ``cfg.checkpoint_dir`` when one exists; its model
    and task settings must match ``cfg`` (see :func:`check_matches`). The directory is locked
    for the run (:class:`ntmkit.checkpoint.DirectoryLock`): a second run on it stops at once.
    SIGINT and SIGTERM both end the run after the current step with a checkpoint.
    """
    task, model_config = check_config(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # data-parallel: process 0 holds the lock for all
        return _train(cfg, task, model_config, progress, on_step)
    with ckpt.DirectoryLock(cfg.checkpoint_dir):
        return _train(cfg, task, model_config, progress, on_step)


def check_config(cfg: TrainConfig) -> tuple[Task, dict]:
    """Refuse bad settings before anything is written (the lock creates the checkpoint directory);
    returns the task and the model config the settings describe."""
    if cfg.batch_levels not in ("mixed", "same"):
        raise ConfigError(f"batch_levels must be 'mixed' or 'same', got {cfg.batch_levels!r}")
    if cfg.engine not in ENGINES:
        raise ConfigError(f"unknown engine {cfg.engine!r}: choose one of {', '.join(ENGINES)}")
    if cfg.steps_after_learned < 0 or not cfg.lr_after_learned > 0:
        raise ConfigError(
            f"steps_after_learned must be >= 0 and lr_after_learned > 0, got "
            f"{cfg.steps_after_learned} and {cfg.lr_after_learned}"
        )
    if not 0 <= cfg.eval_top_share <= 1:
        raise ConfigError(f"eval_top_share must lie in [0, 1], got {cfg.eval_top_share}")
    task = make_task(cfg.task, cfg.task_options)
    return task, model_config_for(cfg.model, task, cfg.model_options)


def _train(cfg: TrainConfig, task: Task, model_config: dict, progress: bool, on_step) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = distributed.process_device(torch.device(cfg.device))
    joined_here = not distributed.active()
    rank, world_size = distributed.setup(device)
    main_process = rank == 0

    resume = ckpt.latest(cfg.checkpoint_dir)
    data = ckpt.load(resume) if resume is not None else None
    if data is not None:
        check_matches(data, cfg.model, model_config, cfg.task, cfg.task_options, cfg.checkpoint_dir)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, model_config).to(device)
    memory_sizes = None  # None: the model's own memory (and models without one)
    if isinstance(model, NTM) and task.memory_needed(task.max_level) > 0:
        memory_sizes = memory_size_choices(
            cfg.memory_sizes, model.config.memory_locations, 2 * model.config.shift_range + 1
        )
        if len(memory_sizes) == 1 and memory_sizes[0] == model.config.memory_locations:
            memory_sizes = None
    # torch.compile's CPU and CUDA back ends are the ones measured here; other devices (mps) run eager.
    if cfg.engine == "compiled" and isinstance(model, NTM) and device.type in ("cpu", "cuda") and compiler_available():
        model.compile_step(vary_memory=memory_sizes is not None)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.learning_rate, cfg.momentum)
    # Each process draws its own sequences; rank 0 draws what a single process would.
    generator = torch.Generator().manual_seed(cfg.seed + RANK_SEED_STRIDE * rank)
    eval_generator = torch.Generator().manual_seed(cfg.seed + 1_000_003 + RANK_SEED_STRIDE * rank)
    # The level (copy: length) of each batch is drawn from a stream every process shares, so
    # data-parallel processes run batches of the same length and never wait for one another.
    level_generator = torch.Generator().manual_seed(cfg.seed + 17)
    picture_generator = torch.Generator().manual_seed(cfg.seed + 23)  # never touches the training data
    start = min(task.max_level, cfg.curriculum_start) if cfg.curriculum else task.max_level
    converge_threshold = task.learned_below if cfg.converge_threshold is None else cfg.converge_threshold
    curriculum_threshold = 10 * task.learned_below if cfg.curriculum_threshold is None else cfg.curriculum_threshold
    curriculum = Curriculum(
        max(start, task.min_level), task.max_level, cfg.curriculum_step, curriculum_threshold, cfg.curriculum_patience
    )
    step, sequences, elapsed, skipped = 0, 0, 0.0, 0
    learned_at = None  # step, sequences and seconds at which the stop test first passed

    if data is not None:
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
        if cfg.learning_rate is not None:  # asked for explicitly: e.g. a lower rate to fine-tune
            for group in optimizer.param_groups:
                group["lr"] = cfg.learning_rate
        curriculum = Curriculum(**data["curriculum"])
        step, sequences = data["step"], data["sequences"]
        elapsed, skipped = data.get("elapsed", 0.0), data.get("skipped_steps", 0)
        learned_at = data.get("learned_at")
        torch.set_rng_state(data["rng"]["torch"])
        if device.type == "cuda" and "cuda" in data["rng"]:
            torch.cuda.set_rng_state(data["rng"]["cuda"], device)
        ranks = data["rng"].get("ranks", [])
        if rank < len(ranks):  # the same number of processes as before: continue each stream
            generator.set_state(ranks[rank]["data"])
            eval_generator.set_state(ranks[rank]["eval"])
        elif rank == 0:
            generator.set_state(data["rng"]["data"])
            eval_generator.set_state(data["rng"]["eval"])
        if "level" in data["rng"]:
            level_generator.set_state(data["rng"]["level"])

    train_model = distributed.wrap(model)
    writer = _open_writer(cfg.train_log_dir) if main_process else None
    metrics_file = (
        open(Path(cfg.train_log_dir) / "metrics.jsonl", "a")  # noqa: SIM115 (closed in the loop's finally)
        if cfg.train_log_dir and main_process
        else None
    )

    def save_checkpoint(collective: bool = True):
        rng = _rng_state(generator, eval_generator, device)
        if collective:  # every process's data streams, so that each resumes its own
            states = zip(distributed.gather(rng["data"]), distributed.gather(rng["eval"]))
            rng["ranks"] = [{"data": d, "eval": e} for d, e in states]
        rng["level"] = level_generator.get_state()
        if not main_process:
            return
        ckpt.save(
            cfg.checkpoint_dir,
            step,
            {
                "model_kind": cfg.model,
                "model_config": model_config,
                "task": {"name": cfg.task, "options": dict(cfg.task_options)},
                "train_config": _plain(dataclasses.asdict(cfg)),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "curriculum": curriculum.state_dict(),
                "step": step,
                "sequences": sequences,
                "elapsed": elapsed,
                "skipped_steps": skipped,
                "learned_at": learned_at,
                "rng": rng,
                "world_size": world_size,
            },
            cfg.max_to_keep,
        )

    bar = _progress_bar(progress and main_process, step)
    interrupted = {"flag": False}

    def on_sigint(signum, frame):
        interrupted["flag"] = True

    # Ctrl-C, and what a scheduler or `docker stop` sends before killing: finish the step, save, exit.
    old_handlers = (
        {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    )
    learned, final_eval = learned_at is not None, None
    bad_in_a_row, recoveries = 0, 0

    def recover(count: int) -> None:
        """Many non-finite steps in a row: go back to the last good checkpoint, halve the lr."""
        nonlocal recoveries
        last = ckpt.latest(cfg.checkpoint_dir)
        lowered = [group["lr"] * 0.5 for group in optimizer.param_groups]
        if last is not None:
            good = ckpt.load(last)
            model.load_state_dict(good["model"])
            optimizer.load_state_dict(good["optimizer"])
        for group, lr in zip(optimizer.param_groups, lowered):
            group["lr"] = lr
        recoveries += 1
        where = f"restored {last.name}" if last is not None else "no checkpoint yet to restore"
        message = (
            f"{count} non-finite steps in a row at step {step}: {where}, learning rate lowered to "
            f"{optimizer.param_groups[0]['lr']:.3g}"
        )
        if main_process:
            (bar.write if bar is not None else print)(f"warning: {message}")

    t_start = time.perf_counter() - elapsed  # "seconds" in logs and summaries count every run of this directory
    run_start = time.perf_counter()  # max_seconds is a budget for this run alone
    last_log_t, last_log_seq = time.perf_counter(), sequences
    params = [p for p in model.parameters() if p.requires_grad]
    time_up = False
    try:
        while (
            step < cfg.max_steps
            and not interrupted["flag"]
            and not time_up
            and not (learned_at is not None and step >= learned_at["step"] + cfg.steps_after_learned)
        ):
            model.train()
            if cfg.batch_levels == "same":
                level = int(
                    torch.randint(
                        min(task.min_level, curriculum.level), curriculum.level + 1, (1,), generator=level_generator
                    )
                )
                batch = task.make_batch(cfg.batch_size, generator, level=level).to(device)
            else:
                batch = task.make_batch(cfg.batch_size, generator, max_level=curriculum.level).to(device)
                level = int(batch.levels.max())
            if memory_sizes is None:
                logits, _ = train_model(batch.inputs)
            else:
                rows = draw_memory_size(memory_sizes, task.memory_needed(level) + cfg.memory_margin, level_generator)
                logits, _ = train_model(batch.inputs, memory_locations=rows)
            loss = task.loss(logits, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # under torchrun, DistributedDataParallel averages the gradients here
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            score = task.score(logits.detach(), batch)
            # One collective a step for everything the processes must agree on.
            finite = float(torch.isfinite(loss) and torch.isfinite(grad_norm))
            out_of_time = float(cfg.max_seconds is not None and time.perf_counter() - run_start >= cfg.max_seconds)
            loss_value, bit_errors, bits, cost, finite, stop, out_of_time = distributed.mean(
                [
                    loss.item() if finite else 0.0,
                    score["bit_errors"],
                    score["bits"],
                    score["cost"],
                    finite,
                    float(interrupted["flag"]),
                    out_of_time,
                ]
            )
            if stop > 0:
                interrupted["flag"] = True
            time_up = out_of_time > 0
            if finite < 1:
                skipped += 1  # second line of defence: never apply a non-finite update
                bad_in_a_row += 1
                step += 1
                if writer is not None:
                    writer.add_scalar("train/skipped_steps", skipped, sequences)
                if bad_in_a_row >= cfg.max_bad_steps:
                    recover(bad_in_a_row)
                    bad_in_a_row = 0
                continue
            bad_in_a_row = 0
            optimizer.step()
            step += 1
            sequences += cfg.batch_size * world_size
            widened = curriculum.update(cost)
            if on_step is not None:
                on_step(step, model)

            if step % cfg.log_interval == 0 or widened:
                now = time.perf_counter()
                rate = (sequences - last_log_seq) / max(now - last_log_t, 1e-9)
                last_log_t, last_log_seq = now, sequences
                row = {
                    "step": step,
                    "sequences": sequences,
                    "seconds": round(now - t_start, 3),
                    "loss": loss_value,
                    "bits": bits,
                    "bit_errors": bit_errors,
                    "cost": cost,
                    "grad_norm": float(grad_norm),
                    "level": curriculum.level,
                }
                _log(writer, metrics_file, row)
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix_str(
                        f"loss {loss_value:.4f} | bit errors/seq {bit_errors:.2f} | "
                        f"{rate:.0f} seq/s | {task.level_name} {task.min_level}-{curriculum.level}"
                    )

            if writer is not None and cfg.picture_interval and step % cfg.picture_interval == 0:
                _log_picture(writer, model, task, curriculum.level, picture_generator, sequences)

            if (
                cfg.stop_when_learned
                and learned_at is None
                and curriculum.complete
                and curriculum.ema is not None
                and curriculum.ema < 10 * converge_threshold
                and step % cfg.eval_interval == 0
            ):
                final_eval = stop_test(
                    model, task, cfg.eval_sequences, cfg.eval_top_share, eval_generator, world_size, device
                )
                if writer is not None:
                    writer.add_scalar("eval/bit_errors_per_sequence", final_eval["bit_errors"], sequences)
                    writer.add_scalar("eval/cost", final_eval["cost"], sequences)
                    if "top" in final_eval:
                        writer.add_scalar("eval/cost_at_top_level", final_eval["top"]["cost"], sequences)
                if (
                    final_eval["cost"] < converge_threshold
                    and final_eval.get("top", final_eval)["cost"] < converge_threshold
                ):
                    learned = True
                    learned_at = {
                        "step": step,
                        "sequences": sequences,
                        "seconds": round(time.perf_counter() - t_start, 3),
                    }
                    if cfg.steps_after_learned == 0:
                        break
                    for group in optimizer.param_groups:
                        group["lr"] *= cfg.lr_after_learned
            if step % cfg.report_interval == 0:
                elapsed = time.perf_counter() - t_start
                save_checkpoint()
        if learned_at is not None and cfg.steps_after_learned and step >= learned_at["step"] + cfg.steps_after_learned:
            # the same training-range check once more, to report the machine that is kept
            final_eval = stop_test(
                model, task, cfg.eval_sequences, cfg.eval_top_share, eval_generator, world_size, device
            )
    finally:
        elapsed = time.perf_counter() - t_start
        # Leaving on an exception, the other processes may sit in another collective: a gather
        # now would wait for them for ever. Process 0 then saves what it has, without the
        # others' data streams (a resume redraws theirs from their seeds).
        failing = sys.exc_info()[0] is not None and world_size > 1
        if step > 0:
            save_checkpoint(collective=not failing)
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if metrics_file is not None:
            metrics_file.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    if joined_here and world_size > 1:
        # DistributedDataParallel's reducer keeps the gloo process group (and its threads) alive:
        # free it before leaving the group, or those threads are torn down at interpreter exit,
        # which can abort the process after a complete run.
        del train_model
        gc.collect()
        distributed.teardown()
    if main_process and cfg.train_log_dir:
        summary = {
            "task": cfg.task,
            "model": cfg.model,
            "seed": cfg.seed,
            "learned": learned,
            "learned_at": learned_at,
            "time_up": time_up,
            "interrupted": interrupted["flag"],
            "step": step,
            "sequences": sequences,
            "seconds": round(elapsed, 3),
            "final_eval": final_eval,
        }
        (Path(cfg.train_log_dir) / "summary.json").write_text(json.dumps(summary, indent=1))
    return {
        "rank": rank,
        "world_size": world_size,
        "batch_size": cfg.batch_size * world_size,
        "step": step,
        "sequences": sequences,
        "seconds": elapsed,
        "learned": learned,
        "learned_at": learned_at,
        "interrupted": interrupted["flag"],
        "time_up": time_up,
        "final_eval": final_eval,
        "skipped_steps": skipped,
        "recoveries": recoveries,
        "learning_rate": optimizer.param_groups[0]["lr"],
        "level": curriculum.level,
        "model": model,
        "task": task,
        "checkpoint": str(ckpt.latest(cfg.checkpoint_dir)),
    }


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


def check_matches(data: dict, kind: str, model_config: dict, task: str, task_options: dict, where) -> None:
    """Refuse to resume a checkpoint whose model or task differs from the settings given."""
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
    stored = data["model_config"]
    if kind == "ntm":  # settings added since the checkpoint was written take their defaults
        stored = NTMConfig.from_dict(stored).to_dict()
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


def _log(writer, metrics_file, row: dict) -> None:
    if writer is not None:
        x = row["sequences"]
        writer.add_scalar("train/loss", row["loss"], x)
        writer.add_scalar("train/bits_per_sequence", row["bit_errors"], x)
        writer.add_scalar("train/cross_entropy_bits_per_sequence", row["bits"], x)
        writer.add_scalar("train/cost", row["cost"], x)
        writer.add_scalar("train/grad_norm", row["grad_norm"], x)
        writer.add_scalar("train/curriculum_level", row["level"], x)
    if metrics_file is not None:
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()


def _progress_bar(enabled: bool, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    # No total: a run ends when the task is learned, long before the step limit, so an ETA
    # computed from the limit would be meaningless.
    return tqdm(initial=initial, unit="step", dynamic_ncols=True, mininterval=0.5)
