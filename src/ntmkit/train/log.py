"""Logging: metrics.jsonl, TensorBoard, and progress (a bar on a terminal, plain lines otherwise)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from .. import distributed
from ..tasks import Task
from .config import TrainConfig
from .state import StepResult, TrainState


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
    from ..plots import weightings_figure

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
