"""Training: a small machine learns to copy; curriculum; non-finite steps; optimisers; checkpoints."""

import dataclasses
import json
import math
import os
import statistics

import pytest
import torch

from ntmkit import checkpoint as ckpt
from ntmkit.errors import CheckpointError, ConfigError
from ntmkit.evaluate import evaluate
from ntmkit.optim import GravesRMSprop, make_optimizer, set_grad_scale
from ntmkit.train import Curriculum, TrainConfig, train


def small_config(tmp_path, **kw):
    opts = dict(
        task_options=dict(bits=4, min_length=1, max_length=5),
        model_options=dict(controller_size=32, controller_layers=1, memory_locations=16, memory_vector_size=8),
        batch_size=32,
        learning_rate=3e-3,
        curriculum=False,
        engine="eager",
        seed=0,
        checkpoint_dir=str(tmp_path / "ck"),
        train_log_dir=None,
        report_interval=10**6,
        eval_sequences=500,
        steps_after_learned=0,
    )
    opts.update(kw)
    return TrainConfig(**opts)


def test_a_small_machine_learns_to_copy(tmp_path):
    """Within 1,500 steps (about 25 s on one core) the copy of lengths 1-5 is learned."""
    result = train(small_config(tmp_path, max_steps=1500), progress=False)
    assert result["learned"], result["final_eval"]
    g = torch.Generator().manual_seed(99)
    e = evaluate(result["model"], result["task"], 500, g)  # fresh sequences of lengths 1-5
    assert e["bit_errors"] < 0.1 and e["perfect"] > 0.95  # untrained: about 6 wrong bits per sequence


def test_curriculum_widens_when_learned():
    c = Curriculum(level=5, maximum=20, step=5, threshold=0.1, patience=1000)
    for _ in range(30):
        assert not c.update(2.0)
    assert c.level == 5
    widened = [c.update(0.0) for _ in range(40)]
    assert any(widened) and c.level == 10
    for _ in range(200):
        c.update(0.0)
    assert c.level == 20 and c.complete


def test_curriculum_widens_a_range_it_cannot_learn_after_its_patience():
    c = Curriculum(level=5, maximum=20, step=5, threshold=0.1, patience=50)
    steps = [c.update(3.0) for _ in range(120)]
    assert steps.index(True) == 49 and c.level == 15


def train_with_nan_gradients(cfg, bad_calls: range, factor: float = float("nan")) -> dict:
    """Train with the output layer's gradient multiplied by ``factor`` (NaN: turned to NaN) on the
    backward passes in ``bad_calls`` (counted from 1), through a hook on a freshly built model."""
    import ntmkit.train.state as T  # where build_state builds the model

    calls = {"n": 0}

    def hook(grad):
        calls["n"] += 1
        return grad * factor if calls["n"] in bad_calls else grad

    original = T.build_model

    def build(kind, config):
        model = original(kind, config)
        model.cell.output.weight.register_hook(hook)
        return model

    T.build_model = build
    try:
        return train(cfg, progress=False)
    finally:
        T.build_model = original


def test_non_finite_gradient_skips_the_update(tmp_path):
    result = train_with_nan_gradients(small_config(tmp_path, max_steps=6, stop_when_learned=False), range(3, 4))
    assert result["skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())


def test_clip_grad_norm_finds_the_norm_of_a_finite_gradient_too_large_to_square_in_float32():
    from ntmkit.optim import clip_grad_norm

    def params(big: float):
        ps = [torch.nn.Parameter(torch.zeros(100)), torch.nn.Parameter(torch.zeros(3, 3))]
        ps[0].grad, ps[1].grad = torch.full((100,), big), torch.ones(3, 3)
        return ps

    assert not torch.isfinite(torch.nn.utils.clip_grad_norm_(params(1e20), 10.0))  # squares overflow
    ps = params(1e20)
    norm = clip_grad_norm(ps, 10.0)
    assert float(norm) == pytest.approx(math.sqrt(100 * 1e40 + 9))
    assert float(torch.cat([p.grad.flatten() for p in ps]).double().norm()) == pytest.approx(10.0)
    assert ps[0].grad[0] == pytest.approx(1.0) and ps[1].grad[0, 0] == pytest.approx(1e-20)  # same direction
    small = params(0.1)
    assert float(clip_grad_norm(small, 10.0)) == pytest.approx(math.sqrt(1.0 + 9)) and small[1].grad[0, 0] == 1.0
    assert not torch.isfinite(clip_grad_norm(params(float("inf")), 10.0))  # a non-finite entry still shows


def test_a_huge_but_finite_gradient_is_clipped_and_applied_not_skipped(tmp_path):
    result = train_with_nan_gradients(small_config(tmp_path, max_steps=6, stop_when_learned=False), range(3, 4), 1e30)
    assert result["skipped_steps"] == 0 and result["sequences"] == 6 * 32
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())


def test_schedules_are_parsed_checked_and_read_by_sequences_passed():
    from ntmkit import schedule

    rates = schedule.parse("70000:3e-5, 100000:1e-5", "lr")
    assert rates == ((70000, 3e-5), (100000, 1e-5))
    assert [schedule.passed(rates, a, b) for a, b in ((0, 69999), (69990, 70000), (70000, 70032))] == [None, 3e-5, None]
    assert schedule.passed(rates, -1, 250000) == 1e-5  # a resumed run past both: the last
    batches = schedule.parse("100000:32,200000:64", "batch")
    assert batches == ((100000, 32), (200000, 64)) and all(isinstance(b, int) for _, b in batches)
    assert [schedule.value_at(batches, n, 1) for n in (0, 99999, 100000, 10**6)] == [1, 1, 32, 64]
    for bad, kind, message in (
        ("2:1e-3,2:1e-4", "lr", "increasing"),
        ("1:nan", "lr", "finite"),
        ("1:x", "lr", "SEQUENCES:RATE"),
        ("100:0", "batch", "whole number >= 1"),
        ("100:2.5", "batch", "SEQUENCES:BATCH"),
        ("-1:8", "batch", ">= 0 and increasing"),
    ):
        with pytest.raises(ValueError, match=message):
            schedule.parse(bad, kind)


def test_training_follows_the_lr_schedule_and_a_resume_takes_the_entry_it_passed(tmp_path):
    cfg = small_config(tmp_path, max_steps=3, stop_when_learned=False, lr_schedule=((64, 1e-3), (160, 1e-4)))
    assert train(cfg, progress=False)["learning_rate"] == pytest.approx(1e-3)  # 96 sequences: the first entry
    assert train(dataclasses.replace(cfg, max_steps=6), progress=False)["learning_rate"] == pytest.approx(1e-4)
    data = ckpt.load(tmp_path / "ck")
    assert data["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    # A schedule given on resume: the run (192 sequences) takes the last entry it has passed.
    resumed = dataclasses.replace(cfg, max_steps=7, lr_schedule=((100, 5e-4), (1000, 1e-5)))
    assert train(resumed, progress=False)["learning_rate"] == pytest.approx(5e-4)
    with pytest.raises(ConfigError, match="lr_schedule: the sequence counts must be >= 0 and increasing"):
        train(dataclasses.replace(cfg, lr_schedule=((5, 1e-3), (5, 1e-4))), progress=False)


def test_training_follows_the_batch_schedule_and_a_resume_takes_the_entry_it_passed(tmp_path, monkeypatch):
    from ntmkit.tasks.copy import CopyTask

    drawn = []
    make_batch = CopyTask.make_batch

    def recording(self, batch_size, *args, **kwargs):
        drawn.append(batch_size)
        return make_batch(self, batch_size, *args, **kwargs)

    monkeypatch.setattr(CopyTask, "make_batch", recording)
    cfg = small_config(tmp_path, max_steps=4, stop_when_learned=False, batch_size=4, batch_schedule=((8, 16),))
    result = train(cfg, progress=False)
    # the training batches (the held-out check at the end draws its own)
    assert drawn[:5] == [4, 4, 16, 16, 250] and result["sequences"] == 40 and result["batch_size"] == 16
    drawn.clear()
    result = train(dataclasses.replace(cfg, max_steps=6), progress=False)  # resumed past the entry
    assert drawn[:3] == [16, 16, 250] and result["sequences"] == 72
    with pytest.raises(ConfigError, match="batch_schedule: a batch size must be a whole number >= 1"):
        train(dataclasses.replace(cfg, batch_schedule=((5, 0),)), progress=False)


def test_graves_rmsprop_matches_the_equations():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = GravesRMSprop([p], lr=0.1, momentum=0.5, decay=0.9, eps=1e-4)
    n = m = v = torch.zeros(2)
    theta = p.detach().clone()
    for g in (torch.tensor([0.5, -1.0]), torch.tensor([0.2, 0.3])):
        p.grad = g.clone()
        opt.step()
        n = 0.9 * n + 0.1 * g * g
        m = 0.9 * m + 0.1 * g
        v = 0.5 * v - 0.1 * g / torch.sqrt(n - m * m + 1e-4)
        theta = theta + v
    assert torch.allclose(p.detach(), theta)


def test_graves_rmsprop_steps_on_the_gradient_of_the_cost_per_sequence():
    """With grad_scale s (target bits per sequence), the gradient g of the mean per-bit loss gives
    the update that Graves' equations give for s * g, the gradient of the summed loss; eps then
    sits where the paper put it, below the gradient statistics, instead of above them."""
    s, g = 200.0, torch.tensor([3e-4, -1e-4])
    p = torch.nn.Parameter(torch.zeros(2))
    opt = GravesRMSprop([p], lr=1e-4, momentum=0.0, grad_scale=s)
    p.grad = g.clone()
    opt.step()
    summed = s * g
    expected = -1e-4 * summed / torch.sqrt(0.05 * summed**2 - (0.05 * summed) ** 2 + 1e-4)
    assert torch.allclose(p.detach(), expected)
    # a per-bit gradient this small, unscaled, would be drowned by eps: a step ~100x smaller
    q = torch.nn.Parameter(torch.zeros(2))
    unscaled = GravesRMSprop([q], lr=1e-4, momentum=0.0)
    q.grad = g.clone()
    unscaled.step()
    assert (p.detach().abs() > 20 * q.detach().abs()).all()
    # set_grad_scale reaches GravesRMSprop's groups and leaves other optimisers alone
    set_grad_scale(opt, 8.0)
    assert opt.param_groups[0]["grad_scale"] == 8.0
    adam = make_optimizer("adam", [q])
    set_grad_scale(adam, 8.0)
    assert "grad_scale" not in adam.param_groups[0]


def test_training_with_rmsprop_scales_by_the_target_bits_per_sequence(tmp_path):
    """The training loop tells RMSProp each batch's target bits per sequence (copy of 3 vectors of
    4 bits: 12), so its statistics are those of the cost per sequence."""
    cfg = small_config(
        tmp_path,
        max_steps=3,
        optimizer="rmsprop",
        stop_when_learned=False,
        task_options=dict(bits=4, min_length=3, max_length=3),
    )
    train(cfg, progress=False)
    saved = ckpt.load(ckpt.latest(cfg.checkpoint_dir))
    assert float(saved["optimizer"]["param_groups"][0]["grad_scale"]) == 12.0


def test_rmsprop_on_gradients_far_below_eps_is_sgd_at_100_times_the_rate():
    """What the recall recommendation was measured with: Graves' RMSProp at lr 1e-4 fed gradients
    whose variance is far below eps steps like SGD with momentum at lr 1e-2 (the recommended sgd)."""
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.zeros(50)), torch.nn.Parameter(torch.zeros(50))
    rms = GravesRMSprop([a], lr=1e-4, momentum=0.9)
    sgd = make_optimizer("sgd", [b], momentum=0.9)
    assert sgd.param_groups[0]["lr"] == 1e-2
    for _ in range(20):
        g = 1e-5 * torch.randn(50)
        a.grad, b.grad = g.clone(), g.clone()
        rms.step()
        sgd.step()
    assert torch.allclose(a.detach(), b.detach(), rtol=1e-3, atol=0)


def test_make_optimizer_defaults_and_errors():
    p = [torch.nn.Parameter(torch.zeros(1))]
    assert make_optimizer("adam", p).param_groups[0]["lr"] == 1e-3
    assert make_optimizer("rmsprop", p).param_groups[0]["lr"] == 1e-4
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("sgdx", p)


def test_amsgrad_bounds_the_step_after_a_quiet_stretch():
    """Large gradients, a long stretch of tiny ones (a learned machine), then large ones again:
    Adam's decayed second moment lets the update grow to several learning rates; AMSGrad keeps
    the largest second moment seen, so its update stays below one."""

    def steps_after_quiet(name: str) -> float:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = make_optimizer(name, [p], lr=1.0)
        for g in [1.0] * 200 + [1e-4] * 6000 + [1.0] * 3:
            before = p.detach().clone()
            p.grad = torch.tensor([g])
            opt.step()
        return float((p.detach() - before).abs())  # the third large step

    assert steps_after_quiet("adam") > 2.0  # 4.6 learning rates
    assert steps_after_quiet("amsgrad") < 1.0  # 0.64


def test_spike_clip_bounds_an_outlier_norm_by_the_recent_median():
    from ntmkit.optim import SpikeClip

    clip = SpikeClip(factor=10, window=4)
    for norm in (1.0, 2.0, 100.0):  # history not yet full: nothing is clipped
        assert clip.limit(norm) is None
    assert clip.limit(3.0) is None  # history now 1, 2, 100, 3: median 2.5
    assert clip.limit(24.0) is None  # under 10 x 2.5
    assert clip.limit(200.0) == pytest.approx(10 * statistics.median([2.0, 100.0, 3.0, 24.0]))  # 135
    assert clip.clipped == 1
    again = SpikeClip(10, 4, **clip.state_dict())
    assert list(again.history) == [100.0, 3.0, 24.0, 200.0] and again.clipped == 1
    off = SpikeClip(factor=0, window=2)
    assert [off.limit(n) for n in (1.0, 1.0, 1e6)] == [None, None, None]


def test_a_spike_is_clipped_in_training_and_the_history_survives_a_resume(tmp_path):
    """With a tiny factor every step after the window is a 'spike': the step still trains, the
    count and the norms are in the checkpoint, and a resumed run continues from them."""
    cfg = small_config(tmp_path, max_steps=30, stop_when_learned=False, spike_clip=1e-3, spike_window=5)
    summary = train(cfg, progress=False)
    assert summary["spikes_clipped"] == 25
    data = ckpt.load(ckpt.latest(cfg.checkpoint_dir))
    assert data["grad_norms"]["clipped"] == 25 and len(data["grad_norms"]["history"]) == 5
    summary = train(dataclasses.replace(cfg, max_steps=40), progress=False)
    assert summary["spikes_clipped"] == 35


def test_checkpoint_is_atomic_and_pruned(tmp_path):
    for step in range(1, 6):
        ckpt.save(tmp_path, step, {"model_kind": "ntm", "model_config": {}, "task": {}, "model": {}}, max_to_keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt-00000004.pt", "ckpt-00000005.pt"]
    assert ckpt.latest(tmp_path).name == "ckpt-00000005.pt"
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    # A stale pointer falls back to the newest complete file.
    (tmp_path / "latest").write_text("ckpt-00000009.pt")
    assert ckpt.latest(tmp_path).name == "ckpt-00000005.pt"


def test_checkpoint_load_rejects_wrong_version_and_missing_keys(tmp_path):
    torch.save({"format": ckpt.FORMAT, "version": 99}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        ckpt.load(tmp_path / "a.pt")
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="is missing"):
        ckpt.load(tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load(tmp_path / "missing.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        ckpt.load(tmp_path / "empty")


def test_checkpoint_never_runs_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"format": ckpt.FORMAT, "x": Evil()}, tmp_path / "evil.pt", _use_new_zipfile_serialization=True)
    with pytest.raises(CheckpointError, match="corrupt or unsafe"):
        ckpt.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_bad_batch_levels_and_engine_are_config_errors(tmp_path):
    from ntmkit.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_levels must be 'mixed' or 'same'"):
        train(small_config(tmp_path, batch_levels="random", max_steps=1), progress=False)
    with pytest.raises(ConfigError, match="unknown engine"):
        train(small_config(tmp_path, engine="jit", max_steps=1), progress=False)
    with pytest.raises(ConfigError, match="state_grad_clip must be >= 0"):
        train(small_config(tmp_path, state_grad_clip=-1.0, max_steps=1), progress=False)
    with pytest.raises(ConfigError, match="has no memory: drop --state_grad_clip"):
        train(small_config(tmp_path, model="lstm", state_grad_clip=1.0, max_steps=1), progress=False)
    assert not (tmp_path / "ck").exists()


def test_mixed_and_same_length_batches_both_train(tmp_path):
    for mode in ("mixed", "same"):
        r = train(
            small_config(tmp_path / mode, batch_levels=mode, max_steps=30, stop_when_learned=False), progress=False
        )
        assert r["step"] == 30 and r["sequences"] == 30 * 32


def test_repeated_non_finite_steps_restore_the_checkpoint_and_lower_the_lr(tmp_path, capsys):
    cfg = small_config(tmp_path, max_steps=25, stop_when_learned=False, report_interval=3, max_bad_steps=5)
    result = train_with_nan_gradients(cfg, range(5, 15))
    assert result["skipped_steps"] == 10 and result["recoveries"] == 2
    assert result["learning_rate"] == pytest.approx(3e-3 / 4)
    out = capsys.readouterr().out
    assert "5 non-finite steps in a row at step 9: restored ckpt-00000003.pt, learning rate lowered to 0.0015" in out
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())
    # Training went on after the recoveries: the last steps were applied.
    assert ckpt.load(tmp_path / "ck")["step"] == 25


def test_a_tampered_checkpoint_is_refused(tmp_path):
    from ntmkit.pretrained import load_pretrained

    data = load_pretrained("copy")
    data["model"]["cell.output.bias"] = data["model"]["cell.output.bias"] + 1.0  # edit one weight
    torch.save(data, tmp_path / "ckpt-00000001.pt")
    with pytest.raises(CheckpointError, match="is damaged"):
        ckpt.load(tmp_path)


SHIPPED = sorted(__import__("ntmkit.pretrained", fromlist=["manifest"]).manifest())


@pytest.mark.parametrize("task", SHIPPED)
def test_every_shipped_model_loads_and_scores_as_recorded_in_its_training_range(task):
    """Each shipped model, on fresh sequences of its training range (not the ones it was
    measured on), scores within its recorded figure; models that meet their task's target
    are held to the target itself."""
    from ntmkit.pretrained import load_model, load_pretrained, manifest
    from ntmkit.train import make_task

    entry = manifest()[task]
    data = load_pretrained(task)
    t = make_task(data["task"]["name"], data["task"]["options"])
    e = evaluate(load_model(task), t, 1000, torch.Generator().manual_seed(5))
    recorded = entry["training_range_cost"]
    bound = t.learned_below if entry["meets_target"] else 1.2 * recorded + 0.05
    assert e["cost"] < bound, (task, e, entry)


def test_the_copy_model_ships():
    assert "copy" in SHIPPED


def test_tensorboard_gets_the_weighting_picture_every_interval(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(
        small_config(
            tmp_path, max_steps=20, picture_interval=10, stop_when_learned=False, train_log_dir=str(tmp_path / "logs")
        ),
        progress=False,
    )
    events = EventAccumulator(str(tmp_path / "logs"))
    events.Reload()
    images = events.Images("weightings")
    assert len(images) == 2 and images[0].width > 100 and images[0].height > 100
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["step"] == 20 and summary["sequences"] == 640 and summary["learned"] is False


def test_a_run_that_ends_at_its_step_limit_reports_a_held_out_check(tmp_path):
    """Without the stop rule (--keep_training) no check runs during training; the run's end still gets
    one, on fresh sequences of the training range, and it lands in summary.json. A resume that trains
    no further step adds none and keeps the one summary.json holds (it used to be overwritten)."""
    cfg = small_config(tmp_path, max_steps=6, stop_when_learned=False, train_log_dir=str(tmp_path / "logs"))
    result = train(cfg, progress=False)
    e = result["final_eval"]
    assert not result["learned"] and e["sequences"] == 500 and e["top"]["sequences"] == 125
    assert e["step"] == 6  # the step whose machine the check scored
    assert 0 < e["bit_errors"] <= 4 * 5  # an untrained machine gets some of the (at most 20) bits wrong
    assert e["bits"] > 0 and e["top"]["level"] == 5
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["final_eval"]["bit_errors"] == pytest.approx(e["bit_errors"])
    again = train(cfg, progress=False)
    assert again["step"] == 6 and again["final_eval"] == e  # the stored check, not a new draw
    assert json.loads((tmp_path / "logs" / "summary.json").read_text())["final_eval"] == summary["final_eval"]
    further = small_config(tmp_path, max_steps=7, stop_when_learned=False, train_log_dir=str(tmp_path / "logs"))
    assert train(further, progress=False)["final_eval"] != e  # a step further: a check of its own


def test_a_time_budget_stops_training(tmp_path):
    result = train(small_config(tmp_path, max_steps=10**6, max_seconds=2.0, stop_when_learned=False), progress=False)
    assert result["time_up"] and not result["learned"] and 0 < result["step"] < 10**6
    assert 2.0 <= result["seconds"] < 20


def test_a_learning_rate_given_on_resume_replaces_the_stored_one(tmp_path):
    train(small_config(tmp_path, max_steps=5, stop_when_learned=False), progress=False)
    kept = train(small_config(tmp_path, max_steps=8, stop_when_learned=False, learning_rate=None), progress=False)
    assert kept["learning_rate"] == pytest.approx(3e-3)  # the stored rate, when none is given
    lowered = train(small_config(tmp_path, max_steps=10, stop_when_learned=False, learning_rate=3e-4), progress=False)
    assert lowered["step"] == 10 and lowered["learning_rate"] == pytest.approx(3e-4)


def test_memory_size_choices():
    from ntmkit.train import memory_size_choices

    assert memory_size_choices("auto", 128) == [24, 32, 48, 64, 96, 128]
    assert memory_size_choices("full", 128) == [128]
    assert memory_size_choices("64,32,64", 128) == [32, 64]
    assert memory_size_choices("auto", 16, min_size=3) == [3, 4, 6, 8, 12, 16]
    for bad in ("200", "0,32", "a,b", ""):
        with pytest.raises(ConfigError):
            memory_size_choices(bad, 128, min_size=3)


def test_drawn_memory_sizes_fit_the_batch_and_cover_every_size_that_fits():
    from ntmkit.train import draw_memory_size

    g = torch.Generator().manual_seed(0)
    choices = [24, 32, 48, 64, 96, 128]
    drawn = {draw_memory_size(choices, 30, g) for _ in range(300)}
    assert drawn == {32, 48, 64, 96, 128}
    assert {draw_memory_size(choices, 500, g) for _ in range(20)} == {128}  # none fits: the largest


def test_training_over_memory_sizes_runs_every_size_and_learns(tmp_path, monkeypatch):
    """Each batch starts from a memory of a drawn size; the machine still learns copy 1-5, and the
    stop test checks the top length as well."""
    from ntmkit.models import NTM

    seen = []
    forward = NTM.forward

    def spy(self, x, *args, memory_locations=None, **kw):
        if torch.is_grad_enabled():
            seen.append((memory_locations, (x.shape[1] - 1) // 2))
        return forward(self, x, *args, memory_locations=memory_locations, **kw)

    monkeypatch.setattr(NTM, "forward", spy)
    result = train(small_config(tmp_path, max_steps=1500, memory_sizes="6,8,12,16"), progress=False)
    assert result["learned"]
    assert {n for n, _ in seen} == {6, 8, 12, 16}
    assert all(n >= length + 4 for n, length in seen)  # every batch had room for its sequence
    top = result["final_eval"]["top"]
    assert top["level"] == 5 and top["sequences"] == 125 and top["cost"] < 0.01


def test_steps_after_learned_train_on_at_the_lowered_rate(tmp_path):
    cfg = small_config(tmp_path, max_steps=1500, steps_after_learned=30, lr_after_learned=0.1)
    result = train(cfg, progress=False)
    assert result["learned"] and result["step"] == result["learned_at"]["step"] + 30
    assert result["learning_rate"] == pytest.approx(3e-4)
    # resuming a finished run does not train further
    again = train(cfg, progress=False)
    assert again["step"] == result["step"] and again["learned_at"] == result["learned_at"]


def test_a_second_run_on_the_same_directory_is_refused_and_a_dead_holder_lock_is_taken_over(tmp_path):
    import subprocess
    import sys

    lock = ckpt.DirectoryLock(tmp_path / "ck").acquire()
    try:
        with pytest.raises(CheckpointError, match=f"in use by process {os.getpid()}"):
            train(small_config(tmp_path, max_steps=1), progress=False)
    finally:
        lock.release()
    # a process that took the lock and died without releasing it
    code = (
        "import os, sys; from ntmkit.checkpoint import DirectoryLock; "
        f"DirectoryLock({str(tmp_path / 'ck')!r}).acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = train(small_config(tmp_path, max_steps=2), progress=False)
    assert result["step"] == 2


def test_sigterm_saves_a_checkpoint_and_ends_the_run(tmp_path):
    import signal

    def on_step(step, model):
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)

    result = train(small_config(tmp_path, max_steps=1000), progress=False, on_step=on_step)
    assert result["interrupted"] and result["step"] == 7
    assert result["final_eval"] is None  # a run stopped by a signal ends at once, without a held-out check
    assert ckpt.load(ckpt.latest(tmp_path / "ck"))["step"] == 7
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


def test_the_time_budget_counts_this_run_only(tmp_path):
    first = train(small_config(tmp_path, max_steps=5), progress=False)
    data = ckpt.load(ckpt.latest(tmp_path / "ck"))
    data["elapsed"] = 3600.0  # as if earlier runs had trained for an hour
    ckpt.save(tmp_path / "ck", first["step"], data)
    result = train(small_config(tmp_path, max_steps=40, max_seconds=600), progress=False)
    assert result["step"] == 40 and not result["time_up"]


def test_a_checkpoint_resumes_only_with_the_optimiser_it_was_trained_with(tmp_path):
    train(small_config(tmp_path, max_steps=2, optimizer="adam", stop_when_learned=False), progress=False)
    with pytest.raises(CheckpointError, match="trained with --optimizer adam, not rmsprop"):
        train(small_config(tmp_path, max_steps=4, optimizer="rmsprop", stop_when_learned=False), progress=False)
    assert ckpt.load(ckpt.latest(tmp_path / "ck"))["step"] == 2  # nothing lost
    result = train(small_config(tmp_path, max_steps=4, optimizer="adam", stop_when_learned=False), progress=False)
    assert result["step"] == 4
