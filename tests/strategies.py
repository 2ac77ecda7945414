"""Shared hypothesis strategies for the framework tests (one place, as in minitorch).

Geometries are drawn *constructively*: the image size is drawn from the range for which the
output is non-empty, so no example is ever filtered out. Tensor contents come from a seeded
``torch.Generator`` (hypothesis draws the seed), which keeps examples cheap and reproducible.
"""
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from hypothesis import settings, strategies as st

# The suite shares two cores with benchmarks: one intra-op thread is plenty for these sizes.
torch.set_num_threads(1)

# Every property test uses these settings (no example database written into the checkout).
# FRAMEWORK_EXAMPLES=500 runs a deeper sweep (FEW scales with it).
EXAMPLES = int(os.environ.get('FRAMEWORK_EXAMPLES', 100))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None)
FEW = settings(SETTINGS, max_examples=max(1, EXAMPLES // 3))

Pair = Tuple[int, int]

# --------------------------------------------------------------------------------------
# Scalars and small building blocks
# --------------------------------------------------------------------------------------

dtypes = st.sampled_from([torch.float32, torch.float64])
seeds = st.integers(0, 2 ** 31 - 1)
channels = st.integers(1, 4)
# Output channels of the layers whose channels-last GEMM computes two pixels per row.
narrow_channels = st.integers(9, 24)
# None: a single unbatched (C, H, W) image; otherwise the batch size.
batches = st.one_of(st.none(), st.just(1), st.integers(2, 3))


def pairs(low, high):
    """(h, w) pairs, square or not."""
    return st.tuples(st.integers(low, high), st.integers(low, high))


kernel_sizes = pairs(1, 5)
strides = pairs(1, 3)
paddings = pairs(0, 2)
dilations = pairs(1, 2)
scale_factors = st.integers(1, 3)

negative_slopes = st.one_of(st.sampled_from([0.0, 0.01, 0.2, 1.0]),
                            st.floats(-1.0, 10.0, allow_nan=False, allow_infinity=False))
alphas = st.one_of(st.sampled_from([1.0, 0.5]),
                   st.floats(0.0, 3.0, allow_nan=False, allow_infinity=False))

# Any rank 0 to 5, for element-wise modules.
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=5).map(tuple)


def random_tensor(seed, shape, dtype=torch.float32, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


@st.composite
def tensors(draw, shape, dtype=torch.float32):
    return random_tensor(draw(seeds), shape, dtype)


# --------------------------------------------------------------------------------------
# Convolution geometries
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Geometry:
    """Everything needed to build a layer and its input, and to call the torch reference."""
    batch: Optional[int]          # None: unbatched (C, H, W) input
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    output_padding: Pair = (0, 0)  # TransposeConv2d only
    scale_factor: int = 1          # Upsampling only

    @property
    def input_shape(self):
        image = (self.in_channels, self.height, self.width)
        return image if self.batch is None else (self.batch, *image)

    def conv_kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)


def _min_size(kernel, padding, dilation, scale=1):
    """Smallest input size whose (scaled, padded) extent covers the dilated kernel."""
    needed = dilation * (kernel - 1) + 1 - 2 * padding
    return max(1, -(-needed // scale))


@st.composite
def conv_geometries(draw, kernel_size=kernel_sizes, stride=strides, padding=paddings,
                    dilation=dilations, batch=batches, out_channels=channels, extra=6):
    """Conv2d geometries with a non-empty output."""
    k, s, p, d = draw(kernel_size), draw(stride), draw(padding), draw(dilation)
    h0, w0 = _min_size(k[0], p[0], d[0]), _min_size(k[1], p[1], d[1])
    return Geometry(batch=draw(batch), in_channels=draw(channels),
                    out_channels=draw(out_channels),
                    height=draw(st.integers(h0, h0 + extra)),
                    width=draw(st.integers(w0, w0 + extra)),
                    kernel_size=k, stride=s, padding=p, dilation=d)


@st.composite
def transpose_geometries(draw, kernel_size=kernel_sizes, stride=strides, padding=paddings,
                         dilation=dilations, batch=batches, in_channels=channels,
                         out_channels=channels, extra=5):
    """TransposeConv2d geometries: output_padding < stride, and an input large enough for a
    non-empty output. (torch also allows stride <= output_padding < dilation; the layer may
    refuse that corner case, see test_layers.py.)"""
    k, s, p, d = draw(kernel_size), draw(stride), draw(padding), draw(dilation)
    op = tuple(draw(st.integers(0, s[i] - 1)) for i in range(2))

    def min_size(i):  # (h - 1) s - 2p + d (k - 1) + op + 1 >= 1
        needed = 2 * p[i] - d[i] * (k[i] - 1) - op[i]
        return max(1, 1 + -(-needed // s[i]))

    h0, w0 = min_size(0), min_size(1)
    return Geometry(batch=draw(batch), in_channels=draw(in_channels),
                    out_channels=draw(out_channels),
                    height=draw(st.integers(h0, h0 + extra)),
                    width=draw(st.integers(w0, w0 + extra)),
                    kernel_size=k, stride=s, padding=p, dilation=d, output_padding=op)


@st.composite
def upsampling_geometries(draw, scale_factor=scale_factors, kernel_size=kernel_sizes,
                          stride=strides, padding=paddings, dilation=dilations, batch=batches,
                          extra=4):
    """Nearest upsampling then a convolution, with a non-empty output (plain path, mostly)."""
    f = draw(scale_factor)
    k, s, p, d = draw(kernel_size), draw(stride), draw(padding), draw(dilation)
    h0, w0 = _min_size(k[0], p[0], d[0], f), _min_size(k[1], p[1], d[1], f)
    return Geometry(batch=draw(batch), in_channels=draw(channels), out_channels=draw(channels),
                    height=draw(st.integers(h0, h0 + extra)),
                    width=draw(st.integers(w0, w0 + extra)),
                    kernel_size=k, stride=s, padding=p, dilation=d, scale_factor=f)


# The geometry of Upsampling's fast 'phase' path: scale 2, 3x3 kernel, stride 1, padding 1.
phase_geometries = upsampling_geometries(
    scale_factor=st.just(2), kernel_size=st.just((3, 3)), stride=st.just((1, 1)),
    padding=st.just((1, 1)), dilation=st.just((1, 1)), extra=7)
