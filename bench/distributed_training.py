"""Distributed training on the standalone cluster: BigDL against PyTorch DDP (TorchDistributor).

    make bench-deps        # torch, once (requirements-bench.txt)
    .venv/bin/python -m bench.distributed_training [--train 6144] [--target-loss 0.35] [--max-epochs 12]
        [--conf spark.executor.extraJavaOptions=...]   # a setting for both peers' applications, e.g. a JIT trial

On the loopback standalone cluster of `infra/cluster.sh` (two workers of one core each; started here and
stopped afterwards when it is not already running), the same LSTM (`--length` x `--features` windows,
`--hidden` units, two classes, Adam, global batch `--batch-size`) is trained on the same windows four ways,
one application at a time:

- **bigdl**: the product's path, `pipelines.models.train.train_lstm`: Samples built on the executors from the
  Parquet windows, one BigDL run (the fused LSTM unless `--lstm reference`; the project's `BarrierOptimizer` unless
  `--engine distri` for `DistriOptimizer`) validating after every
  epoch, over one executor (`spark.cores.max=1`) and over two; its global batch is `--bigdl-batch-size` (default
  `--batch-size`) with the learning rate scaled by `--lr-scaling`;
- **torch_ddp**: PyTorch `DistributedDataParallel` (gloo, CPU, one thread per process) launched by Spark's own
  `pyspark.ml.torch.distributor.TorchDistributor(local_mode=False, use_gpu=False)` with `num_processes` 1 and 2;
  each process reads its shard of the same Parquet windows; the per-process batch is the global batch / processes.

After every epoch the validation loss (mean negative log-likelihood over the validation windows) is
measured; DDP stops at `--target-loss`, BigDL trains `--max-epochs` and its epochs up to the target count.
Printed for each: training samples/s (epoch time without validation), epochs and wall seconds to the target
(training and validation, from the first epoch, with the data in memory: DDP's processes load their shards and
`train_lstm` builds and caches its Samples before the clock starts; the application's start-up with that data
loading is given apart), and each one's scaling from one executor to two.
The windows are random series whose label says whether the last 4 values of the first feature sum to
more than 0: learnable, balanced, and written once as Parquet for both peers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from bench.train_throughput import add_lstm_shape_options
from pipelines import PROJECT_ROOT

MARK = "@@bench "
# What both peers train with: a worker process gets them (and BigDL's own) on its command line.
SHARED_SETTINGS = (
    "data",
    "train",
    "length",
    "features",
    "hidden",
    "batch_size",
    "learning_rate",
    "max_epochs",
    "target_loss",
    "seed",
)
CLUSTER = str(PROJECT_ROOT / "infra" / "cluster.sh")


# ----------------------------------------------------------------------------------------------- data


def write_windows(out: str, *, n: int, length: int, n_features: int, seed: int, chunk: int = 1024) -> None:
    """`n` windows as Parquet files of `chunk` rows: features (length * n_features floats) and label."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    for part, start in enumerate(range(0, n, chunk)):
        x = rng.standard_normal((min(chunk, n - start), length, n_features), dtype=np.float32)
        label = (x[:, -4:, 0].sum(axis=1) > 0).astype(np.int32)
        features = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), length * n_features)
        table = pa.table({"features": features.cast(pa.list_(pa.float32())), "label": pa.array(label)})
        pq.write_table(table, f"{out}/part-{part:05d}.parquet")


def read_windows(path: str, length: int, n_features: int, rank: int = 0, world: int = 1):
    """Every `world`-th window from `rank` on, as (x, y) arrays: one process's shard."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    flat = table.column("features").combine_chunks().flatten().to_numpy()
    x = flat.reshape(-1, length, n_features)[rank::world]
    y = table.column("label").to_numpy()[rank::world]
    return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)


# ------------------------------------------------------------------------------------------- peers


def train_bigdl(args) -> dict:
    """The product's path: `pipelines.models.train.train_lstm` (one optimize() run, BigDL validating each epoch)."""
    import tempfile

    from pipelines.config import TrainConfig, defaults
    from pipelines.context import get_or_create
    from pipelines.models.train import train_lstm

    started = time.perf_counter()
    spark = get_or_create(master=args.master, app_name=f"bench-dist-bigdl-{args.executors}", conf=cluster_conf(args))
    train = spark.read.parquet(f"file://{args.data}/train")
    val = spark.read.parquet(f"file://{args.data}/val")
    n_train = train.count()
    config = defaults(
        TrainConfig,
        lstm=args.lstm,
        engine=args.engine,
        hidden_size=args.hidden,
        optimizer="adam",
        learning_rate=args.learning_rate,
        lr_scaling=args.lr_scaling,
        base_batch_size=args.batch_size,
        batch_size=args.bigdl_batch_size or args.batch_size,
        epochs=args.max_epochs,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as run_dir:
        result = train_lstm(
            spark, train, val, config=config, length=args.length, n_features=args.features, run_dir=run_dir
        )
    elapsed, trained, history = 0.0, 0.0, []
    for (epoch, loss), seconds, training in zip(
        result.validation["log_loss"], result.epoch_seconds, result.train_seconds
    ):
        elapsed += seconds
        trained += training
        history.append((epoch, round(elapsed, 1), round(loss, 4)))
        if loss <= args.target_loss:
            break
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
    spark.stop()
    # train_lstm builds and caches the Samples before its epochs' clock starts: start-up, as DDP's data loading.
    startup = (time.perf_counter() - started) - sum(result.epoch_seconds)
    out = _result(args, history, trained, n_train, startup, executors=executors)
    out["batch_size"] = result.batch_size
    return out


def ddp_train(cfg: dict) -> dict:
    """One DDP process (run by TorchDistributor on an executor): train on this rank's shard, validate each epoch."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(cfg["seed"])
    x, y = (
        torch.from_numpy(a) for a in read_windows(f"{cfg['data']}/train", cfg["length"], cfg["features"], rank, world)
    )
    vx, vy = (
        torch.from_numpy(a) for a in read_windows(f"{cfg['data']}/val", cfg["length"], cfg["features"], rank, world)
    )

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(cfg["features"], cfg["hidden"], batch_first=True)
            self.head = torch.nn.Linear(cfg["hidden"], 2)

        def forward(self, inputs):
            out, _ = self.lstm(inputs)
            return self.head(out[:, -1])

    model = torch.nn.parallel.DistributedDataParallel(Net())
    optim = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate"])
    batch = cfg["batch_size"] // world
    steps = cfg["train"] // world // batch  # the same number of steps on every rank
    dist.barrier()
    ready = time.perf_counter()
    history, train_seconds = [], 0.0
    for epoch in range(1, cfg["max_epochs"] + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(x))
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
        train_seconds += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            total = torch.nn.functional.cross_entropy(model.module(vx), vy, reduction="sum")
        sums = torch.stack([total, torch.tensor(float(len(vy)))])
        dist.all_reduce(sums)
        val_loss = float(sums[0] / sums[1])
        history.append((epoch, round(time.perf_counter() - ready, 1), round(val_loss, 4)))
        if val_loss <= cfg["target_loss"]:
            break
    trained = steps * batch * world
    dist.destroy_process_group()
    return {"history": history, "train_seconds": train_seconds, "trained_per_epoch": trained}


def train_torch(args) -> dict:
    from pyspark.ml.torch.distributor import TorchDistributor

    from pipelines.context import get_or_create

    started = time.perf_counter()
    spark = get_or_create(master=args.master, app_name=f"bench-dist-torch-{args.executors}", conf=cluster_conf(args))
    cfg = {k: getattr(args, k) for k in SHARED_SETTINGS}
    distributor = TorchDistributor(num_processes=args.executors, local_mode=False, use_gpu=False)
    ready = time.perf_counter()
    out = distributor.run(ddp_train, cfg)
    spark.stop()
    # The processes' own clock starts after their start-up (torchrun, imports, data); count that as start-up.
    startup = (ready - started) + (time.perf_counter() - ready) - out["history"][-1][1]
    return _result(
        args,
        [tuple(h) for h in out["history"]],
        out["train_seconds"],
        out["trained_per_epoch"],
        startup,
        executors=args.executors,
    )


def cluster_conf(args) -> dict[str, str]:
    return {
        "spark.cores.max": str(args.executors),
        "spark.ui.enabled": "false",
        # The executors import this checkout's `pipelines` and `bench` (the cluster's workers start them).
        "spark.executorEnv.PYTHONPATH": str(PROJECT_ROOT),
        **dict(setting.split("=", 1) for setting in args.conf),
    }


def _result(args, history, train_seconds, n_train, startup, *, executors) -> dict:
    epochs = len(history)
    reached = history[-1][2] <= args.target_loss
    return {
        "executors": executors,
        "epochs": epochs,
        "samples_per_s": round(epochs * n_train / train_seconds),
        "seconds_to_target": history[-1][1] if reached else None,
        "reached_target": reached,
        "final_val_loss": history[-1][2],
        "startup_s": round(startup, 1),
        "history": history,
    }


# ------------------------------------------------------------------------------------------- driver


def cluster_running() -> bool:
    return subprocess.run([CLUSTER, "status"], capture_output=True).returncode == 0


def worker_command(kind: str, executors: int, args) -> list[str]:
    """The command line of one peer's application: the shared settings and every --conf."""
    return [
        sys.executable,
        "-m",
        "bench.distributed_training",
        "--worker",
        kind,
        "--executors",
        str(executors),
        *(
            f"--{k.replace('_', '-')}={v}"
            for k, v in vars(args).items()
            if k in (*SHARED_SETTINGS, "master", "lstm", "engine", "bigdl_batch_size", "lr_scaling")
        ),
        *(f"--conf={setting}" for setting in args.conf),
    ]


def run_worker(kind: str, executors: int, args) -> dict:
    command = worker_command(kind, executors, args)
    log = f"/tmp/bench-dist-{kind}-{executors}.log"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with open(log, "w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env, timeout=3600)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"{kind} on {executors} executor(s) failed (exit {done.returncode}); see {log}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        result = (train_bigdl if args.worker == "bigdl" else train_torch)(args)
        print(MARK + json.dumps(result), flush=True)
        return result
    args.data = (
        args.data or f"/tmp/bench-dist-windows-{args.seed}-{args.train}-{args.val}-{args.length}x{args.features}"
    )
    if not os.path.exists(f"{args.data}/val"):
        write_windows(f"{args.data}/train", n=args.train, length=args.length, n_features=args.features, seed=args.seed)
        write_windows(f"{args.data}/val", n=args.val, length=args.length, n_features=args.features, seed=args.seed + 1)
    started_cluster = not cluster_running()
    if started_cluster:
        subprocess.run([CLUSTER, "up"], check=True)
    results: dict[str, dict] = {}
    try:
        for executors in args.executors_list:
            for kind in args.peers:
                load = os.getloadavg()[0]
                result = run_worker(kind, executors, args)
                result["load_average"] = round(load, 1)
                results[f"{kind}/{executors}"] = result
                print(f"  {kind} on {executors}: {json.dumps(result)}", file=sys.stderr, flush=True)
    finally:
        if started_cluster:
            subprocess.run([CLUSTER, "down"], check=False)
    print(
        f"{'peer':<12}{'executors':>10}{'samples/s':>11}{'epochs':>8}{'s to target':>13}{'start-up s':>12}"
        f"{'val loss':>10}{'load':>6}"
    )
    for name, r in results.items():
        print(
            f"{name.split('/')[0]:<12}{r['executors']:>10}{r['samples_per_s']:>11}{r['epochs']:>8}"
            f"{str(r['seconds_to_target']):>13}{r['startup_s']:>12}{r['final_val_loss']:>10}{r['load_average']:>6}"
        )
    scaling = {}
    for kind in args.peers:
        one, two = results.get(f"{kind}/1"), results.get(f"{kind}/2")
        if one and two:
            scaling[kind] = round(two["samples_per_s"] / one["samples_per_s"], 2)
    if "bigdl/2" in results and "torch_ddp/2" in results:
        scaling["bigdl_over_torch_ddp_2_executors"] = round(
            results["bigdl/2"]["samples_per_s"] / results["torch_ddp/2"]["samples_per_s"], 2
        )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"scaling 1 -> 2 executors (samples/s ratio): {scaling}; {uptime}")
    out = {
        "results": results,
        "scaling": scaling,
        "uptime": uptime,
        "target_loss": args.target_loss,
        "train": args.train,
        "val": args.val,
        "batch_size": args.batch_size,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="spark://127.0.0.1:17077")
    parser.add_argument("--train", type=int, default=6144, help="training windows")
    parser.add_argument("--val", type=int, default=2048, help="validation windows")
    add_lstm_shape_options(parser)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--lstm", default="fused", choices=["fused", "reference"], help="BigDL's LSTM (train.lstm)")
    parser.add_argument(
        "--engine", default="barrier", choices=["barrier", "distri"], help="BigDL's training engine (train.engine)"
    )
    parser.add_argument(
        "--bigdl-batch-size",
        type=int,
        default=0,
        help="BigDL's global batch (default: --batch-size); its learning rate follows --lr-scaling",
    )
    parser.add_argument(
        "--lr-scaling",
        default="none",
        choices=["none", "linear", "sqrt"],
        help="BigDL's learning rate for --bigdl-batch-size, from --learning-rate at --batch-size",
    )
    parser.add_argument("--target-loss", type=float, default=0.35)
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--peers", nargs="+", default=["bigdl", "torch_ddp"], choices=["bigdl", "torch_ddp"])
    parser.add_argument("--executors-list", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--data", default=None, help="where the windows are written (default /tmp/bench-dist-windows-SEED)"
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for both peers' applications (Java options are added to the project's own)",
    )
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--executors", type=int, default=2, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
