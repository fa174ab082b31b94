"""The loop: data, forward, loss, backward, clip, step, log, checkpoint; recovery from non-finite
steps, signals, the stop rule and the summary."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import cast

import torch

from .. import checkpoint as ckpt
from .. import distributed, schedule
from ..engine import compiler_available
from ..errors import ConfigError, NTMError
from ..models import MemoryModel
from ..optim import clip_grad_norm, set_grad_scale
from ..registry import model_kind
from ..tasks import Task
from ..warmup import BackgroundCompile, cache_is_warm, warm_spec
from .config import TrainConfig, check_config, draw_memory_size
from .log import RunLog
from .state import StepResult, TrainState, build_state, check_matches, init_source, memory_sizes_for, stop_test
from .summary import Outcome, _summary


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


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
