"""The fast path (compiled step) agrees with the eager reference: outputs and gradients."""

import copy
import time
from types import SimpleNamespace

import pytest
import torch

from ntmkit import NTM
from ntmkit.engine import compiler_available
from ntmkit.registry import build_model, model_kind
from ntmkit.train import _switch_when_compiled
from ntmkit.warmup import BackgroundCompile, cache_is_warm, warm_spec

pytestmark = pytest.mark.skipif(not compiler_available(), reason="torch.compile needs a C++ compiler")


# The gradient with respect to a learned constant memory of 1e-6 passes through cosine similarity
# at a norm of ~1e-6, which amplifies rounding differences between two correct orderings of the
# same sums; configurations that learn it use a random initial memory here.
@pytest.mark.parametrize(
    "kw, dtype, tol",
    [
        (dict(controller="feedforward", controller_layers=2, read_heads=1, write_heads=1), torch.float32, 1e-4),
        (dict(controller="feedforward", controller_layers=1, learn_m_bias=True), torch.float64, 1e-9),
        (
            dict(
                controller="lstm",
                controller_layers=1,
                read_heads=2,
                write_heads=3,
                learn_w_bias=True,
                learn_r_bias=True,
                learn_m_bias=True,
                memory_init="random",
            ),
            torch.float32,
            1e-4,
        ),
    ],
)
def test_compiled_step_matches_eager(kw, dtype, tol):
    torch.manual_seed(0)
    eager = NTM(5, 4, controller_size=16, memory_locations=12, memory_vector_size=6, **kw).to(dtype)
    fast = copy.deepcopy(eager).compile_step()
    x = torch.rand(3, 9, 5, dtype=dtype)
    lengths = torch.tensor([9, 4, 6])
    target = torch.rand(3, 9, 4, dtype=dtype)
    grads = []
    outs = []
    torch._dynamo.utils.counters.clear()
    for model in (eager, fast):
        model.zero_grad()
        y, state = model(x, lengths=lengths)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(y, target)
        loss.backward()
        outs.append((y.detach(), state.memory.detach()))
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    # the fast path really ran compiled: a captured graph, no graph break, no fall-back to eager
    counters = torch._dynamo.utils.counters
    assert counters["frames"]["ok"] >= 1 and counters["stats"]["unique_graphs"] >= 1
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert torch.allclose(outs[0][0], outs[1][0], atol=tol, rtol=tol)
    assert torch.allclose(outs[0][1], outs[1][1], atol=tol, rtol=tol)
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=tol, rtol=tol), name


def test_one_compiled_graph_serves_every_memory_size_and_matches_eager():
    torch.manual_seed(1)
    eager = NTM(5, 4, controller_size=16, memory_locations=16, memory_vector_size=6)
    fast = copy.deepcopy(eager).compile_step(vary_memory=True)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    graphs = []
    for rows, steps in ((8, 5), (12, 3), (16, 7), (8, 4)):
        x = torch.rand(2, steps, 5)
        outs = []
        for model in (eager, fast):
            model.zero_grad()
            y, state = model(x, memory_locations=rows)
            y.sum().backward()
            outs.append((y.detach(), state.memory.detach(), model.cell.output.weight.grad.clone()))
        assert state.memory.shape == (2, rows, 6)
        for a, b in zip(*outs):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    # compiled for the first size (and once more when a size first differs: the symbolic graph),
    # then never again
    assert graphs[-1] == graphs[2] and graphs[-1] <= 2, graphs
    assert not torch._dynamo.utils.counters["graph_break"]


@pytest.mark.parametrize("vary_memory", [False, True])
def test_the_unrolled_graph_runs_whole_chunks_and_matches_eager(vary_memory):
    torch.manual_seed(2)
    eager = NTM(5, 4, controller_size=16, memory_locations=12, memory_vector_size=6, memory_init="random")
    fast = copy.deepcopy(eager).compile_step(vary_memory=vary_memory, unroll=3)
    calls = []
    unrolled = fast._compiled_steps
    fast._compiled_steps = lambda xs, state: (calls.append(xs.shape[0]), unrolled(xs, state))[1]
    torch._dynamo.utils.counters.clear()
    for rows, steps in ((12, 8), (10, 7) if vary_memory else (12, 7), (12, 2)):
        x, target = torch.rand(3, steps, 5), torch.rand(3, steps, 4)
        outs = []
        for model in (eager, fast):
            model.zero_grad()
            y, state = model(x, memory_locations=rows)
            torch.nn.functional.binary_cross_entropy_with_logits(y, target).backward()
            outs.append([y.detach(), state.memory.detach(), *(p.grad.clone() for p in model.parameters())])
        assert outs[1][0].shape == (3, steps, 4)
        for a, b in zip(*outs):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    # 8 steps: two chunks of 3 (then 2 single steps); 7: two chunks; 2: single steps only
    assert calls == [3, 3, 3, 3]
    assert not torch._dynamo.utils.counters["graph_break"]


def test_unroll_is_checked():
    with pytest.raises(ValueError, match="unroll must be an integer >= 1"):
        NTM(5, 4).compile_step(unroll=0)


def test_a_helper_process_fills_the_compile_cache_that_training_then_compiles_from(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    options = dict(controller_size=8, controller_layers=1, memory_locations=12, memory_vector_size=4)
    config = model_kind("ntm").config(5, 4, options)
    spec = warm_spec("ntm", config, batch=3, rows=12, vary_memory=True, threads=torch.get_num_threads())
    assert not cache_is_warm(spec)
    helper = BackgroundCompile(spec)
    try:
        deadline = time.time() + 300
        while helper.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert helper.poll() is True, helper.error()
    finally:
        helper.close()
    assert cache_is_warm(spec)
    assert not cache_is_warm({**spec, "batch": 4})  # another batch size is another compiled step
    assert not cache_is_warm({**spec, "unroll": 2})  # and so is another unroll
    # This process compiles the same step from the helper's cache: forward and backward graphs are
    # cache hits, none is compiled afresh (a graph that hashed differently would be a miss).
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = build_model("ntm", config).compile_step(vary_memory=True)
    y, _ = model(torch.rand(3, 4, 5), memory_locations=10)
    y.sum().backward()
    counters = torch._dynamo.utils.counters["inductor"]
    assert counters["fxgraph_cache_hit"] >= 2 and counters["fxgraph_cache_miss"] == 0, dict(counters)


def test_a_failing_helper_reports_its_last_error_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    spec = warm_spec("no-such-model", {}, batch=3, rows=None, vary_memory=False, threads=1)
    helper = BackgroundCompile(spec)
    try:
        deadline = time.time() + 120
        while helper.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert helper.poll() is False
        assert "no-such-model" in helper.error()
    finally:
        helper.close()
    assert not cache_is_warm(spec)


class FakeHelper:
    def __init__(self, answers):
        self.answers, self.closed = list(answers), False

    def poll(self):
        return self.answers.pop(0)

    def error(self):
        return "no compiler"

    def close(self):
        self.closed = True


@pytest.mark.parametrize("helper_succeeds", [True, False])
def test_training_goes_over_to_the_compiled_step_when_the_helper_ends(helper_succeeds):
    model = NTM(5, 4, controller_size=8, memory_locations=12, memory_vector_size=4)
    helper = FakeHelper([None, None, helper_succeeds])
    run = SimpleNamespace(
        pending_compile=helper, compiled_from=None, memory_sizes=[8, 12], cfg=SimpleNamespace(unroll=4)
    )
    warnings: list[str] = []
    log = SimpleNamespace(warn=warnings.append)
    for step in range(5):
        _switch_when_compiled(run, SimpleNamespace(step=step, model=model), log)
        assert (model._compiled_step is not None) == (step >= 2)
    assert run.compiled_from == 2 and run.pending_compile is None and helper.closed
    assert model._vary_memory  # drawn memory sizes: the symbolic graph
    assert model._compiled_steps is not None and model._unroll == 4  # --unroll: the unrolled graph too
    failed = "compiling in a helper process failed (no compiler); compiling here"
    assert warnings == ([] if helper_succeeds else [failed])
