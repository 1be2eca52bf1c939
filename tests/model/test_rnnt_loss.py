"""Tests of model/rnnt_loss.py against brute-force enumeration and naive recursions."""

import itertools
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_equal

from model.rnnt_loss import rnnt_loss


# -- naive golden models ---------------------------------------------------------------------

def log_softmax_ref(logits):
    """Per-node log-softmax with Python floats: ``lp[t][u][v]``."""
    out = []
    for row_t in logits.tolist():
        out_t = []
        for z in row_t:
            m = max(z)
            lse = m + math.log(sum(math.exp(x - m) for x in z))
            out_t.append([x - lse for x in z])
        out.append(out_t)
    return out


def brute_force_loss(logits, targets, blank=0):
    """``-log P`` by enumerating every alignment of one utterance.

    ``logits`` is ``(T, U+1, V)`` (exactly the utterance, no padding), ``targets`` a list of U
    ids. An alignment is a sequence of T blanks and U labels whose last symbol is a blank: the
    U label positions are any U-subset of the first T+U-1 steps.
    """
    lp = log_softmax_ref(logits)
    t_len, u_len = logits.shape[0], len(targets)
    path_probs = []
    for label_steps in itertools.combinations(range(t_len + u_len - 1), u_len):
        t = u = 0
        logp = 0.0
        for step in range(t_len + u_len):
            if step in label_steps:
                logp += lp[t][u][targets[u]]
                u += 1
            else:
                logp += lp[t][u][blank]
                t += 1
        assert (t, u) == (t_len, u_len)
        path_probs.append(math.exp(logp))
    assert len(path_probs) == math.comb(t_len + u_len - 1, u_len)
    return -math.log(math.fsum(path_probs))


def naive_alpha_loss(logits, targets, blank=0):
    """``-log P`` from the textbook double loop over (t, u) with Python floats."""
    lp = log_softmax_ref(logits)
    t_len, u_len = logits.shape[0], len(targets)
    alpha = [[-math.inf] * (u_len + 1) for _ in range(t_len)]
    alpha[0][0] = 0.0
    for t in range(t_len):
        for u in range(u_len + 1):
            if t == 0 and u == 0:
                continue
            terms = []
            if t > 0:
                terms.append(alpha[t - 1][u] + lp[t - 1][u][blank])
            if u > 0:
                terms.append(alpha[t][u - 1] + lp[t][u - 1][targets[u - 1]])
            m = max(terms)
            alpha[t][u] = m + math.log(sum(math.exp(x - m) for x in terms))
    return -(alpha[t_len - 1][u_len] + lp[t_len - 1][u_len][blank])


def naive_torch_loss(logits, targets, blank=0):
    """The same double loop on scalar tensors, so autograd gives a reference gradient."""
    lp = torch.log_softmax(logits, dim=-1)
    t_len, u_len = logits.shape[0], len(targets)
    alpha = {}
    for t in range(t_len):
        for u in range(u_len + 1):
            if t == 0 and u == 0:
                alpha[t, u] = torch.zeros((), dtype=logits.dtype)
                continue
            terms = []
            if t > 0:
                terms.append(alpha[t - 1, u] + lp[t - 1, u, blank])
            if u > 0:
                terms.append(alpha[t, u - 1] + lp[t, u - 1, targets[u - 1]])
            alpha[t, u] = torch.logsumexp(torch.stack(terms), dim=0)
    return -(alpha[t_len - 1, u_len] + lp[t_len - 1, u_len, blank])


def random_batch(gen, n, t_max, u_max, v, *, dtype=torch.float64, blank=0, scale=1.0,
                 full=False):
    """Random logits, labels (never blank) and lengths; ``full`` makes every length maximal."""
    logits = scale * torch.randn(n, t_max, u_max + 1, v, generator=gen, dtype=dtype)
    labels = [x for x in range(v) if x != blank]
    targets = torch.tensor(labels)[torch.randint(len(labels), (n, u_max), generator=gen)]
    if full:
        t_lens = torch.full((n,), t_max)
        u_lens = torch.full((n,), u_max)
    else:
        t_lens = torch.randint(1, t_max + 1, (n,), generator=gen)
        u_lens = torch.randint(0, u_max + 1, (n,), generator=gen)
        t_lens[0], u_lens[0] = t_max, u_max           # one utterance fills the padding
    return logits, targets, t_lens, u_lens


def utterance(logits, targets, t_lens, u_lens, i):
    t, u = int(t_lens[i]), int(u_lens[i])
    return logits[i, :t, : u + 1], targets[i, :u].tolist()


# -- against brute force ---------------------------------------------------------------------

@pytest.mark.parametrize("t_max,u_max,v", [(1, 0, 2), (1, 3, 4), (4, 0, 3), (2, 1, 2),
                                           (3, 2, 3), (4, 3, 4), (4, 2, 2)])
@pytest.mark.parametrize("blank", [0, 1])
def test_matches_brute_force(t_max, u_max, v, blank):
    gen = torch.Generator().manual_seed(1000 * t_max + 100 * u_max + 10 * v + blank)
    logits, targets, t_lens, u_lens = random_batch(gen, 6, t_max, u_max, v, blank=blank,
                                                   scale=2.0)
    got = rnnt_loss(logits, targets, t_lens, u_lens, blank=blank, reduction="none")
    assert got.dtype == torch.float64 and got.shape == (6,)
    for i in range(6):
        want = brute_force_loss(*utterance(logits, targets, t_lens, u_lens, i), blank=blank)
        assert abs(float(got[i]) - want) <= 1e-9 * max(1.0, abs(want)), (i, float(got[i]), want)


def test_uniform_logits_closed_form():
    """All-zero logits: every alignment has probability V**-(T+U), and there are
    C(T+U-1, U) of them, so the loss is (T+U) log V - log C(T+U-1, U)."""
    t_max, u_max, v = 40, 15, 7
    t_lens = torch.tensor([40, 1, 17, 25])
    u_lens = torch.tensor([15, 15, 0, 9])
    logits = torch.zeros(4, t_max, u_max + 1, v, dtype=torch.float64)
    targets = torch.ones(4, u_max, dtype=torch.int64)
    got = rnnt_loss(logits, targets, t_lens, u_lens, reduction="none")
    want = [(t + u) * math.log(v) - math.log(math.comb(t + u - 1, u))
            for t, u in zip(t_lens.tolist(), u_lens.tolist())]
    assert_allclose(got.numpy(), want, rtol=1e-12)


def test_certain_alignment_has_zero_loss():
    """Logits that put all mass on one alignment give loss 0 (up to exp(-huge))."""
    t_max, u_max, v = 3, 2, 4
    targets = torch.tensor([[2, 3]])
    # alignment: label 2 at t=0, blank, label 3 at t=1, blank, blank
    logits = torch.full((1, t_max, u_max + 1, v), -100.0, dtype=torch.float64)
    logits[0, 0, 0, 2] = 100.0
    logits[0, 0, 1, 0] = 100.0
    logits[0, 1, 1, 3] = 100.0
    logits[0, 1, 2, 0] = 100.0
    logits[0, 2, 2, 0] = 100.0
    loss = rnnt_loss(logits, targets, torch.tensor([3]), torch.tensor([2]))
    assert 0.0 <= float(loss) < 1e-60


# -- against the naive double loop -----------------------------------------------------------

def test_matches_naive_alpha_medium():
    gen = torch.Generator().manual_seed(7)
    logits, targets, t_lens, u_lens = random_batch(gen, 5, 30, 12, 9, scale=3.0)
    got = rnnt_loss(logits, targets, t_lens, u_lens, reduction="none")
    for i in range(5):
        want = naive_alpha_loss(*utterance(logits, targets, t_lens, u_lens, i))
        assert abs(float(got[i]) - want) <= 1e-9 * max(1.0, abs(want)), (i, float(got[i]), want)


def test_gradient_matches_autograd_of_naive_loop():
    gen = torch.Generator().manual_seed(8)
    logits, targets, t_lens, u_lens = random_batch(gen, 3, 9, 5, 6, scale=2.0)
    x = logits.clone().requires_grad_(True)
    rnnt_loss(x, targets, t_lens, u_lens, reduction="sum").backward()
    want = torch.zeros_like(logits)
    for i in range(3):
        t, u = int(t_lens[i]), int(u_lens[i])
        xi = logits[i, :t, : u + 1].clone().requires_grad_(True)
        naive_torch_loss(xi, targets[i, :u].tolist()).backward()
        want[i, :t, : u + 1] = xi.grad
    assert_allclose(x.grad.numpy(), want.numpy(), rtol=1e-9, atol=1e-12)


# -- gradient check --------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck(reduction, seed):
    gen = torch.Generator().manual_seed(seed)
    logits, targets, t_lens, u_lens = random_batch(gen, 3, 4, 3, 4, blank=seed % 2)
    x = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: rnnt_loss(z, targets, t_lens, u_lens, blank=seed % 2, reduction=reduction),
        (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_gradient_sums_to_zero_over_vocabulary():
    """Through the log-softmax, every node's gradient sums to zero over V."""
    gen = torch.Generator().manual_seed(3)
    logits, targets, t_lens, u_lens = random_batch(gen, 4, 12, 6, 5)
    x = logits.clone().requires_grad_(True)
    rnnt_loss(x, targets, t_lens, u_lens).backward()
    assert_allclose(x.grad.sum(-1).numpy(), 0.0, atol=1e-15)


# -- padding and reductions ------------------------------------------------------------------

def test_padding_invariance():
    """Garbage in padded frames/labels changes neither the losses nor the valid gradient, and
    the padded region gets exactly zero gradient."""
    gen = torch.Generator().manual_seed(11)
    logits, targets, t_lens, u_lens = random_batch(gen, 4, 10, 6, 5)
    t_lens[0], u_lens[0] = 7, 3                  # nobody fills the padding: all padded
    padded = torch.zeros(4, 14, 9, 5, dtype=torch.float64)
    padded[:, :10, :7] = logits
    pad_targets = torch.full((4, 8), -5, dtype=torch.int64)  # out-of-range ids as padding
    pad_targets[:, :6] = targets
    valid_t = torch.arange(14)[None, :, None] < t_lens[:, None, None]
    valid_u = torch.arange(9)[None, None, :] <= u_lens[:, None, None]
    valid = valid_t & valid_u                                   # (N, T, U+1)
    noise = 50.0 * torch.randn(padded.shape, generator=gen, dtype=torch.float64)
    padded = torch.where(valid[..., None], padded, noise)
    for j in range(4):
        u = int(u_lens[j])
        pad_targets[j, u:] = torch.randint(-3, 9, (8 - u,), generator=gen)
    x = padded.clone().requires_grad_(True)
    got = rnnt_loss(x, pad_targets, t_lens, u_lens, reduction="none")
    got.sum().backward()
    for i in range(4):
        li, ti = utterance(logits, targets, t_lens, u_lens, i)
        xi = li.clone().requires_grad_(True)
        want = rnnt_loss(xi[None], torch.tensor([ti], dtype=torch.int64).reshape(1, -1),
                         t_lens[i:i + 1], u_lens[i:i + 1], reduction="sum")
        want.backward()
        assert abs(float(got[i].detach()) - float(want.detach())) <= 1e-12 * float(want.detach())
        t, u = int(t_lens[i]), int(u_lens[i])
        assert_allclose(x.grad[i, :t, : u + 1].numpy(), xi.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert_equal(x.grad[~valid].numpy(), 0.0)


def test_reductions():
    gen = torch.Generator().manual_seed(12)
    logits, targets, t_lens, u_lens = random_batch(gen, 5, 6, 4, 5)
    per = rnnt_loss(logits, targets, t_lens, u_lens, reduction="none")
    assert per.shape == (5,) and bool((per > 0).all())
    total = rnnt_loss(logits, targets, t_lens, u_lens, reduction="sum")
    mean = rnnt_loss(logits, targets, t_lens, u_lens)
    assert total.shape == () and mean.shape == ()
    assert float(total) == pytest.approx(float(per.sum()), rel=1e-15)
    assert float(mean) == pytest.approx(float(per.sum()) / 5, rel=1e-15)


def test_float32_agrees_with_float64():
    gen = torch.Generator().manual_seed(13)
    logits, targets, t_lens, u_lens = random_batch(gen, 4, 40, 15, 29, dtype=torch.float32)
    x32 = logits.clone().requires_grad_(True)
    x64 = logits.double().requires_grad_(True)
    l32 = rnnt_loss(x32, targets, t_lens, u_lens, reduction="none")
    l64 = rnnt_loss(x64, targets, t_lens, u_lens, reduction="none")
    assert l32.dtype == torch.float32
    l32.sum().backward()
    l64.sum().backward()
    assert x32.grad.dtype == torch.float32
    assert_allclose(l32.detach().double().numpy(), l64.detach().numpy(), rtol=1e-6)
    assert_allclose(x32.grad.double().numpy(), x64.grad.numpy(), atol=1e-6)


def test_long_utterance_is_finite():
    """Large T, U and sharp logits: the cumulative-sum trick must not overflow or cancel."""
    gen = torch.Generator().manual_seed(14)
    logits, targets, t_lens, u_lens = random_batch(gen, 2, 300, 120, 29, scale=8.0, full=True)
    x = logits.float().requires_grad_(True)
    loss = rnnt_loss(x, targets, t_lens, u_lens, reduction="none")
    loss.sum().backward()
    assert bool(torch.isfinite(loss).all()) and bool(torch.isfinite(x.grad).all())
    want = rnnt_loss(logits, targets, t_lens, u_lens, reduction="none")
    assert_allclose(loss.detach().double().numpy(), want.numpy(), rtol=1e-6)


# -- argument checking -----------------------------------------------------------------------

def _ok_args():
    logits = torch.zeros(2, 3, 3, 4)
    targets = torch.ones(2, 2, dtype=torch.int64)
    return logits, targets, torch.tensor([3, 2]), torch.tensor([2, 1])


@pytest.mark.parametrize("change,match", [
    (lambda a: (a[0][0], *a[1:]), r"logits must be a float tensor \(N, T, U\+1, V\)"),
    (lambda a: (a[0].long(), *a[1:]), "logits must be a float tensor"),
    (lambda a: (a[0], a[1][:, :1], *a[2:]), r"targets must have shape \(N, U\) = \(2, 2\)"),
    (lambda a: (a[0], a[1].float(), *a[2:]), "targets must hold integer ids"),
    (lambda a: (*a[:2], torch.tensor([3, 0]), a[3]), r"logit_lengths must be in \[1, T=3\]"),
    (lambda a: (*a[:2], torch.tensor([4, 1]), a[3]), r"logit_lengths must be in \[1, T=3\]"),
    (lambda a: (*a[:2], torch.tensor([3.0, 1.0]), a[3]), "logit_lengths must be an integer"),
    (lambda a: (*a[:3], torch.tensor([3, 1])), r"target_lengths must be in \[0, U=2\]"),
    (lambda a: (*a[:3], torch.tensor([1])), r"target_lengths must be an integer tensor of "
                                            r"shape \(2,\)"),
    (lambda a: (a[0], torch.tensor([[1, 0], [1, 1]]), *a[2:]), "other than blank=0"),
    (lambda a: (a[0], torch.tensor([[1, 4], [1, 1]]), *a[2:]), r"label ids in \[0, 4\)"),
])
def test_bad_arguments(change, match):
    with pytest.raises(ValueError, match=match):
        rnnt_loss(*change(_ok_args()))


def test_bad_keywords():
    args = _ok_args()
    with pytest.raises(ValueError, match="reduction must be one of"):
        rnnt_loss(*args, reduction="avg")
    with pytest.raises(ValueError, match=r"blank must be in \[0, 4\)"):
        rnnt_loss(*args, blank=4)
    with pytest.raises(TypeError):
        rnnt_loss(*args, 0)                        # blank is keyword only


def test_padding_target_may_be_blank_or_out_of_range():
    """Only targets within target_lengths are checked: blank 0 past the length is padding."""
    logits, _, t_lens, u_lens = _ok_args()
    a = rnnt_loss(logits, torch.tensor([[1, 2], [3, 0]]), t_lens, u_lens, reduction="none")
    b = rnnt_loss(logits, torch.tensor([[1, 2], [3, 99]]), t_lens, u_lens, reduction="none")
    assert_equal(a.numpy(), b.numpy())
    assert np.isfinite(a.numpy()).all()
