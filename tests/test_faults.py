"""Fault injection: damage each part of a checkpoint in each way and check that every command either
falls back to the newest good checkpoint with a one-line warning, or stops with one line naming the
path, and never resumes from damaged state or writes non-finite state; plus the hostile inputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ntmkit import checkpoint as ckpt
from ntmkit.cli import main

TINY = [
    "--controller_size", "12", "--controller_layers", "1", "--memory_locations", "10", "--memory_vector_size", "5",
    "--in_bits", "3", "--out_bits", "3", "--max_sequence", "3", "--batches", "4", "--quiet",
    "--report_interval", "10", "--max_to_keep", "5", "--keep_training", "--epochs", "1",
]  # fmt: skip
ENGINES = ("eager", "compiled")
PARTS = ("weights", "optimizer", "rng", "settings")
KINDS = [*(f"overwrite-{p}" for p in PARTS), "truncate", "delete", "dangling-latest"]
DAMAGING = {k for k in KINDS if k.startswith("overwrite") or k == "truncate"}


def cli(args, directory: Path, capsys):
    code = main([*args, "--checkpoint_dir", str(directory / "ck"), "--train_log_dir", str(directory / "logs")])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run per engine with checkpoints at steps 10 and 20 (20 is the latest)."""
    runs = {}
    for engine in ENGINES:
        d = tmp_path_factory.mktemp(f"run-{engine}")
        code = main([
            "train", *TINY, "--steps_per_epoch", "20", "--engine", engine,
            "--checkpoint_dir", str(d / "ck"), "--train_log_dir", str(d / "logs"),
        ])  # fmt: skip
        assert code == 0
        assert [p.name for p in ckpt.list_checkpoints(d / "ck")] == ["ckpt-00000010.pt", "ckpt-00000020.pt"]
        runs[engine] = d
    return runs


def _tensor_bytes(data: dict, part: str) -> bytes:
    """The stored bytes of one tensor of ``part`` (a long, non-constant one, so they occur once in the file)."""
    if part == "weights":
        t = max(data["model"].values(), key=lambda t: t.numel())
    elif part == "optimizer":
        t = max((s["exp_avg"] for s in data["optimizer"]["state"].values()), key=lambda t: t.numel())
    else:
        t = data["rng"]["data"]
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def damage(directory: Path, kind: str) -> Path:
    """Damage the latest checkpoint in ``directory`` in way ``kind``; returns that file."""
    path = ckpt.latest(directory)
    assert path is not None and path.name == "ckpt-00000020.pt"
    raw = bytearray(path.read_bytes())
    if kind.startswith("overwrite-"):
        part = kind.split("-", 1)[1]
        if part == "settings":  # a value in the pickled settings: the task option "max_length"
            at = raw.find(b"max_length")
        else:
            needle = _tensor_bytes(ckpt.load_file(path), part)
            at = raw.find(needle[:256])
            assert raw.find(needle[:256], at + 1) == -1, "the tensor's bytes must occur once"
        assert at > 0
        for i in range(at, min(at + 100, len(raw))):
            raw[i] ^= 0x5A
        path.write_bytes(bytes(raw))
    elif kind == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif kind == "delete":
        path.unlink()
    elif kind == "dangling-latest":
        (directory / ckpt.LATEST).write_text("ckpt-00099999.pt\n")
    return path


def _no_non_finite_on_disk(directory: Path) -> None:
    for p in ckpt.list_checkpoints(directory):
        data = ckpt.load_file(p)
        assert ckpt.non_finite_part(data) is None, p


def _copy(trained, engine: str, tmp_path: Path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(trained[engine], d)
    return d


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", KINDS)
def test_train_falls_back_to_the_newest_good_checkpoint(kind, engine, trained, tmp_path, capsys):
    d = _copy(trained, engine, tmp_path)
    bad = damage(d / "ck", kind)
    code, out, err = cli(["train", *TINY, "--steps_per_epoch", "30", "--engine", engine], d, capsys)
    assert code == 0, err
    assert "Traceback" not in err
    good = 20 if kind == "dangling-latest" else 10  # a pointer to nothing damages no checkpoint
    assert f"resuming from {d / 'ck' / f'ckpt-{good:08d}.pt'} (step {good}," in out  # never from damaged state
    warnings = [line for line in err.splitlines() if line.startswith("ntm: warning:")]
    if kind in DAMAGING:
        assert len(warnings) == 1 and str(bad) in warnings[0] and "damaged" in warnings[0], err
        kept = bad.with_name(bad.name + ckpt.DAMAGED)
        assert kept.is_file()  # kept, renamed, never deleted
    else:
        assert len(warnings) == 1 and "does not exist" in warnings[0], err
    names = [p.name for p in ckpt.list_checkpoints(d / "ck")]
    assert names == ["ckpt-00000010.pt", "ckpt-00000020.pt", "ckpt-00000030.pt"]  # 20 written anew if damaged
    assert (d / "ck" / ckpt.LATEST).read_text().strip() == "ckpt-00000030.pt"
    assert ckpt.load_file(d / "ck" / "ckpt-00000020.pt")["step"] == 20
    _no_non_finite_on_disk(d / "ck")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["test", "evaluate", "visualize"])
def test_inference_commands_fall_back_with_a_warning(command, kind, trained, tmp_path, capsys):
    d = _copy(trained, "eager", tmp_path)
    bad = damage(d / "ck", kind)
    extra = {"test": ["--sequences", "4"], "evaluate": ["--values", "2,3", "--sequences", "4"], "visualize": []}
    code, out, err = cli(
        [command, "--max_sequence", "3", "--figure_dir", str(tmp_path / "fig"), *extra[command]], d, capsys
    )
    assert code == 0, err
    good = "ckpt-00000020.pt" if kind == "dangling-latest" else "ckpt-00000010.pt"
    assert f"model: {d / 'ck' / good}" in out  # the model tested is the good one
    warnings = [line for line in err.splitlines() if line.startswith("ntm: warning:")]
    assert len(warnings) == 1 and f"using {good}" in warnings[0], err
    if kind in DAMAGING:
        assert str(bad) in warnings[0]


@pytest.mark.parametrize("kind", ["overwrite-optimizer", "truncate"])
def test_with_no_good_checkpoint_left_one_line_names_the_directory(kind, trained, tmp_path, capsys):
    d = _copy(trained, "eager", tmp_path)
    damage(d / "ck", kind)
    older = d / "ck" / "ckpt-00000010.pt"
    older.write_bytes(older.read_bytes()[:100])
    before = sorted(p.name for p in (d / "ck").iterdir())
    for command in (["train", *TINY, "--steps_per_epoch", "30", "--engine", "eager"], ["test", "--max_sequence", "3"]):
        code, _out, err = cli(command, d, capsys)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"every checkpoint in {d / 'ck'} is damaged" in lines[0], err
    assert sorted(p.name for p in (d / "ck").iterdir()) == before  # nothing renamed, deleted or added


def test_init_from_a_random_file_names_the_file_and_not_checkpoint_dir(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(3000))
    code, _out, err = cli(["train", *TINY, "--steps_per_epoch", "5", "--init_from", str(junk)], tmp_path, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(junk) in err and "--init_from" in err
    assert "--checkpoint_dir" not in err


def test_a_huge_learning_rate_stops_with_one_line_and_writes_nothing_non_finite(tmp_path, capsys):
    code, _out, err = cli(
        ["train", *TINY, "--steps_per_epoch", "40", "--engine", "eager", "--learning_rate", "1e308"], tmp_path, capsys
    )
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "NaN or infinite" in err and "--learning_rate" in err
    _no_non_finite_on_disk(tmp_path / "ck")


def test_non_finite_weights_are_never_saved():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    payload = {"model": model.state_dict(), "optimizer": {}, "model_kind": "x", "model_config": {}, "task": {}}
    with pytest.raises(ckpt.NonFiniteState, match=r"model\.weight"):
        ckpt.save("/nonexistent-dir-never-created", 1, payload)
    assert not Path("/nonexistent-dir-never-created").exists()


def test_every_part_of_a_checkpoint_is_covered_by_its_digest(trained):
    """Changing any one value (weights, optimiser state, random streams, curriculum, settings) after
    loading changes the content digest, so a byte changed on disk is caught even where a CRC is not."""
    data = ckpt.load_file(trained["eager"] / "ck" / "ckpt-00000020.pt")
    digest = ckpt.content_digest(data)
    edits = {
        "weights": lambda d: d["model"][next(iter(d["model"]))].view(-1)[0].add_(1e-3),
        "optimizer": lambda d: next(iter(d["optimizer"]["state"].values()))["exp_avg"].view(-1)[0].add_(1e-3),
        "rng": lambda d: d["rng"]["data"].__setitem__(100, (int(d["rng"]["data"][100]) + 1) % 256),
        "curriculum": lambda d: d["curriculum"].__setitem__("level", d["curriculum"]["level"] + 1),
        "settings": lambda d: d["train_config"].__setitem__("learning_rate", 0.5),
    }
    for part, edit in edits.items():
        copy = ckpt.load_file(trained["eager"] / "ck" / "ckpt-00000020.pt")
        assert ckpt.content_digest(copy) == digest
        edit(copy)
        assert ckpt.content_digest(copy) != digest, part


def test_two_runs_cannot_share_a_log_directory(tmp_path):
    """While one run holds its checkpoint and log directories, another run with the same log
    directory (and its own checkpoints) is refused before it writes anything."""
    with ckpt.RunLock(tmp_path / "a", tmp_path / "logs"):
        code = subprocess.run(
            [sys.executable, "-m", "ntmkit", "train", *TINY, "--steps_per_epoch", "5",
             "--checkpoint_dir", str(tmp_path / "b"), "--train_log_dir", str(tmp_path / "logs")],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src")),
        )  # fmt: skip
    assert code.returncode == 2, code.stderr
    assert "is in use by" in code.stderr and "--train_log_dir" in code.stderr
    assert len(code.stderr.strip().splitlines()) == 1
    assert not ckpt.list_checkpoints(tmp_path / "b")
    assert not (tmp_path / "logs" / "metrics.jsonl").exists()


HOSTILE = [
    (["train", "--seed", str(2**64 - 1)], "--seed must be below 2**63"),
    (["test", "--seed", str(2**63)], "--seed must be below 2**63"),
    (["sweep", "--first_seed", str(2**63 - 1), "--seeds", "2"], "--first_seed must be below 2**63"),
    (["test", "--memory_locations", "1000000000", "--max_sequence", "30"], "more than this machine's"),
    (["test", "--checkpoint_dir", "/no/such/dir"], "--checkpoint_dir /no/such/dir does not exist"),
    (["evaluate", "--checkpoint_dir", "/no/such/dir"], "--checkpoint_dir /no/such/dir does not exist"),
    (["train", "--batches", "nan"], "invalid int value: 'nan' (see 'ntm train --help')"),
    (["train", "--task", "nosuch"], "invalid choice: 'nosuch'"),
    (["train", "--device", "cpu:3"], "--device cpu:3: the CPU is device cpu or cpu:0"),
    (["train", "--device", "banana"], "unknown --device 'banana'"),
]


@pytest.mark.parametrize("args, message", HOSTILE)
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "ntmkit", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src")),
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_version_and_py_typed():
    import ntmkit

    r = subprocess.run([sys.executable, "-m", "ntmkit", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"ntm (ntmkit) {ntmkit.__version__}"
    assert (Path(ntmkit.__file__).parent / "py.typed").is_file()


def test_cpu_0_is_a_device(tmp_path, capsys):
    code, _out, err = cli(["train", *TINY, "--steps_per_epoch", "2", "--engine", "eager", "--device", "cpu:0"],
                          tmp_path, capsys)  # fmt: skip
    assert code == 0, err


def test_a_closed_pipe_ends_quietly(tmp_path):
    r = subprocess.run(
        f"{sys.executable} -m ntmkit test --max_sequence 5 --sequences 4 --figure_dir {tmp_path} | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src")),
    )
    assert r.stderr == "", r.stderr


def test_without_a_terminal_progress_is_plain_lines_with_a_rate(tmp_path):
    """Output to a file: no carriage-return redraws; plain lines with step, sequences, cost and a
    positive rate, the first one after a resume included."""
    from ntmkit.train import TrainConfig, train

    cfg = dict(
        model_options={"controller_size": 12, "memory_locations": 10, "memory_vector_size": 5},
        task_options={"bits": 3, "max_length": 3},
        batch_size=4, engine="eager", stop_when_learned=False, print_seconds=0.0, log_interval=5,
        checkpoint_dir=str(tmp_path / "ck"), train_log_dir=str(tmp_path / "logs"),
    )  # fmt: skip
    script = (
        "import sys, json; from ntmkit.train import TrainConfig, train\n"
        f"cfg = TrainConfig(**{cfg!r}, max_steps=int(sys.argv[1]))\n"
        "train(cfg, progress=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    for steps in (20, 40):
        r = subprocess.run([sys.executable, "-c", script, str(steps)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert "\r" not in r.stdout + r.stderr
        lines = [line for line in r.stdout.splitlines() if line.startswith("step ")]
        assert len(lines) == 4, r.stdout  # one every log interval (print_seconds 0), this sitting's steps only
        for line in lines:
            rate = float(line.split(" seq/s")[0].rsplit("| ", 1)[1])
            assert rate > 0 and "sequences" in line and "cost" in line
    assert TrainConfig().print_seconds > 0
    assert train  # the API the script uses
