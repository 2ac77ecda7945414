"""SGD, Adagrad and Adam against torch.optim, fed the same gradient sequence."""
import io

import pytest
import torch

from Miniproject_2.model import MSE, SGD, Adagrad, Adam, Conv2d
from strategies import random_tensor

SHAPES = [(4, 3, 3, 3), (4,), (2, 5)]
STEPS = 20

CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.05)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, weight_decay=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.05, eps=1e-6)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
]
IDS = [f'{ours.__name__}-' + '-'.join(f'{k}={v}' for k, v in kw.items())
       for ours, _, kw in CASES]


def gradient(step, index, shape, dtype):
    """The gradient sequence both optimizers see (independent of the parameters)."""
    return random_tensor(1000 * step + index, shape, dtype)


def make_pairs(dtype):
    params = [random_tensor(i, shape, dtype) for i, shape in enumerate(SHAPES)]
    return [(p, p.new_zeros(p.shape)) for p in params]


def feed(pairs, step, dtype):
    for index, (p, grad) in enumerate(pairs):
        grad.copy_(gradient(step, index, p.shape, dtype))


@pytest.mark.parametrize('ours, theirs, kwargs', CASES, ids=IDS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_optimizer_matches_torch_optim(ours, theirs, kwargs, dtype):
    pairs = make_pairs(dtype)
    twins = [torch.nn.Parameter(p.clone()) for p, _ in pairs]
    optimizer, reference = ours([pair for pair in pairs], **kwargs), theirs(twins, **kwargs)
    for step in range(STEPS):
        feed(pairs, step, dtype)
        for index, twin in enumerate(twins):
            twin.grad = gradient(step, index, twin.shape, dtype)
        optimizer.step()
        reference.step()
        for (p, _), twin in zip(pairs, twins):
            difference = (p - twin.detach()).abs().max().item()
            assert difference <= 1e-6, f'step {step + 1}: max |difference| {difference}'
    # The parameters really moved (the comparison is not between two frozen copies).
    assert all((p - random_tensor(i, p.shape, dtype)).abs().max() > 1e-3
               for i, (p, _) in enumerate(pairs))


@pytest.mark.parametrize('ours, theirs, kwargs', CASES, ids=IDS)
def test_state_dict_round_trip_continues_identically(ours, theirs, kwargs):
    dtype = torch.float32
    pairs = make_pairs(dtype)
    optimizer = ours(pairs, **kwargs)
    for step in range(STEPS // 2):
        feed(pairs, step, dtype)
        optimizer.step()
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    # A fresh optimizer on a copy of the parameters, restored from the saved state.
    copies = [(p.clone(), grad.clone()) for p, grad in pairs]
    restored = ours(copies, **kwargs)
    restored.load_state_dict(torch.load(buffer))
    for step in range(STEPS // 2, STEPS):
        feed(pairs, step, dtype)
        feed(copies, step, dtype)
        optimizer.step()
        restored.step()
        for (p, _), (q, _) in zip(pairs, copies):
            assert torch.equal(p, q), f'step {step + 1}: the restored optimizer diverged'


@pytest.mark.parametrize('ours, theirs, kwargs', CASES, ids=IDS)
def test_state_dict_is_a_snapshot(ours, theirs, kwargs):
    pairs = make_pairs(torch.float32)
    optimizer = ours(pairs, **kwargs)
    feed(pairs, 0, torch.float32)
    optimizer.step()
    saved = optimizer.state_dict()
    before = [{k: v.clone() for k, v in s.items()} for s in saved['state']]
    feed(pairs, 1, torch.float32)
    optimizer.step()
    for state, snapshot in zip(saved['state'], before):
        assert state.keys() == snapshot.keys()
        assert all(torch.equal(state[k], snapshot[k]) for k in state)


def test_load_state_dict_rejects_a_different_parameter_count():
    optimizer = Adam(make_pairs(torch.float32))
    with pytest.raises(ValueError):
        optimizer.load_state_dict(Adam(make_pairs(torch.float32)[:2]).state_dict())


def test_optimizer_updates_module_parameters_in_place():
    torch.manual_seed(0)
    conv = Conv2d(2, 3, 3)
    weight = conv.weight
    optimizer = SGD(conv.param(), lr=0.1)
    loss = MSE()
    x, target = torch.randn(2, 2, 5, 5), torch.randn(2, 3, 3, 3)
    loss.forward(conv.forward(x), target)
    conv.backward(loss.backward())
    expected = weight - 0.1 * conv.param()[0][1]
    optimizer.step()
    assert conv.weight is weight
    torch.testing.assert_close(conv.weight, expected, rtol=0, atol=1e-7)
    optimizer.zero_grad()
    assert all(grad.abs().max() == 0 for _, grad in conv.param())


@pytest.mark.parametrize('make', [lambda p: SGD(p, lr=-0.1), lambda p: Adam(p, lr=-1e-3),
                                  lambda p: SGD(p, lr=0.1, nesterov=True),
                                  lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1,
                                                nesterov=True)])
def test_invalid_hyper_parameters_raise(make):
    with pytest.raises(ValueError):
        make(make_pairs(torch.float32))


def test_no_parameters_raise():
    with pytest.raises(ValueError):
        SGD([], lr=0.1)
