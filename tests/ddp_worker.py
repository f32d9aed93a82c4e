"""Run by tests/test_distributed.py under torchrun: a few DDP steps, each rank saves what it ends with."""

import sys
from pathlib import Path

import torch

from lmcourse import distributed
from tests.ddp_reference import make_dataset, make_model, mse

out = Path(sys.argv[1])
rank, world, device = distributed.setup()
torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
model = make_model().to(device)
loader = distributed.sharded_batches(make_dataset(), global_batch_size=8, shuffle=False)
history = distributed.train_ddp(model, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=6,
                                loss_fn=mse)
# the loss each rank saw is over its own shard; average them to get the global-batch loss
losses = torch.tensor(history.loss)
torch.distributed.all_reduce(losses)
torch.save({"state": model.state_dict(), "loss": (losses / world).tolist()}, out / f"rank{rank}.pt")
distributed.teardown()
