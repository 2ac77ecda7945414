"""MSE against torch.nn.MSELoss: 0-dim forward, gradient, no broadcasting. ClippedMSE against
autograd through torch.distributions' normal cdf, a Monte-Carlo mean of clipped noise, and
the point of it: its minimum is the clean value where plain MSE's is biased. RobustMSE against
autograd on a per-image formula, and its point: the median of noisy targets as minimiser."""
import pytest
import torch
from hypothesis import given, strategies as st

from Miniproject_2.model import MSE, ClippedMSE, RobustMSE
from oracle import assert_close
from strategies import SETTINGS, dtypes, random_tensor, seeds

nonempty_shapes = st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple)


def autograd_mse(prediction, target, grad_output=None):
    with torch.enable_grad():
        p = prediction.clone().requires_grad_()
        loss = torch.nn.MSELoss()(p, target)
        loss.backward(grad_output)
    return loss.detach(), p.grad


@SETTINGS
@given(nonempty_shapes, dtypes, seeds)
def test_mse_matches_torch(shape, dtype, seed):
    prediction = random_tensor(seed, shape, dtype)
    target = random_tensor(seed + 1, shape, dtype)
    snapshot = prediction.clone(), target.clone()
    loss_fn = MSE()
    loss = loss_fn.forward(prediction, target)
    loss_ref, grad_ref = autograd_mse(prediction, target)
    assert loss.dim() == 0 and loss.dtype == dtype
    assert_close(loss, loss_ref, 'loss')
    assert_close(loss_fn.backward(), grad_ref, 'gradient')
    assert torch.equal(prediction, snapshot[0]) and torch.equal(target, snapshot[1])


@SETTINGS
@given(nonempty_shapes, dtypes, seeds, st.floats(-3, 3, allow_nan=False))
def test_mse_backward_scales_by_the_output_gradient(shape, dtype, seed, scale):
    prediction = random_tensor(seed, shape, dtype)
    target = random_tensor(seed + 1, shape, dtype)
    grad_output = torch.tensor(scale, dtype=dtype)
    loss_fn = MSE()
    loss_fn.forward(prediction, target)
    _, grad_ref = autograd_mse(prediction, target, grad_output)
    assert_close(loss_fn.backward(grad_output), grad_ref, 'gradient')


def test_mse_is_zero_for_equal_inputs():
    x = random_tensor(0, (2, 3, 4, 4))
    loss_fn = MSE()
    assert loss_fn.forward(x, x.clone()).item() == 0
    assert torch.equal(loss_fn.backward(), torch.zeros_like(x))


@pytest.mark.parametrize('prediction_shape, target_shape', [
    ((2, 3), (3,)), ((1, 3), (3,)), ((3,), (3, 1)), ((2, 3, 4, 4), (1, 3, 4, 4)),
    ((4,), (5,)), ((), (1,))])
def test_shape_mismatch_raises_instead_of_broadcasting(prediction_shape, target_shape):
    with pytest.raises(ValueError, match='MSE'):
        MSE().forward(torch.zeros(prediction_shape), torch.zeros(target_shape))
    with pytest.raises(ValueError, match='MSE'):
        MSE().forward(torch.zeros(target_shape), torch.zeros(prediction_shape))


def test_mse_repr_and_no_parameters():
    assert repr(MSE()) == 'MSE()'
    assert MSE().param() == []


# --------------------------------------------------------------------------------------
# ClippedMSE
# --------------------------------------------------------------------------------------

def reference_expected_clipped(mean, sigma):
    """E[clip(mean + sigma Z, 0, 1)] = integral of the clipped value against the normal density,
    written as P(X > 1) + E[X; 0 < X < 1] with torch.distributions (not our formula)."""
    normal = torch.distributions.Normal(mean, sigma)
    low, high = torch.zeros_like(mean), torch.ones_like(mean)
    inside_mass = normal.cdf(high) - normal.cdf(low)
    # E[X; 0 < X < 1] = mean * P(0 < X < 1) + sigma^2 * (density(0) - density(1))
    partial_mean = mean * inside_mass + sigma ** 2 * (normal.log_prob(low).exp()
                                                      - normal.log_prob(high).exp())
    return partial_mean + (1 - normal.cdf(high))


def sigma_shapes(shape):
    """sigma shapes that broadcast to ``shape`` without changing it: per image, scalar, full."""
    per_image = (shape[0],) + (1,) * (len(shape) - 1) if shape else ()
    return st.sampled_from([per_image, (), shape])


@st.composite
def clipped_cases(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    return shape, draw(sigma_shapes(shape)), draw(dtypes), draw(seeds)


def clipped_inputs(shape, sigma_shape, dtype, seed):
    """Predictions around [0, 1] (some outside), targets in [0, 1], sigma in (0.01, 0.5)."""
    prediction = random_tensor(seed, shape, dtype, scale=0.5) + 0.5
    target = (random_tensor(seed + 1, shape, dtype) * 0.3 + 0.5).clamp(0, 1)
    sigma = random_tensor(seed + 2, sigma_shape, dtype).abs() * 0.2 + 0.01
    return prediction, target, sigma


@SETTINGS
@given(clipped_cases())
def test_clipped_mse_matches_autograd(case):
    shape, sigma_shape, dtype, seed = case
    prediction, target, sigma = clipped_inputs(shape, sigma_shape, dtype, seed)
    loss_fn = ClippedMSE()
    loss = loss_fn(prediction, target, sigma)
    with torch.enable_grad():
        p = prediction.clone().requires_grad_()
        reference = torch.nn.MSELoss()(reference_expected_clipped(p, sigma), target)
        reference.backward()
    assert loss.dim() == 0 and loss.dtype == dtype
    assert_close(loss, reference.detach(), 'loss')
    assert_close(loss_fn.backward(), p.grad, 'gradient')


@pytest.mark.parametrize('mean, sigma', [(0.0, 0.1), (0.03, 0.15), (0.5, 0.05), (0.97, 0.17),
                                         (1.2, 0.3), (-0.1, 0.05)])
def test_expected_clipped_is_the_mean_of_clipped_noise(mean, sigma):
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sampled = (mean + sigma * z).clamp(0, 1).mean()
    loss_fn = ClippedMSE()
    # With target 0 the loss is g^2: its square root is the expected clipped value.
    g = loss_fn(torch.tensor([mean], dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                torch.tensor(sigma, dtype=torch.float64)).sqrt()
    assert abs(g - sampled) < 5 * sigma / 2_000_000 ** 0.5


def test_clipped_mse_is_minimal_at_the_clean_value_where_mse_is_not():
    """Targets: one dark pixel value (0.03) under clipped noise (sigma 0.15)."""
    clean, sigma = 0.03, 0.15
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    targets = (clean + sigma * z).clamp(0, 1)
    candidates = torch.linspace(-0.1, 0.2, 301, dtype=torch.float64)

    def best(loss_fn, *sigma_arg):
        losses = [loss_fn(p.expand_as(targets).clone(), targets, *sigma_arg).item()
                  for p in candidates]
        return candidates[min(range(len(losses)), key=losses.__getitem__)].item()
    assert abs(best(ClippedMSE(), torch.tensor(sigma, dtype=torch.float64)) - clean) < 0.004
    assert best(MSE()) > clean + 0.03  # the clipped noise's mean, biased towards grey


@pytest.mark.parametrize('loss_class', [ClippedMSE, RobustMSE])
@SETTINGS
@given(shape=nonempty_shapes, dtype=dtypes, seed=seeds)
def test_the_noise_aware_losses_without_their_argument_are_mse(loss_class, shape, dtype, seed):
    """ClippedMSE without sigma and RobustMSE without robust marks: MSE, bit for bit."""
    prediction = random_tensor(seed, shape, dtype)
    target = random_tensor(seed + 1, shape, dtype)
    plain, ours = MSE(), loss_class()
    assert torch.equal(ours(prediction, target), plain(prediction, target))
    assert torch.equal(ours.backward(), plain.backward())


@pytest.mark.parametrize('sigma, error, match', [
    (torch.tensor(0.0), ValueError, 'positive'),
    (torch.tensor(-0.1), ValueError, 'positive'),
    (torch.tensor(float('nan')), ValueError, 'positive'),
    (torch.full((3, 1, 1, 1), 0.1), ValueError, 'broadcast'),
    (torch.full((2, 1, 1, 1, 1), 0.1), ValueError, 'broadcast'),
    (torch.full((2, 1, 1, 1), 1, dtype=torch.int64), TypeError, 'floating'),
    (0.1, TypeError, 'tensor'),
])
def test_clipped_mse_rejects_bad_sigma(sigma, error, match):
    with pytest.raises(error, match=f'ClippedMSE.*{match}'):
        ClippedMSE()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), sigma)


# --------------------------------------------------------------------------------------
# RobustMSE
# --------------------------------------------------------------------------------------

def autograd_robust_mse(prediction, target, robust, grad_output=None):
    """Per image, mean squared error, or for a robust one its mean absolute error squared."""
    with torch.enable_grad():
        p = prediction.clone().requires_grad_()
        difference = (p - target).flatten(1)
        per_image = torch.where(robust, difference.abs().mean(1) ** 2,
                                difference.pow(2).mean(1))
        loss = per_image.mean()
        loss.backward(grad_output)
    return loss.detach(), p.grad


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 4), dtypes, seeds,
       st.floats(-3, 3, allow_nan=False))
def test_robust_mse_matches_autograd(n, channels, side, dtype, seed, scale):
    prediction = random_tensor(seed, (n, channels, side, side), dtype)
    target = random_tensor(seed + 1, prediction.shape, dtype)
    robust = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5
    grad_output = torch.tensor(scale, dtype=dtype)
    loss_fn = RobustMSE()
    loss = loss_fn.forward(prediction, target, robust)
    loss_ref, grad_ref = autograd_robust_mse(prediction, target, robust, grad_output)
    assert loss.dim() == 0 and loss.dtype == dtype
    assert_close(loss, loss_ref, 'loss')
    assert_close(loss_fn.backward(grad_output), grad_ref, 'gradient')


@pytest.mark.parametrize('robust', [torch.ones(3, dtype=torch.bool), torch.ones(2),
                                    torch.ones(2, 1, dtype=torch.bool), [True, False]],
                         ids=['count', 'dtype', 'shape', 'list'])
def test_robust_mse_refuses_marks_that_are_not_one_bool_per_image(robust):
    with pytest.raises(ValueError, match='robust must be a bool tensor'):
        RobustMSE().forward(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), robust)


def minimiser(targets, robust, steps=1000):
    """The constant c that minimises RobustMSE(c, targets) over one image whose pixels are
    the noisy targets (gradient descent from their mean)."""
    target = targets.view(1, 1, 10, 10)
    c, loss_fn = targets.mean(), RobustMSE()
    for _ in range(steps):
        loss_fn.forward(c.expand_as(target), target, torch.tensor([robust]))
        c = c - 0.05 * loss_fn.backward().sum()
    return c.item()


def test_robust_images_learn_the_median_target_and_the_others_the_mean():
    """Impulse-like targets (clean 0.3, a quarter of them 1): the squared loss learns their
    mean, pulled to 0.475; the robust loss learns their median, the clean 0.3."""
    targets = torch.tensor([0.3] * 75 + [1.0] * 25, dtype=torch.float64)
    assert minimiser(targets, robust=False) == pytest.approx(0.475, abs=1e-6)
    assert minimiser(targets, robust=True) == pytest.approx(0.3, abs=1e-2)
