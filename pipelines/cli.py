"""What every job shares: --env/--set/--master options, logging set-up, one-line errors and exit codes."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import yaml

from pipelines.config import ConfigError, PipelineConfig, as_dict, load_config
from pipelines.errors import InputError
from pipelines.io import fs

log = logging.getLogger("pipelines.job")

EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


# How an output is written, hence what happens to an existing one:
#   atomic     a temporary sibling renamed into place: replaced, or refused under output.if_exists=refuse
#   overwrite  written in place whatever output.if_exists says
#   merge      a JSON file read, updated and written back
#   append     a folder that gets new files beside the old ones (checkpoints, TensorBoard summaries)
OUTPUT_MODES = ("atomic", "overwrite", "merge", "append")


@dataclasses.dataclass(frozen=True)
class PathSpec:
    """One path a job reads or writes: the value of option `dest`, or `part` under it."""

    role: str  # "input" or "output"
    dest: str
    part: str = ""
    mode: str = "atomic"


class JobParser(argparse.ArgumentParser):
    """A job's options; `reads`/`writes` declare which of them are paths, for --dry-run's plan."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paths: list[PathSpec] = []
        self.fallbacks: dict[str, Callable[[argparse.Namespace], str]] = {}

    def reads(self, dest: str, *parts: str, fallback: Callable[[argparse.Namespace], str] | None = None) -> None:
        """The job reads option `dest`'s path, or these parts under it ("{name}" is the value of option --name)."""
        self._declare("input", dest, parts, "atomic", fallback)

    def writes(
        self, dest: str, *parts: str, mode: str = "atomic", fallback: Callable[[argparse.Namespace], str] | None = None
    ) -> None:
        """The job writes option `dest`'s path, or these parts under it, the way `mode` says (OUTPUT_MODES)."""
        if mode not in OUTPUT_MODES:
            raise ValueError(f"mode must be one of {OUTPUT_MODES}, not {mode!r}")
        self._declare("output", dest, parts, mode, fallback)

    def _declare(self, role: str, dest: str, parts: Sequence[str], mode: str, fallback) -> None:
        self.paths += [PathSpec(role, dest, part, mode) for part in parts or ("",)]
        if fallback is not None:
            # Applied by `parse_job_args` when the option is not given, so the job and its --dry-run use the same path.
            self.fallbacks[dest] = fallback


def job_parser(description: str, sections: Sequence[str] = (), notes: str = "") -> JobParser:
    """The options every job has; `--help` ends with `notes` and the defaults of the config `sections` it uses
    (dotted for nested ones: `eeg.pairing`)."""
    epilog = f"{notes}\n\n{_defaults(sections)}" if notes else _defaults(sections)
    parser = JobParser(description=description, formatter_class=_HelpFormatter, epilog=epilog)
    parser.add_argument("--env", default=None, help="configuration overlay: conf/<env>/*.yml on top of conf/base")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--master", default=None, help="Spark master; default: spark-submit's, $PIPELINES_MASTER or local[2]"
    )
    parser.add_argument("--log-level", default="INFO", help="log level of the pipelines' own messages")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved configuration and the planned inputs and outputs (YAML) and exit without starting Spark",
    )
    return parser


def add_tf_model_options(
    parser: JobParser,
    *,
    model_help: str = "frozen TensorFlow graph (.pb), any Hadoop URI",
    inputs_help: str = "comma-separated input node names (default: the one placeholder)",
    outputs_help: str = "comma-separated output node names (default: the one candidate)",
) -> None:
    """--model, --bin, --inputs, --outputs of a job that imports a TensorFlow graph; --model and --bin are inputs."""
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--bin", default=None, help="BigDL .bin with the graph's variables (trusted locations only)")
    parser.add_argument("--inputs", default=None, type=node_names, help=inputs_help)
    parser.add_argument("--outputs", default=None, type=node_names, help=outputs_help)
    parser.reads("model")
    parser.reads("bin")


def node_names(value: str) -> tuple[str, ...] | None:
    """Comma-separated node names as a tuple; None when there are none."""
    return tuple(x.strip() for x in value.split(",") if x.strip()) or None


def _defaults(sections: Sequence[str]) -> str:
    config = as_dict(load_config())
    lines = ["configuration (conf/base/*.yml; change with --env ENV or --set SECTION.KEY=VALUE):"]
    for section in (*sections, "output"):
        values = config
        for key in section.split("."):
            values = values[key]
        lines.append(f"  {section}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return "\n".join(lines)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def parse_job_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """A job's options, with the declared fallbacks applied to the paths not given."""
    args = parser.parse_args(argv)
    for dest, fallback in getattr(parser, "fallbacks", {}).items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, fallback(args))
    return args


def run(main: Callable[[argparse.Namespace, PipelineConfig], None], parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse, load config, call `main`; turn any failure into one line on stderr and an exit code."""
    args = parse_job_args(parser, argv)
    configure_logging(args.log_level)
    try:
        config: PipelineConfig = load_config(env=args.env, overrides=args.overrides)
        if config.output.if_exists not in fs.IF_EXISTS_CHOICES:
            raise ConfigError(
                f"output.if_exists must be one of {', '.join(fs.IF_EXISTS_CHOICES)}, not {config.output.if_exists!r}"
            )
    except ConfigError as e:
        log.error("configuration error: %s", e)
        return EXIT_BAD_CONFIG
    if getattr(args, "dry_run", False):
        plan = dry_run_plan(parser, args, config, job=os.path.splitext(os.path.basename(main.__code__.co_filename))[0])
        report(yaml.safe_dump(plan, sort_keys=False, default_flow_style=False).rstrip())
        # A scheduler can use the dry run as a pre-check: it fails when the real run would.
        blocked = [e["uri"] for e in plan["inputs"] if e["exists"] is False]
        blocked += [e["uri"] for e in plan["outputs"] if e["action"] == "refuse"]
        if blocked:
            log.error("dry run: the job would fail on %s", ", ".join(blocked))
            return EXIT_FAILED
        return 0
    try:
        # BigDL's Python prints "creating: ..." for every object; keep stdout for the jobs' own results.
        with contextlib.redirect_stdout(sys.stderr), fs.if_exists_policy(config.output.if_exists):
            main(args, config)
    except (ConfigError, InputError, FileExistsError) as e:
        log.error("failed: %s", e)
        return EXIT_BAD_CONFIG if isinstance(e, ConfigError) else EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - a job reports any failure as one line
        log.debug("traceback", exc_info=True)
        log.error("failed: %s: %s", type(e).__name__, _first_line(e))
        return EXIT_FAILED
    return 0


def dry_run_plan(
    parser: argparse.ArgumentParser, args: argparse.Namespace, config: PipelineConfig, *, job: str
) -> dict:
    """What the job would do: its resolved configuration, the paths it would read and what it would write."""
    policy = config.output.if_exists
    flags = {a.dest: (a.option_strings[0] if a.option_strings else a.dest) for a in parser._actions}
    plan: dict[str, Any] = {"job": job, "config": as_dict(config), "inputs": [], "outputs": []}
    for spec in getattr(parser, "paths", []):
        value = getattr(args, spec.dest, None)
        if not value:
            continue  # an optional path that was not given
        part = spec.part.format(**vars(args))
        uri = f"{str(value).rstrip('/')}/{part}" if part else str(value)
        exists = path_exists(uri)
        entry: dict[str, Any] = {"option": flags.get(spec.dest, spec.dest), "uri": uri, "exists": exists}
        if spec.role == "input":
            plan["inputs"].append(entry)
            if exists is False:
                log.warning("input %s does not exist", uri)
            continue
        entry["mode"] = spec.mode
        entry["action"] = _output_action(spec.mode, exists, policy)
        if entry["action"] == "refuse":
            log.warning("output %s exists and output.if_exists=refuse: the job would fail", uri)
        plan["outputs"].append(entry)
    return plan


def _output_action(mode: str, exists: bool | None, policy: str) -> str:
    if exists is False:
        return "create"
    existing = {"atomic": policy, "overwrite": "overwrite", "merge": "update", "append": "add"}[mode]
    return existing if exists else f"create or {existing}"  # None: not checked (a remote URI)


def path_exists(uri: str) -> bool | None:
    """Whether a local path (or glob) exists; None for a remote URI, which only a JVM's Hadoop client can check."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    path = parsed.path if parsed.scheme == "file" else uri
    return bool(glob.glob(path)) if glob.has_magic(path) else os.path.exists(path)


class Steps:
    """Runs a job's steps, logging each one's start and wall time; `timings` holds the seconds per step."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        log.info("step %s ...", name)
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        self.timings[name] = round(time.perf_counter() - started, 1)
        log.info("step %s done in %.1f s", name, self.timings[name])
        return result

    def with_total(self) -> dict[str, float]:
        return {**self.timings, "total": round(sum(self.timings.values()), 1)}


def report(text: str) -> None:
    """A job's result for the user, on standard output."""
    print(text, file=sys.__stdout__, flush=True)


def _first_line(e: BaseException) -> str:
    """The reason of a failure in one line; for a JVM error, the Java exception's own message."""
    java = getattr(e, "java_exception", None)
    if java is not None:
        return str(java.toString()).splitlines()[0]
    text = str(e).strip().splitlines()
    return text[0] if text else ""
