"""Compiling off the training path: a helper process fills the compile cache while training runs eagerly.

On an empty compile cache the first compiled step takes 30-60 s on a 2-core machine; with the cache
filled it takes about 3 s. The ``auto`` engine therefore trains eagerly from the first step while a
helper process (on another core) compiles the same step into the on-disk cache, then compiles
in-process, now from the cache, and goes on compiled. A marker file in the cache directory records
which steps the cache holds, so on a warm cache ``auto`` compiles in-process at once.
"""

from __future__ import annotations

import torch


def warm_spec(
    kind: str, config: dict, batch: int, rows: int | None, vary_memory: bool, threads: int, unroll: int = 1
) -> dict:
    """What identifies one compiled step: the model, the batch size, the memory rows of the first
    sequence (None: the model's own), whether the rows are symbolic, the intra-op threads
    (inductor's C++ code depends on them) and the time steps of the unrolled graph (1: none)."""
    return {
        "kind": kind,
        "config": config,
        "batch": batch,
        "rows": rows,
        "vary_memory": vary_memory,
        "threads": threads,
        "unroll": unroll,
        "torch": torch.__version__,
        "source": _models_source_digest(),
    }


def _models_source_digest() -> str:
    """A digest of the models' and the engine's source: a change to a step's code is a new compiled step."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in [here / "engine.py", *sorted((here / "models").glob("*.py"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _marker(spec: dict):
    import hashlib
    import json
    from pathlib import Path

    from torch._inductor.runtime.cache_dir_utils import cache_dir

    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir()) / "ntmkit-warm" / key


def cache_is_warm(spec: dict) -> bool:
    """Whether a helper has compiled this step into the current compile cache."""
    return _marker(spec).exists()


def warm_cache(spec: dict) -> None:
    """Compile the step ``spec`` describes, forward and backward, into the on-disk compile cache
    (runs in the helper process) and leave the marker."""
    from .models import MemoryModel
    from .registry import build_model

    torch.set_num_threads(spec["threads"])
    torch._inductor.config.compile_threads = 1  # one core: the other one is training
    model = build_model(spec["kind"], spec["config"])
    assert isinstance(model, MemoryModel)
    model.train()
    unroll = spec.get("unroll", 1)
    model.compile_step(vary_memory=spec["vary_memory"], unroll=unroll)
    # one call of the unrolled graph (when there is one) and then of the one-step graph
    x = torch.zeros(spec["batch"], unroll + 1 if unroll > 1 else 2, model.config.input_size)
    logits, _ = model(x, memory_locations=spec["rows"])
    logits.sum().backward()
    marker = _marker(spec)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


class BackgroundCompile:
    """A helper process filling the compile cache with one step (:func:`warm_cache`)."""

    def __init__(self, spec: dict):
        import json
        import os
        import subprocess
        import sys
        import tempfile

        env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), TORCHINDUCTOR_COMPILE_THREADS="1")
        # stderr goes to a file, not a pipe: a pipe nobody reads until the end would block a helper
        # that writes more than the pipe holds (compiler warnings), and training would stay eager.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        # A session of its own: a Ctrl-C in the terminal goes to the training process, which ends
        # the helper itself (close) after saving.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ntmkit.warmup", json.dumps(spec)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )

    def poll(self) -> bool | None:
        """None while compiling; True when the cache holds the step; False if the helper failed."""
        code = self.process.poll()
        return None if code is None else code == 0

    def error(self) -> str:
        """The last line the helper wrote to stderr (after it ended)."""
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self.process.returncode}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


if __name__ == "__main__":  # the helper process of BackgroundCompile
    import json
    import sys

    warm_cache(json.loads(sys.argv[1]))
