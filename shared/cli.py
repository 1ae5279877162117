"""What the console scripts share: the --config option, how config errors end a run, and the
common command line of the targets' retention (cleanup) commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from shared.config import DEFAULT_PATH, ENV_VAR, EXIT_CONFIG_ERROR, Config, load_config
from shared.errors import ConfigError


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"fedimg TOML config (default: ${ENV_VAR}, then {DEFAULT_PATH})",
    )


def chosen_by(args: argparse.Namespace) -> str:
    """How the config file was chosen, said so that the reader knows how to choose another."""
    if getattr(args, "config", None):
        return "named by --config"
    if os.environ.get(ENV_VAR):
        return f"named by ${ENV_VAR}; --config FILE overrides it"
    return f"the default; choose another with --config FILE or ${ENV_VAR}"


def config_or_exit(args: argparse.Namespace, *, defaults_without_file: bool = False) -> Config:
    """Load the config named by --config; a bad file prints one line and exits with code 2.

    With ``defaults_without_file`` (for commands whose defaults serve on their own), a missing
    default file that neither --config nor $FEDIMG_CONFIG named gives the built-in defaults; a
    file that was named must exist.
    """
    explicit = getattr(args, "config", None)
    if (defaults_without_file and not explicit and not os.environ.get(ENV_VAR)
            and not Path(DEFAULT_PATH).exists()):
        return Config()
    try:
        return load_config(explicit)
    except ConfigError as e:
        print(f"error: config: {e} ({chosen_by(args)})", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


def cleanup_command(prog: str, description: str, argv: list[str] | None, *, flag: str,
                    metavar: str, overrides: str) -> tuple[argparse.Namespace, Config]:
    """Parse a cleanup command's line (--config, --dry-run, one retention override `flag`,
    -v), load the config (exit 2 if bad) and set up logging; (args, config).

    The override must not be negative (an argparse error, exit 2)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_config_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    parser.add_argument(flag, type=int, metavar=metavar,
                        help=f"override {overrides} for this run")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    override = getattr(args, flag.lstrip("-").replace("-", "_"))
    if override is not None and override < 0:
        parser.error(f"{flag} must not be negative")
    config = config_or_exit(args)
    setup_logging(args.verbose)
    return args, config


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
