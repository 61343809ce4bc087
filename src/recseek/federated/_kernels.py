"""numba kernels of the federation simulator: every participating client's local training
in one call, one client per ``prange`` iteration (the clients are independent, so the
result does not depend on the number of threads)."""

from __future__ import annotations

import numpy as np

from .._numba import njit, pnjit, prange

OPT_SGD = 0
OPT_ADAM = 1


@pnjit
def local_train_dot(clients, sptr, s_local, s_label, order, tptr, t_items, start_tables, start_of,
                    U, ub, out_rows, losses, epochs, batch_size, optimizer, lr_user, lr_item, reg_user,
                    reg_item, beta1, beta2, eps, threshold, use_bias, two_step):
    """Local training of the dot-product (PMF) backbone on every client of ``clients``.

    Client ``c = clients[j]`` owns samples ``sptr[j]:sptr[j+1]`` (local item position
    ``s_local`` into its touched items ``t_items[tptr[j]:tptr[j+1]]`` and 0/1 label
    ``s_label``); ``order[e, sptr[j]:sptr[j+1]]`` is its sample order in local epoch ``e``
    (values local to the client). It scores ``sigmoid(<U[c], W_i> + ub[c])`` (bias only
    with ``use_bias``) and minimises the mean binary cross-entropy per mini-batch of
    ``batch_size``. ``W`` starts as rows ``t_items`` of ``start_tables[start_of[j]]``.

    ``optimizer`` OPT_ADAM: one Adam (torch semantics, moments over every touched row)
    for the user part and the item rows; OPT_SGD: plain steps with L2 weight decay
    ``reg_user`` / ``reg_item``. ``two_step`` (PFedRec): per batch, the user part is
    stepped first, then the item rows on a fresh forward pass. Training stops early when
    the running mean loss changes by less than ``threshold`` (relative) between epochs.

    Writes the trained rows to ``out_rows[tptr[j]:tptr[j+1]]``, updates ``U[c]``,
    ``ub[c]`` in place and the client's mean loss to ``losses[j]``.
    """
    d = U.shape[1]
    for j in prange(clients.shape[0]):
        c = clients[j]
        t0, t1 = tptr[j], tptr[j + 1]
        m = t1 - t0
        s0, s1 = sptr[j], sptr[j + 1]
        n = s1 - s0
        W = np.empty((m, d), dtype=np.float32)
        tab = start_of[j]
        for r in range(m):
            for f in range(d):
                W[r, f] = start_tables[tab, t_items[t0 + r], f]
        u = np.empty(d, dtype=np.float32)
        for f in range(d):
            u[f] = U[c, f]
        b = ub[c]
        mW = np.zeros((m, d), dtype=np.float32)
        vW = np.zeros((m, d), dtype=np.float32)
        mu = np.zeros(d, dtype=np.float32)
        vu = np.zeros(d, dtype=np.float32)
        mb = np.float32(0.0)
        vb = np.float32(0.0)
        gW = np.zeros((m, d), dtype=np.float32)
        gu = np.zeros(d, dtype=np.float32)
        step = 0
        total = 0.0
        seen = 0
        prev = -1.0
        for e in range(epochs):
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                nb = stop - start
                inv = np.float32(1.0 / nb)
                # --- forward and gradients
                for r in range(m):
                    for f in range(d):
                        gW[r, f] = 0.0
                for f in range(d):
                    gu[f] = 0.0
                gb = np.float32(0.0)
                batch_loss = 0.0
                for q in range(start, stop):
                    s = s0 + order[e, s0 + q]
                    r = s_local[s]
                    z = b if use_bias else np.float32(0.0)
                    for f in range(d):
                        z += u[f] * W[r, f]
                    p = 1.0 / (1.0 + np.exp(-z))
                    y = s_label[s]
                    # torch's BCELoss clamps the log at -100
                    if y > 0.5:
                        batch_loss += min(-np.log(max(p, 1e-44)), 100.0)
                    else:
                        batch_loss += min(-np.log(max(1.0 - p, 1e-44)), 100.0)
                    g = np.float32((p - y) * inv)
                    for f in range(d):
                        gu[f] += g * W[r, f]
                        gW[r, f] += g * u[f]
                    gb += g
                total += batch_loss
                seen += nb
                step += 1
                if optimizer == OPT_ADAM:
                    bc1 = 1.0 - beta1 ** step
                    bc2 = 1.0 - beta2 ** step
                    for f in range(d):
                        mu[f] = beta1 * mu[f] + (1.0 - beta1) * gu[f]
                        vu[f] = beta2 * vu[f] + (1.0 - beta2) * gu[f] * gu[f]
                        u[f] -= lr_user * (mu[f] / bc1) / (np.sqrt(vu[f] / bc2) + eps)
                    if use_bias:
                        mb = beta1 * mb + (1.0 - beta1) * gb
                        vb = beta2 * vb + (1.0 - beta2) * gb * gb
                        b -= lr_user * (mb / bc1) / (np.sqrt(vb / bc2) + eps)
                    for r in range(m):
                        for f in range(d):
                            gr = gW[r, f]
                            mW[r, f] = beta1 * mW[r, f] + (1.0 - beta1) * gr
                            vW[r, f] = beta2 * vW[r, f] + (1.0 - beta2) * gr * gr
                            W[r, f] -= lr_item * (mW[r, f] / bc1) / (np.sqrt(vW[r, f] / bc2) + eps)
                else:
                    for f in range(d):
                        u[f] -= lr_user * (gu[f] + reg_user * u[f])
                    if use_bias:
                        b -= lr_user * gb
                    if two_step:
                        # item step on a fresh forward pass with the updated user part
                        for r in range(m):
                            for f in range(d):
                                gW[r, f] = 0.0
                        for q in range(start, stop):
                            s = s0 + order[e, s0 + q]
                            r = s_local[s]
                            z = b if use_bias else np.float32(0.0)
                            for f in range(d):
                                z += u[f] * W[r, f]
                            p = 1.0 / (1.0 + np.exp(-z))
                            g = np.float32((p - s_label[s]) * inv)
                            for f in range(d):
                                gW[r, f] += g * u[f]
                    for r in range(m):
                        for f in range(d):
                            W[r, f] -= lr_item * (gW[r, f] + reg_item * W[r, f])
            cur = total / max(seen, 1)
            if e > 0 and threshold > 0.0 and abs(cur - prev) / abs(prev + 1e-5) < threshold:
                break
            prev = cur
        losses[j] = total / max(seen, 1)
        for r in range(m):
            for f in range(d):
                out_rows[t0 + r, f] = W[r, f]
        for f in range(d):
            U[c, f] = u[f]
        ub[c] = b


@njit
def _ncf_forward(x0, head, sizes, woff, boff, acts):
    """Forward pass of the NCF head on the input ``x0`` (2d,): ``acts[l]`` holds the output
    of layer ``l`` (ReLU after every layer but the last); returns the logit."""
    L = sizes.shape[0] - 1
    for k in range(sizes[0]):
        acts[0, k] = x0[k]
    for layer in range(1, L + 1):
        n_in = sizes[layer - 1]
        n_out = sizes[layer]
        w0 = woff[layer - 1]
        b0 = boff[layer - 1]
        for o in range(n_out):
            z = head[b0 + o]
            for k in range(n_in):
                z += head[w0 + o * n_in + k] * acts[layer - 1, k]
            if layer < L and z < 0.0:
                z = 0.0
            acts[layer, o] = z
    return acts[L, 0]


@njit
def _ncf_backward(g, head, sizes, woff, boff, acts, delta, prev, g_head, dx0):
    """Backward pass for the logit gradient ``g``: adds the head's gradient to ``g_head``
    and writes the input's gradient to ``dx0`` (2d,). ``acts`` from :func:`_ncf_forward`."""
    L = sizes.shape[0] - 1
    delta[0] = g
    for layer in range(L, 0, -1):
        n_in = sizes[layer - 1]
        n_out = sizes[layer]
        w0 = woff[layer - 1]
        b0 = boff[layer - 1]
        for k in range(n_in):
            prev[k] = 0.0
        for o in range(n_out):
            dz = delta[o]
            g_head[b0 + o] += dz
            for k in range(n_in):
                g_head[w0 + o * n_in + k] += dz * acts[layer - 1, k]
                prev[k] += head[w0 + o * n_in + k] * dz
        if layer > 1:
            for k in range(n_in):
                delta[k] = prev[k] if acts[layer - 1, k] > 0.0 else 0.0
        else:
            for k in range(n_in):
                dx0[k] = prev[k]


@pnjit
def local_train_ncf(clients, sptr, s_local, s_label, order, tptr, t_items, start_tables, start_of,
                    U, start_heads, head_of, out_heads, sizes, woff, boff, out_rows, losses, epochs,
                    batch_size, optimizer, lr_user, lr_item, lr_head, reg_user, reg_item, reg_head, beta1,
                    beta2, eps, threshold, two_step):
    """Local training of the NCF backbone on every client of ``clients``.

    The client scores ``sigmoid(f([u; W_i]))`` with the MLP ``f`` whose layer widths are
    ``sizes`` (``sizes[0] = 2 d``, ``sizes[-1] = 1``; ReLU between layers) and whose
    parameters are the flat vector ``head``: layer ``l`` has its (out, in) weight matrix
    row-major at ``woff[l]`` and its bias at ``boff[l]``. Client ``j`` starts its head from
    ``start_heads[head_of[j]]`` and writes the trained one to ``out_heads[j]``; samples,
    orders, touched items and item rows are laid out as in :func:`local_train_dot`.

    ``optimizer`` OPT_ADAM: one Adam (torch semantics) over the user vector, the item rows
    (step ``lr_user`` / ``lr_item``) and the head (step ``lr_head``, L2 weight decay
    ``reg_head`` added to its gradient, as torch's ``weight_decay``); OPT_SGD: plain steps
    with L2 weight decay ``reg_user`` / ``reg_item`` / ``reg_head``. ``two_step``: per
    batch the client's own part (user vector and head) is stepped first, then the item
    rows on a fresh forward pass. Early stop and outputs as in :func:`local_train_dot`.
    """
    d = U.shape[1]
    P = start_heads.shape[1]
    L = sizes.shape[0] - 1
    wmax = 0
    for layer in range(L + 1):
        wmax = max(wmax, sizes[layer])
    for j in prange(clients.shape[0]):
        c = clients[j]
        t0, t1 = tptr[j], tptr[j + 1]
        m = t1 - t0
        s0, s1 = sptr[j], sptr[j + 1]
        n = s1 - s0
        W = np.empty((m, d), dtype=np.float32)
        tab = start_of[j]
        for r in range(m):
            for f in range(d):
                W[r, f] = start_tables[tab, t_items[t0 + r], f]
        u = np.empty(d, dtype=np.float32)
        for f in range(d):
            u[f] = U[c, f]
        head = np.empty(P, dtype=np.float32)
        for k in range(P):
            head[k] = start_heads[head_of[j], k]
        # thread-local buffers
        x0 = np.empty(2 * d, dtype=np.float32)
        dx0 = np.empty(2 * d, dtype=np.float32)
        acts = np.zeros((L + 1, wmax), dtype=np.float32)
        delta = np.empty(wmax, dtype=np.float32)
        prev = np.empty(wmax, dtype=np.float32)
        mW = np.zeros((m, d), dtype=np.float32)
        vW = np.zeros((m, d), dtype=np.float32)
        mu = np.zeros(d, dtype=np.float32)
        vu = np.zeros(d, dtype=np.float32)
        mh = np.zeros(P, dtype=np.float32)
        vh = np.zeros(P, dtype=np.float32)
        gW = np.zeros((m, d), dtype=np.float32)
        gu = np.zeros(d, dtype=np.float32)
        gh = np.zeros(P, dtype=np.float32)
        step = 0
        total = 0.0
        seen = 0
        prev_loss = -1.0
        for e in range(epochs):
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                nb = stop - start
                inv = np.float32(1.0 / nb)
                for r in range(m):
                    for f in range(d):
                        gW[r, f] = 0.0
                for f in range(d):
                    gu[f] = 0.0
                for k in range(P):
                    gh[k] = 0.0
                batch_loss = 0.0
                for q in range(start, stop):
                    s = s0 + order[e, s0 + q]
                    r = s_local[s]
                    for f in range(d):
                        x0[f] = u[f]
                        x0[d + f] = W[r, f]
                    z = _ncf_forward(x0, head, sizes, woff, boff, acts)
                    p = 1.0 / (1.0 + np.exp(-z))
                    y = s_label[s]
                    if y > 0.5:
                        batch_loss += min(-np.log(max(p, 1e-44)), 100.0)
                    else:
                        batch_loss += min(-np.log(max(1.0 - p, 1e-44)), 100.0)
                    g = np.float32((p - y) * inv)
                    _ncf_backward(g, head, sizes, woff, boff, acts, delta, prev, gh, dx0)
                    for f in range(d):
                        gu[f] += dx0[f]
                        gW[r, f] += dx0[d + f]
                total += batch_loss
                seen += nb
                step += 1
                if optimizer == OPT_ADAM:
                    bc1 = 1.0 - beta1 ** step
                    bc2 = 1.0 - beta2 ** step
                    for f in range(d):
                        mu[f] = beta1 * mu[f] + (1.0 - beta1) * gu[f]
                        vu[f] = beta2 * vu[f] + (1.0 - beta2) * gu[f] * gu[f]
                        u[f] -= lr_user * (mu[f] / bc1) / (np.sqrt(vu[f] / bc2) + eps)
                    for k in range(P):
                        gk = gh[k] + reg_head * head[k]
                        mh[k] = beta1 * mh[k] + (1.0 - beta1) * gk
                        vh[k] = beta2 * vh[k] + (1.0 - beta2) * gk * gk
                        head[k] -= lr_head * (mh[k] / bc1) / (np.sqrt(vh[k] / bc2) + eps)
                    for r in range(m):
                        for f in range(d):
                            gr = gW[r, f]
                            mW[r, f] = beta1 * mW[r, f] + (1.0 - beta1) * gr
                            vW[r, f] = beta2 * vW[r, f] + (1.0 - beta2) * gr * gr
                            W[r, f] -= lr_item * (mW[r, f] / bc1) / (np.sqrt(vW[r, f] / bc2) + eps)
                else:
                    for f in range(d):
                        u[f] -= lr_user * (gu[f] + reg_user * u[f])
                    for k in range(P):
                        head[k] -= lr_head * (gh[k] + reg_head * head[k])
                    if two_step:
                        # item step on a fresh forward pass with the updated user part and head
                        for r in range(m):
                            for f in range(d):
                                gW[r, f] = 0.0
                        for q in range(start, stop):
                            s = s0 + order[e, s0 + q]
                            r = s_local[s]
                            for f in range(d):
                                x0[f] = u[f]
                                x0[d + f] = W[r, f]
                            z = _ncf_forward(x0, head, sizes, woff, boff, acts)
                            p = 1.0 / (1.0 + np.exp(-z))
                            g = np.float32((p - s_label[s]) * inv)
                            # the head's gradient is not used again in this batch
                            _ncf_backward(g, head, sizes, woff, boff, acts, delta, prev, gh, dx0)
                            for f in range(d):
                                gW[r, f] += dx0[d + f]
                    for r in range(m):
                        for f in range(d):
                            W[r, f] -= lr_item * (gW[r, f] + reg_item * W[r, f])
            cur = total / max(seen, 1)
            if e > 0 and threshold > 0.0 and abs(cur - prev_loss) / abs(prev_loss + 1e-5) < threshold:
                break
            prev_loss = cur
        losses[j] = total / max(seen, 1)
        for r in range(m):
            for f in range(d):
                out_rows[t0 + r, f] = W[r, f]
        for f in range(d):
            U[c, f] = u[f]
        for k in range(P):
            out_heads[j, k] = head[k]
