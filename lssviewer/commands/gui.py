"""``lssviewer gui``: open the desktop app (also what ``lssviewer`` with no verb does)."""

from __future__ import annotations

import argparse

HELP = "open the desktop app (the default when no verb is given)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", help="catalog files to open")
    p.add_argument("--model", help="model directory (default: the built-in model)")


def run(args: argparse.Namespace) -> int:
    try:
        from lssviewer.gui.app import run_app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("lssviewer.gui"):
            from lssviewer.errors import LssviewerError

            raise LssviewerError("the desktop app is not part of this version yet; "
                                 "use the command-line verbs (lssviewer --help)") from None
        raise
    return run_app(files=args.files, model=args.model)
