"""Random argument combinations: every outcome is success or a clean error, never a crash."""

import functools
import math
import operator

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ntmkit import NTM
from ntmkit.cli import UsageError, apply_preset, build_parser, model_options, resolve_command, task_options, validate
from ntmkit.errors import NTMError
from ntmkit.train import make_task, model_config_for

INT_FLAGS = [
    "--controller_size",
    "--controller_layers",
    "--memory_locations",
    "--memory_vector_size",
    "--maximum_shifts",
    "--read_heads",
    "--write_heads",
    "--max_sequence",
    "--min_sequence",
    "--in_bits",
    "--out_bits",
    "--epochs",
    "--batches",
    "--steps_per_epoch",
    "--max_to_keep",
    "--report_interval",
    "--sequences",
    "--threads",
    "--seed",
    "--nproc",
    "--min_repeats",
    "--max_repeats",
    "--min_items",
    "--max_items",
    "--item_length",
    "--ngram",
    "--sort_outputs",
    "--seeds",
    "--jobs",
]
FLOAT_FLAGS = ["--learning_rate", "--momentum", "--clip_grad_min", "--clip_grad_max", "--max_minutes"]
SWITCHES = [
    "--train",
    "--test",
    "--visualize",
    "--random_seq_len",
    "--learn_r_bias",
    "--no-learn_w_bias",
    "--curriculum",
    "--no_curriculum",
    "--keep_training",
    "--quiet",
]
CHOICES = {
    "--controller": ["feedforward", "lstm", "gru"],
    "--model": ["ntm", "lstm", "rnn"],
    "--optimizer": ["adam", "rmsprop", "sgd"],
    "--engine": ["compiled", "eager", "jit"],
    "--memory_init": ["constant", "random", "zeros"],
    "--preset": ["paper", "fast"],
    "--lr_schedule": ["70000:3e-5,100000:1e-5", "1:nan", "5:1e-3,2:1e-4", "-1:1e-3", "3:", "1e3:1", "2:inf"],
    "--batch_schedule": ["100000:32", "5:0", "5:8,2:16", "7:1.5", "-3:4", "1e9:2"],
    "--task": ["copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort", "sort"],
}

values = st.one_of(
    st.integers(-5, 300).map(str), st.floats(-2, 2).map(str), st.sampled_from(["", "x", "1e309", "nan", "-0"])
)
flag = st.one_of(
    st.tuples(st.sampled_from(INT_FLAGS), st.one_of(st.integers(-3, 200).map(str), values)),
    st.tuples(st.sampled_from(FLOAT_FLAGS), st.one_of(st.floats(-1, 1, allow_nan=False).map(str), values)),
    st.tuples(st.sampled_from(sorted(CHOICES)), st.sampled_from(functools.reduce(operator.iadd, CHOICES.values(), []))),
    st.sampled_from(SWITCHES).map(lambda s: (s,)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(flag, max_size=6), st.sampled_from([[], ["train"], ["test"], ["visualize"], ["evaluate"]]))
def test_cli_arguments_parse_or_fail_cleanly(flags, command):
    argv = command + [part for f in flags for part in f]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        assert e.code == 2
        return
    try:
        resolve_command(args)
        apply_preset(args)
        validate(args)
        kind = args.model or "ntm"
        task = make_task(args.task or "copy", task_options(args))
        config = model_config_for(kind, task, model_options(args, kind))
        assert config["input_size"] == task.input_size
        for name in ("learning_rate", "momentum", "clip_grad_min", "clip_grad_max"):
            v = getattr(args, name)
            assert v is None or math.isfinite(v), name  # a NaN or infinite setting never gets through
    except (UsageError, NTMError) as e:
        assert str(e) and "\n" not in str(e)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 4),
    st.integers(0, 6),
    st.integers(1, 12),
    st.sampled_from([torch.float32, torch.int64]),
    st.integers(1, 4),
)
def test_api_inputs_succeed_or_fail_cleanly(batch, time, width, dtype, rank):
    model = NTM(5, 3, controller_size=8, controller_layers=1, memory_locations=6, memory_vector_size=4)
    shape = [batch, time, width][:rank] if rank <= 3 else [batch, time, width, 2]
    x = torch.zeros(shape, dtype=dtype)
    ok = rank == 3 and width == 5 and dtype == torch.float32
    if ok:
        y, _state = model(x)
        assert y.shape == (batch, time, 3)
    else:
        with pytest.raises((ValueError, TypeError)) as e:
            model(x)
        assert "[batch, time, 5]" in str(e.value) or "floating-point" in str(e.value)
