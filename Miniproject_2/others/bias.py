"""What each loss leaves on Noise2Noise targets: the PSNR ceiling its bias puts on a network.

    python -m Miniproject_2.others.bias --data data [--out results/noise_bias.json]

With the squared loss the network learns each pixel's mean target; with the absolute loss,
its median. Pixelation has zero mean and no clipping (a noisy pixel is a real pixel), so the
squared loss is unbiased there, while the median of a block is not its mean. Every other
family is clipped to 0-255, which pulls the mean of a dark or bright pixel's targets
towards mid-grey, and impulses pull it towards their own mean; clipping keeps the median
(a monotone map), and a pixel hit less than half the time keeps its median near the clean
value. A camera clips its linear light and bends it by a concave tone curve, which moves
the mean of dark pixels' targets and keeps their median (at its dark level, 44 dB with
the absolute loss against 35 with the squared one, over 30 images). So pixelation pairs
take the squared loss and every other family's the absolute one (``noises.ROBUST_FAMILIES``;
``RobustMSE`` in model.py). ``target_bias`` measures, per family, the PSNR that each
loss's minimiser reaches against the image the noisy copies are versions of (the clean
one, or a camera's noise-free rendering, ``noises.with_reference``): the ceiling its bias
puts on a perfect network.
"""
import argparse
import json
import math
from pathlib import Path

import torch

from Miniproject_2.others import noises
from Miniproject_2.others.data import fetch_validation_photos, sample_pixelated


def bias_ceilings(copies, clean):
    """The PSNR (dB) that the bias of each loss's minimiser allows, from many noisy copies
    ``K x N x 3 x H x W`` of ``clean``: the squared loss learns each pixel's mean target, the
    absolute loss its median. The copies are split in two halves and each statistic taken
    on both: the product of the two errors has the squared bias as its mean (the halves'
    sampling errors are independent), so the estimate is not inflated by the finite K. An
    unbiased minimiser gives a large (or infinite) ceiling."""
    first, second = copies.double().chunk(2)
    clean = clean.double()

    def ceiling(a, b):
        squared_bias = ((a - clean) * (b - clean)).mean().item() / 255 ** 2
        return math.inf if squared_bias <= 0 else -10 * math.log10(squared_bias)
    return {'squared loss (mean)': ceiling(first.mean(0), second.mean(0)),
            'absolute loss (median)': ceiling(first.median(0).values,
                                              second.median(0).values)}


def camera_settings():
    """{name: process}: the camera's noise at its bright and dark levels
    (``noises.CAMERA_LEVELS``), without and with a JPEG of quality 90."""
    return {f'camera, {level}' + (f', JPEG q{quality}' if quality else ''):
            noises.camera_at(level, quality)
            for level in noises.CAMERA_LEVELS for quality in (None, 90)}


def target_bias(photos, n_images=100, draws=200, seed=0):
    """{family: bias_ceilings} over ``n_images`` clean images of ``photos`` with ``draws``
    noisy targets each: pixelation (f 10-30), every process of ``noises.PROCESSES`` and the
    camera's settings (``camera_settings``), each against the image its copies are noisy
    versions of (``noises.with_reference``)."""
    generator = torch.Generator().manual_seed(seed)
    clean, pixelated = sample_pixelated(photos, n_images, generator, draws,
                                        desc='pixelating for the bias')
    rows = {'pixelation': bias_ceilings(torch.stack(pixelated), clean)}
    for name, process in {**noises.PROCESSES, **camera_settings()}.items():
        reference, copies = noises.with_reference(process, clean, generator, draws)
        rows[name] = bias_ceilings(torch.stack(copies), reference)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data', help="the data folder (its cache/ holds "
                                                       "the validation photos)")
    parser.add_argument('--images', type=int, default=100)
    parser.add_argument('--draws', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the table as JSON here')
    args = parser.parse_args(argv)
    rows = target_bias(fetch_validation_photos(Path(args.data) / 'cache'), args.images,
                       args.draws, args.seed)
    print(f"{'family':26} {'squared loss':>13} {'absolute loss':>14}   (the ceiling the bias "
          f"allows, dB)")
    for name, row in rows.items():
        print(f"{name:26} {row['squared loss (mean)']:13.2f} "
              f"{row['absolute loss (median)']:14.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({'images': args.images, 'draws': args.draws,
                                              'seed': args.seed, 'rows': rows}, indent=1)
                                  + '\n')
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
