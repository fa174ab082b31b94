"""Checkpoints: a plain dict of tensors and primitives, loaded with ``weights_only=True``.

Each file is written atomically (temporary file, flush, fsync, rename) and the ``latest``
pointer is updated last, so a crash at any moment leaves the previous complete checkpoint in
place. Old files are pruned only after the new one is complete.

Every byte is verified on load: the archive's per-member CRC-32 checks, then a SHA-256 over the
whole content (weights, optimiser state, random streams, curriculum, settings) stored in the
file. A file that fails either is *damaged*: :func:`load_newest_good` then warns in one line,
renames it ``*.damaged`` (kept, never deleted) and falls back to the newest good checkpoint.
A save refuses non-finite weights or optimiser state (:class:`NonFiniteState`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import torch

from .errors import CheckpointError


class DamagedCheckpoint(CheckpointError):
    """A checkpoint file that cannot be trusted: unreadable, truncated, or its content does not
    match its digest. ``path`` is the file, ``reason`` a few words on what failed."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {path} is damaged ({reason}): delete it, or give another checkpoint")


class NonFiniteState(CheckpointError):
    """A save was asked for state holding NaN or infinity: it is refused, nothing is written."""


FORMAT = "ntmkit-checkpoint"
VERSION = 1
LATEST = "latest"
CONTENT_DIGEST = "content_sha256"
DAMAGED = ".damaged"
_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def model_digest(state: dict) -> str:
    """SHA-256 over a state dict's names, dtypes, shapes and values: detects edited weights."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _digest_into(h, obj) -> None:
    """Feed a canonical encoding of ``obj`` (dicts, lists, tensors, primitives) into ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}|".encode())
        for key in sorted(obj, key=repr):
            h.update(f"{key!r}=".encode())
            _digest_into(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}|".encode())
        for item in obj:
            _digest_into(h, item)
    else:
        h.update(f"{type(obj).__name__}:{obj!r}|".encode())


def content_digest(payload: dict) -> str:
    """SHA-256 over everything a checkpoint holds but this digest itself: any change to the weights,
    the optimiser state, the random streams, the curriculum or the settings changes it."""
    h = hashlib.sha256()
    _digest_into(h, {k: v for k, v in payload.items() if k != CONTENT_DIGEST})
    return h.hexdigest()


def non_finite_part(payload: dict) -> str | None:
    """The first entry of the weights or the optimiser state holding NaN or infinity, or None."""
    for part in ("model", "optimizer"):
        found = _non_finite_in(payload.get(part), part)
        if found is not None:
            return found
    return None


def _non_finite_in(obj, where: str) -> str | None:
    if isinstance(obj, torch.Tensor):
        return where if obj.is_floating_point() and not bool(torch.isfinite(obj).all()) else None
    if isinstance(obj, dict):
        items: Iterable = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = _non_finite_in(value, f"{where}.{key}")
        if found is not None:
            return found
    return None


def trained_sequences(data: dict) -> int:
    """All the sequences a checkpoint's weights have seen: its run's, and those of the run it started
    from (``--init_from``), and so on back."""
    return int(data.get("sequences", 0)) + int(data.get("sequences_before", 0))


def stamp(payload: dict) -> dict:
    """The payload with the format, version, model digest and content digest that :func:`load` checks."""
    out = {"format": FORMAT, "version": VERSION, **payload, "model_sha256": model_digest(payload["model"])}
    out[CONTENT_DIGEST] = content_digest(out)
    return out


def save(directory: str | Path, step: int, payload: dict, max_to_keep: int = 3) -> Path:
    """Write ``payload`` as checkpoint ``step`` in ``directory``, point ``latest`` at it, prune.
    Raises :class:`NonFiniteState` (writing nothing) if the weights or optimiser state are not finite."""
    directory = Path(directory)
    bad = non_finite_part(payload)
    if bad is not None:
        raise NonFiniteState(f"not saving step {step} to {directory}: {bad} holds NaN or infinity")
    directory.mkdir(parents=True, exist_ok=True)
    payload = stamp(payload)
    path = directory / f"ckpt-{step:08d}.pt"
    _atomic_write_bytes(path, lambda f: torch.save(payload, f))
    _atomic_write_bytes(directory / LATEST, lambda f: f.write(path.name.encode() + b"\n"))
    if max_to_keep > 0:
        for old in list_checkpoints(directory)[:-max_to_keep]:
            old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoint files in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def latest(directory: str | Path) -> Path | None:
    """The newest checkpoint: the one ``latest`` names, else the highest-numbered file."""
    directory = Path(directory)
    pointer = directory / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if _NAME.match(name) and (directory / name).is_file():
            return directory / name
    found = list_checkpoints(directory)
    return found[-1] if found else None


def _verify_archive(path: Path) -> None:
    """Read every member of the archive and check its CRC-32 (torch.load does not)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        raise DamagedCheckpoint(path, "not a complete archive: truncated or corrupt") from None
    except (OSError, EOFError, ValueError, RuntimeError) as e:
        raise DamagedCheckpoint(path, f"unreadable archive: {type(e).__name__}") from None
    if bad is not None:
        raise DamagedCheckpoint(path, f"member {bad.rsplit('/', 1)[-1]} fails its CRC check") from None


def load_file(path: str | Path, map_location="cpu") -> dict:
    """Load one checkpoint file safely (no pickled code runs) and verify every byte of it.

    Raises :class:`DamagedCheckpoint` if it is truncated, overwritten or edited, and
    :class:`~ntmkit.errors.CheckpointError` if it is missing or not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path")
    _verify_archive(path)
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise DamagedCheckpoint(path, f"corrupt or unsafe content: {type(e).__name__}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ntmkit checkpoint: give a file or directory written by 'ntm train'")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('version')!r}, this ntmkit "
            f"reads version {VERSION}: retrain or use the matching ntmkit release"
        )
    for key in ("model_kind", "model_config", "task", "model"):
        if key not in data:
            raise DamagedCheckpoint(path, f"'{key}' is missing")
    if data.get("model_sha256") != model_digest(data["model"]):
        raise DamagedCheckpoint(path, "its weights do not match their digest")
    if CONTENT_DIGEST in data and data[CONTENT_DIGEST] != content_digest(data):
        raise DamagedCheckpoint(path, "its content does not match its digest")
    bad = non_finite_part(data)
    if bad is not None:  # written before saves refused such state
        raise DamagedCheckpoint(path, f"{bad} holds NaN or infinity")
    return data


def _warn(message: str) -> None:
    import sys

    print(f"ntm: warning: {message}", file=sys.stderr, flush=True)


def quarantine(path: Path) -> Path | None:
    """Rename a damaged checkpoint to ``NAME.damaged`` (``.damaged-2`` ... if taken): kept, out of
    the way of the checkpoints. Returns the new path (None where the directory is read-only)."""
    for k in range(1, 1000):
        target = path.with_name(path.name + DAMAGED + ("" if k == 1 else f"-{k}"))
        if not target.exists():
            try:
                os.replace(path, target)
            except OSError:
                return None
            return target
    return None


def _repair_pointer(directory: Path, path: Path) -> None:
    """Point ``latest`` at ``path`` (a read-only directory keeps its pointer)."""
    with contextlib.suppress(OSError):
        _atomic_write_bytes(directory / LATEST, lambda f: f.write(path.name.encode() + b"\n"))


def _pointer(directory: Path) -> str | None:
    """The file name ``latest`` holds, or None without a readable pointer."""
    try:
        return (directory / LATEST).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _candidates(directory: Path) -> list[Path]:
    """The checkpoints to try, best first: the one ``latest`` names, then the rest newest first."""
    found = list_checkpoints(directory)[::-1]
    named = latest(directory)
    if named is not None and named in found:
        found.remove(named)
        found.insert(0, named)
    return found


def load_newest_good(directory: str | Path, map_location="cpu", warn=_warn, rename: bool = True) -> tuple[Path, dict]:
    """The newest checkpoint in ``directory`` that verifies, and its path.

    If damaged ones had to be passed over, each is reported by ``warn`` in one line naming it and
    why, and renamed ``*.damaged`` (``rename``; kept, never deleted); ``latest`` is then pointed at
    the good one. With none good, nothing is renamed and one
    :class:`~ntmkit.errors.CheckpointError` names the directory and the newest file's damage."""
    directory = Path(directory)
    damaged: list[DamagedCheckpoint] = []
    for path in _candidates(directory):
        try:
            data = load_file(path, map_location)
        except DamagedCheckpoint as e:
            damaged.append(e)
            continue
        except CheckpointError:
            if not path.exists():  # pruned by a run saving beside us: the next one is newer anyway
                continue
            raise
        using = f"using {path.name} (step {data.get('step', '?')})"
        for bad in damaged:
            kept = quarantine(bad.path) if rename else None
            where = f", kept as {kept.name}" if kept is not None else ""
            warn(f"checkpoint {bad.path} is damaged ({bad.reason}){where}: {using}")
        named = _pointer(directory)
        dangling = named is not None and not (directory / named).is_file()
        if dangling and not damaged:
            warn(f"{directory / LATEST} names {named}, which does not exist: {using}")
        if (damaged or dangling) and rename:
            _repair_pointer(directory, path)
        return path, data
    if damaged:
        first = damaged[0]
        more = f" and {len(damaged) - 1} more" if len(damaged) > 1 else ""
        raise CheckpointError(
            f"every checkpoint in {directory} is damaged ({first.path.name}: {first.reason}{more}): move them "
            f"away or start again with another --checkpoint_dir"
        )
    raise CheckpointError(f"no checkpoint in {directory}: train one first (ntm train --checkpoint_dir {directory})")


def load(path: str | Path, map_location="cpu", warn=_warn) -> dict:
    """Load a checkpoint file, or the newest good checkpoint in a directory (see :func:`load_newest_good`)."""
    path = Path(path)
    if path.is_dir():
        return load_newest_good(path, map_location, warn)[1]
    return load_file(path, map_location)


def has_checkpoints(directory: str | Path) -> bool:
    """Whether ``directory`` holds any checkpoint file (good or not yet checked)."""
    return bool(list_checkpoints(directory))


class DirectoryLock:
    """An exclusive lock on a checkpoint directory, held for the life of one training run.

    A second run on the same directory fails at once with a one-line error naming the process
    that holds it. The lock is an ``flock`` on ``DIR/.lock``: the kernel releases it when its
    process ends, however it ends, so a lock left by a dead process is simply taken over.
    """

    def __init__(self, directory: str | Path, flag: str = "--checkpoint_dir"):
        self.path = Path(directory) / ".lock"
        self.flag = flag
        self._file: IO[str] | None = None

    def acquire(self) -> DirectoryLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 (held open for the life of the run: the lock)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise CheckpointError(
                f"{self.path.parent} is in use by {holder}: wait for that run to end, stop it, "
                f"or give another {self.flag}"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {os.uname().nodename}")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RunLock:
    """The locks of one training run: its checkpoint directory and, where it is another directory,
    its log directory, so that two runs never share checkpoints or a log (metrics.jsonl, summary.json)."""

    def __init__(self, checkpoint_dir: str | Path, log_dir: str | Path | None):
        self.locks = [DirectoryLock(checkpoint_dir)]
        if log_dir and Path(log_dir).resolve() != Path(checkpoint_dir).resolve():
            self.locks.append(DirectoryLock(log_dir, "--train_log_dir"))

    def __enter__(self) -> RunLock:
        taken: list[DirectoryLock] = []
        try:
            for lock in self.locks:
                taken.append(lock.acquire())
        except BaseException:
            for lock in taken:
                lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for lock in reversed(self.locks):
            lock.release()
