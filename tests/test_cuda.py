"""The CUDA path: runs in seconds when a GPU is present, skipped otherwise (CI has none).

Training steps on the GPU match the CPU within float32 tolerance, `ntm train` / `ntm test` /
`ntm evaluate` run end to end with `--device cuda`, checkpoints carry the CUDA random state, and
the collectives run on the GPU under NCCL.
"""

import socket

import pytest
import torch

from ntmkit import NTM, distributed
from ntmkit import checkpoint as ckpt
from ntmkit.cli import main
from ntmkit.tasks import CopyTask

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")

SMALL = dict(controller_size=16, controller_layers=1, memory_locations=12, memory_vector_size=6)


@pytest.mark.parametrize("compiled", [False, True])
def test_training_steps_on_the_gpu_match_the_cpu(compiled):
    torch.manual_seed(0)
    cpu = NTM(5, 4, **SMALL)
    gpu = NTM(5, 4, **SMALL)
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    if compiled:
        cpu.compile_step(vary_memory=True)
        gpu.compile_step(vary_memory=True)
    task = CopyTask(bits=4, min_length=1, max_length=4)
    opt_cpu = torch.optim.Adam(cpu.parameters(), 1e-3)
    opt_gpu = torch.optim.Adam(gpu.parameters(), 1e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(5):
        batch = task.make_batch(8, g, level=1 + step % 4)
        for model, opt, b in ((cpu, opt_cpu, batch), (gpu, opt_gpu, batch.to("cuda"))):
            logits, _ = model(b.inputs, memory_locations=8 + step % 2 * 4)
            loss = task.loss(logits, b)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters()):
        assert torch.allclose(p_cpu, p_gpu.cpu(), atol=1e-4, rtol=1e-3), name


def test_train_test_and_evaluate_with_device_cuda(tmp_path, capsys):
    dirs = ["--checkpoint_dir", str(tmp_path / "ck"), "--train_log_dir", str(tmp_path / "logs"),
            "--figure_dir", str(tmp_path / "fig")]  # fmt: skip
    small = ["--controller_size", "16", "--controller_layers", "1", "--memory_locations", "12",
             "--memory_vector_size", "6", "--in_bits", "3", "--out_bits", "3", "--max_sequence", "4",
             "--batches", "8", "--quiet", "--device", "cuda"]  # fmt: skip
    assert main(["train", *small, "--epochs", "1", "--steps_per_epoch", "20", "--keep_training", *dirs]) == 0
    data = ckpt.load(ckpt.latest(tmp_path / "ck"))
    assert "cuda" in data["rng"]  # the GPU's random state is part of the checkpoint
    assert main(["test", "--device", "cuda", "--sequences", "4", *dirs]) == 0
    assert main(["evaluate", "--device", "cuda", "--values", "2,4", "--sequences", "4", *dirs]) == 0
    assert main(["visualize", "--device", "cuda", *dirs]) == 0
    # resume on the GPU continues the same run
    assert main(["train", *small, "--epochs", "1", "--steps_per_epoch", "30", "--keep_training", *dirs]) == 0
    assert "resuming from" in capsys.readouterr().out


def test_collectives_run_on_the_gpu_under_nccl(monkeypatch):
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        distributed.setup(torch.device("cuda", 0))
        monkeypatch.setattr(distributed, "active", lambda: True)  # one process, but the collective path
        assert distributed.mean([1.0, 3.0]) == [1.0, 3.0]
        state = torch.Generator().manual_seed(3).get_state()  # a CPU tensor, as checkpoints gather
        (got,) = distributed.gather(state)
        assert got.device.type == "cpu" and torch.equal(got, state)
    finally:
        dist.destroy_process_group()
        monkeypatch.setattr(distributed, "_collective_device", torch.device("cpu"))
