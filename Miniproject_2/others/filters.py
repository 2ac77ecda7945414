"""Classical denoisers to measure the network against, each with its parameter tuned.

    python -m Miniproject_2.others.filters --data data

A Gaussian blur, a median filter and a bilateral filter, on 0-255 image batches
``N x 3 x H x W`` (borders reflected). ``tune`` picks each filter's parameter that gives the
highest mean per-image PSNR on the pairs it is given: tuned on the validation set it is
scored on, a filter gets an optimistic score, which only makes it a harder baseline.
"""
import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from Miniproject_2.others.data import psnr_per_image


def _reflect_padded(images, radius):
    return F.pad(images.float(), (radius,) * 4, mode='reflect')


def _neighbourhoods(images, radius):
    """Every pixel's (2 radius + 1)^2 neighbours, as a last dimension."""
    size = 2 * radius + 1
    return _reflect_padded(images, radius).unfold(2, size, 1).unfold(3, size, 1).flatten(-2)


def _gaussian_weights(sigma, radius):
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return torch.exp(-taps ** 2 / (2 * sigma ** 2))


def gaussian_blur(images, sigma):
    """Separable Gaussian blur, truncated at 3 sigma (at least one pixel each way)."""
    radius = max(1, round(3 * sigma))
    kernel = _gaussian_weights(sigma, radius)
    kernel /= kernel.sum()
    channels = images.shape[1]
    rows = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    blurred = F.conv2d(_reflect_padded(images, radius), rows, groups=channels)
    return F.conv2d(blurred, rows.transpose(2, 3), groups=channels)


def median_filter(images, size):
    """Median of each channel over a size x size window (odd size)."""
    return _neighbourhoods(images, size // 2).median(-1).values


def bilateral_filter(images, sigma_range, sigma_space=1.0):
    """Each pixel the mean of its neighbours, weighted by spatial closeness (``sigma_space``
    pixels) and by colour similarity (``sigma_range`` on the 0-255 scale, all channels)."""
    radius = max(1, round(2 * sigma_space))
    neighbours = _neighbourhoods(images, radius)                      # N C H W K
    spatial = _gaussian_weights(sigma_space, radius)
    spatial = (spatial.view(-1, 1) * spatial.view(1, -1)).flatten()
    distance = (neighbours - images.float().unsqueeze(-1)).pow(2).sum(1, keepdim=True)
    weights = spatial * torch.exp(-distance / (2 * sigma_range ** 2))
    return (weights * neighbours).sum(-1) / weights.sum(-1)


FILTERS = {  # name: (function, the parameters tune tries, each a tuple of arguments)
    'Gaussian blur': (gaussian_blur, [(s,) for s in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8,
                                                     0.9, 1.0, 1.2, 1.5, 2.0)]),
    'median': (median_filter, [(3,), (5,)]),
    'bilateral': (bilateral_filter, [(r, s) for r in (15, 30, 60, 120, 240)
                                     for s in (0.5, 0.7, 1.0)]),
}


def score(denoised, clean):
    """Mean per-image PSNR (dB) of 0-255 images, as the course computes it."""
    return psnr_per_image(denoised.clamp(0, 255), clean).mean().item()


def tune(noisy, clean, filters=FILTERS):
    """{filter name: {'parameter': best value, 'psnr': its mean PSNR}} on these pairs."""
    results = {}
    for name, (function, values) in filters.items():
        scores = {value: score(function(noisy, *value), clean) for value in values}
        best = max(scores, key=scores.get)
        results[name] = {'parameter': best, 'psnr': scores[best]}
    return results


def best_filter(tuned):
    """The name of the best filter in ``tune``'s results."""
    return max(tuned, key=lambda name: tuned[name]['psnr'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data', help='folder with val_data.pkl')
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    args = parser.parse_args(argv)
    noisy, clean = torch.load(Path(args.data) / 'val_data.pkl', weights_only=True)
    tuned = tune(noisy, clean)
    print(f'noisy input: {score(noisy.float(), clean):.2f} dB')
    for name, result in tuned.items():
        print(f"{name:14s} {result['psnr']:.2f} dB with {result['parameter']}")
    if args.out:
        Path(args.out).write_text(json.dumps(tuned, indent=1) + '\n')


if __name__ == '__main__':
    main()
