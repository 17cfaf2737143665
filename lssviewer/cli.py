"""The ``lssviewer`` command line: a thin argparse front over the core library.

``lssviewer`` with no verb opens the desktop app. Each verb lives in its own module under
:mod:`lssviewer.commands` exposing ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; command modules import heavy libraries (torch, Qt) only inside ``run``.

User errors (:class:`~lssviewer.errors.LssviewerError`, and OS errors on files) print one line
``lssviewer: error: FILE: what is wrong`` on stderr and exit with status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from lssviewer._version import __version__

#: Verb name -> module implementing it, in the order ``--help`` lists them.
VERBS: dict[str, str] = {
    "gui": "lssviewer.commands.gui",
    "info": "lssviewer.commands.info",
    "convert": "lssviewer.commands.convert",
    "simulate": "lssviewer.commands.simulate",
    "suite": "lssviewer.commands.suite",
    "stats": "lssviewer.commands.stats",
    "train": "lssviewer.commands.train",
    "sample": "lssviewer.commands.sample",
    "scan": "lssviewer.commands.scan",
}


def _available_verbs() -> dict[str, object]:
    modules = {}
    for verb, modname in VERBS.items():
        try:
            modules[verb] = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a verb not written yet
            if exc.name != modname:
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lssviewer",
        description="Field-level generative models of dark-matter halo catalogs. "
        "With no verb, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"lssviewer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, module in _available_verbs().items():
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def error_line(exc: BaseException) -> str:
    """The one-line message printed for ``exc``."""
    from lssviewer.errors import LssviewerError

    if isinstance(exc, LssviewerError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or str(exc)
        return f"{os.fspath(exc.filename)}: {reason}"
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        args = parser.parse_args(["gui", *(["--debug"] if args.debug else [])])
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("lssviewer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # every user-facing error ends here
        if getattr(args, "debug", False):
            raise
        print(f"lssviewer: error: {error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
