"""Denoise a photograph of any size with the trained Noise2Noise model.

    python -m Miniproject_2.others.denoise noisy.png clean.png
    python -m Miniproject_2.others.denoise noisy.jpg clean.jpg --weights runs/main/best.pth

The output format follows OUT's extension (anything Pillow writes: .png, .jpg, .webp, ...;
JPEG is written at quality 95). Weights default to the shipped ``Miniproject_2/bestmodel.pth``
and are read by ``Model.load_pretrained_model`` (which never unpickles code).

Images
    RGB is denoised as it is, at any size, odd sides included. Greyscale ('L', and bilevel
    '1', written back as 'L') is replicated to three channels, denoised, and written back as
    the mean of the three output channels. An alpha channel ('RGBA', 'LA', palettes with
    transparency) is kept exactly; only the colour is denoised. Palette and other 8-bit
    colour modes (CMYK, YCbCr, ...) are converted to RGB first. A JPEG's EXIF orientation is
    applied, so the output displays the same way. 16-bit and 32-bit images ('I;16', 'I', 'F')
    are refused with a ValueError naming the mode: the model was trained on 8-bit noise, so
    convert them to 8 bits first.

Large images
    ``Model.predict`` runs them tile by tile (seamlessly: each tile sees its neighbours'
    edges) and once per flip/rotation of its self-ensemble; a tqdm bar counts those passes
    and shows the time left (``--quiet`` hides it). The ensemble's size follows the image's
    (``symmetries_for``): all 8 flips/rotations while the passes stay within
    ``PIXEL_PASSES`` pixels, fewer for larger images, one pass for a photo of 4 megapixels or
    more, where the ensemble would multiply minutes for a tenth of a dB; the command prints
    its choice, and ``--symmetries K`` sets it.

Errors
    A missing input raises FileNotFoundError, a file that is not a readable image a
    ValueError naming it, an output folder that is missing or not writable an OSError
    (FileNotFoundError, PermissionError, IsADirectoryError), an output extension Pillow
    cannot write, or a mode its format cannot store (RGBA as JPEG), a ValueError: all before
    the denoising starts, and a failed run leaves no output file behind. The command line
    prints the message and exits with status 2.

Pillow (and, for the progress bar, tqdm) is needed by this command only.
"""
import argparse
import io
import os
import sys

import torch

from Miniproject_2.model import Model

JPEG_QUALITY = 95
# Pixels times passes the default self-ensemble spends: 8 passes of a 0.5-megapixel image,
# 2 of a 2-megapixel one, 1 beyond.
PIXEL_PASSES = 2 ** 22
# Pillow modes -> the mode denoised (RGB, RGBA, L or LA); others are refused.
CONVERT = {'RGB': 'RGB', 'RGBA': 'RGBA', 'L': 'L', 'LA': 'LA', '1': 'L', 'P': 'RGB',
           'PA': 'RGBA', 'La': 'LA', 'RGBa': 'RGBA', 'RGBX': 'RGB', 'CMYK': 'RGB',
           'YCbCr': 'RGB', 'HSV': 'RGB'}
HIGH_DEPTH = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I', 'F')


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError('the denoise command needs Pillow: pip install pillow') from None
    return Image, ImageOps


def _progress_bar(enabled):
    """A ``Model.predict`` progress callback drawing a tqdm bar, or None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: no bar without it
        return None
    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit='pass', desc='denoising', file=sys.stderr)
        bar.update(1)
        if done == total:
            bar.close()
    return update


def _to_tensor(channel_image):
    """An 8-bit Pillow image -> uint8 (C, H, W) tensor (no numpy needed)."""
    width, height = channel_image.size
    data = torch.frombuffer(bytearray(channel_image.tobytes()), dtype=torch.uint8)
    return data.view(height, width, -1).permute(2, 0, 1)


def _to_pillow(pixels, mode):
    """A float 0-255 (C, H, W) tensor -> Pillow image of ``mode`` ('RGB' or 'L')."""
    Image, _ = _pillow()
    pixels = pixels.round().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
    buffer = bytearray(pixels.numel())
    torch.frombuffer(buffer, dtype=torch.uint8).copy_(pixels.view(-1))
    return Image.frombytes(mode, (pixels.shape[1], pixels.shape[0]), bytes(buffer))


def working_mode(image, name='image'):
    """The mode ('RGB', 'RGBA', 'L', 'LA') an image is denoised and written in."""
    if image.mode in HIGH_DEPTH:
        raise ValueError(f'{name}: mode {image.mode!r} (16/32-bit) is not supported: the model '
                         f'denoises 8-bit images; convert it to 8 bits per channel first')
    if image.mode not in CONVERT:
        raise ValueError(f'{name}: unsupported image mode {image.mode!r}')
    if image.mode == 'P' and 'transparency' in image.info:
        return 'RGBA'
    return CONVERT[image.mode]


def denoise_image(model, image, progress=False, name='image', symmetries=8):
    """Denoise a Pillow image with a self-ensemble over ``symmetries`` flips/rotations;
    returns a Pillow image in ``working_mode(image)``."""
    Image, _ = _pillow()
    mode = working_mode(image, name)
    try:
        image = image if image.mode == mode else image.convert(mode)
    except (ValueError, OSError) as error:
        raise ValueError(f'{name}: cannot convert mode {image.mode!r} to {mode}: {error}') from None
    grey = mode in ('L', 'LA')
    colour = _to_tensor(image.convert('L' if grey else 'RGB'))
    denoised = model.predict(colour.expand(3, -1, -1), symmetries=symmetries,
                             progress=_progress_bar(progress))
    if grey:
        result = _to_pillow(denoised.mean(0, keepdim=True), 'L')
    else:
        result = _to_pillow(denoised, 'RGB')
    if 'A' in mode:
        result = Image.merge(mode, (*result.split(), image.getchannel('A')))
    return result


def read_image(path):
    """Open and decode an image file, or raise FileNotFoundError / ValueError."""
    Image, ImageOps = _pillow()
    if not os.path.exists(path):
        raise FileNotFoundError(f'input image not found: {path}')
    if os.path.isdir(path):
        raise IsADirectoryError(f'input is a folder, not an image: {path}')
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not halfway through
            return ImageOps.exif_transpose(image)
    except Image.UnidentifiedImageError:
        raise ValueError(f'{path} is not an image (Pillow cannot identify it)') from None
    except (PermissionError, MemoryError):
        raise
    except Exception as error:  # truncated or corrupt data, decompression bombs, ...
        raise ValueError(f'cannot read image {path}: {error}') from None


def output_format(path):
    """The Pillow format OUT's extension names, or a ValueError."""
    Image, _ = _pillow()
    Image.init()
    extension = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(extension)
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f'cannot tell an image format Pillow writes from the output name '
                         f'{path!r}: use an extension such as .png or .jpg')
    return fmt


def _save_options(fmt):
    return {'quality': JPEG_QUALITY} if fmt == 'JPEG' else {}


def _check_format_stores(fmt, mode):
    """Fail early if ``fmt`` cannot store ``mode`` (e.g. RGBA as JPEG)."""
    Image, _ = _pillow()
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=fmt, **_save_options(fmt))
    except (OSError, ValueError, KeyError) as error:
        hint = ' (it has no alpha channel: write e.g. a .png)' if 'A' in mode else ''
        raise ValueError(f'cannot write a {mode} image as {fmt}{hint}: {error}') from None


def _check_output_folder(path):
    if os.path.isdir(path):
        raise IsADirectoryError(f'output path is a folder: {path}')
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'output folder does not exist: {folder}')


def _claim_output(path):
    """Open OUT for writing (without truncating it) to prove it writable; True if created."""
    existed = os.path.exists(path)
    try:
        with open(path, 'ab'):
            pass
    except OSError as error:
        raise type(error)(f'cannot write the output file {path}: '
                          f'{error.strerror or error}') from None
    return not existed


def symmetries_for(width, height):
    """The default self-ensemble of a width x height image: as many flips/rotations (1-8)
    as keep the pixels processed within ``PIXEL_PASSES``."""
    return max(1, min(8, PIXEL_PASSES // max(1, width * height)))


def denoise_file(input_path, output_path, weights=None, progress=False, symmetries=None):
    """Denoise ``input_path`` into ``output_path`` with a self-ensemble over ``symmetries``
    flips/rotations (None: ``symmetries_for`` the image, said on stderr); every check runs
    before the work."""
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    if not os.path.exists(input_path):
        raise FileNotFoundError(f'input image not found: {input_path}')
    fmt = output_format(output_path)
    _check_output_folder(output_path)
    model = Model()
    model.load_pretrained_model(None if weights is None else os.fspath(weights))
    image = read_image(input_path)
    mode = working_mode(image, input_path)
    _check_format_stores(fmt, mode)
    if symmetries is None:
        symmetries = symmetries_for(*image.size)
        print(f'{input_path}: {image.size[0]}x{image.size[1]}, {symmetries} '
              f'flip{"s" if symmetries > 1 else ""}/rotation{"s" if symmetries > 1 else ""} '
              f'averaged (--symmetries to choose)', file=sys.stderr)
    created = _claim_output(output_path)
    try:
        result = denoise_image(model, image, progress, name=input_path, symmetries=symmetries)
        result.save(output_path, format=fmt, **_save_options(fmt))
    except BaseException:
        if created and os.path.exists(output_path):
            os.remove(output_path)
        raise
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m Miniproject_2.others.denoise',
        description='Denoise a PNG/JPEG image of any size with the Noise2Noise model.')
    parser.add_argument('input', help='the noisy image')
    parser.add_argument('output', help='where to write the denoised image (format from the '
                                       'extension)')
    parser.add_argument('--weights', default=None,
                        help='weights file (default: Miniproject_2/bestmodel.pth)')
    parser.add_argument('--symmetries', type=int, choices=range(1, 9), metavar='{1..8}',
                        help='flips/rotations averaged (default: 8 for images up to 0.5 '
                             'megapixels, fewer above, 1 from 4 megapixels; 1 is 8x faster '
                             'than 8)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        denoise_file(args.input, args.output, args.weights, progress=not args.quiet,
                     symmetries=args.symmetries)
    except (OSError, ValueError, RuntimeError, ImportError) as error:
        parser.exit(2, f'{parser.prog}: error: {error}\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
