"""The stacked head ensemble (daar.method.stacked) trains each member as training it alone does.

Tolerance: none. The stacked model runs each member through the kernels autograd runs for it alone
(addmm, mm, log-softmax backward; fused Adam with no vector shared by two members), on buffers
aligned as its own tensors would be, so a member's weights, outputs and loss history are bit for bit
those of the plain autograd loop (autograd_fit below: how a single head trained before it became a
stack of one); a float tolerance would hide the rounding differences that grow over the
method's ~5,000 batch-1 steps (a batched-product version drifted to 4e-3 in weights by step 4,850).
lr 1e-3 (100x the method's) and odd widths (d = 30: member slices that a plain stack would misalign)
make any difference show early.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from daar.method import mlp
from daar.method.stacked import StackedMLP, member_stack


def _data(n=120, d=30, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) * 3 + 1).astype(np.float32)
    labels = (x @ rng.standard_normal((d, k))).argmax(1).astype(np.int64)
    return x, labels


def _training(ensemble=3, batch_size=1, epochs=2):
    return mlp.HeadTraining(lr=1e-3, batch_size=batch_size, epochs=epochs, val_fraction=0.05, seed=11,
                            ensemble=ensemble)


def autograd_fit(x, y, out, loss_name, s, member=0) -> mlp.TrainedHead:
    """The reference: nn.Sequential, autograd, fused Adam, one OpenMP thread; the same split, standardisation,
    initialisation, pass order and 200-step loss history as mlp._fit."""
    x = np.asarray(x, dtype=np.float32)
    train_idx, val_idx = mlp._split(len(x), s)
    mean, std = mlp._standardizer(x, train_idx, s)
    seed = mlp.member_seed(s, member)
    z_t, target = torch.from_numpy((x - mean) / std), torch.from_numpy(y)
    history: list[float] = []
    with mlp._torch_threads(1):
        net = mlp._initial_net(x.shape[1], out, seed)
        opt = mlp.make_adam(net.parameters(), s.lr)
        loss_fn = torch.nn.CrossEntropyLoss() if loss_name == "ce" else torch.nn.MSELoss()
        gen = torch.Generator().manual_seed(seed)
        for _ in range(s.epochs):
            perm = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=gen)]
            running = torch.zeros((), dtype=torch.float64)
            for i, b in enumerate(range(0, len(perm), s.batch_size)):
                idx = perm[b : b + s.batch_size]
                pred = net(z_t[idx])
                loss = loss_fn(pred, target[idx]) if loss_name == "ce" else loss_fn(pred.squeeze(-1), target[idx])
                opt.zero_grad(set_to_none=False)
                loss.backward()
                opt.step()
                running += loss.detach()
                if (i + 1) % 200 == 0:
                    history.append(running.item() / 200)
                    running.zero_()
    return mlp.TrainedHead(state={k: v.detach().clone() for k, v in net.state_dict().items()}, d=x.shape[1],
                           out=out, mean=mean.astype(np.float32), std=std.astype(np.float32), train_idx=train_idx,
                           val_idx=val_idx, history=history)


def _max_diff(a: mlp.TrainedHead, b: mlp.TrainedHead) -> float:
    assert list(a.state) == list(b.state)  # nn.Sequential's keys, in its order
    assert all(a.state[k].shape == b.state[k].shape for k in a.state)
    return max(float((a.state[k] - b.state[k]).abs().max()) for k in a.state)


def _same(a: mlp.TrainedHead, b: mlp.TrainedHead) -> bool:
    return _max_diff(a, b) == 0.0 and all(a.state[k].is_contiguous() for k in a.state)


@pytest.mark.parametrize(("loss", "batch_size"), [("ce", 1), ("ce", 4), ("mse", 1), ("mse", 4)])
def test_each_stacked_member_is_the_member_trained_alone(loss, batch_size):
    x, labels = _data()
    y, out = (labels, 3) if loss == "ce" else (np.tanh(x[:, 0] - x[:, 1]).astype(np.float32), 1)
    s = _training(batch_size=batch_size)  # 114 training records: at batch 4 the last batch has 2
    stacked = mlp._fit_stacked(x, y, out, loss, s, "t", [0, 1, 2])
    for m, head in enumerate(stacked):
        alone = autograd_fit(x, y, out, loss, s, member=m)
        assert _same(head, alone), _max_diff(head, alone)
        assert _same(mlp._fit(x, y, out, loss, s, "t", member=m), alone)  # a stack of one
        np.testing.assert_array_equal(head.forward(x), alone.forward(x))
        np.testing.assert_array_equal(head.train_idx, alone.train_idx)
        np.testing.assert_array_equal(head.val_idx, alone.val_idx)
        np.testing.assert_allclose(head.mean, alone.mean)
        np.testing.assert_allclose(head.std, alone.std)
        assert head.history == alone.history
    # and the members are not copies of one another: other initialisations, other orders
    assert _max_diff(stacked[0], stacked[1]) > 1e-2
    assert np.abs(stacked[0].forward(x) - stacked[2].forward(x)).max() > 1e-3


def test_stacking_does_not_couple_members():
    """Adam and the summed loss are per member: a member's weights do not depend on who it is stacked with."""
    x, labels = _data(seed=1)
    s = _training()
    three = mlp._fit_stacked(x, labels, 3, "ce", s, "t", [0, 1, 2])
    alone = mlp._fit_stacked(x, labels, 3, "ce", s, "t", [1])[0]
    assert _same(three[1], alone)


def test_ensembles_train_stacked_and_a_single_head_as_the_plain_loop(monkeypatch):
    x, labels = _data(seed=2)
    s = _training(ensemble=3)
    calls = []
    real = mlp._train_stacked
    monkeypatch.setattr(mlp, "_train_stacked", lambda *a, **k: calls.append(k["seeds"]) or real(*a, **k))
    monkeypatch.setattr(mlp, "STACK_WORKERS", 1)
    ens = mlp.train_classifier(x, labels, 3, s)
    assert calls == [[11, 11 + 7919, 11 + 2 * 7919]]  # one stack of the three members' seeds
    assert len(ens.members) == 3 and set(ens.metrics) == {"val_accuracy", "val_n", "confusion"}
    # the saved format is the one of sequentially trained members: the same array names and shapes
    seq = mlp.HeadEnsemble([autograd_fit(x, labels, 3, "ce", s, m) for m in range(3)])
    arrays, seq_arrays = mlp.head_to_arrays(ens, "dom"), mlp.head_to_arrays(seq, "dom")
    assert list(arrays) == list(seq_arrays)
    assert all(arrays[k].shape == seq_arrays[k].shape and arrays[k].dtype == seq_arrays[k].dtype for k in arrays)
    back = mlp.head_from_arrays(arrays, "dom")
    np.testing.assert_array_equal(back.predict_proba(x), ens.predict_proba(x))
    np.testing.assert_array_equal(ens.predict_proba(x), seq.predict_proba(x))
    assert ens.metrics == mlp.train_classifier(x, labels, 3, s).metrics
    # --head-ensemble 1 is a stack of one, bit for bit the plain loop
    calls.clear()
    single = mlp.train_classifier(x, labels, 3, _training(ensemble=1)).members[0]
    assert calls == [[11]]
    assert _same(single, autograd_fit(x, labels, 3, "ce", _training(ensemble=1)))


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_element_wise_threads_do_not_change_a_head(monkeypatch, loss):
    """The weight gradients and Adam run on every CPU the stacks leave free (a single head: all of them);
    element-wise work is exact at any thread count, so 1, 2 and 3 threads give the same head bit for bit.
    d = 192 gives layers of 74k weights, past torch's 32,768-element grain, so the threads share them."""
    x, labels = _data(n=80, d=192, seed=5)
    y, out = (labels, 3) if loss == "ce" else (np.tanh(x[:, 0] - x[:, 1]).astype(np.float32), 1)
    s = _training(ensemble=1, epochs=1)
    ref = autograd_fit(x, y, out, loss, s)
    seen = []
    for n in (1, 2, 3):
        monkeypatch.setattr(mlp, "_elementwise_threads", lambda workers, n=n: seen.append(workers) or n)
        head = mlp._fit(x, y, out, loss, s, "t")
        assert _same(head, ref), (n, _max_diff(head, ref))
        assert head.history == ref.history
    assert seen == [1, 1, 1]  # one member: one stack


def test_large_members_are_stacked_in_groups_that_fit_the_memory_cap(monkeypatch):
    assert mlp._stack_groups(list(range(8)), 576, 4) == [list(range(8))]  # ~25 MiB a member
    assert mlp._stack_groups(list(range(8)), 3584, 4) == [[0, 1], [2, 3], [4, 5], [6, 7]]  # ~0.9 GiB a member
    # stacks trained at once share the cap, and the members are split evenly between them
    assert mlp._stack_groups(list(range(8)), 576, 4, workers=2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert mlp._stack_groups(list(range(3)), 576, 4, workers=2) == [[0, 1], [2]]
    assert mlp._stack_groups(list(range(8)), 3584, 4, workers=2) == [[0], [1], [2], [3], [4], [5], [6], [7]]
    x, labels = _data(seed=3)
    s = _training(ensemble=3)
    whole = mlp._fit_stacked(x, labels, 3, "ce", s, "t", [0, 1, 2])
    monkeypatch.setattr(mlp, "STACK_BYTES", 1)  # one member a group
    grouped = mlp._fit_stacked(x, labels, 3, "ce", s, "t", [0, 1, 2])
    assert all(_same(a, b) for a, b in zip(whole, grouped, strict=True))


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_stacks_trained_in_threads_side_by_side_are_the_members_trained_alone(monkeypatch, loss):
    """Two stacks at once, each in its own thread: every member bit for bit as in one stack, in member
    order (the initial weights come from the global RNG before any thread starts; each thread runs one
    OpenMP thread, as the single stack does)."""
    x, labels = _data(seed=4)
    y, out = (labels, 3) if loss == "ce" else (np.tanh(x[:, 0] - x[:, 1]).astype(np.float32), 1)
    s = _training(ensemble=4)
    monkeypatch.setattr(mlp, "STACK_WORKERS", 1)
    one = mlp._fit_stacked(x, y, out, loss, s, "t", [0, 1, 2, 3])
    monkeypatch.setattr(mlp, "STACK_WORKERS", 2)
    threads, before = [], torch.get_num_threads()
    real = mlp._train_stacked
    monkeypatch.setattr(mlp, "_train_stacked",
                        lambda *a, **k: threads.append(threading.current_thread().name) or real(*a, **k))
    two = mlp._fit_stacked(x, y, out, loss, s, "t", [0, 1, 2, 3])
    assert len(threads) == 2 and all(name.startswith("daar-heads") for name in threads)
    assert all(_same(a, b) for a, b in zip(one, two, strict=True))
    assert [h.history for h in one] == [h.history for h in two]
    assert torch.get_num_threads() == before  # the caller's thread setting is left as it was


@pytest.mark.parametrize(("loss", "batch"), [("ce", 1), ("ce", 3), ("mse", 1), ("mse", 3)])
def test_hand_written_gradients_are_autograds(loss, batch):
    torch.manual_seed(0)
    nets = [mlp.build_mlp(10, 4 if loss == "ce" else 1) for _ in range(2)]
    stacked = StackedMLP(nets)
    x = torch.randn(2, batch, 10)
    target = torch.randint(0, 4, (2, batch)) if loss == "ce" else torch.rand(2, batch)
    losses = stacked.gradients(x, target, loss)
    fn = torch.nn.CrossEntropyLoss() if loss == "ce" else torch.nn.MSELoss()
    for m, net in enumerate(nets):
        pred = net(x[m].clone())  # a tensor of its own, aligned as in training (a view can round otherwise)
        ref = fn(pred, target[m]) if loss == "ce" else fn(pred.squeeze(-1), target[m])
        net.zero_grad()
        ref.backward()
        assert abs(float(losses[m]) - float(ref.detach())) < 1e-6
        names = [n for n, mod in net.named_children() if isinstance(mod, torch.nn.Linear)]
        for i, name in enumerate(names):
            lin = getattr(net, name)
            assert torch.equal(stacked.weight_grads[i][m], lin.weight.grad)
            assert torch.equal(stacked.bias_grads[i][m], lin.bias.grad)
    # the weights stay the members' own: member 1's slice is its Linear weight
    assert torch.equal(stacked.state_dicts()[1]["0.weight"], nets[1][0].weight.detach())


def test_member_slices_are_aligned_like_tensors_alone():
    for shape in [(30,), (60, 30), (1, 15), (4,)]:
        stack = member_stack(5, shape)
        assert stack.shape == (5, *shape)
        assert all(s.is_contiguous() and s.data_ptr() % 64 == 0 for s in stack)


def test_stacked_mlp_rejects_what_it_cannot_train():
    with pytest.raises(ValueError, match="Linear, ReLU"):
        StackedMLP([torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))])
    stacked = StackedMLP([mlp.build_mlp(4, 1)])
    with pytest.raises(ValueError, match="unknown loss"):
        stacked.gradients(torch.zeros(1, 1, 4), torch.zeros(1, 1), "hinge")


def test_the_regressor_trains_on_its_standardised_target_and_answers_in_its_units():
    """psi_div's members are the members trained on (target - mean) / std of the training split, their outputs
    mapped back; so a target in other units (a * t + b) gives the same ranking and a * output + b."""
    x, _ = _data(seed=3)
    t = (np.tanh(x[:, 0] - x[:, 1]) * 0.3 + 0.7).astype(np.float32)
    s = _training(ensemble=2)
    head = mlp.train_regressor(x, t, s)
    train_idx, _ = mlp._split(len(x), s)
    mean, std = float(t[train_idx].mean()), float(t[train_idx].std())
    plain = mlp._fit_stacked(x, ((t - mean) / std).astype(np.float32), 1, "mse", s, "t", [0, 1])
    for member, ref in zip(head.members, plain, strict=True):
        assert _same(member, ref) and (member.target_mean, member.target_std) == (mean, std)
        np.testing.assert_allclose(member.forward(x), ref.forward(x) * np.float32(std) + np.float32(mean), rtol=1e-6)
    scaled = mlp.train_regressor(x, (10 * t - 3).astype(np.float32), s)
    np.testing.assert_allclose(scaled.forward(x), 10 * head.forward(x) - 3, rtol=1e-4, atol=1e-4)
    # the target's mean and std travel with the saved head
    back = mlp.head_from_arrays(mlp.head_to_arrays(head, "div"), "div")
    np.testing.assert_array_equal(back.forward(x), head.forward(x))
    # trained on the raw target the members would be other heads (the standardisation is not a no-op)
    raw = mlp._fit_stacked(x, t, 1, "mse", s, "t", [0])[0]
    assert _max_diff(raw, head.members[0]) > 1e-3
