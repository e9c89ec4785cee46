"""Training throughput of the BigDL LSTM on Spark against PyTorch and TensorFlow Keras on the same cores.

    make bench-deps        # torch, once (requirements-bench.txt)
    .venv/bin/python -m bench.train_throughput [--samples 4096] [--rounds 3] [--epochs 2]
    .venv/bin/python -m bench.train_throughput --peers bigdl --bigdl default= --bigdl mkl_own=env.MKL_DEBUG_CPU_TYPE=

Same model shape (one LSTM layer of `--hidden` units over `--length` steps of `--features` values, a
two-class linear head), same optimiser (Adam, same learning rate), same batch size, same random windows,
same number of samples, on the same two cores:

- **bigdl**: the project's path: `pipelines.models.lstm.build_lstm` trained by the project's `BarrierOptimizer`
  (`train.engine: barrier`; `engine=distri` for BigDL's `DistriOptimizer`) in Spark `local[2]` started by
  `pipelines.context.get_or_create`, on Samples built on the executors by
  `pipelines.models.extension.samples` (on the JVM) from a DataFrame of windows (generated on the executors);
- **torch**: `torch.nn.LSTM` + `Linear`, one process, `torch.set_num_threads(2)`;
- **tf**: `tf.keras` `LSTM` + `Dense`, one process, 2 intra-op threads, `model.fit`.

Each peer lives in its own process (so thread pools and native libraries do not meet), set up and warmed
up once (one epoch); then the peers take turns, `--rounds` times, each training `--epochs` epochs while
the others wait. BigDL's time is the wall time of `optimize()` (its per-call set-up included). Prints the
best and median samples/s of each and the ratios to PyTorch. Several `--bigdl NAME=SETTINGS` variants
(comma-separated `spark.key=value`, `java=-Dkey=value`, `env.NAME=value` (`env.MKL_DEBUG_CPU_TYPE=`: MKL's own choice),
`master=local[N]`, `lstm=reference` for BigDL's `Recurrent(LSTM)` instead of the fused layer, `engine=distri`) are compared the same way: the way settings were measured one factor at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

MARK = "@@bench "


# ----------------------------------------------------------------------------------------------- data


def window(seed: int, index: int, length: int, n_features: int) -> tuple[np.ndarray, int]:
    """Window `index` of the random data set: the same in every peer's process."""
    rng = np.random.default_rng([seed, index])
    return rng.standard_normal((length, n_features), dtype=np.float32), int(rng.integers(0, 2))


def dataset(args) -> tuple[np.ndarray, np.ndarray]:
    pairs = [window(args.seed, i, args.length, args.features) for i in range(args.samples)]
    return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.int64)


# -------------------------------------------------------------------------------------------- peers


class TorchPeer:
    def __init__(self, args):
        import torch

        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        self.torch, self.args = torch, args
        x, y = dataset(args)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.lstm = torch.nn.LSTM(args.features, args.hidden, batch_first=True)
        self.head = torch.nn.Linear(args.hidden, 2)
        params = list(self.lstm.parameters()) + list(self.head.parameters())
        self.optim = torch.optim.Adam(params, lr=args.learning_rate)
        self.info = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    def train(self, epochs: int) -> float:
        torch, n, b = self.torch, self.args.samples, self.args.batch_size
        for _ in range(epochs):
            order = torch.randperm(n)
            for start in range(0, n - b + 1, b):
                idx = order[start : start + b]
                out, _ = self.lstm(self.x[idx])
                loss = torch.nn.functional.cross_entropy(self.head(out[:, -1]), self.y[idx])
                self.optim.zero_grad()
                loss.backward()
                self.optim.step()
        return float(loss.detach())


class TfPeer:
    def __init__(self, args):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.keras.utils.set_random_seed(args.seed)
        self.args = args
        self.x, self.y = dataset(args)
        self.model = tf.keras.Sequential(
            [
                tf.keras.Input((args.length, args.features)),
                tf.keras.layers.LSTM(args.hidden),
                tf.keras.layers.Dense(2),
            ]
        )
        self.model.compile(
            optimizer=tf.keras.optimizers.Adam(args.learning_rate),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.info = {"tensorflow": tf.__version__}

    def train(self, epochs: int) -> float:
        n = self.args.samples - self.args.samples % self.args.batch_size
        history = self.model.fit(
            self.x[:n], self.y[:n], batch_size=self.args.batch_size, epochs=epochs, shuffle=True, verbose=0
        )
        return float(history.history["loss"][-1])


def parse_settings(text: str) -> dict[str, str]:
    settings = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--bigdl setting {item!r} is not key=value")
        settings[key.strip()] = value.strip()
    return settings


class BigDLPeer:
    def __init__(self, args, settings: dict[str, str]):
        for key, value in settings.items():
            if key.startswith("env."):  # read by native code (MKL, OpenMP) when the JVM starts
                os.environ[key[4:]] = value  # empty: unset (pipelines.context then leaves MKL alone)
        conf = {"spark.ui.enabled": "false"}
        conf.update({k: v for k, v in settings.items() if k.startswith("spark.")})
        java = " ".join(v for k, v in settings.items() if k.startswith("java"))
        if java:
            conf["spark.driver.extraJavaOptions"] = java
            conf["spark.executor.extraJavaOptions"] = java

        from bigdl.dllib.nn.criterion import ClassNLLCriterion
        from bigdl.dllib.optim.optimizer import Adam, MaxEpoch
        from pyspark.sql import SparkSession

        from pipelines.context import get_or_create, total_cores
        from pipelines.models import extension
        from pipelines.models.lstm import build_lstm

        spark: SparkSession = get_or_create(master=settings.get("master"), app_name="bench-train", conf=conf)
        self.MaxEpoch = MaxEpoch
        cores = total_cores(spark)
        if args.batch_size % cores:
            raise SystemExit(f"batch size {args.batch_size} is not a multiple of the {cores} cores")
        seed, length, n_features = args.seed, args.length, args.features

        def generate(indices):
            for i in indices:
                x, y = window(seed, i, length, n_features)
                yield x.ravel().tolist(), y

        rows = spark.sparkContext.range(args.samples, numSlices=args.partitions).mapPartitions(generate)
        windows = spark.createDataFrame(rows, "features array<float>, label int").cache()
        windows.count()
        samples = extension.samples(windows, shape=(length, n_features)).cache()
        samples.count()
        model = build_lstm(
            n_features, hidden_size=args.hidden, kind=settings.get("lstm", "fused"), input_gradient=False
        )
        if settings.get("ntc"):
            model = ntc_graph(spark, model)
        self.optimizer = extension.optimizer(
            settings.get("engine", "barrier"),
            model=model,
            samples=samples,
            criterion=ClassNLLCriterion(),
            optim_method=Adam(learningrate=args.learning_rate),
            end_trigger=MaxEpoch(0),
            batch_size=args.batch_size,
        )
        self.epoch = 0
        jvm = spark.sparkContext._jvm
        self.info = {
            "master": spark.sparkContext.master,
            "cores": cores,
            "engine": str(jvm.System.getProperty("bigdl.engineType", "mklblas")),
            "env": {k[4:]: v for k, v in settings.items() if k.startswith("env.")},
            "MKL_DEBUG_CPU_TYPE": os.environ.get("MKL_DEBUG_CPU_TYPE"),
        }

    def train(self, epochs: int) -> float:
        self.epoch += epochs
        self.optimizer.set_end_when(self.MaxEpoch(self.epoch))
        self.optimizer.optimize()
        return float("nan")


def ntc_graph(spark, model):
    """The model as a graph whose input is declared (batch, time, features): what BigDL's MKL-DNN RNN needs.

    With `bigdl.engineType=mkldnn` BigDL converts the model to an MKL-DNN graph, assuming an NCHW input
    unless told otherwise; a 3-D input then reaches the RNN as 4-D NCHW ("Unsupported input format: 7").
    """
    jvm = spark.sparkContext._jvm
    graph = model.to_graph()

    def seq(*formats):
        items = jvm.java.util.ArrayList()
        for f in formats:
            items.add(f)
        return jvm.scala.collection.JavaConverters.asScalaBufferConverter(items).asScala().toSeq()

    memory_format = getattr(jvm.com.intel.analytics.bigdl.mkl, "Memory$Format")
    graph.value.setInputFormats(seq(memory_format.ntc))
    graph.value.setOutputFormats(seq(memory_format.nc))
    return graph


def worker(args) -> None:
    """One peer in this process: set up, then train `--epochs` epochs for each line read on stdin."""
    started = time.perf_counter()
    if args.worker == "torch":
        peer = TorchPeer(args)
    elif args.worker == "tf":
        peer = TfPeer(args)
    else:
        peer = BigDLPeer(args, parse_settings(args.settings))
    peer.train(1)  # warm-up: JIT, thread pools, BigDL's first model broadcast and data caching
    print(MARK + json.dumps({"ready": round(time.perf_counter() - started, 1), **peer.info}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0 = time.perf_counter()
        loss = peer.train(args.epochs)
        seconds = time.perf_counter() - t0
        trained = args.epochs * (args.samples - args.samples % args.batch_size)
        print(MARK + json.dumps({"seconds": seconds, "samples_per_s": trained / seconds, "loss": loss}), flush=True)


# ------------------------------------------------------------------------------------------- driver


@dataclass
class Peer:
    name: str
    kind: str
    settings: str = ""
    process: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def read(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
            with open(self.log, "a") as log:  # the JVM's and native libraries' stdout
                log.write(line)
        raise RuntimeError(f"{self.name} ended early; see {self.log}")

    @property
    def log(self) -> str:
        return f"/tmp/bench-train-{self.name}.log"


def lstm_flops_per_sample(args) -> float:
    """Multiply-adds x 2 of one window's forward and backward pass (backward = twice the forward's GEMMs)."""
    forward = 2 * args.length * 4 * args.hidden * (args.features + args.hidden)
    return 3.0 * forward


def core_gflops() -> float:
    """One core's single-precision GEMM speed (NumPy's BLAS, one thread, best of five 1024^3 products)."""
    code = (
        "import time, numpy as np\n"
        "a = np.random.rand(1024, 1024).astype(np.float32); b = a.copy(); a @ b\n"
        "times = []\n"
        "for _ in range(5):\n"
        "    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)\n"
        "print(2 * 1024 ** 3 / min(times) / 1e9)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    )


def load_average() -> float:
    return os.getloadavg()[0]


def start(peer: Peer, args) -> None:
    command = [
        sys.executable,
        "-m",
        "bench.train_throughput",
        "--worker",
        peer.kind,
        "--settings",
        peer.settings,
        *(
            f"--{k.replace('_', '-')}={v}"
            for k, v in vars(args).items()
            if k
            in (
                "samples",
                "epochs",
                "length",
                "features",
                "hidden",
                "batch_size",
                "learning_rate",
                "threads",
                "partitions",
                "seed",
            )
        ),
    ]
    open(peer.log, "w").close()
    env = dict(os.environ)
    if peer.kind == "torch" and args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    peer.process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(peer.log, "a"), text=True, env=env
    )
    peer.info = peer.read()
    print(f"  {peer.name}: ready after {peer.info.pop('ready')} s {peer.info}", file=sys.stderr, flush=True)


def summary(peers: list[Peer], reference: str | None) -> dict:
    ref = next((p for p in peers if p.name == reference), None)
    out = {}
    for peer in peers:
        best, median = max(peer.rates), statistics.median(peer.rates)
        out[peer.name] = {
            "best": round(best),
            "median": round(median),
            "all": [round(r) for r in peer.rates],
            "spread": round((max(peer.rates) - min(peer.rates)) / median, 2),
            "load_average": [round(x, 1) for x in peer.loads],
            "info": peer.info,
        }
        if ref is not None:
            out[peer.name]["ratio_best"] = round(best / max(ref.rates), 2)
            out[peer.name]["ratio_median"] = round(median / statistics.median(ref.rates), 2)
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    peers = [Peer(name, "bigdl", settings) for name, settings in (v.partition("=")[::2] for v in args.bigdl)]
    if not peers and "bigdl" in args.peers:
        peers.append(Peer("bigdl", "bigdl", ""))
    peers += [Peer(kind, kind) for kind in args.peers if kind in ("torch", "tf")]
    print(f"load average before: {os.getloadavg()}", file=sys.stderr, flush=True)
    try:
        for peer in peers:  # one at a time, so set-up and warm-up do not compete
            start(peer, args)
        for round_ in range(args.rounds):
            order = peers[round_ % len(peers) :] + peers[: round_ % len(peers)]  # rotate who goes first
            for peer in order:
                load = load_average()
                peer.process.stdin.write("run\n")
                peer.process.stdin.flush()
                result = peer.read()
                peer.rates.append(result["samples_per_s"])
                peer.loads.append(load)
                print(
                    f"  round {round_ + 1} {peer.name}: {result['samples_per_s']:.0f} samples/s "
                    f"({result['seconds']:.1f} s, load {load:.1f})",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for peer in peers:
            if peer.process and peer.process.poll() is None:
                peer.process.stdin.close()
                try:
                    peer.process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    peer.process.kill()
    reference = "torch" if any(p.name == "torch" for p in peers) else peers[0].name
    gflops = core_gflops()
    limit = args.threads * gflops * 1e9 / lstm_flops_per_sample(args)
    results = {
        "shape": {
            "length": args.length,
            "features": args.features,
            "hidden": args.hidden,
            "batch_size": args.batch_size,
            "samples": args.samples,
            "epochs_per_round": args.epochs,
            "rounds": args.rounds,
            "optimizer": f"Adam({args.learning_rate})",
            "threads": args.threads,
        },
        "reference": reference,
        "peers": summary(peers, reference),
        "arithmetic_limit": {"core_gflops": round(gflops, 1), "samples_per_s": round(limit)},
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    for figures in results["peers"].values():
        figures["fraction_of_limit_best"] = round(figures["best"] / limit, 2)
    print(f"{'peer':<14}{'best':>8}{'median':>8}{'ratio':>8}{'spread':>8}{'of limit':>10}  samples/s per round (load)")
    for name, figures in results["peers"].items():
        rounds = ", ".join(f"{rate} ({load})" for rate, load in zip(figures["all"], figures["load_average"]))
        print(
            f"{name:<14}{figures['best']:>8}{figures['median']:>8}{figures.get('ratio_best', ''):>8}"
            f"{figures['spread']:>8}{figures['fraction_of_limit_best']:>10}  {rounds}"
        )
    print(
        f"ratio = best / best of {reference}; spread = (max - min) / median; of limit = best / arithmetic limit "
        f"({round(limit)} samples/s: {args.threads} cores x {gflops:.0f} GFLOP/s single-core SGEMM / "
        f"{lstm_flops_per_sample(args) / 1e6:.1f} MFLOP per window); {results['uptime']}"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return results


def add_lstm_shape_options(parser: argparse.ArgumentParser) -> None:
    """The LSTM every training benchmark measures: steps, features, hidden units, global batch size."""
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4096, help="training windows per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measured round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per peer (best and median kept)")
    add_lstm_shape_options(parser)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch and TensorFlow threads (= Spark's cores)")
    parser.add_argument("--partitions", type=int, default=2, help="partitions of the windows DataFrame")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        help="OMP_WAIT_POLICY of the PyTorch process ('' for libgomp's default, which spins: on a "
        "shared, oversubscribed machine two spinning threads fall to a tenth of their speed)",
    )
    parser.add_argument("--peers", nargs="+", default=["bigdl", "torch", "tf"], choices=["bigdl", "torch", "tf"])
    parser.add_argument(
        "--bigdl",
        action="append",
        default=[],
        metavar="NAME=SETTINGS",
        help="a BigDL variant (repeatable), e.g. mkldnn=java=-Dbigdl.engineType=mkldnn",
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
