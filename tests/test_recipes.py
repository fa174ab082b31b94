"""Recipes: every shipped recipe runs two steps per phase on a shrunken model with each phase's settings
as written; a run killed in phase 2 resumes there bit-exactly; config.toml starts the same run again;
bad recipe files are one line naming the file, the key and the fix; the order settings win in."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ntmkit import checkpoint as ckpt
from ntmkit import recipes
from ntmkit.cli import main
from ntmkit.options import value

SHRINK = {"controller_size": 8, "memory_vector_size": 4, "engine": "eager", "report_interval": 1, "nproc": 1}
TASK_SHRINK = {
    "copy": {"max_sequence": 3, "memory_locations": 16},
    "repeat_copy": {"max_sequence": 2, "max_repeats": 2, "memory_locations": 16},
    "associative_recall": {"in_bits": 2, "item_length": 1, "memory_locations": 32},
    "ngrams": {"min_sequence": 12, "max_sequence": 12, "memory_locations": 16},
    "priority_sort": {"min_items": 4, "max_items": 4, "sort_outputs": 2, "memory_locations": 16},
}
ENV = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"), PYTHONUNBUFFERED="1")


def shrunk(recipe: recipes.Recipe, steps: int = 2) -> recipes.Recipe:
    """The recipe on a tiny model, each phase ``steps`` steps long at its own batch."""
    small = recipe.with_flags({**SHRINK, **TASK_SHRINK[recipe.task]})
    phases = []
    for k, p in enumerate(small.phases):
        batch = value(recipes.namespace(small, k, Path("."), None), "batches")
        phases.append(dataclasses.replace(p, sequences=steps * batch))
    return dataclasses.replace(small, phases=phases)


def test_at_least_twelve_recipes_ship_and_each_loads():
    names = recipes.shipped()
    assert len(names) >= 12
    for name in names:
        r = recipes.load(name)
        assert r.phases and r.sequences > 0 and r.description


@pytest.mark.parametrize("name", recipes.shipped())
def test_every_shipped_recipe_runs_two_steps_per_phase_as_written(name, tmp_path, capsys):
    recipe = shrunk(recipes.load(name))
    path = tmp_path / f"{name}.toml"
    path.write_text(recipes.dumps(recipe))
    run = tmp_path / "run"
    assert main(["train", str(path), "--run_dir", str(run), "--quiet"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    n = len(recipe.phases)
    assert f"phase {n} of {n}" in out and (run / recipes.CONFIG).is_file()
    previous_steps = 0
    for k, phase in enumerate(recipe.phases):
        d = run if n == 1 else run / f"phase-{k + 1}"
        assert (d / "phase.json").is_file()
        data = ckpt.load(d)
        settings = recipes.resolve(recipe, k)
        cfg = data["train_config"]
        assert data["step"] == 2
        assert cfg["batch_size"] == settings.get("batches", cfg["batch_size"])
        assert cfg["optimizer"] == settings.get("optimizer", "adam" if name != "recall-ff" else cfg["optimizer"])
        if "learning_rate" in settings and not settings.get("lr_schedule", "").startswith("0:"):
            assert data["optimizer"]["param_groups"][0]["lr"] == pytest.approx(settings["learning_rate"])
        for flag, option in (("min_items", "min_items"), ("memory_sizes", None)):
            if flag in settings and option is not None:
                assert data["task"]["options"][option] == settings[flag]
        if "memory_sizes" in settings:
            assert cfg["memory_sizes"] == settings["memory_sizes"]
        state = next(iter(data["optimizer"]["state"].values()), {})
        carried = k > 0 and not phase.fresh_optimizer
        if "step" in state:  # Adam counts its steps: a carried optimiser goes on counting
            assert float(state["step"]) == (previous_steps + 2 if carried else 2)
            previous_steps = float(state["step"])


def test_a_run_killed_in_phase_2_resumes_in_phase_2_bit_exactly(tmp_path):
    base = recipes.parse(
        """
task = "copy"
model = "ntm"
seed = 5
[settings]
controller_size = 8
memory_locations = 12
memory_vector_size = 4
max_sequence = 3
engine = "eager"
report_interval = 1
[[phases]]
sequences = 64
batches = 16
[[phases]]
sequences = 4800
batches = 8
learning_rate = 3e-4
[[phases]]
sequences = 64
fresh_optimizer = true
optimizer = "sgd"
batches = 16
"""
    )
    path = tmp_path / "r.toml"
    path.write_text(recipes.dumps(base))
    whole = subprocess.run(
        [sys.executable, "-m", "ntmkit", "train", str(path), "--run_dir", str(tmp_path / "a"), "--quiet"],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntmkit", "train", str(path), "--run_dir", str(tmp_path / "b"), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len(ckpt.list_checkpoints(tmp_path / "b" / "phase-2")) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "phase-2" / "phase.json").exists()  # killed inside phase 2
    again = subprocess.run(
        [sys.executable, "-m", "ntmkit", "train", str(tmp_path / "b"), "--quiet"],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "phase 1 of 3: done" in again.stdout and "resuming from" in again.stdout
    assert "phase-2" in again.stdout.split("resuming from", 1)[1].splitlines()[0]
    a, b = ckpt.load(tmp_path / "a" / "phase-3"), ckpt.load(tmp_path / "b" / "phase-3")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_config_toml_starts_the_same_run_again_with_identical_parameters(tmp_path, capsys):
    flags = ["--controller_size", "12", "--memory_locations", "12", "--memory_vector_size", "4", "--max_sequence",
             "4", "--engine", "eager", "--keep_training", "--epochs", "1", "--steps_per_epoch", "50", "--seed", "9",
             "--quiet"]  # fmt: skip
    assert main(["train", *flags, "--run_dir", str(tmp_path / "a")]) == 0
    config = tmp_path / "a" / recipes.CONFIG
    assert config.is_file() and "ntmkit" in config.read_text().splitlines()[0]
    assert main(["train", "--config", str(config), "--run_dir", str(tmp_path / "b"), "--quiet"]) == 0
    capsys.readouterr()
    a, b = ckpt.load(tmp_path / "a"), ckpt.load(tmp_path / "b")
    ignore = {"checkpoint_dir", "train_log_dir", "init_optimizer"}
    assert {k: v for k, v in a["train_config"].items() if k not in ignore} == {
        k: v for k, v in b["train_config"].items() if k not in ignore
    }
    assert a["step"] == b["step"] == 50 and a["model_config"] == b["model_config"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


BAD = [
    ('task = "copy"\nmodel = "ntm"\ncolour = 3\n[[phases]]\nsequences = 10\n', "unknown key 'colour'"),
    ('task = "copy"\nmodel = "ntm"\n[[phases]]\nbatches = 8\n', "phase 1 has no budget: give sequences = N"),
    ('task = "copy"\nmodel = "ntm"\n[settings]\nbatches = "eight"\n[[phases]]\nsequences = 10\n',
     "'batches' must be an integer"),
    ('task = "copy"\nmodel = "ntm"\n[[phases]]\nsequences = 10\nmax_items = 4\n',
     "phase 1: --max_items does not apply to the copy task"),
    ('task = "copy"\nmodel = "ntm"\n[[phases]]\nsequences = 10\nread_heads = 2\n',
     "'read_heads' sets the model, which a phase cannot change: move it to [settings]"),
    ('task = "copy"\nmodel = "ntm"\n[[phases]]\nsequences = 10\nlr_schedule = "5:x"\n', "--lr_schedule"),
    ('task = "copy"\nmodel = "ntm"\nphases = 3\n', "no [[phases]]"),
    ("task = copy\n", "is not valid TOML"),
    ('task = "nosuch"\nmodel = "ntm"\n[[phases]]\nsequences = 10\n', "unknown task 'nosuch'"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", BAD)
def test_a_bad_recipe_is_one_line_naming_the_file_and_the_key(text, message, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "ntmkit", "train", str(path), "--run_dir", str(tmp_path / "run")],
        capture_output=True, text=True, env=ENV, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0], r.stderr
    assert not (tmp_path / "run").exists()


def test_settings_win_in_one_order_flags_then_phase_then_recipe_then_task_then_default():
    r = recipes.parse(
        'task = "repeat_copy"\nmodel = "ntm"\n[settings]\nlearning_rate = 1e-3\nmomentum = 0.5\n'
        "[[phases]]\nsequences = 100\nlearning_rate = 3e-4\n"
    )
    ns = recipes.namespace(r, 0, Path("d"), None)
    assert value(ns, "learning_rate") == 3e-4  # the phase over the recipe's settings
    assert value(ns, "momentum") == 0.5  # the recipe's settings over the default (0.9)
    assert value(ns, "batches") == 8  # repeat copy's recommended batch over the default (32)
    assert value(ns, "clip_grad_max") == 10.0  # the default
    flagged = recipes.namespace(r.with_flags({"learning_rate": 1e-2, "batches": 4}), 0, Path("d"), None)
    assert value(flagged, "learning_rate") == 1e-2 and value(flagged, "batches") == 4  # flags over everything


def test_ntm_recipes_lists_them_with_their_budget(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in recipes.shipped())
    assert "1,433,600" in out and "16.0971" in out  # priority sort: budget and the manifest's figure


def test_every_shipped_model_s_command_is_one_runnable_recipe_command():
    from ntmkit.pretrained import manifest

    for name, entry in manifest().items():
        assert entry["command"] == f"ntm train {entry['recipe']}", name
        recipe = recipes.load(entry["recipe"])
        assert recipe.shipped == name and recipes.parse(entry["recipe_text"]) == dataclasses.replace(
            recipe, source="<recipe>", name="<recipe>"
        )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps_per_epoch", "3"], "--steps_per_epoch does not apply to a recipe"),
        (["--keep_training"], "--keep_training does not apply to a recipe"),
        (["--nproc", "2"], "a recipe's phase trains in one process"),
    ],
)
def test_flags_a_recipe_cannot_take_are_one_line_and_write_nothing(flags, message, tmp_path, capsys):
    assert main(["train", "copy", *flags, "--run_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "run").exists()
