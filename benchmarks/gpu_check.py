"""GPU check: run recseek's torch device paths on a CUDA GPU and compare them with the CPU.

Prepared for a machine with a GPU (``python benchmarks/gpu_check.py``, a few minutes):

1. device scoring (recseek.models._device_scoring): full-ranking top-k of factor models
   (BPR, WRMF fitted on ML-100K, then a large random factor model) on ``cuda`` against the
   numpy path: scores equal within float32 tolerance, ids equal except exact ties, and the
   speed ratio;
2. the neural models trained on ``cuda`` against the same seed on the CPU: the same
   NDCG@10 within 0.01 (training on a GPU is not bit-identical: other kernels, other
   summation order), numpy scoring of the GPU-trained model, and the fit speed ratio.

Exits with status 1 when a comparison fails, 0 otherwise; prints one line per check.
Without a GPU it says so and exits 0 after running the CPU side only.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    import torch

    from recseek.data.readers import read
    from recseek.data.split import split
    from recseek.evaluation import evaluate_ranking
    from recseek.models import registry
    from recseek.models._device_scoring import device_topk, recommend_on_device
    from recseek.models._topk import topk
    from recseek.testing.fixtures import shared_data_dir

    gpu = torch.cuda.is_available()
    print(f"torch {torch.__version__}; GPU: {torch.cuda.get_device_name(0) if gpu else 'none'}")
    failures = 0
    data_dir = shared_data_dir()
    if data_dir is None:
        print("shared data folder not found (RECSEEK_TEST_DATA)")
        return 1
    data = read(data_dir / "ml-100k", format="recbole").filter_min_rating(4)
    train, test = split(data, "ratio", ratio=0.8, by="user", order="random", seed=0)
    users = np.arange(train.n_users)

    # 1. device scoring of fitted factor models
    for name, params in (("BPR", {"factors": 64, "epochs": 20}), ("WRMF", {"factors": 64})):
        model = registry.create(name, **params).fit(train)
        ref, t_cpu = _timed(lambda m=model: m.recommend(users, 10))
        for device in ["cpu"] + (["cuda"] if gpu else []):
            got, t_dev = _timed(lambda m=model, d=device: recommend_on_device(m, users, 10, device=d))
            ok = np.allclose(got.scores, ref.scores, rtol=1e-4, atol=1e-4)
            same = float(np.mean(got.ids == ref.ids))
            failures += not ok or same < 0.999
            print(f"scoring {name} on {device}: scores match {ok}, ids equal {same:.4f}, "
                  f"time {t_dev:.3f} s vs numpy {t_cpu:.3f} s (ratio {t_dev / t_cpu:.3f})")
    rng = np.random.default_rng(0)
    p = rng.standard_normal((20000, 65), dtype=np.float32)
    q = rng.standard_normal((50000, 65), dtype=np.float32)
    sample = np.arange(2000)
    ref, t_np = _timed(lambda: topk(p[sample] @ q.T, 20))
    ref_ids = ref.ids
    if gpu:
        device_topk(p, q, sample[:10], 20, device="cuda")  # warm-up
        got, t_gpu = _timed(lambda: device_topk(p, q, sample, 20, device="cuda"))
        ok = np.allclose(got.scores, ref.scores, rtol=1e-3, atol=1e-3)
        failures += not ok
        print(f"random 20k x 50k x 65 factors, 2000 users top-20: cuda {t_gpu:.3f} s vs numpy {t_np:.3f} s "
              f"(ratio {t_gpu / t_np:.3f}); scores match {ok}; ids equal {np.mean(got.ids == ref_ids):.4f}")
        _, t_all = _timed(lambda: device_topk(p, q, np.arange(20000), 20, device="cuda"))
        print(f"  all 20000 users on cuda: {t_all:.3f} s")

    # 2. neural models trained on the GPU against the CPU
    runs = {
        "LightGCN": {"epochs": 20, "learning_rate": 0.01, "graph_layers": 2, "batch_size": 2048},
        "MultVAE": {"epochs": 60, "factors": 128, "batch_size": 64},
        "NeuMF": {"epochs": 8, "negatives": 1, "batch_size": 2048, "dropout": 0.1},
        "CDAE": {"epochs": 30},
        "DeepFM": {"epochs": 10},
        "LambdaFMStatic": {"epochs": 10},
    }
    for name, params in runs.items():
        results = {}
        for device in ["cpu"] + (["cuda"] if gpu else []):
            model = registry.create(name, **params, device=device)
            _, fit_s = _timed(lambda m=model: m.fit(train))
            ndcg = evaluate_ranking(model, train, test, k=10, metrics=["ndcg"])["ndcg@10"]
            results[device] = (ndcg, fit_s)
        line = f"{name}: cpu NDCG@10 {results['cpu'][0]:.4f} in {results['cpu'][1]:.1f} s"
        if gpu:
            close = abs(results["cuda"][0] - results["cpu"][0]) <= 0.01
            failures += not close
            line += (f" | cuda {results['cuda'][0]:.4f} in {results['cuda'][1]:.1f} s (speed ratio "
                     f"{results['cuda'][1] / results['cpu'][1]:.3f}); same NDCG within 0.01: {close}")
        print(line, flush=True)
    if not gpu:
        print("no GPU here: only the CPU side ran")
    print("FAILED" if failures else "OK", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
