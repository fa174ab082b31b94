"""docs/extending.md runs as written: its task and its memory model plug into the library."""

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_every_example_of_the_extending_page_runs_and_plugs_in(tmp_path, monkeypatch):
    from ntmkit.registry import MODELS
    from ntmkit.tasks import TASKS

    monkeypatch.setitem(TASKS, "placeholder", TASKS["copy"])  # restore the registries afterwards
    monkeypatch.setitem(MODELS, "placeholder", MODELS["ntm"])
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block.replace("/tmp/", f"{tmp_path}/"), str(DOC), "exec"), namespace)
        # the task: reversed targets, masked where they count
        task = TASKS["reverse_copy"]()
        b = task.make_batch(3, torch.Generator().manual_seed(1), level=4)
        assert torch.equal(b.targets[0, 5:9], b.inputs[0, :4, :4].flip(0)) and b.mask[0].sum() == 4
        # the model trained through the loop, with drawn memory sizes, and was evaluated and drawn
        result = namespace["result"]
        assert result["step"] == 40 and result["model"].config.memory_locations == 16
        assert len(namespace["rows"]) == 2 and all(r["sequences"] == 20 for r in namespace["rows"])
        assert (tmp_path / "ntmkit-ring" / "memory.png").stat().st_size > 10_000
    finally:
        TASKS.pop("reverse_copy", None)
        MODELS.pop("ring", None)
