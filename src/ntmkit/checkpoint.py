"""Checkpoints: a plain dict of tensors and primitives, loaded with ``weights_only=True``.

Each file is written atomically (temporary file, flush, fsync, rename) and the ``latest``
pointer is updated last, so a crash at any moment leaves the previous complete checkpoint in
place. Old files are pruned only after the new one is complete.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import IO

import torch

from .errors import CheckpointError

FORMAT = "ntmkit-checkpoint"
VERSION = 1
LATEST = "latest"
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


def trained_sequences(data: dict) -> int:
    """All the sequences a checkpoint's weights have seen: its run's, and those of the run it started
    from (``--init_from``), and so on back."""
    return int(data.get("sequences", 0)) + int(data.get("sequences_before", 0))


def stamp(payload: dict) -> dict:
    """The payload with the format, version and model digest that :func:`load` checks."""
    return {"format": FORMAT, "version": VERSION, **payload, "model_sha256": model_digest(payload["model"])}


def save(directory: str | Path, step: int, payload: dict, max_to_keep: int = 3) -> Path:
    """Write ``payload`` as checkpoint ``step`` in ``directory``, point ``latest`` at it, prune."""
    directory = Path(directory)
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


def load(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint safely (no pickled code runs) and check that it is one of ours."""
    path = Path(path)
    if path.is_dir():
        found = latest(path)
        if found is None:
            raise CheckpointError(f"no checkpoint in {path}: train one first (ntm train --checkpoint_dir {path})")
        path = found
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} is truncated, corrupt or unsafe ({first[:120]}): "
            f"delete it or point --checkpoint_dir elsewhere"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an ntmkit checkpoint: point --checkpoint_dir at a directory written by 'ntm train'"
        )
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('version')!r}, this ntmkit "
            f"reads version {VERSION}: retrain or use the matching ntmkit release"
        )
    for key in ("model_kind", "model_config", "task", "model"):
        if key not in data:
            raise CheckpointError(f"checkpoint {path} lacks '{key}': it is incomplete, delete it")
    if data.get("model_sha256") != model_digest(data["model"]):
        raise CheckpointError(
            f"checkpoint {path} has been modified or damaged (its weights do not match their "
            f"digest): delete it and resume from an older one, or retrain"
        )
    return data


class DirectoryLock:
    """An exclusive lock on a checkpoint directory, held for the life of one training run.

    A second run on the same directory fails at once with a one-line error naming the process
    that holds it. The lock is an ``flock`` on ``DIR/.lock``: the kernel releases it when its
    process ends, however it ends, so a lock left by a dead process is simply taken over.
    """

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / ".lock"
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
                f"or give another --checkpoint_dir"
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
