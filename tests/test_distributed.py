"""Data-parallel training: two CPU processes under torchrun (gloo) stay identical and learn."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

SRC = str(Path(__file__).parents[1] / "src")

WORKER = textwrap.dedent("""
    import json, os, sys, torch
    from ntmkit.train import TrainConfig, train
    out = sys.argv[1]
    cfg = TrainConfig(task_options=dict(bits=4, min_length=1, max_length=4),
                      model_options=dict(controller_size=16, controller_layers=1, memory_locations=8,
                                         memory_vector_size=6),
                      batch_size=8, learning_rate=3e-3, max_steps=200, stop_when_learned=False, engine="eager",
                      checkpoint_dir=os.path.join(out, "ck"), train_log_dir=os.path.join(out, "logs"),
                      report_interval=80, log_interval=5)
    r = train(cfg, progress=False)
    torch.save(r["model"].state_dict(), os.path.join(out, f"rank{r['rank']}.pt"))
    json.dump({"world_size": r["world_size"], "batch_size": r["batch_size"], "sequences": r["sequences"]},
              open(os.path.join(out, f"rank{r['rank']}.json"), "w"))
""")


def torchrun(tmp_path, nproc=2):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_two_processes_hold_identical_parameters_and_the_loss_falls(tmp_path):
    r = torchrun(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((tmp_path / "rank0.json").read_text())
    assert info == {"world_size": 2, "batch_size": 16, "sequences": 200 * 16}
    rows = [json.loads(ln) for ln in (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()]
    first, last = [sum(r["loss"] for r in part) / 5 for part in (rows[:5], rows[-5:])]
    assert last < 0.9 * first, (first, last)
    # Only rank 0 writes: one metrics file, one set of checkpoints (every 80 steps and at the end).
    assert sorted(p.name for p in (tmp_path / "ck").glob("ckpt-*.pt")) == [
        "ckpt-00000080.pt",
        "ckpt-00000160.pt",
        "ckpt-00000200.pt",
    ]
    data = torch.load(tmp_path / "ck" / "ckpt-00000200.pt", weights_only=True)
    assert data["world_size"] == 2 and len(data["rng"]["ranks"]) == 2
    assert not torch.equal(data["rng"]["ranks"][0]["data"], data["rng"]["ranks"][1]["data"])


def test_cli_nproc_launches_torchrun(tmp_path):
    env = dict(os.environ, PYTHONPATH=SRC)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ntmkit",
            "train",
            "--nproc",
            "2",
            "--engine",
            "eager",
            "--quiet",
            "--controller_size",
            "16",
            "--controller_layers",
            "1",
            "--memory_locations",
            "8",
            "--memory_vector_size",
            "6",
            "--in_bits",
            "3",
            "--out_bits",
            "3",
            "--max_sequence",
            "3",
            "--batches",
            "8",
            "--epochs",
            "1",
            "--steps_per_epoch",
            "6",
            "--keep_training",
            "--checkpoint_dir",
            str(tmp_path / "ck"),
            "--train_log_dir",
            str(tmp_path / "logs"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "batch 4 x 2 processes = 8 effective" in r.stdout
    assert r.stdout.count("stopped at the step limit after 6 steps, 48 sequences") == 1


FAILING_WORKER = textwrap.dedent("""
    import os, sys
    from ntmkit.train import TrainConfig, train
    out = sys.argv[1]
    rank = int(os.environ["RANK"])

    def on_step(step, model):
        if rank == 1 and step == 7:
            raise RuntimeError("process 1 fails at step 7")

    cfg = TrainConfig(task_options=dict(bits=4, min_length=1, max_length=4),
                      model_options=dict(controller_size=16, controller_layers=1, memory_locations=8,
                                         memory_vector_size=6),
                      batch_size=8, max_steps=200, stop_when_learned=False, engine="eager",
                      checkpoint_dir=os.path.join(out, "ck"), train_log_dir=None, report_interval=1000)
    train(cfg, progress=False, on_step=on_step)
""")  # fmt: skip


def test_a_process_that_fails_does_not_leave_the_others_waiting_for_ever(tmp_path):
    """Process 1 raises mid-run; process 0 must not hang in the checkpoint's gather: the run ends
    (with an error) well within the timeout, and process 1 saved nothing (only process 0 writes)."""
    script = tmp_path / "worker.py"
    script.write_text(FAILING_WORKER)
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert r.returncode != 0 and "process 1 fails at step 7" in r.stderr
