"""What every job shares: --env/--set/--master options, logging set-up, one-line errors and exit codes."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from pipelines.config import ConfigError, PipelineConfig, load_config

log = logging.getLogger("pipelines.job")

EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2


class InputError(ValueError):
    """Input that the job cannot use (missing, empty, wrong schema); the message says which."""


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--env", default=None, help="configuration overlay: conf/<env>/*.yml on top of conf/base")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--master", default=None, help="Spark master; default: spark-submit's, $PIPELINES_MASTER or local[2]")
    parser.add_argument("--log-level", default="INFO", help="log level of the pipelines' own messages")
    return parser


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
        main(args, config)
    except (ConfigError, InputError) as e:
        log.error("failed: %s", e)
        return EXIT_BAD_CONFIG if isinstance(e, ConfigError) else EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - a job reports any failure as one line
        log.debug("traceback", exc_info=True)
        log.error("failed: %s: %s", type(e).__name__, _first_line(e))
        return EXIT_FAILED
    return 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""
