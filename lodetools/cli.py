"""The ``lodetools`` command line.

The group knows each subcommand only by name and module: a subcommand lives in
``lodetools/commands/<module>.py`` as a click command called ``command`` and is
imported when used, so ``lodetools --help`` stays fast and one broken optional
dependency cannot take the whole CLI down.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback

import click

from lodetools import __version__
from lodetools.errors import EXIT_BUG, EXIT_USER, LodeError, from_os_error

#: subcommand name -> module under ``lodetools.commands``, in help order.
COMMANDS = {
    "demo": "demo",
    "sim": "sim",
    "synthesize": "synthesize",
    "calibrate": "calibrate",
    "develop": "develop",
    "align": "align",
    "masks": "masks",
    "lbs": "lbs",
    "stats": "stats",
    "eval": "evaluate",
    "train": "train",
    "deblur": "deblur",
    "convert-checkpoint": "convert_checkpoint",
    "report": "report",
    "verify": "verify",
    "inspect": "inspect",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return [
            name
            for name, mod in COMMANDS.items()
            if importlib.util.find_spec(f"lodetools.commands.{mod}") is not None
        ]

    def get_command(self, ctx, name):
        mod = COMMANDS.get(name)
        if mod is None or importlib.util.find_spec(f"lodetools.commands.{mod}") is None:
            return None
        return importlib.import_module(f"lodetools.commands.{mod}").command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lodetools")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse images that declare more than N pixels, before decoding them "
                   "(default 100000000, or the LODETOOLS_MAX_PIXELS environment variable).")
@click.pass_context
def cli(ctx, debug, max_pixels):
    """Build local-motion-deblurring benchmarks and train the networks that use them.

    Start with `lodetools demo --out demo-out`, which runs every step on a
    built-in synthetic capture world and writes demo-out/report.html.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if max_pixels is not None:  # through the environment, so worker processes see it too
        os.environ["LODETOOLS_MAX_PIXELS"] = str(max_pixels)


def main(argv=None):
    """Entry point of the console script: maps errors to one line and an exit code."""
    run_command(cli, argv)


def run_command(command: click.Command, argv=None, prog_name: str = "lodetools"):
    """Run a click command, printing a LodeError or usage error as one line.

    Exit codes: 0 success, :data:`~lodetools.errors.EXIT_USER` (2) for bad input
    or usage, :data:`~lodetools.errors.EXIT_BUG` (70) for an internal bug,
    130 when interrupted; a command may exit with its own code (3: some items
    failed). An operating-system error on a named path (permission denied, a
    full disk, a file where a folder is expected, ...) is bad input: one line
    naming the path. ``--debug`` anywhere in ``argv`` prints tracebacks.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except LodeError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_USER)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors: one line too
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USER if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # an internal bug, or a system error on a named path
        if debug:
            traceback.print_exc()
        err = from_os_error(exc)
        if err is not None:
            click.echo(f"error: {err.message}", err=True)
            sys.exit(EXIT_USER)
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"internal error: {type(exc).__name__}: {first} "
            "(a bug in lodetools; rerun with --debug for the traceback)",
            err=True,
        )
        sys.exit(EXIT_BUG)
    sys.exit(0)
