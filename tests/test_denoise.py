"""The denoise command: small generated images of every kind, the self-ensemble option, the
progress bar, and clear errors raised before any work (the CLI exits with status 2)."""
import os
import subprocess
import sys

import pytest
import torch

import strategies  # noqa: F401  (its import limits torch to one intra-op thread)
from Miniproject_2.model import Model
from Miniproject_2.others import denoise

Image = pytest.importorskip('PIL.Image')

TINY = dict(widths=(8, 16))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('weights') / 'w.pth'
    Model(**TINY).save(path)
    return path


@pytest.fixture(scope='module')
def model(weights):
    m = Model(**TINY)
    m.load_pretrained_model(weights)
    return m


def pixels(height, width, channels, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (height, width, channels), generator=generator,
                         dtype=torch.uint8)


def make_image(mode, width=53, height=37, seed=0):
    """A random image of ``mode`` ('RGB', 'RGBA', 'L', 'LA', 'P', '1')."""
    if mode in ('P', '1'):
        return make_image('RGB', width, height, seed).convert(mode)
    data = pixels(height, width, len(mode), seed)
    buffer = bytearray(data.numel())
    torch.frombuffer(buffer, dtype=torch.uint8).copy_(data.view(-1))
    return Image.frombytes(mode, (width, height), bytes(buffer))


def as_tensor(image):
    """Pillow image -> uint8 (C, H, W)."""
    return denoise._to_tensor(image)


def run(*args):
    return denoise.main([str(a) for a in args] + ['--quiet'])


# --------------------------------------------------------------------------------------
# Images of every kind
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('mode, ext, out_mode', [
    ('RGB', '.png', 'RGB'), ('RGB', '.jpg', 'RGB'), ('L', '.png', 'L'), ('L', '.jpg', 'L'),
    ('RGBA', '.png', 'RGBA'), ('LA', '.png', 'LA'), ('P', '.png', 'RGB'), ('1', '.png', 'L'),
    ('RGB', '.webp', 'RGB')])
def test_sizes_and_modes_are_preserved(tmp_path, weights, mode, ext, out_mode):
    if ext == '.webp' and 'WEBP' not in Image.SAVE:
        pytest.skip('Pillow built without WebP')
    image = make_image(mode)
    source, target = tmp_path / f'in{ext}', tmp_path / f'out{ext}'
    image.save(source)
    assert run(source, target, '--weights', weights) == 0
    with Image.open(target) as result:
        assert result.size == (53, 37) and result.mode == out_mode
        if 'A' in mode:
            assert result.getchannel('A').tobytes() == image.getchannel('A').tobytes()


def test_rgb_png_is_the_rounded_prediction(tmp_path, weights, model):
    image = make_image('RGB', 61, 45)
    image.save(tmp_path / 'in.png')
    run(tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights)
    expected = model.predict(as_tensor(image)).round().to(torch.uint8)
    with Image.open(tmp_path / 'out.png') as result:
        assert torch.equal(as_tensor(result), expected)


def test_greyscale_is_the_mean_of_the_replicated_denoise(tmp_path, weights, model):
    image = make_image('L', 40, 31)
    image.save(tmp_path / 'in.png')
    run(tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights)
    grey = as_tensor(image).expand(3, -1, -1)
    expected = model.predict(grey).mean(0, keepdim=True).round().to(torch.uint8)
    with Image.open(tmp_path / 'out.png') as result:
        assert (as_tensor(result).int() - expected.int()).abs().max() <= 1  # float rounding


def test_palette_with_transparency_keeps_it_as_alpha(tmp_path, weights):
    image = make_image('P')
    image.info['transparency'] = 0
    image.save(tmp_path / 'in.png')
    run(tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights)
    with Image.open(tmp_path / 'in.png') as source, Image.open(tmp_path / 'out.png') as result:
        assert result.mode == 'RGBA'
        assert result.getchannel('A').tobytes() == source.convert('RGBA').getchannel('A').tobytes()


def test_exif_orientation_is_applied(tmp_path, weights):
    image = make_image('RGB', 30, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / 'in.jpg', exif=exif)
    run(tmp_path / 'in.jpg', tmp_path / 'out.jpg', '--weights', weights)
    with Image.open(tmp_path / 'out.jpg') as result:
        assert result.size == (20, 30)


def test_output_may_overwrite_the_input(tmp_path, weights):
    make_image('RGB').save(tmp_path / 'x.png')
    run(tmp_path / 'x.png', tmp_path / 'x.png', '--weights', weights)
    with Image.open(tmp_path / 'x.png') as result:
        assert result.size == (53, 37)


# --------------------------------------------------------------------------------------
# Self-ensemble and progress
# --------------------------------------------------------------------------------------

def test_symmetries_option_sets_the_self_ensemble(tmp_path, weights, model):
    image = make_image('RGB', 30, 22)
    image.save(tmp_path / 'in.png')
    run(tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights, '--symmetries', 1)
    expected = model.predict(as_tensor(image), symmetries=1).round().to(torch.uint8)
    with Image.open(tmp_path / 'out.png') as result:
        assert torch.equal(as_tensor(result), expected)


@pytest.mark.parametrize('size, expected', [((30, 22), 8), ((724, 724), 8), ((725, 724), 7),
                                            ((1448, 1448), 2), ((2048, 2048), 1),
                                            ((4000, 3000), 1)])
def test_the_default_ensemble_follows_the_image_size(size, expected):
    """All 8 flips/rotations up to half a megapixel, fewer above, 1 from 4 megapixels."""
    assert denoise.symmetries_for(*size) == expected


def test_the_default_ensemble_is_said_and_used(tmp_path, weights, model, capsys, monkeypatch):
    monkeypatch.setattr(denoise, 'PIXEL_PASSES', 30 * 22 * 3)  # 3 passes of this image
    image = make_image('RGB', 30, 22)
    image.save(tmp_path / 'in.png')
    run(tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights)
    assert '30x22, 3 flips/rotations averaged' in capsys.readouterr().err
    expected = model.predict(as_tensor(image), symmetries=3).round().to(torch.uint8)
    with Image.open(tmp_path / 'out.png') as result:
        assert torch.equal(as_tensor(result), expected)


@pytest.mark.parametrize('bad', ['0', '9', 'two'])
def test_bad_symmetries_option(tmp_path, weights, capsys, bad):
    make_image('RGB').save(tmp_path / 'in.png')
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path / 'in.png', tmp_path / 'out.png', '--symmetries', bad)
    assert exit_.value.code == 2 and '--symmetries' in capsys.readouterr().err


def test_progress_bar_on_large_images(tmp_path, weights, capsys):
    pytest.importorskip('tqdm')
    make_image('RGB', 40, 400).save(tmp_path / 'in.png')  # wider than a tile and its margins
    denoise.main([str(tmp_path / 'in.png'), str(tmp_path / 'out.png'), '--weights', str(weights),
                  '--symmetries', '1'])
    assert 'denoising' in capsys.readouterr().err


def test_the_module_runs_as_a_command(tmp_path, weights):
    make_image('RGB', 20, 16).save(tmp_path / 'in.png')
    done = subprocess.run([sys.executable, '-m', 'Miniproject_2.others.denoise',
                           str(tmp_path / 'in.png'), str(tmp_path / 'out.png'),
                           '--weights', str(weights)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'out.png').is_file()


# --------------------------------------------------------------------------------------
# Errors: raised before the work, the CLI exits with status 2 and no traceback
# --------------------------------------------------------------------------------------

def fails(capsys, args, match):
    with pytest.raises(SystemExit) as exit_:
        denoise.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and match in err and 'Traceback' not in err, err
    return err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the denoising starts."""
    def forbidden(*args, **kwargs):
        raise AssertionError('the work started before the error was found')
    monkeypatch.setattr(denoise, 'denoise_image', forbidden)


def test_missing_input(tmp_path, weights, capsys, no_work):
    with pytest.raises(FileNotFoundError, match='input image not found'):
        denoise.denoise_file(tmp_path / 'nope.png', tmp_path / 'out.png', weights)
    fails(capsys, [tmp_path / 'nope.png', tmp_path / 'out.png'], 'input image not found')
    assert not (tmp_path / 'out.png').exists()


@pytest.mark.parametrize('content', [b'hello, not an image\n', b'', os.urandom(500)],
                         ids=['text', 'empty', 'random'])
def test_not_an_image(tmp_path, weights, capsys, no_work, content):
    (tmp_path / 'in.png').write_bytes(content)
    with pytest.raises(ValueError, match='in.png'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'out.png', weights)
    fails(capsys, [tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights],
          'is not an image')
    assert not (tmp_path / 'out.png').exists()


def test_truncated_image(tmp_path, weights, no_work):
    make_image('RGB', 64, 64).save(tmp_path / 'full.png')
    data = (tmp_path / 'full.png').read_bytes()
    (tmp_path / 'in.png').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='cannot read image .*in.png'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'out.png', weights)


def test_input_is_a_folder(tmp_path, weights, no_work):
    with pytest.raises(IsADirectoryError, match='input is a folder'):
        denoise.denoise_file(tmp_path, tmp_path / 'out.png', weights)


def test_16_bit_images_are_refused(tmp_path, weights, capsys, no_work):
    Image.new('I;16', (9, 7), 40000).save(tmp_path / 'deep.png')
    with Image.open(tmp_path / 'deep.png') as check:
        mode = check.mode
    with pytest.raises(ValueError, match=f"mode '{mode}'"):
        denoise.denoise_file(tmp_path / 'deep.png', tmp_path / 'out.png', weights)
    fails(capsys, [tmp_path / 'deep.png', tmp_path / 'out.png', '--weights', weights], '16')


def test_missing_output_folder(tmp_path, weights, capsys, no_work):
    make_image('RGB').save(tmp_path / 'in.png')
    with pytest.raises(FileNotFoundError, match='output folder does not exist'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'no' / 'out.png', weights)
    fails(capsys, [tmp_path / 'in.png', tmp_path / 'no' / 'out.png', '--weights', weights],
          'output folder does not exist')


def test_output_is_a_folder(tmp_path, weights, no_work):
    make_image('RGB').save(tmp_path / 'in.png')
    (tmp_path / 'out.png').mkdir()
    with pytest.raises(IsADirectoryError, match='output path is a folder'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'out.png', weights)


def test_output_under_a_file(tmp_path, weights, no_work):
    make_image('RGB').save(tmp_path / 'in.png')
    with pytest.raises(OSError, match='output folder does not exist'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'in.png' / 'out.png', weights)


@pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() == 0,
                    reason='root writes into read-only folders')
def test_unwritable_output_folder(tmp_path, weights, no_work):
    make_image('RGB').save(tmp_path / 'in.png')
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match='cannot write the output file'):
            denoise.denoise_file(tmp_path / 'in.png', locked / 'out.png', weights)
    finally:
        locked.chmod(0o700)


def test_unwritable_output_file(tmp_path, weights, monkeypatch, no_work):
    """Any OSError opening the output (here a simulated permission error, since root
    ignores file modes) is reported before the work, naming the file."""
    make_image('RGB').save(tmp_path / 'in.png')
    real_open = open

    def deny(path, *args, **kwargs):
        if str(path).endswith('out.png'):
            raise PermissionError(13, 'Permission denied', str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr('builtins.open', deny)
    with pytest.raises(PermissionError, match='cannot write the output file .*out.png: '
                                              'Permission denied'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'out.png', weights)


@pytest.mark.parametrize('name', ['out', 'out.xyz', 'out.'])
def test_unknown_output_format(tmp_path, weights, capsys, no_work, name):
    make_image('RGB').save(tmp_path / 'in.png')
    with pytest.raises(ValueError, match='use an extension such as .png'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / name, weights)
    fails(capsys, [tmp_path / 'in.png', tmp_path / name], 'use an extension')


def test_alpha_cannot_go_to_jpeg(tmp_path, weights, no_work):
    make_image('RGBA').save(tmp_path / 'in.png')
    with pytest.raises(ValueError, match='cannot write a RGBA image as JPEG'):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'out.jpg', weights)
    assert not (tmp_path / 'out.jpg').exists()


def test_missing_or_bad_weights(tmp_path, capsys, no_work):
    make_image('RGB').save(tmp_path / 'in.png')
    fails(capsys, [tmp_path / 'in.png', tmp_path / 'out.png', '--weights', tmp_path / 'w.pth'],
          'weights file not found')
    (tmp_path / 'w.pth').write_bytes(b'garbage')
    fails(capsys, [tmp_path / 'in.png', tmp_path / 'out.png', '--weights', tmp_path / 'w.pth'],
          'cannot read weights file')
    assert not (tmp_path / 'out.png').exists()


def test_a_failed_run_leaves_no_output(tmp_path, weights, monkeypatch):
    make_image('RGB').save(tmp_path / 'in.png')

    def broken(*args, **kwargs):
        raise RuntimeError('out of memory')
    monkeypatch.setattr(denoise, 'denoise_image', broken)
    with pytest.raises(RuntimeError):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'out.png', weights)
    assert not (tmp_path / 'out.png').exists()
    (tmp_path / 'old.png').write_bytes(b'keep me')   # an existing output is not deleted
    with pytest.raises(RuntimeError):
        denoise.denoise_file(tmp_path / 'in.png', tmp_path / 'old.png', weights)
    assert (tmp_path / 'old.png').read_bytes() == b'keep me'


def test_without_pillow(tmp_path, weights, monkeypatch, capsys):
    make_image('RGB').save(tmp_path / 'in.png')
    monkeypatch.setitem(sys.modules, 'PIL', None)
    fails(capsys, [tmp_path / 'in.png', tmp_path / 'out.png', '--weights', weights],
          'needs Pillow')
