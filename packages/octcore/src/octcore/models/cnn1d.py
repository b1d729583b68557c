"""``cnn1d``: the research code's 1D CNN family (``TestModel``), alias ``test``.

Blocks of Conv1d → per-time-step layer norm over channels (no affine) → ReLU,
optionally residual (identity, or a 1×1 projection where channels change, added
before pooling). Block 0 maps the input to C channels and pools by 2; middle
blocks i = 1 … n−2 keep C channels and pool on odd i; the last block maps to 2C
and does not pool. With ``use_dilation`` block i uses dilation 2^i. The head is
global average pooling → dropout → Linear(2C, outputs).

Parameter counts match the research code: C=8, 4 blocks → 969 (binary head);
C=64, 4 blocks, dilated, non-residual → 50,753.
"""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v
from torch import nn


@attrs.frozen
class Cnn1dParams:
    base_channels: int = attrs.field(default=8, validator=v.ge(1))
    num_blocks: int = attrs.field(default=4, validator=[v.ge(2), v.le(64)])
    use_dilation: bool = False
    use_residual: bool = False
    dropout: float = attrs.field(default=0.5, validator=[v.ge(0.0), v.lt(1.0)])
    kernel_size: int = attrs.field(default=3, validator=v.ge(1))


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at each time step of ``[N, C, T]`` (no affine)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + 1e-5)


class Block(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, *, kernel: int, dilation: int, pool: bool, residual: bool
    ):
        super().__init__()
        padding = dilation * (kernel - 1) // 2
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=padding, dilation=dilation)
        self.norm = ChannelLayerNorm(c_out)
        self.skip: nn.Module | None = None
        if residual:
            self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1)
        self.pool = nn.MaxPool1d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.conv(x)))
        if self.skip is not None:
            y = y + self.skip(x)
        return self.pool(y)


class Cnn1d(nn.Module):
    def __init__(self, params: Cnn1dParams, in_channels: int, num_outputs: int):
        super().__init__()
        c, n, k = params.base_channels, params.num_blocks, params.kernel_size

        def dilation(i: int) -> int:
            return 2**i if params.use_dilation else 1

        blocks = [
            Block(in_channels, c, kernel=k, dilation=1, pool=True, residual=params.use_residual)
        ]
        for i in range(1, n - 1):
            blocks.append(
                Block(
                    c,
                    c,
                    kernel=k,
                    dilation=dilation(i),
                    pool=i % 2 == 1,
                    residual=params.use_residual,
                )
            )
        blocks.append(
            Block(
                c,
                2 * c,
                kernel=k,
                dilation=dilation(n - 1),
                pool=False,
                residual=params.use_residual,
            )
        )
        self.encoder = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(params.dropout), nn.Linear(2 * c, num_outputs))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(params: Cnn1dParams, in_channels: int, window: int, num_outputs: int) -> Cnn1d:
    del window  # the network is length-agnostic (global average pooling)
    return Cnn1d(params, in_channels, num_outputs)
