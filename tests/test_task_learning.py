"""A tiny machine learns a reduced instance of each of the paper's other four tasks.

Each run is 600 steps of batch 32 with a small model (300 for N-grams' longer sequences; a few
seconds to about 40 s on one core);
the assertion compares the trained model with the same model untrained, on fresh sequences.
"""

import pytest
import torch

from ntmkit.evaluate import evaluate
from ntmkit.registry import build_model
from ntmkit.train import TrainConfig, make_task, model_config_for, train

SMALL_MODEL = dict(controller_size=32, controller_layers=1, memory_locations=16, memory_vector_size=8)
CASES = {
    # task: (reduced options, trained cost must be below this share of the untrained cost)
    "repeat_copy": (dict(bits=3, min_length=1, max_length=3, min_repeats=1, max_repeats=3), 0.5),
    "associative_recall": (dict(bits=3, item_length=1, min_items=2, max_items=3), 0.35),
    "priority_sort": (dict(bits=3, min_items=4, max_items=4, outputs=2), 0.4),
}
# Priority sort places each vector by its priority, a content-driven move: the default start that
# favours location-based moves (gate bias -2, heads focused on row 0, memory size drawn per batch)
# leaves this tiny machine at 3.2 bits after 600 steps where the neutral start reaches 2.3 (of
# 6.0 untrained). The test checks that the task can be learned, so it trains it the neutral way.
NEUTRAL_START = dict(init_weighting="random", gate_bias=0.0)
TRAINING = {"priority_sort": (NEUTRAL_START, dict(memory_sizes="full"))}


def run(tmp_path, name, options, steps=600):
    model_options, train_options = TRAINING.get(name, ({}, {}))
    cfg = TrainConfig(
        task=name,
        task_options=options,
        model_options={**SMALL_MODEL, **model_options},
        **train_options,
        batch_size=32,
        learning_rate=3e-3,
        engine="eager",
        seed=0,
        checkpoint_dir=str(tmp_path / "ck"),
        train_log_dir=None,
        report_interval=10**6,
        max_steps=steps,
        stop_when_learned=False,
    )
    return train(cfg, progress=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_tiny_machine_learns_a_reduced_task(tmp_path, name):
    options, share = CASES[name]
    task = make_task(name, options)
    torch.manual_seed(0)
    untrained = build_model("ntm", model_config_for("ntm", task, {**SMALL_MODEL, **TRAINING.get(name, ({}, {}))[0]}))
    before = evaluate(untrained, task, 500, torch.Generator().manual_seed(9))
    result = run(tmp_path, name, options)
    after = evaluate(result["model"], result["task"], 500, torch.Generator().manual_seed(9))
    assert after["bit_errors"] < share * before["bit_errors"], (before, after)
    assert after["bits"] < share * before["bits"], (before, after)


def test_a_tiny_machine_learns_dynamic_ngrams_towards_the_optimal_estimator(tmp_path):
    options = dict(n=3, min_length=40, max_length=40)
    task = make_task("ngrams", options)
    g = torch.Generator().manual_seed(9)
    batch = task.make_batch(500, g)
    coin = task.score(torch.zeros_like(batch.targets), batch)  # always predicting 1/2
    result = run(tmp_path, "ngrams", options, steps=300)  # 0.38 of the coin's cost at 300 steps
    after = evaluate(result["model"], result["task"], 500, torch.Generator().manual_seed(9))
    # the optimal estimator spends about 25 of the 40 bits; a coin 40: the machine is much closer
    assert coin["cost"] > 10
    assert after["cost"] < 0.5 * coin["cost"], (coin["cost"], after)
