"""Model end to end on tiny data: predict's shapes, dtypes, padding and tiling; what bad input
to predict/train/load_pretrained_model gets; a weights file can never run code; training is
deterministic."""
import contextlib
import dataclasses
import io
import os
import pathlib
import pickle

import pytest
import torch

import strategies  # noqa: F401  (its import limits torch to one intra-op thread)
from Miniproject_2.model import Model, Recipe, dihedral, noise_levels

TINY = dict(widths=(8, 16))
DEEP = dict(widths=(8, 8, 8, 8))


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return Model(**TINY)


def images(*shape, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return x if dtype == torch.uint8 else x.to(dtype)


def reflect(i, n):
    """Index i of an axis of length n, reflect-padded (-1 -> 1, n -> n - 2, and on)."""
    if n == 1:
        return 0
    i %= 2 * n - 2
    return 2 * n - 2 - i if i >= n else i


def square_symmetries():
    """The 8 symmetries of the square as (apply, undo) pairs, built from rot90 and flip
    independently of the model's own ``dihedral``."""
    def rotate(r, flip):
        def apply(t):
            t = t.flip(-1) if flip else t
            return t.rot90(r, (-2, -1))

        def undo(t):
            t = t.rot90(-r, (-2, -1))
            return t.flip(-1) if flip else t
        return apply, undo
    return [rotate(r, flip) for flip in (False, True) for r in range(4)]


def reference(model, x, symmetries=8):
    """What predict should compute: scale; for each symmetry of the square (all 8, or the
    identity alone when ``symmetries`` is 1), apply it, reflect-pad bottom/right to the total
    stride, run the whole network at once, crop and undo it; average, clamp, rescale."""
    batch = x.float().unsqueeze(0) if x.dim() == 3 else x.float()
    s = model.denoiser.total_stride
    symmetries = square_symmetries()[:1 if symmetries == 1 else 8]
    outputs = []
    for apply, undo in symmetries:
        seen = apply(batch / 255)
        h, w = seen.shape[-2:]
        rows = [reflect(i, h) for i in range(h + (-h % s))]
        cols = [reflect(j, w) for j in range(w + (-w % s))]
        padded = seen[..., rows, :][..., cols].contiguous()
        outputs.append(undo(model.denoiser.network(padded)[..., :h, :w]))
    out = (sum(outputs) / len(outputs)).clamp(0, 1) * 255
    return out if x.dim() == 4 else out[0]


# --------------------------------------------------------------------------------------
# predict: shapes, dtypes, padding
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('shape', [(2, 3, 17, 23), (3, 17, 23), (1, 3, 16, 16), (3, 5, 4),
                                   (2, 3, 1, 7), (1, 3, 1, 1), (3, 1, 1), (3, 3, 3)])
@pytest.mark.parametrize('dtype', [torch.uint8, torch.float32, torch.float64])
def test_predict_shape_dtype_range(model, shape, dtype):
    x = images(*shape, dtype=dtype)
    expected = reference(model, x)
    y = model.predict(x)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device == x.device
    assert y.isfinite().all() and y.min() >= 0 and y.max() <= 255
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize('arch', [{}, DEEP], ids=['shipped', '4-level'])
@pytest.mark.parametrize('side', [(1, 1), (3, 3), (1, 5), (9, 2)])
def test_tiny_images_every_architecture(arch, side):
    torch.manual_seed(0)
    m = Model(**arch)
    x = images(2, 3, *side)
    expected = reference(m, x)
    y = m.predict(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=0)


def test_uint8_and_float_agree(model):
    x = images(2, 3, 11, 13, dtype=torch.uint8)
    batch = model.predict(x)
    torch.testing.assert_close(batch, model.predict(x.float()), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.predict(x[0]), batch[0], atol=1e-4, rtol=0)


def test_predict_runs_forward_only_and_leaves_the_network_trainable(model, monkeypatch):
    network = model.denoiser.network
    seen = []
    forward = network.forward
    monkeypatch.setattr(network, 'forward',
                        lambda x: seen.append(network.requires_backward) or forward(x))
    model.predict(images(1, 3, 8, 8), symmetries=2)
    assert seen == [False, False] and network.requires_backward
    monkeypatch.setattr(network, 'forward', lambda x: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        model.predict(images(1, 3, 8, 8))
    assert network.requires_backward, 'a failed predict left the network forward-only'


def test_predict_leaves_its_input_alone(model):
    for dtype in (torch.uint8, torch.float32, torch.float64):
        x = images(2, 3, 9, 9, dtype=dtype)
        kept = x.clone()
        model.predict(x)
        model.predict(x[0])
        assert torch.equal(x, kept), f'predict modified its {dtype} input'


@pytest.mark.parametrize('shape', [(0, 3, 8, 8), (1, 3, 0, 5), (2, 3, 4, 0), (3, 0, 0)])
def test_empty_batch_or_image_gives_an_empty_result(model, shape):
    for dtype in (torch.uint8, torch.float32):
        y = model.predict(torch.zeros(shape, dtype=dtype))
        assert y.shape == shape and y.dtype == torch.float32


def test_a_single_pass_is_the_network_alone(model):
    x = images(2, 3, 12, 7)
    torch.testing.assert_close(model.predict(x, symmetries=1), reference(model, x, 1),
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize('symmetry', range(8))
def test_the_self_ensemble_commutes_with_every_symmetry(model, symmetry):
    apply, _ = square_symmetries()[symmetry]
    x = images(1, 3, 13, 21)
    torch.testing.assert_close(model.predict(apply(x)), apply(model.predict(x)),
                               atol=1e-3, rtol=0)


@pytest.mark.parametrize('k', range(8))
def test_dihedral_inverse_undoes_it(k):
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(dihedral(dihedral(x, k), k, inverse=True), x)


@pytest.mark.parametrize('symmetries, shape, tile', [(8, (2, 3, 90, 40), 32), (3, (3, 9, 9), 256),
                                                     (1, (0, 3, 8, 8), 256)])
def test_progress_counts_every_network_pass(symmetries, shape, tile):
    m = Model(**TINY)
    passes, calls = [], []
    forward = m.denoiser.network.forward
    m.denoiser.network.forward = lambda t: passes.append(t.shape) or forward(t)
    m.predict(images(*shape), symmetries=symmetries, tile=tile,
              progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i + 1, len(passes)) for i in range(len(passes))]


@pytest.mark.parametrize('bad', [0, 9, 2.0, None, True])
def test_bad_predict_options(model, bad):
    with pytest.raises(ValueError, match='symmetries must be an int in 1..8'):
        model.predict(images(1, 3, 8, 8), symmetries=bad)
    for option in ('tile', 'pixels_per_pass'):
        if bad == 9 or (option, bad) == ('tile', None):  # None: the device's tile
            continue
        with pytest.raises(ValueError, match=f'{option} must be an int >= 1'):
            model.predict(images(1, 3, 8, 8), **{option: bad})


def test_pixels_per_pass_sets_the_images_per_pass(model):
    passes = []
    forward = model.denoiser.network.forward
    model.denoiser.network.forward = lambda t: passes.append(t.shape[0]) or forward(t)
    try:
        x = images(5, 3, 8, 8)
        # Float rounding only: a pass of one small image computes the layers that read a
        # channel-first input (those after a column-major output of at most 8 channels, as
        # in this network) the way F.conv2d computes one image, in another order.
        torch.testing.assert_close(model.predict(x, symmetries=1, pixels_per_pass=2 * 64),
                                   model.predict(x, symmetries=1), atol=0, rtol=1e-6)
    finally:
        del model.denoiser.network.forward
    assert passes == [2, 2, 1, 5]


# --------------------------------------------------------------------------------------
# predict: tiled == untiled
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('arch, tile, shape', [({}, 64, (1, 3, 213, 90)),
                                               (DEEP, 32, (3, 171, 101)),
                                               (TINY, 16, (2, 3, 45, 61))],
                         ids=['shipped', '4-level', 'tiny'])
def test_tiled_equals_untiled(arch, tile, shape):
    torch.manual_seed(0)
    m = Model(**arch)
    x = images(*shape)
    whole = m.predict(x.clone())
    assert max(shape[-2:]) > tile + 2 * m.denoiser.tile_margin, 'the image must need tiles'
    calls = []
    forward = m.denoiser.network.forward
    m.denoiser.network.forward = lambda t: calls.append(t.shape) or forward(t)
    tiled = m.predict(x.clone(), tile=tile)
    assert len(calls) > 1, 'predict did not tile'
    assert (tiled - whole).abs().max() <= 1e-4


# --------------------------------------------------------------------------------------
# predict / train: bad input
# --------------------------------------------------------------------------------------

BAD_SHAPES = [(3, 8), (8,), (), (1, 1, 3, 8, 8), (1, 1, 8, 8), (2, 4, 8, 8), (4, 8, 8),
              (1, 8, 8)]


@pytest.mark.parametrize('shape', BAD_SHAPES)
def test_predict_wrong_shape(model, shape):
    with pytest.raises(ValueError, match=r'test_input must be \(N, 3, H, W\) or \(3, H, W\)'):
        model.predict(torch.zeros(shape))


@pytest.mark.parametrize('shape', BAD_SHAPES)
def test_train_wrong_shape(model, shape):
    good = images(4, 3, 8, 8)
    with pytest.raises(ValueError, match='train_input must be'):
        model.train(torch.zeros(shape), good, 1, log=False)
    with pytest.raises(ValueError, match='train_target must be'):
        model.train(good, torch.zeros(shape), 1, log=False)


@pytest.mark.parametrize('dtype', [torch.int64, torch.int32, torch.int8, torch.bool])
def test_integer_and_bool_images_are_refused(model, dtype):
    x = torch.zeros(1, 3, 8, 8, dtype=dtype)
    with pytest.raises(TypeError, match='test_input must be uint8 or floating point'):
        model.predict(x)
    with pytest.raises(TypeError, match='train_input must be uint8 or floating point'):
        model.train(x, images(1, 3, 8, 8), 1, log=False)


@pytest.mark.parametrize('bad', [[[[0.0]]], 3.0, None, 'image'])
def test_non_tensors_are_refused(model, bad):
    with pytest.raises(TypeError, match='must be a torch tensor'):
        model.predict(bad)
    with pytest.raises(TypeError, match='must be a torch tensor'):
        model.train(bad, images(1, 3, 8, 8), 1, log=False)


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_nan_and_inf_pixels(model, value, dtype):
    x = images(2, 3, 8, 8, dtype=dtype)
    x[1, 2, 3, 4] = value
    with pytest.raises(ValueError, match='test_input contains NaN or infinite pixels'):
        model.predict(x)
    with pytest.raises(ValueError, match='train_input contains NaN or infinite'):
        model.train(x, images(2, 3, 8, 8), 1, log=False)
    with pytest.raises(ValueError, match='train_target contains NaN or infinite'):
        model.train(images(2, 3, 8, 8), x, 1, log=False)


@pytest.mark.parametrize('value', [-1.0, -1e-3, 255.5, 1e6])
def test_pixels_outside_0_255_are_refused(model, value):
    """Out-of-range pixels are a caller's mistake (0-1 images are not caught, but
    normalised ones are): predict and train both raise, rather than clamp silently."""
    x = images(2, 3, 8, 8)
    x[0, 1, 2, 3] = value
    with pytest.raises(ValueError, match='test_input has pixels outside 0-255'):
        model.predict(x)
    with pytest.raises(ValueError, match='train_target has pixels outside 0-255'):
        model.train(images(2, 3, 8, 8), x, 1, log=False)


def test_range_limits_themselves_are_fine(model):
    x = torch.zeros(1, 3, 4, 4)
    x[0, 0] = 255.0
    assert model.predict(x).shape == x.shape


def test_train_empty_batch(model):
    with pytest.raises(ValueError, match='train_input is empty'):
        model.train(torch.zeros(0, 3, 8, 8), torch.zeros(0, 3, 8, 8), 1, log=False)


@pytest.mark.parametrize('other', [(4, 3, 8, 9), (3, 3, 8, 8), (3, 8, 8)])
def test_train_shape_mismatch(model, other):
    with pytest.raises(ValueError, match='must have the same shape'):
        model.train(images(4, 3, 8, 8), images(*other), 1, log=False)


@pytest.mark.parametrize('epochs', [0, -1, 1.0, 2.5, '1', None, True])
def test_train_bad_num_epochs(model, epochs):
    with pytest.raises(ValueError, match='num_epochs must be a positive int'):
        model.train(images(4, 3, 8, 8), images(4, 3, 8, 8), epochs, log=False)


def test_train_images_too_small(model):
    with pytest.raises(ValueError, match='training images must be at least'):
        model.train(images(4, 3, 3, 8), images(4, 3, 3, 8), 1, log=False)


def test_bad_input_leaves_weights_untouched(model):
    before = model.denoiser.network.state_dict()
    for args in [(torch.zeros(0, 3, 8, 8), torch.zeros(0, 3, 8, 8), 1),
                 (images(4, 3, 8, 8), images(4, 3, 8, 8), 0)]:
        with pytest.raises(ValueError):
            model.train(*args, log=False)
    after = model.denoiser.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------------------
# load_pretrained_model
# --------------------------------------------------------------------------------------

def weights_equal(a, b):
    sa, sb = a.denoiser.network.state_dict(), b.denoiser.network.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_an_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'w.pth'
    Model(**TINY).save(path)
    before = path.read_bytes()

    def die_halfway(obj, file):
        pathlib.Path(file).write_bytes(b'half a file')
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, 'save', die_halfway)
    with pytest.raises(KeyboardInterrupt):
        Model(**DEEP).save(path)
    assert path.read_bytes() == before


def test_save_load_round_trip_rebuilds_the_architecture(tmp_path):
    torch.manual_seed(1)
    saved = Model(**DEEP)
    saved.save(tmp_path / 'w.pth')
    loaded = Model(**TINY)
    loaded.load_pretrained_model(tmp_path / 'w.pth')
    assert loaded.denoiser.architecture['widths'] == (8, 8, 8, 8)
    assert loaded.denoiser.total_stride == 8
    assert loaded.trainer.pretrained and weights_equal(saved, loaded)
    x = images(3, 19, 21, dtype=torch.uint8)
    assert torch.equal(saved.predict(x), loaded.predict(x))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='weights file not found'):
        Model(**TINY).load_pretrained_model(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='weights file not found'):
        Model(**TINY).load_pretrained_model(tmp_path)   # a folder is not a weights file


def unchanged_after(path, error, match):
    """Loading ``path`` raises ``error`` and leaves the model exactly as it was."""
    torch.manual_seed(0)
    m, twin = Model(**TINY), Model(**TINY)
    twin.denoiser.network.load_state_dict(m.denoiser.network.state_dict())
    parts = m.denoiser, m.trainer
    with pytest.raises(error, match=match):
        m.load_pretrained_model(path)
    assert (m.denoiser, m.trainer) == parts
    assert m.denoiser.architecture == twin.denoiser.architecture
    assert weights_equal(m, twin) and not m.trainer.pretrained


def test_truncated_file(tmp_path):
    Model(**TINY).save(tmp_path / 'w.pth')
    data = (tmp_path / 'w.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    unchanged_after(tmp_path / 'cut.pth', RuntimeError, 'cannot read weights file')


@pytest.mark.parametrize('content', [b'', os.urandom(2000), b'PK\x03\x04' + os.urandom(300),
                                     b'not a weights file\n'], ids=['empty', 'random', 'zip-ish',
                                                                    'text'])
def test_garbage_file(tmp_path, content):
    (tmp_path / 'w.pth').write_bytes(content)
    unchanged_after(tmp_path / 'w.pth', RuntimeError, 'cannot read weights file')


def good_state(arch=TINY):
    torch.manual_seed(0)
    m = Model(**arch)
    return m.state()


def save(tmp_path, obj):
    path = tmp_path / 'w.pth'
    torch.save(obj, path)
    return path


@pytest.mark.parametrize('obj', [[1, 2], {'state_dict': {}}, {'architecture': {}},
                                 torch.zeros(3), {'architecture': [], 'state_dict': {}}],
                         ids=['list', 'no-arch', 'no-state', 'tensor', 'arch-not-dict'])
def test_not_a_weights_file(tmp_path, obj):
    unchanged_after(save(tmp_path, obj), ValueError, 'is not a weights file of this model')


def test_plain_state_dict_is_refused(tmp_path):
    """A bare state dict (what other projects save) is not this model's file format."""
    unchanged_after(save(tmp_path, good_state()['state_dict']), ValueError,
                    'is not a weights file of this model')


@pytest.mark.parametrize('arch', [dict(widths=[8]), dict(widths=[]), dict(widths='ab'),
                                  dict(activation='swish'), dict(upsampling='bicubic'),
                                  dict(skip='mul'), dict(colour='blue')])
def test_unknown_architecture(tmp_path, arch):
    state = good_state()
    state['architecture'].update(arch)
    unchanged_after(save(tmp_path, state), ValueError, 'unknown architecture')


@pytest.mark.parametrize('change', ['drop', 'extra', 'shape', 'other-arch', 'not-tensor'])
def test_state_dict_not_matching_its_architecture(tmp_path, change):
    """The loader rebuilds the network the file declares; here the state dict disagrees with
    that declaration (the file says 4 levels, for instance, but holds a 2-level network)."""
    state = good_state(DEEP)
    params = state['state_dict']
    name = sorted(params)[0]
    if change == 'drop':
        del params[name]
    elif change == 'extra':
        params['surplus.weight'] = torch.zeros(3)
    elif change == 'shape':
        params[name] = torch.zeros(1, *params[name].shape)
    elif change == 'other-arch':
        state['state_dict'] = good_state(TINY)['state_dict']
    else:
        params[name] = 1.5
    unchanged_after(save(tmp_path, state), ValueError, 'does not match the network|'
                    'wrong shape|w.pth')


class Touch:
    """Unpickling this creates ``path``: a stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
@pytest.mark.parametrize('writer', ['pickle', 'torch.save', 'torch.save-in-weights'])
def test_malicious_pickle_never_runs(tmp_path, writer):
    # The payload works: plain pickle.load does create the file...
    probe = tmp_path / 'probe'
    pickle.loads(pickle.dumps(Touch(probe)))
    assert probe.exists()
    # ...but load_pretrained_model never unpickles it.
    marker, path = tmp_path / 'pwned', tmp_path / 'evil.pth'
    if writer == 'pickle':
        with open(path, 'wb') as f:
            pickle.dump({'architecture': {}, 'state_dict': Touch(marker)}, f)
    elif writer == 'torch.save':
        torch.save(Touch(marker), path)
    else:
        state = good_state()
        state['architecture']['hook'] = Touch(marker)
        torch.save(state, path)
    unchanged_after(path, RuntimeError, 'cannot read weights file')
    assert not marker.exists()


@pytest.mark.parametrize('source', ['str', 'pathlib', 'file object', 'bytes in memory'])
def test_load_from_a_file_object_path_types(tmp_path, source):
    """A str, a pathlib.Path, an open file and an in-memory buffer all load the saved
    network (another architecture than the loading model's, so nothing passes by chance)."""
    torch.manual_seed(3)
    saved = Model(**DEEP)
    path = tmp_path / 'w.pth'
    saved.save(path)
    loaded = Model(**TINY)
    if source == 'str':
        loaded.load_pretrained_model(str(path))
    elif source == 'pathlib':
        loaded.load_pretrained_model(path)
    elif source == 'file object':
        with open(path, 'rb') as file:
            loaded.load_pretrained_model(file)
    else:
        loaded.load_pretrained_model(io.BytesIO(path.read_bytes()))
    assert loaded.denoiser.architecture == saved.denoiser.architecture
    assert weights_equal(saved, loaded) and loaded.trainer.pretrained


# --------------------------------------------------------------------------------------
# training: end to end, deterministic
# --------------------------------------------------------------------------------------

def train_once(seed=0):
    torch.manual_seed(seed)
    m = Model(**TINY)
    m.trainer.recipe = Recipe(batch_size=16)
    clean = images(64, 3, 16, 16, seed=1).float()
    noise = torch.Generator().manual_seed(2)
    noisy = [(clean + 20 * torch.randn(clean.shape, generator=noise)).clamp(0, 255)
             for _ in range(2)]
    log = io.StringIO()
    assert m.train(noisy[0], noisy[1].to(torch.uint8), 1, log=log) is m
    assert 'epoch 1/1' in log.getvalue() and m.trainer.epochs_done == 1
    return m


def test_training_is_deterministic():
    a, b = train_once(), train_once()
    assert weights_equal(a, b)
    torch.manual_seed(0)
    assert not weights_equal(a, Model(**TINY)), 'training did not change the weights'


def clipped_noisy_pair(clean, sigma, seed):
    generator = torch.Generator().manual_seed(seed)
    return [(clean + sigma.view(-1, 1, 1, 1) * torch.randn(clean.shape, generator=generator))
            .round().clamp(0, 255).to(torch.uint8) for _ in range(2)]


def test_noise_levels_of_noisy_pairs_even_near_black_and_white():
    """Ramps from black to white, dark images and bright ones: clipping shrinks the noise
    near 0 and 255, and the estimate must not be fooled by it."""
    ramp = torch.linspace(0, 255, 64).expand(3, 64, 64)
    clean = torch.stack([ramp, ramp * 0.5, 255 - ramp * 0.5] * 4)
    sigma = torch.tensor([10.0, 25.0, 43.0, 5.0] * 3).sort().values
    estimate = noise_levels(*clipped_noisy_pair(clean, sigma, seed=0)) * 255
    assert estimate.shape == sigma.shape
    assert ((estimate / sigma - 1).abs() < 0.05).all(), estimate / sigma


def test_noise_levels_of_flat_and_empty_images():
    """No noise: half a grey level at least (positive, as the loss needs); no image: none."""
    flat = torch.full((2, 3, 8, 8), 7, dtype=torch.uint8)
    assert torch.equal(noise_levels(flat, flat), torch.full((2,), 0.5 / 255))
    assert noise_levels(flat[:0], flat[:0]).shape == (0,)


@pytest.mark.parametrize('clipped_noise', [True, False])
def test_training_gives_the_loss_each_pair_s_noise_level(clipped_noise):
    torch.manual_seed(0)
    m = Model(Recipe(batch_size=16, clipped_noise=clipped_noise), **TINY)
    sigma = torch.tensor([12.0, 40.0]).repeat_interleave(16)
    clean = images(32, 3, 32, 32, seed=1).float()
    seen = []
    forward = m.trainer.loss.forward

    def recording_forward(prediction, target, sigma=None):
        seen.append(sigma)
        return forward(prediction, target) if sigma is None else forward(prediction, target,
                                                                          sigma)
    m.trainer.loss.forward = recording_forward
    m.train(*clipped_noisy_pair(clean, sigma, seed=2), 1, log=False)
    assert len(seen) == 2
    if not clipped_noise:
        assert seen == [None, None]
        return
    # The batches are shuffled: each pair's level follows it into its batch.
    got = torch.cat([s.flatten() for s in seen]).sort().values * 255
    assert got.shape == (32,) and ((got / sigma - 1).abs() < 0.1).all(), got


# --------------------------------------------------------------------------------------
# The parts: a frozen recipe, log looked up at the call, one file format with training state
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', [dict(batchsize=7), dict(batch_size=7.0), dict(batch_size=0),
                                 dict(lr='1e-3'), dict(lr=-1.0), dict(swap=1),
                                 dict(symmetries='yes'), dict(betas=(0.9,)),
                                 dict(betas=(0.9, 1.5)), dict(seed=True), dict(warmup_steps=-1)])
def test_recipe_refuses_unknown_and_mistyped_settings(bad):
    with pytest.raises((TypeError, ValueError)):
        Recipe(**bad)


def test_recipe_is_frozen_and_changes_by_replacement():
    recipe = Recipe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.batch_size = 7
    changed = dataclasses.replace(recipe, lr=1, betas=[0.5, 0.6])
    assert changed.lr == 1 and changed.betas == (0.5, 0.6) and recipe.lr == 2e-3
    with pytest.raises(TypeError):
        dataclasses.replace(recipe, batchsize=7)


def tiny_pairs(n=16, side=16):
    return images(n, 3, side, side, seed=1), images(n, 3, side, side, seed=2)


def test_progress_goes_to_stderr_as_it_is_at_the_call():
    m = Model(**TINY)
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        m.train(*tiny_pairs(), 1)
    assert 'epoch 1/1' in captured.getvalue()
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet):
        m.train(*tiny_pairs(), 1, log=False)
    assert quiet.getvalue() == ''


def test_a_checkpoint_resumes_training_exactly(tmp_path):
    """save(training=True) keeps the optimizer's state and the epochs done: training on from
    the file gives the weights an uninterrupted run gives."""
    def fresh():
        torch.manual_seed(0)
        return Model(Recipe(batch_size=8, warmup_steps=1), **TINY)
    straight = fresh()
    straight.train(*tiny_pairs(), 2, log=False)
    first = fresh()
    first.train(*tiny_pairs(), 2, log=False, on_epoch_end=lambda epoch: first.save(
        tmp_path / 'checkpoint.pth', training=True) if epoch == 0 else None)
    resumed = Model(**DEEP)  # another network and the default recipe: the file has both
    resumed.load(tmp_path / 'checkpoint.pth')
    assert resumed.trainer.epochs_done == 1 and not resumed.trainer.pretrained
    assert resumed.trainer.recipe == first.trainer.recipe != Recipe()
    resumed.train(*tiny_pairs(), 2, start_epoch=resumed.trainer.epochs_done, log=False)
    assert weights_equal(resumed, straight)


def test_a_checkpoint_with_a_bad_training_state_leaves_the_model_alone(tmp_path):
    state = Model(**TINY).state(training=True)
    optimizer = state['trainer']['optimizer']
    optimizer['state'] = optimizer['state'][:1]  # one parameter's only
    unchanged_after(save(tmp_path, state), ValueError, 'parameter states for')


@contextlib.contextmanager
def pixel_major_checks(model):
    """A list that gets, for each batch the network reads, whether each pixel's channels
    are adjacent in memory (channels-last, or a flip or transpose of it)."""
    found = []
    forward = model.denoiser.network.forward
    model.denoiser.network.forward = lambda t: found.append(t.stride(1) == 1) or forward(t)
    try:
        yield found
    finally:
        del model.denoiser.network.forward


@pytest.mark.parametrize('size', [(16, 16), (13, 10)], ids=['no padding', 'reflect-padded'])
@pytest.mark.parametrize('tile', [512, 8])
@pytest.mark.parametrize('dtype', [torch.uint8, torch.float32])
def test_predict_hands_the_network_pixel_major_images(model, size, tile, dtype):
    """Padded or not, whole or tiled, from NCHW input of either dtype: the convolutions
    copy their patches fastest from that layout."""
    with pixel_major_checks(model) as found:
        model.predict(images(2, 3, *size, dtype=dtype), symmetries=8, tile=tile)
    assert found and all(found)


def test_training_hands_the_network_pixel_major_images():
    torch.manual_seed(0)
    model = Model(**TINY)
    with pixel_major_checks(model) as found:
        model.train(images(8, 3, 8, 8), images(8, 3, 8, 8, seed=1), 1, log=False)
    assert found and all(found)


# --------------------------------------------------------------------------------------
# Training seams: the recipe at construction, a loss per pair, a step without train()
# --------------------------------------------------------------------------------------

def test_a_step_works_on_a_fresh_model():
    torch.manual_seed(0)
    m = Model(**TINY)
    before = [p.clone() for p, _ in m.denoiser.network.param()]
    x = images(2, 3, 16, 16) / 255
    loss = m.trainer.step(x, x.flip(-1))
    assert loss > 0
    assert any(not torch.equal(a, p) for a, (p, _) in zip(before, m.denoiser.network.param()))


def test_the_recipe_is_given_at_construction_and_checked():
    recipe = Recipe(batch_size=4, lr=1e-3)
    assert Model(recipe, **TINY).trainer.recipe is recipe
    with pytest.raises(TypeError, match='recipe must be a Recipe'):
        Model({'batch_size': 4}, **TINY)


def test_the_loss_follows_the_recipe_unless_one_is_given():
    from Miniproject_2.model import ClippedMSE, RobustMSE, Trainer
    m = Model(**TINY)
    assert type(m.trainer.loss) is RobustMSE
    m.trainer.recipe = Recipe(clipped_noise=True)
    assert type(m.trainer.loss) is ClippedMSE
    given = RobustMSE()
    assert Trainer(m.denoiser, Recipe(clipped_noise=True), loss=given).loss is given


def test_training_gives_the_loss_each_pair_s_robust_mark():
    torch.manual_seed(0)
    m = Model(Recipe(batch_size=16), **TINY)
    robust = torch.arange(32) % 3 == 0
    a = images(32, 3, 16, 16, seed=1)
    # Each pair's mark is its image's first pixel, 1 where robust: it follows the pair.
    a[:, :, 0, 0] = robust.float().view(-1, 1)
    seen = []
    forward = m.trainer.loss.forward

    def recording_forward(prediction, target, robust=None):
        seen.append((robust, target))
        return forward(prediction, target, robust)
    m.trainer.loss.forward = recording_forward
    m.train(a, a.clone(), 1, robust=robust, log=False)
    assert len(seen) == 2
    for marks, target in seen:
        corners = target[:, :, [0, -1]][:, :, :, [0, -1]].flatten(1)  # wherever flips put it
        assert torch.equal(marks, (corners * 255).round().eq(1).any(1)) and marks.any()


@pytest.mark.parametrize('robust', [torch.ones(3, dtype=torch.bool), torch.ones(16),
                                    [True] * 16], ids=['count', 'dtype', 'list'])
def test_robust_marks_must_be_one_bool_per_pair(robust):
    with pytest.raises(ValueError, match='robust must be a bool tensor'):
        Model(**TINY).train(*tiny_pairs(), 1, robust=robust, log=False)


def test_robust_marks_refuse_the_clipped_noise_recipe():
    m = Model(Recipe(clipped_noise=True), **TINY)
    with pytest.raises(ValueError, match='RobustMSE'):
        m.train(*tiny_pairs(), 1, robust=torch.ones(16, dtype=torch.bool), log=False)


def test_a_checkpoint_holds_the_trainer_state_under_its_own_key():
    state = Model(Recipe(batch_size=4, betas=(0.5, 0.6)), **TINY).state(training=True)
    assert set(state) == {'architecture', 'state_dict', 'trainer'}
    assert state['trainer']['recipe']['batch_size'] == 4
    assert state['trainer']['recipe']['betas'] == [0.5, 0.6]  # a plain list: weights_only
