"""The command line, end to end, in temporary directories: the starting project's four usage
lines, resume, and every bad input (one-line error, exit code 2, nothing written)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ntmkit import checkpoint as ckpt
from ntmkit.cli import main
from ntmkit.pretrained import export

SMALL = [
    "--controller_size",
    "16",
    "--controller_layers",
    "1",
    "--memory_locations",
    "12",
    "--memory_vector_size",
    "6",
    "--in_bits",
    "3",
    "--out_bits",
    "3",
    "--max_sequence",
    "4",
    "--batches",
    "8",
    "--engine",
    "eager",
    "--quiet",
]


INFERENCE = {"test", "--test", "evaluate", "visualize", "--visualize"}


def run(args, tmp_path, capsys):
    if INFERENCE & set(args):  # an existing empty directory: the shipped model (a missing one is an error)
        (tmp_path / "ck").mkdir(exist_ok=True)
    code = main(
        [
            *args,
            "--checkpoint_dir",
            str(tmp_path / "ck"),
            "--train_log_dir",
            str(tmp_path / "logs"),
            "--figure_dir",
            str(tmp_path / "fig"),
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def train_small(tmp_path, capsys, steps, extra=()):
    return run(
        [
            "--train",
            *SMALL,
            "--epochs",
            "1",
            "--steps_per_epoch",
            str(steps),
            "--report_interval",
            "5",
            "--keep_training",
            *extra,
        ],
        tmp_path,
        capsys,
    )


def test_help_lists_the_starting_projects_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in [
        "--train",
        "--test",
        "--visualize",
        "--random_seq_len",
        "--epochs",
        "--batches",
        "--steps_per_epoch",
        "--learning_rate",
        "--momentum",
        "--clip_grad_min",
        "--clip_grad_max",
        "--controller_size",
        "--memory_locations",
        "--memory_vector_size",
        "--maximum_shifts",
        "--learn_r_bias",
        "--learn_w_bias",
        "--learn_m_bias",
        "--max_sequence",
        "--min_sequence",
        "--in_bits",
        "--out_bits",
        "--checkpoint_dir",
        "--max_to_keep",
        "--report_interval",
        "--train_log_dir",
    ]:
        assert flag in text, flag


def test_train_writes_checkpoints_logs_and_resumes(tmp_path, capsys):
    code, out, err = train_small(tmp_path, capsys, 12)
    assert code == 0, err
    files = ckpt.list_checkpoints(tmp_path / "ck")
    assert [f.name for f in files] == ["ckpt-00000005.pt", "ckpt-00000010.pt", "ckpt-00000012.pt"][-3:]
    assert (tmp_path / "ck" / "latest").read_text().strip() == "ckpt-00000012.pt"
    assert (tmp_path / "logs" / "metrics.jsonl").stat().st_size > 0
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "logs").iterdir())
    data = ckpt.load(tmp_path / "ck")
    assert data["step"] == 12 and data["model_config"]["controller_size"] == 16
    # Resume: no model flags needed, the checkpoint supplies them.
    code, out, err = run(
        [
            "train",
            "--epochs",
            "1",
            "--steps_per_epoch",
            "20",
            "--keep_training",
            "--quiet",
            "--engine",
            "eager",
            "--report_interval",
            "5",
        ],
        tmp_path,
        capsys,
    )
    assert code == 0, err
    assert "resuming from" in out
    assert ckpt.load(tmp_path / "ck")["step"] == 20
    assert len(ckpt.list_checkpoints(tmp_path / "ck")) == 3  # --max_to_keep default


def test_resume_is_exact(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert train_small(a, capsys, 16)[0] == 0
    assert train_small(b, capsys, 7)[0] == 0
    assert train_small(b, capsys, 16)[0] == 0
    pa, pb = ckpt.load(a / "ck")["model"], ckpt.load(b / "ck")["model"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_test_and_visualize_rebuild_the_model_from_the_checkpoint(tmp_path, capsys):
    assert train_small(tmp_path, capsys, 3)[0] == 0
    code, out, err = run(["--test", "--max_sequence=4", "--sequences", "8"], tmp_path, capsys)
    assert code == 0, err
    assert "length 4:" in out and "bit errors per sequence" in out and "perfect" in out
    assert (tmp_path / "fig" / "test_copy_4.png").stat().st_size > 0
    code, out, err = run(["--test", "--max_sequence=4", "--random_seq_len", "--sequences", "8"], tmp_path, capsys)
    assert code == 0 and "random lengths 1-4" in out
    code, out, err = run(["--test", "--visualize", "--max_sequence=4"], tmp_path, capsys)
    assert code == 0, err
    assert (tmp_path / "fig" / "visualize_copy_4.png").stat().st_size > 0


def test_test_without_checkpoint_uses_the_shipped_model(tmp_path, capsys):
    code, out, err = run(["--test", "--max_sequence=30", "--sequences", "20"], tmp_path, capsys)
    assert code == 0, err
    assert "pretrained copy model shipped with ntmkit" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("length 30:"))
    assert float(line.split()[2]) < 1.0  # bit errors per sequence at length 30


def test_starting_project_usage_lines_via_the_console_entry(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ntmkit",
            "--test",
            "--max_sequence=120",
            "--random_seq_len",
            "--sequences",
            "4",
            "--figure_dir",
            str(tmp_path),
            "--checkpoint_dir",
            str(tmp_path),  # exists, holds no checkpoint: the shipped model
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "random lengths 1-120" in r.stdout


BAD = [
    (["--train", "--min_sequence=10", "--max_sequence=5"], "--min_sequence (10) is larger than --max_sequence (5)"),
    (["--train", "--controller_size=0"], "--controller_size must be a positive integer"),
    (["--train", "--memory_locations=-4"], "--memory_locations must be a positive integer"),
    (["--train", "--batches=0"], "--batches must be a positive integer"),
    (["--train", "--maximum_shifts=4"], "--maximum_shifts must be odd"),
    (["--train", "--in_bits=8", "--out_bits=6"], "--in_bits (8) must equal --out_bits (6)"),
    (["--train", "--learning_rate=-1"], "--learning_rate out of range"),
    (["--train", "--device=cuda"] if not torch.cuda.is_available() else ["--train", "--device=tpu"], "--device"),
    (["--test", "--max_sequence=200"], "needs 200 memory locations but the model has 128"),
    (["--test", "--max_sequence=200", "--memory_locations=150"], "needs 200 memory locations but the model has 150"),
    ([], "no command given"),
    (["--train", "--task=repeat_copy", "--min_items=3"], "--min_items does not apply to the repeat_copy task"),
    (
        ["--train", "--task=repeat_copy", "--min_repeats=4", "--max_repeats=2"],
        "--min_repeats (4) is larger than --max_repeats (2)",
    ),
    (["--train", "--task=ngrams", "--out_bits=2"], "--out_bits is set by the task for ngrams"),
    (["evaluate", "--axis=repeats"], "--axis repeats is not an axis of copy"),
    (["evaluate", "--values=3,x"], "--values must be comma-separated integers"),
    (["evaluate", "--max_sequence=300"], "length 150 needs 150 memory locations but the model has 128"),
    (["sweep", "--nproc=2"], "--nproc does not combine with sweep"),
    (["train", "--test"], "choose one command"),
    (
        ["train", "--max_sequence=1000000"],
        "--max_sequence 1000000 needs 1000000 memory locations but the model has 128",
    ),
    (["train", "--memory_locations=100000", "--memory_vector_size=100000"], "GiB for one training step"),
    (["train", "--model=lstm", "--memory_locations=64"], "--memory_locations does not apply to the LSTM baseline"),
    (["train", "--model=lstm", "--memory_sizes=auto"], "--memory_sizes does not apply to the LSTM baseline"),
    (["train", "--model=dnc", "--maximum_shifts=5"], "--maximum_shifts does not apply to the DNC"),
    (["train", "--model=dnc", "--write_heads=2"], "the DNC has one write head"),
    (["train", "--model=dnc", "--preset=paper"], "the NTM paper gives no sizes for the DNC"),
    (["train", "--memory_sizes=8,300"], "--memory_sizes: memory sizes must lie in [3, 128]"),
    (["train", "--steps_after_learned=-1"], "--steps_after_learned must be >= 0"),
    (["train", "--device=cuda:99"], "--device"),
    (["sweep", "--first_seed=-1"], "--first_seed must be >= 0"),
    (["train", "--unroll=0"], "--unroll must be a positive integer, got 0"),
    (["train", "--lr_schedule=5000:1e-3,2000:1e-4"], "--lr_schedule: the sequence counts must be >= 0 and increasing"),
    (["train", "--lr_schedule=5000:0"], "--lr_schedule: a learning rate must be a finite number > 0, got 0.0"),
    (["train", "--lr_schedule=5000"], "--lr_schedule: '5000' is not SEQUENCES:RATE"),
    (["train", "--batch_schedule=5000:0"], "--batch_schedule: a batch size must be a whole number >= 1, got 0"),
    (["train", "--batch_schedule=5000:1.5"], "--batch_schedule: '5000:1.5' is not SEQUENCES:BATCH"),
    (["train", "--nproc=2", "--batch_schedule=5000:33"], "--batch_schedule's batch 33 does not split over --nproc 2"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input_is_one_clean_line_and_writes_nothing(args, message, tmp_path, capsys):
    code, _out, err = run(args, tmp_path, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())
    assert not (tmp_path / "logs").exists()


def test_bad_flag_value_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--train", "--epochs", "many"])
    assert e.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "truncated or corrupt"),
        (b"PK\x03\x04 not really a zip", "truncated or corrupt"),
        (None, "not an ntmkit checkpoint"),
        ("truncate", "truncated or corrupt"),
    ],
)
def test_bad_checkpoint_is_a_clear_error(content, message, tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    path = tmp_path / "ck" / "ckpt-00000001.pt"
    if content is None:
        torch.save({"weights": torch.zeros(3)}, path)  # a foreign file
    elif content == "truncate":
        assert train_small(tmp_path, capsys, 2)[0] == 0
        good = ckpt.latest(tmp_path / "ck")
        raw = good.read_bytes()
        for p in ckpt.list_checkpoints(tmp_path / "ck"):
            p.unlink()
        path.write_bytes(raw[: len(raw) // 2])
        (tmp_path / "ck" / "latest").write_text(path.name)
    else:
        path.write_bytes(content)
    before = sorted(p.name for p in (tmp_path / "ck").iterdir())
    for command in (["--test", "--max_sequence=4"], ["--train", *SMALL]):
        code, _out, err = run(command, tmp_path, capsys)
        assert code == 2, (command, err)
        assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == before  # nothing lost or added


def test_checkpoint_that_does_not_match_the_flags(tmp_path, capsys):
    assert train_small(tmp_path, capsys, 2)[0] == 0
    mismatched = [a if a != "16" else "32" for a in SMALL]  # --controller_size 32
    code, _out, err = run(["--train", *mismatched], tmp_path, capsys)
    assert code == 2 and "controller_size=16" in err and "32" in err
    code, _out, err = run(["--test", "--controller_size", "32", "--max_sequence", "4"], tmp_path, capsys)
    assert code == 2 and "controller_size=16" in err


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(
        ["--train", *SMALL, "--checkpoint_dir", str(blocker / "sub"), "--train_log_dir", str(tmp_path / "logs")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--checkpoint_dir" in err and "not a directory" in err
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 0)])
def test_a_signal_saves_a_checkpoint_and_exits_with_its_code(sig, code, tmp_path):
    """Ctrl-C (SIGINT) saves and exits 130, so a script can tell it from a finished run; SIGTERM (a
    scheduler's requeue) saves and exits 0."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ntmkit",
            "train",
            *SMALL,
            "--keep_training",
            "--report_interval",
            "100000",
            "--checkpoint_dir",
            str(tmp_path / "ck"),
            "--train_log_dir",
            str(tmp_path / "logs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "logs" / "metrics.jsonl").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted after" in out and "Traceback" not in err
    data = ckpt.load(tmp_path / "ck")
    assert data["step"] > 0  # saved on the way out, though no interval checkpoint was due


def test_a_full_disk_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))
    code, _out, err = run(["--train", *SMALL], tmp_path, capsys)
    assert code == 2 and "MiB free for --checkpoint_dir" in err
    assert not (tmp_path / "ck").exists() and not (tmp_path / "logs").exists()


def test_the_shipped_model_copies_120_with_an_enlarged_memory(tmp_path, capsys):
    code, out, err = run(
        ["--test", "--max_sequence=120", "--memory_locations", "1024", "--sequences", "20"], tmp_path, capsys
    )
    assert code == 0, err
    assert "memory enlarged from 128 to 1024 locations" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("length 120:"))
    assert float(line.split()[2]) < 0.5  # with its trained 128 rows it gets ~480 bits wrong here
    code, out, err = run(["--test", "--max_sequence=20", "--memory_locations", "64"], tmp_path, capsys)
    assert code == 2 and "can only enlarge" in err


def test_lstm_baseline_trains_and_tests_through_the_same_commands(tmp_path, capsys):
    code, out, err = run(
        [
            "train",
            "--model",
            "lstm",
            "--controller_size",
            "16",
            "--max_sequence",
            "4",
            "--epochs",
            "1",
            "--steps_per_epoch",
            "5",
            "--keep_training",
            "--quiet",
        ],
        tmp_path,
        capsys,
    )
    assert code == 0, err
    assert "training lstm on copy" in out
    assert ckpt.load(tmp_path / "ck")["model_kind"] == "lstm"
    code, out, err = run(["test", "--max_sequence", "4", "--sequences", "8"], tmp_path, capsys)
    assert code == 0 and "length 4:" in out
    code, out, err = run(["visualize", "--max_sequence", "4"], tmp_path, capsys)
    assert code == 2 and "no memory to draw" in err


def test_every_task_trains_tests_and_draws_from_the_cli(tmp_path, capsys):
    tiny = [
        "--controller_size",
        "16",
        "--controller_layers",
        "1",
        "--memory_locations",
        "40",
        "--memory_vector_size",
        "6",
        "--batches",
        "4",
        "--engine",
        "eager",
        "--quiet",
    ]
    sizes = {
        "repeat_copy": ["--max_sequence", "3", "--max_repeats", "3"],
        "associative_recall": ["--max_items", "3"],
        "ngrams": ["--min_sequence", "20", "--max_sequence", "20", "--nproc", "1"],  # one process, to capture
        "priority_sort": ["--min_items", "5", "--max_items", "5", "--sort_outputs", "3"],
    }
    for task, size in sizes.items():
        d = tmp_path / task
        args = [
            "--task",
            task,
            *size,
            "--checkpoint_dir",
            str(d / "ck"),
            "--train_log_dir",
            str(d / "logs"),
            "--figure_dir",
            str(d / "fig"),
        ]
        assert main(["train", *tiny, *args, "--epochs", "1", "--steps_per_epoch", "3", "--keep_training"]) == 0
        out = capsys.readouterr().out
        assert f"training ntm on {task}" in out and "parameters" in out
        assert main(["test", *args, "--sequences", "4"]) == 0
        out = capsys.readouterr().out
        assert "bit errors per sequence" in out
        if task == "ngrams":
            assert "bits per sequence above the optimal estimator" in out
        assert main(["visualize", *args]) == 0
        assert len(list((d / "fig").glob("visualize_*.png"))) == 1
        dirs = args[2 + len(size) :]
        assert main(["evaluate", "--task", task, *dirs, "--sequences", "3", "--values", "3,5"]) == 0
        report = json.loads(next((d / "fig").glob("evaluate_*.json")).read_text())
        assert report["task"] == task and len(report["rows"]) >= 2 and "cost" in report["rows"][0]
        capsys.readouterr()


def test_evaluate_copy_every_length_and_a_larger_memory(tmp_path, capsys):
    code, out, err = run(["evaluate", "--values", "5,20,40", "--sequences", "20"], tmp_path, capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "fig" / "evaluate_copy_length.json").read_text())
    assert [r["length"] for r in report["rows"]] == [5, 20, 40] and report["training_range"] == [1, 20]
    assert report["rows"][0]["bit_errors"] == 0 and report["rows"][1]["bit_errors"] == 0  # the shipped model
    assert (tmp_path / "fig" / "evaluate_copy_length.png").stat().st_size > 10_000
    code, out, err = run(
        ["evaluate", "--memory_locations", "512", "--values", "300", "--sequences", "2"], tmp_path, capsys
    )
    assert code == 0, err
    assert "memory enlarged from 128 to 512" in out
    from ntmkit.evaluate import default_values
    from ntmkit.tasks import CopyTask

    assert default_values(CopyTask(), "length") == list(range(1, 121))
    assert default_values(CopyTask(), "length", 1000) == [*list(range(1, 121)), 150, 200, 300, 500, 750, 1000]


def test_preset_paper_sets_the_tables_settings_and_flags_win(tmp_path, capsys):
    from ntmkit.cli import preset_settings

    assert preset_settings("paper", "associative_recall", "ntm", "feedforward") == dict(
        optimizer="rmsprop",
        momentum=0.9,
        read_heads=4,
        write_heads=4,
        controller_size=256,
        controller_layers=1,
        learning_rate=1e-4,
    )
    assert preset_settings("paper", "priority_sort", "ntm", "lstm")["controller_layers"] == 2
    assert preset_settings("paper", "ngrams", "lstm", "feedforward")["controller_size"] == 128
    code, out, err = run(
        [
            "train",
            "--preset",
            "paper",
            "--task",
            "associative_recall",
            "--read_heads",
            "2",
            "--write_heads",
            "2",
            "--controller_size",
            "32",
            "--memory_locations",
            "40",
            "--epochs",
            "1",
            "--steps_per_epoch",
            "2",
            "--keep_training",
            "--engine",
            "eager",
            "--quiet",
        ],
        tmp_path,
        capsys,
    )
    assert code == 0, err
    assert "rmsprop lr 0.0001" in out
    stored = ckpt.load(ckpt.latest(tmp_path / "ck"))["model_config"]
    assert stored["read_heads"] == 2 and stored["controller_size"] == 32 and stored["controller_layers"] == 1


def test_sweep_trains_seeds_in_parallel_and_summarises(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ntmkit",
            "sweep",
            "--seeds",
            "2",
            "--first_seed",
            "3",
            "--values",
            "2,3",
            "--sequences",
            "5",
            "--sweep_dir",
            str(tmp_path / "sw"),
            "--engine",
            "eager",
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
            "--max_sequence",
            "2",
            "--epochs",
            "1",
            "--steps_per_epoch",
            "40",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [s["seed"] for s in result["seeds"]] == [3, 4]
    assert all(s["sequences"] == 40 * 32 for s in result["seeds"])
    # each seed was evaluated on fresh sequences at the values asked for, in both units
    for s in result["seeds"]:
        gen = s["generalisation"]
        assert gen["axis"] == "length" and list(gen["bit_errors"]) == ["2", "3"] and gen["sequences_per_value"] == 5
        assert all(0 <= gen["wrong_share"][v] <= 1 and gen["bit_errors"][v] >= 0 for v in ("2", "3"))
        assert gen["cost"] == gen["bit_errors"]  # copy's cost is its bit errors per sequence
    assert "bit errors per sequence against length" in r.stdout
    assert all(0 <= s["last_training_cost"] < 100 for s in result["seeds"])
    curve = result["curve_sequences"]
    assert len(curve["x"]) == len(curve["median"]) and all(
        a <= m <= b for a, m, b in zip(curve["q1"], curve["median"], curve["q3"])
    )
    assert (tmp_path / "sw" / "sweep_seconds.png").exists() and "seed  learned" in r.stdout
    # each seed is an ordinary run with its own seed
    logs = [json.loads((tmp_path / "sw" / f"seed-{k}" / "logs" / "summary.json").read_text()) for k in (3, 4)]
    assert [s["seed"] for s in logs] == [3, 4]


def test_resume_reports_the_learning_rate_it_continues_with(tmp_path, capsys):
    code, out, err = train_small(tmp_path, capsys, 3, extra=["--learning_rate", "0.003"])
    assert code == 0, err
    assert "adam lr 0.003" in out
    code, out, err = run(
        ["train", "--epochs", "1", "--steps_per_epoch", "5", "--keep_training", "--quiet", "--engine", "eager"],
        tmp_path,
        capsys,
    )
    assert code == 0, err
    assert "adam lr 0.003" in out  # the stored rate, not the default 1e-3
    code, out, err = run(
        [
            "train",
            "--epochs",
            "1",
            "--steps_per_epoch",
            "7",
            "--keep_training",
            "--quiet",
            "--engine",
            "eager",
            "--learning_rate",
            "0.0001",
        ],
        tmp_path,
        capsys,
    )
    assert code == 0, err
    assert "adam lr 0.0001" in out and ckpt.load(tmp_path / "ck")["optimizer"]["param_groups"][0]["lr"] == 1e-4


def test_task_flags_are_checked_against_the_checkpoints_task(tmp_path, capsys):
    """--max_items with an associative-recall checkpoint and no --task: the flag belongs to that
    task, so test, evaluate and a resumed train accept it (they used to check it against copy)."""
    tiny = [
        "--controller_size",
        "8",
        "--controller_layers",
        "1",
        "--memory_locations",
        "40",
        "--memory_vector_size",
        "4",
        "--batches",
        "2",
        "--engine",
        "eager",
        "--quiet",
    ]
    dirs = [
        "--checkpoint_dir",
        str(tmp_path / "ck"),
        "--train_log_dir",
        str(tmp_path / "logs"),
        "--figure_dir",
        str(tmp_path / "fig"),
    ]
    assert (
        main(
            [
                "train",
                "--task",
                "associative_recall",
                "--max_items",
                "3",
                *tiny,
                *dirs,
                "--epochs",
                "1",
                "--steps_per_epoch",
                "2",
                "--keep_training",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["test", "--max_items", "4", "--sequences", "2", *dirs]) == 0
    assert "does not apply" not in capsys.readouterr().err
    assert main(["evaluate", "--max_items", "4", "--values", "3,4", "--sequences", "2", *dirs]) == 0
    assert (
        main(["train", "--max_items", "3", *tiny, *dirs, "--epochs", "1", "--steps_per_epoch", "4", "--keep_training"])
        == 0
    )
    assert "resuming from" in capsys.readouterr().out
    # a flag no task takes with that checkpoint is still refused, naming the checkpoint's task
    assert main(["test", "--max_repeats", "4", *dirs]) == 2
    assert "does not apply to the associative_recall task" in capsys.readouterr().err


def test_ctrl_c_in_the_nproc_parent_waits_for_the_processes_and_exits_130(monkeypatch, capsys):
    """Ctrl-C reaches torchrun's processes too; the parent waits for them to save, no traceback."""
    import subprocess as sp

    from ntmkit.cli import launch_torchrun

    class Proc:
        waits = 0

        def __init__(self, *a, **kw):
            pass

        def wait(self):
            Proc.waits += 1
            if Proc.waits == 1:
                raise KeyboardInterrupt
            return 0

        def kill(self):
            raise AssertionError("killed although the processes ended by themselves")

    monkeypatch.setattr(sp, "Popen", Proc)
    assert launch_torchrun(2, ["train", "--nproc", "2"]) == 130
    assert Proc.waits == 2 and "waiting for the training processes" in capsys.readouterr().out


def test_the_progress_bar_has_no_step_limit_total():
    """A run stops when learned, long before the step limit: no ETA computed from the limit."""
    from ntmkit.train import _progress_bar

    bar = _progress_bar(True, 0)
    try:
        assert bar.total is None
    finally:
        bar.close()


def test_a_task_s_recommended_settings_fill_unset_flags_and_flags_win(tmp_path, capsys):
    tiny = ["--controller_size", "8", "--memory_locations", "40", "--memory_vector_size", "4", "--engine", "eager",
            "--quiet", "--max_sequence", "2", "--max_repeats", "2", "--epochs", "1", "--steps_per_epoch", "1",
            "--keep_training"]  # fmt: skip
    code, out, _err = run(["train", "--task", "repeat_copy", *tiny], tmp_path, capsys)
    assert code == 0 and "batch 8," in out and "--controller lstm --batches 8" in out
    assert ckpt.load(ckpt.latest(tmp_path / "ck"))["model_config"]["controller"] == "lstm"
    code, out, _err = run(["train", "--task", "repeat_copy", "--controller", "feedforward", "--batches", "4", *tiny],
                          tmp_path / "b", capsys)  # fmt: skip
    assert code == 0 and "batch 4," in out and "trains by default" not in out
    assert ckpt.load(ckpt.latest(tmp_path / "b" / "ck"))["model_config"]["controller"] == "feedforward"


def test_ctrl_c_stops_a_sweep_after_its_running_seeds_save(tmp_path):
    """Ctrl-C goes to the whole process group: the running seed saves, no further seed starts,
    the sweep exits 130 with one line, and running it again resumes."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    cmd = [sys.executable, "-m", "ntmkit", "sweep", "--seeds", "3", "--jobs", "1", "--no-evaluate",
           "--sweep_dir", str(tmp_path / "sw"), "--engine", "eager", *SMALL[:-3], "--epochs", "1",
           "--steps_per_epoch", "100000", "--keep_training", "--report_interval", "5"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and ckpt.latest(tmp_path / "sw" / "seed-0" / "ck") is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "waiting for 1 running seed(s)" in out and "seed 1" not in out
    assert err.strip().splitlines()[-1].startswith("ntm: interrupted") and "Traceback" not in err
    assert ckpt.load(ckpt.latest(tmp_path / "sw" / "seed-0" / "ck"))["step"] >= 5


def test_command_line_defaults_are_the_config_dataclasses_defaults():
    import dataclasses

    from ntmkit.models import NTMConfig
    from ntmkit.options import BY_NAME, DEFAULTS
    from ntmkit.train import TrainConfig

    for option in BY_NAME.values():
        if isinstance(option.default, tuple):
            cls, field = option.default
            stored = next(f.default for f in dataclasses.fields(cls) if f.name == field)
            assert DEFAULTS[option.name] == stored, option.name
    assert DEFAULTS["batches"] == TrainConfig.batch_size and DEFAULTS["gate_bias"] == NTMConfig.gate_bias
    assert DEFAULTS["maximum_shifts"] == 2 * NTMConfig.shift_range + 1
    assert DEFAULTS["clip_grad_max"] == TrainConfig.clip_grad_norm == -DEFAULTS["clip_grad_min"]


def test_each_command_has_its_own_options_and_the_flat_spelling_keeps_them_all(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    bench_help = capsys.readouterr().out
    assert "--quick" in bench_help and "--task" not in bench_help
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = capsys.readouterr().out
    assert "--memory_sizes" in train_help and "--quick" not in train_help and "(default 32)" in train_help
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--task", "copy"])  # not a bench option
    assert stop.value.code == 2 and "unrecognized arguments: --task" in capsys.readouterr().err
    # options before or after the command word, and the starting project's flat spelling
    from ntmkit.options import build_parser

    p = build_parser()
    for argv in (["--seed", "3", "train"], ["train", "--seed", "3"], ["--train", "--seed", "3"]):
        args = p.parse_args(argv)
        assert args.seed == 3 and (args.command == "train" or args.train), argv


def test_the_dnc_runs_through_every_command(tmp_path, capsys):
    """`--model dnc`: train (with its own flags, memory sizes drawn per batch), test, visualize (with
    the DNC's usage, allocation, read modes and link matrix), evaluate with a larger memory, sweep."""
    dirs = ["--checkpoint_dir", str(tmp_path / "ck"), "--train_log_dir", str(tmp_path / "logs"),
            "--figure_dir", str(tmp_path / "fig")]  # fmt: skip
    tiny = ["--model", "dnc", "--controller_size", "16", "--memory_locations", "24", "--memory_vector_size", "6",
            "--read_heads", "2", "--deallocation", "--batches", "4", "--engine", "eager", "--quiet",
            "--max_sequence", "5"]  # fmt: skip
    assert main(["train", *tiny, *dirs, "--epochs", "1", "--steps_per_epoch", "3", "--keep_training"]) == 0
    out = capsys.readouterr().out
    assert "training dnc on copy" in out
    data = ckpt.load(ckpt.latest(tmp_path / "ck"))
    assert data["model_kind"] == "dnc" and data["model_config"]["read_heads"] == 2
    assert data["model_config"]["deallocation"] is True and data["model_config"]["controller"] == "lstm"
    assert main(["test", *dirs, "--sequences", "4", "--max_sequence", "5"]) == 0
    assert "bit errors per sequence" in capsys.readouterr().out
    assert main(["visualize", *dirs, "--max_sequence", "5"]) == 0
    assert len(list((tmp_path / "fig").glob("visualize_*.png"))) == 1
    assert main(["evaluate", *dirs, "--sequences", "3", "--values", "5,30", "--memory_locations", "64"]) == 0
    report = json.loads(next((tmp_path / "fig").glob("evaluate_*.json")).read_text())
    assert [r["length"] for r in report["rows"]] == [5, 30] and report["memory_locations"] == 64
    assert report["trained_memory_locations"] == 24  # the report says the memory was enlarged, and from what
    capsys.readouterr()
    assert main(["train", "--model", "dnc", "--gate_bias", "1", *dirs]) == 2
    assert "--gate_bias does not apply to the DNC" in capsys.readouterr().err


def test_a_recommendation_for_one_controller_applies_to_that_controller_only(tmp_path, capsys):
    tiny = ["--task", "associative_recall", "--max_items", "3", "--controller_size", "8", "--memory_locations", "40",
            "--memory_vector_size", "4", "--engine", "eager", "--quiet", "--epochs", "1", "--steps_per_epoch", "1",
            "--keep_training"]  # fmt: skip
    code, out, _err = run(["train", *tiny], tmp_path, capsys)
    config = ckpt.load(ckpt.latest(tmp_path / "ck"))["model_config"]
    assert code == 0 and "--gate_bias 0.0 --init_weighting random" in out
    assert config["controller"] == "feedforward" and config["gate_bias"] == 0 and config["init_weighting"] == "random"
    code, out, _err = run(["train", *tiny, "--controller", "lstm"], tmp_path / "b", capsys)
    config = ckpt.load(ckpt.latest(tmp_path / "b" / "ck"))["model_config"]
    assert code == 0 and "trains by default" not in out
    assert config["gate_bias"] == -2 and config["init_weighting"] == "focused"
    code, out, _err = run(["train", *tiny, "--gate_bias", "-1"], tmp_path / "c", capsys)  # a flag given wins
    assert ckpt.load(ckpt.latest(tmp_path / "c" / "ck"))["model_config"]["gate_bias"] == -1


def test_feedforward_recall_trains_with_the_measured_optimiser_at_batch_1_and_only_the_ntm_does():
    from argparse import Namespace

    from ntmkit.options import task_recommended

    ntm = task_recommended(Namespace(task="associative_recall", model=None, controller=None))
    assert ntm["optimizer"] == "sgd" and ntm["batches"] == 1 and ntm["learning_rate"] == 1e-2
    assert ntm["read_heads"] == 4 and ntm["write_heads"] == 1 and ntm["controller_layers"] == 1
    assert ntm["shift_bias"] == 3.0 and ntm["read_before_write"] is True
    assert task_recommended(Namespace(task="associative_recall", model="dnc", controller="feedforward")) == {}
    assert task_recommended(Namespace(task="associative_recall", model="ntm", controller="lstm")) == {}


def _flag_changing(o, current):
    """The arguments that set option ``o`` (a switch, a choice or a number) away from ``current``,
    and the value they should set."""
    if o.action == "bool":
        return [f"--no-{o.name}" if current else f"--{o.name}"], not current
    want = next(c for c in o.choices if c != current) if o.choices else o.type(current or 0) + 3
    return [f"--{o.name}", str(want)], want


def test_every_training_flag_reaches_the_training_config():
    """Each flag whose default is a TrainConfig field must set that field (a flag that is parsed but
    never passed on would silently train with the default)."""
    from ntmkit.cli import build_parser, train_config
    from ntmkit.options import OPTIONS
    from ntmkit.train import TrainConfig

    defaults = TrainConfig()
    for o in OPTIONS:
        if not (isinstance(o.default, tuple) and o.default[0] is TrainConfig):
            continue
        field = o.default[1]
        if o.action == "bool" or o.choices or o.type in (int, float):
            argv, want = _flag_changing(o, getattr(defaults, field))
        else:
            want = "x" if field != "memory_sizes" else "full"
            argv = [f"--{o.name}", want]
        args = build_parser().parse_args(["train", *argv])
        cfg = train_config(args, args.model or "ntm", {}, {})
        assert getattr(cfg, field) == want, f"--{o.name} does not reach TrainConfig.{field}"


def test_every_model_flag_reaches_the_model_config():
    """Each flag a model kind takes must set its config field (one parsed but never passed on
    would silently build the default machine)."""
    from ntmkit.cli import build_parser
    from ntmkit.options import OPTIONS, config_key, model_options
    from ntmkit.registry import MODELS

    by_name = {o.name: o for o in OPTIONS}
    for kind, k in MODELS.items():
        defaults = model_options(build_parser().parse_args(["train", "--model", kind]), kind)
        for flag in k.flags:
            o, field = by_name[flag], config_key(flag, kind)
            if flag == "maximum_shifts":
                argv, want = [f"--{flag}", "5"], 2
            else:
                argv, want = _flag_changing(o, defaults[field])
            args = build_parser().parse_args(["train", "--model", kind, *argv])
            assert model_options(args, kind)[field] == want, f"--{flag} does not reach {kind}'s {field}"


def test_init_from_starts_a_new_run_from_a_trained_model_s_weights(tmp_path, capsys):
    """A new run takes the source's weights and model settings (flags left out) and a fresh
    optimiser; a run in --checkpoint_dir resumes and ignores the flag; bad sources are one line."""
    steps = ["--epochs", "1", "--steps_per_epoch", "1", "--keep_training"]
    code, _out, _err = run(["train", *SMALL, *steps], tmp_path / "a", capsys)
    assert code == 0
    source = ckpt.load(tmp_path / "a" / "ck")
    # Only what the model needs to know of the task; the model flags come from the source.
    task_flags = ["--in_bits", "3", "--out_bits", "3", "--max_sequence", "4", "--engine", "eager", "--quiet"]
    new = ["train", *task_flags, "--init_from", str(tmp_path / "a" / "ck"), "--learning_rate", "1e-12", *steps]
    code, out, _err = run(new, tmp_path / "b", capsys)
    assert code == 0 and "starting from the weights of" in out and "with a fresh optimiser" in out
    started = ckpt.load(tmp_path / "b" / "ck")
    assert started["model_config"] == source["model_config"]  # controller_size 16 etc., not the defaults
    assert started["step"] == 1  # a new run of its own, not a continuation of the source's
    # It counts what the weights saw before it, and a model exported from it counts both runs.
    assert started["sequences_before"] == source["sequences"] > 0
    exported = ckpt.load(export(str(tmp_path / "b" / "ck"), "copy", tmp_path / "exported.pt"))
    assert exported["sequences"] == started["sequences"] + source["sequences"]
    for name, value in source["model"].items():  # one step at lr 1e-12 leaves the weights where they were
        assert torch.allclose(started["model"][name], value, atol=1e-9), name
    # A fresh model of the same seed differs from the source (one step at lr 1e-3): they came from it.
    code, _out, _err = run(["train", *SMALL, "--learning_rate", "1e-12", *steps], tmp_path / "c", capsys)
    fresh = ckpt.load(tmp_path / "c" / "ck")["model"]
    assert any(not torch.allclose(fresh[n], v, atol=1e-6) for n, v in source["model"].items())
    # A run already in --checkpoint_dir resumes: the flag does not overwrite its weights.
    again = ["train", *SMALL, "--init_from", str(tmp_path / "c" / "ck"), "--epochs", "1", "--steps_per_epoch", "2",
             "--keep_training", "--learning_rate", "1e-12"]  # fmt: skip
    code, out, _err = run(again, tmp_path / "b", capsys)
    assert code == 0 and "resuming from" in out and "starting from the weights" not in out
    resumed = ckpt.load(tmp_path / "b" / "ck")
    assert resumed["step"] == 2 and all(
        torch.allclose(resumed["model"][n], v, atol=1e-9) for n, v in source["model"].items()
    )
    # Bad sources and mismatches: one line each, exit code 2.
    for flags, message in (
        (["--init_from", str(tmp_path / "nowhere")], "no such checkpoint file or directory, and no shipped model"),
        (["--init_from", "no_such_model"], "shipped: associative_recall"),
        (["--task", "ngrams", "--init_from", str(tmp_path / "a" / "ck")], "holds a copy model, not ngrams"),
    ):
        code, _out, err = run(["train", *flags, *steps], tmp_path / "d", capsys)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_ngrams_trains_on_two_processes_where_there_are_two_cores(monkeypatch):
    """The task's recommended --nproc 2 applies on the CPU, up to the cores there are, where the
    batch splits evenly; --nproc as given always wins, and a batch it cannot split is an error."""
    from ntmkit import checks as cli
    from ntmkit.options import UsageError, build_parser

    def processes(argv, cores=2):
        monkeypatch.setattr(cli, "usable_cores", lambda: cores)
        return cli.training_processes(build_parser().parse_args(["train", *argv]))

    assert processes(["--task", "ngrams"]) == 2
    assert processes(["--task", "ngrams"], cores=1) == 1
    assert processes(["--task", "ngrams"], cores=16) == 2
    assert processes(["--task", "ngrams", "--batches", "7"]) == 1
    assert processes(["--task", "ngrams", "--device", "cuda"]) == 1
    assert processes(["--task", "ngrams", "--nproc", "1"]) == 1
    assert processes(["--task", "copy"]) == 1
    assert processes(["--task", "copy", "--nproc", "2"], cores=1) == 2
    with pytest.raises(UsageError, match="--batches 7 does not split over --nproc 2"):
        processes(["--task", "copy", "--nproc", "2", "--batches", "7"])


def test_a_sweep_runs_each_seed_in_one_process(tmp_path, monkeypatch):
    """N-grams would train on two processes by default; a sweep's seeds each get --nproc 1, so
    --jobs 2 means two processes on two cores, not four."""
    from ntmkit import sweep

    started = []

    class Done:
        returncode = 0

        def __init__(self, cmd, **kw):
            started.append(cmd)

        def poll(self):
            return 0

    monkeypatch.setattr(sweep.subprocess, "Popen", Done)
    sweep._run([0, 1], {}, ["--task", "ngrams"], tmp_path, 2, lambda m: None, "train", "train.log", lambda d: [])
    assert len(started) == 2
    for cmd in started:
        assert cmd[cmd.index("--nproc") + 1] == "1" and cmd[cmd.index("--task") + 1] == "ngrams"
