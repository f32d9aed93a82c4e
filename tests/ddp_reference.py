"""The model and data shared by the DDP test and its worker processes."""

import torch
from torch import nn
from torch.utils.data import TensorDataset


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def make_dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 4, generator=g)
    return TensorDataset(x, x.sum(dim=1, keepdim=True).sin())


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)
