"""Grader-style harness for Miniproject_2, written after the course's automated test.

    python test.py -p . -d data

Checks, in order: the folder structure; ``Model()``; ``predict`` on a random 512x512 image;
the pretrained PSNR on ``val_data.pkl`` (printed as ``[PSNR: xx.xx dB]``); the framework's
blocks against PyTorch (Conv2d, Sigmoid, Sequential forward with torch.allclose's default
tolerances, every module's backward against autograd); then one epoch of training on all
of ``train_data.pkl`` starting from the pretrained weights, whose PSNR must stay above the
noisy input's. Without ``-d`` the data folder is ``data/``, built first if missing (about
4 minutes on 2 cores; the course's own files work as they are). Exits non-zero on any
failure.
"""
import argparse
import importlib
import math
import sys
import time
import unittest
from pathlib import Path

import torch
import torch.nn.functional as F

ARGS = None  # set by main(): project path, data path, whether to train


def compute_psnr(x, y, max_range=1.0):
    """Mean over images of each image's PSNR, as the course's test computes it."""
    assert x.shape == y.shape and x.ndim == 4
    return (20 * math.log10(max_range) - 10 * torch.log10(((x - y) ** 2).mean((1, 2, 3)))).mean()


def import_project():
    sys.path.insert(0, str(ARGS.project))
    return importlib.import_module('Miniproject_2.model')


def load_data():
    data = Path(ARGS.data)
    if not ((data / 'train_data.pkl').exists() and (data / 'val_data.pkl').exists()):
        sys.path.insert(0, str(ARGS.project))
        from Miniproject_2.others.data import ensure_data
        ensure_data(data)
    train = torch.load(data / 'train_data.pkl', weights_only=True)
    val = torch.load(data / 'val_data.pkl', weights_only=True)
    return train, val


class Tests(unittest.TestCase):
    """Named test_<n>_...: unittest runs them in this order."""

    @classmethod
    def setUpClass(cls):
        cls.model_module = import_project()
        (cls.train_input, cls.train_target), (cls.val_input, cls.val_target) = load_data()

    def test_1_folder_structure(self):
        root = Path(ARGS.project) / 'Miniproject_2'
        for name in ('__init__.py', 'model.py', 'bestmodel.pth', 'Report_2.pdf', 'others'):
            self.assertTrue((root / name).exists(), f'missing {root / name}')

    def test_2_model_and_predict(self):
        model = self.model_module.Model()
        image = torch.rand(1, 3, 512, 512) * 255
        output = model.predict(image)
        self.assertEqual(output.shape, image.shape)
        self.assertGreaterEqual(output.min().item(), 0)
        self.assertLessEqual(output.max().item(), 255)

    def test_3_pretrained_psnr(self):
        model = self.model_module.Model()
        model.load_pretrained_model()
        psnr = self._psnr(model)
        noisy = compute_psnr(self.val_input.float() / 255, self.val_target.float() / 255).item()
        print(f'\n[PSNR: {psnr:.2f} dB] (noisy input: {noisy:.2f} dB)')
        self.assertGreater(psnr, noisy)

    def test_4_conv_forward_as_torch(self):
        m = self.model_module
        for seed in range(20):
            torch.manual_seed(seed)
            x = torch.randn(1, 3, 32, 32)
            conv = m.Conv2d(3, 3, 3)
            reference = F.conv2d(x, conv.weight, conv.bias)
            self.assertTrue(torch.allclose(conv.forward(x), reference))
            self.assertTrue(torch.allclose(m.Sigmoid().forward(x), torch.sigmoid(x)))
            self.assertTrue(torch.allclose(m.Sequential(conv, m.Sigmoid()).forward(x),
                                           torch.sigmoid(reference)))

    def test_5_backward_as_autograd(self):
        m = self.model_module
        torch.manual_seed(0)
        cases = [
            (m.Conv2d(3, 4, 3, stride=2, padding=1),
             lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
            (m.TransposeConv2d(3, 4, 4, stride=2, padding=1),
             lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1)),
            (m.Upsampling(3, 4, 3, scale_factor=2, padding=1),
             lambda x, w, b: F.conv2d(F.interpolate(x, scale_factor=2), w, b, padding=1)),
            (m.NearestUpsampling(2), lambda x: F.interpolate(x, scale_factor=2)),
            (m.ReLU(), F.relu), (m.LeakyReLU(0.1), lambda x: F.leaky_relu(x, 0.1)),
            (m.ELU(), F.elu), (m.Sigmoid(), torch.sigmoid),
        ]
        for module, reference in cases:
            with self.subTest(module=repr(module)):
                x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
                module.to(dtype=torch.float64)
                output = module.forward(x)
                grad = torch.randn_like(output)
                module.zero_grad()
                grad_input = module.backward(grad)
                leaves = [x.clone().requires_grad_()] + [
                    p.clone().requires_grad_() for p, _ in module.param()]
                reference(*leaves).backward(grad)
                self.assertTrue(torch.allclose(grad_input, leaves[0].grad))
                for (_, ours), leaf in zip(module.param(), leaves[1:]):
                    self.assertTrue(torch.allclose(ours, leaf.grad))

    def test_6_mse_and_optimizer(self):
        m = self.model_module
        prediction, target = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
        loss = m.MSE()
        self.assertTrue(torch.allclose(loss.forward(prediction, target),
                                       F.mse_loss(prediction, target)))
        leaf = prediction.clone().requires_grad_()
        F.mse_loss(leaf, target).backward()
        self.assertTrue(torch.allclose(loss.backward(), leaf.grad))
        weight, grad = torch.randn(5), torch.randn(5)
        sgd = m.SGD([(weight, grad)], lr=0.1)
        before = weight.clone()
        sgd.step()
        self.assertTrue(torch.allclose(weight, before - 0.1 * grad))

    def test_7_train_one_epoch_from_pretrained(self):
        if not ARGS.train:
            self.skipTest('--no-train')
        model = self.model_module.Model()
        model.load_pretrained_model()
        started = time.perf_counter()
        model.train(self.train_input, self.train_target, num_epochs=1)
        minutes = (time.perf_counter() - started) / 60
        psnr = self._psnr(model)
        noisy = compute_psnr(self.val_input.float() / 255, self.val_target.float() / 255).item()
        print(f'\n[PSNR after one more epoch: {psnr:.2f} dB] ({minutes:.1f} min; '
              f'noisy input: {noisy:.2f} dB)')
        self.assertGreater(psnr, noisy)

    def _psnr(self, model):
        output = model.predict(self.val_input)
        return compute_psnr(output / 255, self.val_target.float() / 255).item()


def main(argv=None):
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-p', '--project', default='.', help='project root (default: .)')
    parser.add_argument('-d', '--data', default='data',
                        help='folder with train_data.pkl and val_data.pkl (default: data, '
                             'built if missing)')
    parser.add_argument('--no-train', dest='train', action='store_false',
                        help='skip the one-epoch training check (2-3 minutes on 2 cores)')
    ARGS = parser.parse_args(argv)
    ARGS.project = Path(ARGS.project).resolve()
    result = unittest.main(argv=[sys.argv[0], '-v'], exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == '__main__':
    main()
