"""What the three console scripts share: the --config option and how config errors end a run."""

from __future__ import annotations

import argparse
import logging
import sys

from shared.config import EXIT_CONFIG_ERROR, Config, load_config
from shared.errors import ConfigError


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="fedimg TOML config (default: $FEDIMG_CONFIG, then /etc/fedimg/fedimg.toml)",
    )


def config_or_exit(args: argparse.Namespace) -> Config:
    """Load the config named by --config; a bad file prints one line and exits with code 2."""
    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as e:
        print(f"error: config: {e}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
