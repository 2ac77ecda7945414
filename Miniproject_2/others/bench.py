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

    python -m Miniproject_2.others.bench --layers --out results/bench_layers.json

times instead, in this process, each distinct convolution layer of the shipped network on
the input it sees in a batch-32 training step (forward, and forward with backward) against
its torch.nn twin in channels_last, and MKL's GEMM rate on a full-resolution chunk's
shape by the number of output columns: where the remaining time goes.

    python -m Miniproject_2.others.bench --against HEAD~1

times our ``model.py`` now against itself at a git revision, interleaved in one process,
on the same network and weights (``predict`` on 1,000 images of 32x32 and one of 512x512,
then training steps at batch 32 and 100): how each change to the core was judged. It
writes a JSON file only when given ``--out``.

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

Machines differ in more than drift. Each report describes its machine (``machine``: CPU
vendor, family and model, L2 per core, threads, torch, and MKL's GFLOP/s on a 2048^3
product, the fastest rate any of our matrix products gets). All of our arithmetic is MKL
GEMMs; torch's channels_last convolutions are oneDNN's own kernels. On an AMD Zen 5 machine
here MKL reached about 185 GFLOP/s, half of what AVX-512 allows, where an earlier machine's
MKL ran our chunk GEMMs twice as fast. So each training step also reports
``gemm_floor_ratio``: our step's products (``ours_gemm_gflop``, counted while it runs) at
MKL's 2048^3 rate, over torch's whole step. It is the ratio ours would reach if nothing but
its products took time; above 1, no change outside the products can catch torch.
"""
import argparse
import copy
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from Miniproject_2 import model as ours
from Miniproject_2.others.twin import torch_twin

ROOT = Path(__file__).resolve().parents[2]  # the repository, where git finds old model.py


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


class ProductCounter(TorchFunctionMode):
    """Counts the floating-point operations of the matrix products run under it: 2 per
    multiply-add, (output elements) x (contraction length) multiply-adds per product."""
    PRODUCTS = {'mm', 'matmul', '__matmul__', 'bmm', 'addmm', 'addmm_', 'baddbmm', 'baddbmm_'}

    def __init__(self):
        super().__init__()
        self.flop = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = getattr(func, '__name__', '')
        if name in self.PRODUCTS:
            left = args[1] if name.startswith(('addmm', 'baddbmm')) else args[0]
            self.flop += 2 * result.numel() * left.shape[-1]
        return result


def product_gflop(run):
    """GFLOP of the matrix products one call of ``run`` makes."""
    with ProductCounter() as counter:
        run()
    return counter.flop / 1e9


def gemm_peak_gflops(repeats, size=2048):
    """MKL's GFLOP/s on a (size x size) @ (size x size) product."""
    a, b, out = torch.rand(size, size), torch.rand(size, size), torch.empty(size, size)
    seconds, = median_seconds([lambda: torch.mm(a, b, out=out)], repeats)
    return 2 * size ** 3 / seconds / 1e9


def _cpu_description():
    """'vendor family F model M (model name)' from /proc/cpuinfo, where there is one."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            fields = dict(line.split(':', 1) for line in cpuinfo if ':' in line)
    except OSError:
        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model "
            f"{fields.get('model', '?')} ({fields.get('model name', '?')})")


def _l2_per_core():
    try:
        return Path('/sys/devices/system/cpu/cpu0/cache/index2/size').read_text().strip()
    except OSError:
        return None


def machine(repeats):
    """The machine a report was measured on (see the module's docstring)."""
    return {'cpu': _cpu_description(), 'l2_per_core': _l2_per_core(),
            'threads': torch.get_num_threads(), 'torch': torch.__version__,
            'mkl_sgemm_2048_gflops': gemm_peak_gflops(repeats)}


def check_same_results(network, twin, batch=4, size=32, memory_format=torch.contiguous_format):
    """Outputs and weight gradients of the two networks agree to relative 1e-6, both run in
    float64 on copies, on input in ``memory_format`` (the twin's layout). In float32 a
    pre-activation within rounding of zero can land on either side of a (Leaky)ReLU's kink:
    one such pixel moved the first layer's weight gradient by 0.3% here, in either
    framework. (Input gradients, which a network's first layer skips, are checked per module
    by the tests.)"""
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


def training_step(framework, network, x, y):
    """A training step of ``network`` (forward, MSE, backward, Adam step) with the loss and
    optimizer of ``framework``, our model module (or another revision of it)."""
    loss = framework.MSE()
    optimizer = framework.Adam(network.param())

    def step():
        optimizer.zero_grad()
        loss(network(x), y)
        network.backward(loss.backward())
        optimizer.step()
    return step


def training_steps(network, twins, batch):
    """Our training step and torch's in each layout: forward, MSE, backward, Adam step."""
    x, y = torch.rand(batch, 3, 32, 32), torch.rand(batch, 3, 32, 32)
    x_last, y_last = _channels_last(x), _channels_last(y)
    ours_step = training_step(ours, network, x_last, y_last)

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


def benchmark(name, model, repeats, peak_gflops):
    """All timings of one network; ``model`` is a Model whose network is measured, and
    ``peak_gflops`` MKL's rate for its training steps' ``gemm_floor_ratio``."""
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
        if case.startswith('train'):
            entry['ours_gemm_gflop'] = product_gflop(runs[0])
            entry['gemm_floor_ratio'] = entry['ours_gemm_gflop'] / peak_gflops / entry['torch_s']
        print(f'{name:9s} {case:22s} ours {ours_seconds * 1e3:8.1f} ms  torch nchw '
              f'{torch_seconds[0] * 1e3:8.1f} ms, channels_last {torch_seconds[1] * 1e3:8.1f} ms'
              f'  ratio {entry["ratio"]:.2f} (nchw {entry["ratio_nchw"]:.2f}, channels_last '
              f'{entry["ratio_channels_last"]:.2f})  ours +{extra_memory:.0f} MB'
              + (f'  GEMM floor {entry["gemm_floor_ratio"]:.2f}' if 'gemm_floor_ratio' in entry
                 else ''), file=sys.stderr)
    return results


NETWORKS = ('baseline', 'shipped')
CONVOLUTIONS = (ours.Conv2d, ours.TransposeConv2d, ours.Upsampling)


def convolution_layers(network, batch=32, size=32):
    """(layer, input shape) for each distinct convolution layer of ``network`` (type,
    settings and input shape), in forward order, for a (batch, 3, size, size) input."""
    def leaves(module):
        if isinstance(module, ours.Sequential):
            for child in module:
                yield from leaves(child)
        else:
            yield module
    layers = [module for module in leaves(network) if isinstance(module, CONVOLUTIONS)]
    shapes = {}
    for layer in layers:  # record each layer's input on one forward pass
        def recording(input, layer=layer, forward=layer.forward):
            shapes[id(layer)] = tuple(input.shape)
            return forward(input)
        layer.forward = recording
    try:
        network(torch.rand(batch, 3, size, size))
    finally:
        for layer in layers:
            del layer.forward
    distinct = {}
    for layer in layers:
        distinct.setdefault((repr(layer), shapes[id(layer)]), (layer, shapes[id(layer)]))
    return list(distinct.values())


def layer_timings(network, repeats, batch=32, size=32):
    """Per distinct convolution layer (on a (batch, 3, size, size) input): ours and its
    torch.nn twin (channels_last), forward and forward + backward (the input gradient only
    where the layer computes one, as in the network), medians of ``repeats`` interleaved;
    ``backward_ratio`` compares the differences, the backward pass alone."""
    rows = []
    for layer, shape in convolution_layers(network, batch, size):
        x = _channels_last(torch.rand(shape))
        grad = _channels_last(torch.rand(layer(x).shape))
        twin = torch_twin(layer).to(memory_format=torch.channels_last)
        x_twin = x.clone().requires_grad_(layer.compute_input_grad)

        def ours_step(layer=layer, x=x, grad=grad):
            layer(x)
            layer.backward(grad)

        def torch_forward(twin=twin, x=x):
            with torch.no_grad():
                twin(x)

        def torch_step(twin=twin, x=x_twin, grad=grad):
            twin(x).backward(grad)
        forward, forward_twin, step, step_twin = median_seconds(
            [lambda layer=layer, x=x: layer(x), torch_forward, ours_step, torch_step], repeats)
        layer.zero_grad()
        rows.append({'layer': repr(layer), 'input': list(shape),
                     'ours_forward_ms': forward * 1e3, 'torch_forward_ms': forward_twin * 1e3,
                     'forward_ratio': forward / forward_twin,
                     'ours_step_ms': step * 1e3, 'torch_step_ms': step_twin * 1e3,
                     'step_ratio': step / step_twin,
                     'backward_ratio': (step - forward) / (step_twin - forward_twin)})
        print(f'{rows[-1]["layer"]:60.60s} {str(shape):18s} forward {forward * 1e3:6.2f} ms '
              f'({rows[-1]["forward_ratio"]:.2f}x torch)  with backward {step * 1e3:6.2f} ms '
              f'({rows[-1]["step_ratio"]:.2f}x)', file=sys.stderr)
    return rows


def gemm_gflops(repeats, rows=2048, depth=216, widths=(24, 32, 48)):
    """MKL's GFLOP/s on (rows x depth) @ (depth x width) by output width: a chunk of a
    full-resolution 24-channel 3x3 convolution's patch matrix times its weight matrix."""
    rates = {}
    for width in widths:
        a, b, out = torch.rand(rows, depth), torch.rand(depth, width), torch.empty(rows, width)
        seconds, = median_seconds([lambda: out.addmm_(a, b, beta=0)], repeats * 10)
        rates[width] = 2 * rows * depth * width / seconds / 1e9
        print(f'GEMM {rows}x{depth} @ {depth}x{width}: {rates[width]:.0f} GFLOP/s', file=sys.stderr)
    return rates


def measure_layers(repeats):
    torch.manual_seed(0)
    network = ours.Model().denoiser.network
    return {'machine': machine(repeats), 'batch': 32, 'layers': layer_timings(network, repeats),
            'gemm_gflops_by_width': gemm_gflops(repeats)}


def measure(repeats):
    """All cases for both networks, in this process."""
    torch.manual_seed(0)
    shipped = ours.Model()
    baseline = ours.Model(network='baseline', widths=(64,))
    description = machine(repeats)
    print(f"{description['cpu']}, L2 {description['l2_per_core']} per core: MKL "
          f"{description['mkl_sgemm_2048_gflops']:.0f} GFLOP/s on 2048^3", file=sys.stderr)
    peak = description['mkl_sgemm_2048_gflops']
    return {'machine': description, 'architecture': shipped.denoiser.architecture,
            'baseline': benchmark('baseline', baseline, repeats, peak),
            'shipped': benchmark('shipped', shipped, repeats, peak)}


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


def model_at(revision):
    """Our ``model.py`` as it was at the git ``revision``, imported as a module of its own."""
    shown = subprocess.run(['git', 'show', f'{revision}:Miniproject_2/model.py'], cwd=ROOT,
                           capture_output=True, text=True)
    if shown.returncode != 0:
        raise ValueError(f'no model.py at git revision {revision!r}: {shown.stderr.strip()}')
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'model.py'
        path.write_text(shown.stdout)
        spec = importlib.util.spec_from_file_location(f'model_at_{revision}', path)
        framework = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(framework)
    return framework


AGAINST_CASES = {'predict_1000x32x32': (1000, 3, 32, 32), 'predict_512x512': (1, 3, 512, 512),
                 'train_step_batch_32': (32, 3, 32, 32), 'train_step_batch_100': (100, 3, 32, 32)}


def against(revision, repeats, cases=AGAINST_CASES):
    """Our framework now against itself at ``revision``: the same network and weights in
    both, first checked to give the same output (relative 1e-5), then each case of
    ``cases`` (name: input shape) timed interleaved in this process. ``ratio`` is now / then:
    how every change to the core was judged, with old and new exposed alike to the
    machine's drift. The cases run in order, and each leaves the allocator holding memory
    that the next one reuses instead of taking fresh memory from the system, which is slow
    to touch the first time; ``predict`` comes first, as in a process that only predicts."""
    then = model_at(revision)
    torch.manual_seed(0)
    model_now, model_then = ours.Model(), then.Model()
    network_now, network_then = model_now.denoiser.network, model_then.denoiser.network
    network_then.load_state_dict(network_now.state_dict())
    images = torch.rand(2, 3, 32, 32) * 255
    expected, output = model_now.predict(images, symmetries=1), model_then.predict(
        images, symmetries=1)
    error = ((output - expected).abs().max() / expected.abs().max().clamp_min(1e-12)).item()
    if error > 1e-5:
        raise AssertionError(f'model.py at {revision} predicts differently from now '
                             f'(relative {error:.1e}): time only what computes the same')
    results = {'revision': revision, 'cases': {}}
    for case, shape in cases.items():
        if case.startswith('train'):
            x, y = _channels_last(torch.rand(shape)), _channels_last(torch.rand(shape))
            runs = [training_step(ours, network_now, x, y),
                    training_step(then, network_then, x, y)]
        else:
            images = torch.rand(shape) * 255
            runs = [lambda model=model: model.predict(images, symmetries=1)
                    for model in (model_now, model_then)]
        now_s, then_s = median_seconds(runs, repeats)
        results['cases'][case] = {'now_s': now_s, 'then_s': then_s, 'ratio': now_s / then_s}
        print(f'{case:22s} now {now_s * 1e3:8.1f} ms  at {revision} {then_s * 1e3:8.1f} ms  '
              f'now / then {now_s / then_s:.3f}', file=sys.stderr)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='JSON file to write (default: results/bench.json, '
                        'or results/bench_layers.json with --layers)')
    parser.add_argument('--layers', action='store_true',
                        help='time each convolution layer and MKL GEMM shapes instead')
    parser.add_argument('--against', metavar='REVISION',
                        help='time model.py now against model.py at this git revision '
                        '(interleaved, in this process) instead')
    parser.add_argument('--repeats', type=int, default=7,
                        help='timed repeats of each case in each process')
    parser.add_argument('--runs', type=int, default=5,
                        help='fresh processes to measure in (1: this process only)')
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeats < 1:
        parser.error('--runs and --repeats must be at least 1')
    if args.layers and args.against:
        parser.error('--layers and --against are separate measurements: give one')
    out = args.out or ('results/bench_layers.json' if args.layers else 'results/bench.json')
    if args.against:
        report = against(args.against, args.repeats)
        if args.out is None:
            return
    elif args.layers:
        report = measure_layers(args.repeats)
    elif args.runs == 1:
        report = measure(args.repeats)
    else:
        report = measure_in_fresh_processes(args.runs, args.repeats)
        for network in NETWORKS:
            for case, entry in report[network].items():
                print(f'{network:9s} {case:22s} median ratio {entry["ratio"]:.2f} (nchw '
                      f'{entry["ratio_nchw"]:.2f}, channels_last '
                      f'{entry["ratio_channels_last"]:.2f})  runs '
                      + ' '.join(f'{ratio:.2f}' for ratio in entry['ratios'])
                      + (f'  GEMM floor {entry["gemm_floor_ratio"]:.2f}'
                         if 'gemm_floor_ratio' in entry else ''), file=sys.stderr)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=1, default=list) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
