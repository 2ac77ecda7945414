"""Benchmark our framework against torch.nn on the same networks, in one process.

    python -m Miniproject_2.others.bench --out results/bench.json

For the course's baseline network and for the network ``Model`` ships, it builds our
network and its torch.nn twin (eager, autograd) with the same weights, first checks that
both compute the same outputs and gradients (relative 1e-6 in float64: speed never comes
from a wrong result), then times, interleaved, the median of repeats after a warm-up:

1. a training step (forward, MSE, backward, Adam step) at batch 32 and 100;
2. ``predict`` (a single pass, without the self-ensemble) on 1,000 images of 32x32;
3. ``predict`` on one 512x512 and one 2048x2048 image;

and records how much memory each of our runs adds at its peak (Linux's peak RSS).

torch runs in both memory layouts: contiguous NCHW, and channels-last (model and input
converted with ``memory_format=torch.channels_last``), where oneDNN's direct convolutions
made its U-Net step about 1.4x faster here. Ours gets what ``Model`` feeds its network,
channels-last images. ``ratio`` is ours / the faster torch layout (``torch_s``), below 1
is faster; ``ratio_nchw`` and ``ratio_channels_last`` compare with each layout.

Timings on a shared machine move between runs, and not only by noise: on this 2-core
machine there are spells, minutes long, in which our training step runs 30-45% slower
(its im2col copies about 70%, its GEMMs about 17%) and torch's 5-10%, as if other
tenants were taking the shared cache and memory bandwidth that our memory-bound passes
need. So ``--runs N`` repeats the whole measurement in N fresh processes, one after the
other, and reports per case the median over the runs (of the ratio and of each time), with
every run's ratio under ``ratios``: the README quotes those.
"""
import argparse
import copy
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from Miniproject_2 import model as ours
from Miniproject_2.others.twin import torch_twin


def _status_mb(field):
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024


def current_rss_mb():
    return _status_mb('VmRSS')


def peak_rss_mb():
    return _status_mb('VmHWM')


def reset_peak_rss():
    """Make the kernel's peak-RSS counter restart from the current use (Linux)."""
    with open('/proc/self/clear_refs', 'w') as clear:
        clear.write('5')


def median_seconds(functions, repeats, warmup=2):
    """Median seconds of each function, run interleaved so drift hits both alike."""
    for function in functions:
        for _ in range(warmup):
            function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, samples in zip(functions, times):
            started = time.perf_counter()
            function()
            samples.append(time.perf_counter() - started)
    return [statistics.median(samples) for samples in times]


def check_same_results(network, twin, batch=4, size=32, memory_format=torch.contiguous_format):
    """Outputs and weight gradients of the two networks agree to relative 1e-6, both run in
    float64 on copies, on input in ``memory_format`` (the twin's layout). In float32 a pre-activation within rounding of zero can land on either
    side of a (Leaky)ReLU's kink: one such pixel moved the first layer's weight gradient by
    0.3% here, in either framework. (Input gradients, which a network's first layer skips,
    are checked per module by the tests.)"""
    ours64 = copy.deepcopy(network).to(dtype=torch.float64)
    twin64 = copy.deepcopy(twin).double()
    x = torch.rand(batch, 3, size, size, dtype=torch.float64).contiguous(
        memory_format=memory_format)
    grad = torch.randn(batch, 3, size, size, dtype=torch.float64)
    output = ours64(x)
    ours64.zero_grad()
    ours64.backward(grad)
    reference = twin64(x)
    twin64.zero_grad()
    reference.backward(grad)

    def close(a, b, what):
        error = ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
        if error > 1e-6:
            raise AssertionError(f'{what} differs from torch.nn by {error:.1e} (relative)')
    close(output, reference.detach(), 'output')
    for (name, _), (_, ours_grad), theirs in zip(ours64.named_parameters(), ours64.param(),
                                                 twin64.parameters()):
        close(ours_grad, theirs.grad, f'the gradient of {name}')


def _channels_last(tensor):
    return tensor.contiguous(memory_format=torch.channels_last)


LAYOUTS = ('nchw', 'channels_last')
MEMORY_FORMATS = (torch.contiguous_format, torch.channels_last)


def twins(network):
    """The torch.nn twin of ``network`` in each layout of ``LAYOUTS``."""
    twin = torch_twin(network)
    return [copy.deepcopy(twin).to(memory_format=memory_format) for memory_format in MEMORY_FORMATS]


def training_steps(network, twins, batch):
    """Our training step and torch's in each layout: forward, MSE, backward, Adam step."""
    x, y = torch.rand(batch, 3, 32, 32), torch.rand(batch, 3, 32, 32)
    loss = ours.MSE()
    optimizer = ours.Adam(network.param())
    x_last, y_last = _channels_last(x), _channels_last(y)

    def ours_step():
        optimizer.zero_grad()
        loss(network(x_last), y_last)
        network.backward(loss.backward())
        optimizer.step()

    def torch_step(twin, x, y):
        twin_optimizer = torch.optim.Adam(twin.parameters())

        def step():
            twin_optimizer.zero_grad()
            torch.nn.functional.mse_loss(twin(x), y).backward()
            twin_optimizer.step()
        return step
    nchw, channels_last = twins
    return [ours_step, torch_step(nchw, x, y), torch_step(channels_last, x_last, y_last)]


def predicts(model, twins, images):
    """Our ``predict`` and torch's in each layout, one pass each (no self-ensemble: the
    frameworks are compared); each converts the 0-255 images itself."""
    def ours_predict():
        return model.predict(images, symmetries=1)

    def torch_predict(twin, layout):
        def run():
            with torch.no_grad():
                return twin(layout(images / 255)).clamp_(0, 1).mul_(255)
        return run
    nchw, channels_last = twins
    return [ours_predict, torch_predict(nchw, lambda x: x),
            torch_predict(channels_last, _channels_last)]


def benchmark(name, model, repeats):
    """All timings of one network; ``model`` is a Model whose network is measured."""
    network = model.denoiser.network
    torch_twins = twins(network)
    for twin, memory_format in zip(torch_twins, MEMORY_FORMATS):
        check_same_results(network, twin, memory_format=memory_format)
    print(f'{name}: outputs and gradients match torch.nn in both layouts', file=sys.stderr)
    cases = {f'train_step_batch_{b}': training_steps(network, torch_twins, b) for b in (32, 100)}
    for case, shape in (('predict_1000x32x32', (1000, 3, 32, 32)),
                        ('predict_512x512', (1, 3, 512, 512)),
                        ('predict_2048x2048', (1, 3, 2048, 2048))):
        cases[case] = predicts(model, torch_twins, torch.rand(shape) * 255)
    results = {}
    for case, runs in cases.items():
        single = '2048' in case  # seconds per run: time one run of each
        before = current_rss_mb()
        reset_peak_rss()
        runs[0]()
        extra_memory = peak_rss_mb() - before
        ours_seconds, *torch_seconds = median_seconds(
            runs, repeats=1 if single else repeats, warmup=0 if single else 1)
        results[case] = entry = {'ours_s': ours_seconds, 'torch_s': min(torch_seconds),
                                 'ratio': ours_seconds / min(torch_seconds),
                                 'ours_extra_memory_mb': extra_memory}
        for layout, seconds in zip(LAYOUTS, torch_seconds):
            entry[f'torch_{layout}_s'] = seconds
            entry[f'ratio_{layout}'] = ours_seconds / seconds
        print(f'{name:9s} {case:22s} ours {ours_seconds * 1e3:8.1f} ms  torch nchw '
              f'{torch_seconds[0] * 1e3:8.1f} ms, channels_last {torch_seconds[1] * 1e3:8.1f} ms'
              f'  ratio {entry["ratio"]:.2f} (nchw {entry["ratio_nchw"]:.2f}, channels_last '
              f'{entry["ratio_channels_last"]:.2f})  ours +{extra_memory:.0f} MB', file=sys.stderr)
    return results


NETWORKS = ('baseline', 'shipped')


def measure(repeats):
    """All cases for both networks, in this process."""
    torch.manual_seed(0)
    shipped = ours.Model()
    baseline = ours.Model(network='baseline', widths=(64,))
    return {'machine': {'cpu': platform.processor() or platform.machine(),
                        'threads': torch.get_num_threads(), 'torch': torch.__version__},
            'architecture': shipped.denoiser.architecture,
            'baseline': benchmark('baseline', baseline, repeats),
            'shipped': benchmark('shipped', shipped, repeats)}


def combine(reports):
    """One report from several processes' reports: per case the median of each number over
    the runs, and every run's ratio under ``ratios``."""
    combined = {key: reports[0][key] for key in ('machine', 'architecture')}
    combined['runs'] = len(reports)
    for network in NETWORKS:
        combined[network] = {}
        for case, first in reports[0][network].items():
            entries = [report[network][case] for report in reports]
            combined[network][case] = {key: statistics.median(entry[key] for entry in entries)
                                       for key in first}
            combined[network][case]['ratios'] = [entry['ratio'] for entry in entries]
    return combined


def measure_in_fresh_processes(runs, repeats):
    reports = []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(runs):
            print(f'run {run + 1}/{runs}', file=sys.stderr)
            out = Path(folder) / f'run-{run}.json'
            subprocess.run([sys.executable, '-m', 'Miniproject_2.others.bench', '--runs', '1',
                            '--repeats', str(repeats), '--out', str(out)], check=True)
            reports.append(json.loads(out.read_text()))
    return combine(reports)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='results/bench.json', help='JSON file to write')
    parser.add_argument('--repeats', type=int, default=7,
                        help='timed repeats of each case in each process')
    parser.add_argument('--runs', type=int, default=5,
                        help='fresh processes to measure in (1: this process only)')
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeats < 1:
        parser.error('--runs and --repeats must be at least 1')
    if args.runs == 1:
        report = measure(args.repeats)
    else:
        report = measure_in_fresh_processes(args.runs, args.repeats)
        for network in NETWORKS:
            for case, entry in report[network].items():
                print(f'{network:9s} {case:22s} median ratio {entry["ratio"]:.2f} (nchw '
                      f'{entry["ratio_nchw"]:.2f}, channels_last {entry["ratio_channels_last"]:.2f})'
                      '  runs ' + ' '.join(f'{ratio:.2f}' for ratio in entry['ratios']),
                      file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=list) + '\n')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
