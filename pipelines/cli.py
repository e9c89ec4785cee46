"""What every job shares: --env/--set/--master options, logging set-up, one-line errors and exit codes."""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Callable, Sequence

from pipelines.io import fs
from pipelines.config import ConfigError, PipelineConfig, as_dict, load_config

log = logging.getLogger("pipelines.job")

EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2


class InputError(ValueError):
    """Input that the job cannot use (missing, empty, wrong schema); the message says which."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def job_parser(description: str, sections: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The options every job has; `--help` also lists the defaults of the config `sections` it uses."""
    parser = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter, epilog=_defaults(sections))
    parser.add_argument("--env", default=None, help="configuration overlay: conf/<env>/*.yml on top of conf/base")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--master", default=None, help="Spark master; default: spark-submit's, $PIPELINES_MASTER or local[2]")
    parser.add_argument("--log-level", default="INFO", help="log level of the pipelines' own messages")
    return parser


def _defaults(sections: Sequence[str]) -> str | None:
    if not sections:
        return None
    config = as_dict(load_config())
    lines = ["configuration (conf/base/*.yml; change with --env ENV or --set SECTION.KEY=VALUE):"]
    for section in sections:
        lines.append(f"  {section}: " + ", ".join(f"{k}={v}" for k, v in config[section].items()))
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


def run(main: Callable[[argparse.Namespace, PipelineConfig], None], parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse, load config, call `main`; turn any failure into one line on stderr and an exit code."""
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = load_config(env=args.env, overrides=args.overrides)
    except ConfigError as e:
        log.error("configuration error: %s", e)
        return EXIT_BAD_CONFIG
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
