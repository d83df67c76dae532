"""``plasticity-book``: execute the chapters, build the book, list runs.

    plasticity-book execute    [--profile smoke|default|paper] [--chapters ...] [--jobs N]
                               [--force] [--param NAME=VALUE ...] [--timeout S]
    plasticity-book robustness [--profile default] [--chapters ...] [--jobs N] [--force]
                               [--runs seeds fashion] [--timeout S]
    plasticity-book prepare    [--profile smoke] [--chapters ...]   (into _build/prepared/)
    plasticity-book build      [--profile default] [--strict] [--chapters ...]
    plasticity-book list

``robustness`` re-executes the chapters (1) with held-out seeds (seed_offset=100) and
(2) with every dataset-like parameter set to fashion_mnist, into results/robust-seeds/
and results/robust-fashion/ (``-<profile>`` appended for other profiles); the book's
results/<profile>/ is never touched. ``build`` then shows both runs' verdicts on the
scorecard.
"""

from __future__ import annotations

import argparse
import sys

from . import pipeline, profiles


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="plasticity-book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    ex = sub.add_parser(
        "execute", help="execute chapters with papermill (skips chapters that are up to date)"
    )
    ex.add_argument("--profile", default="default", choices=profiles.PROFILE_NAMES)
    ex.add_argument("--chapters", nargs="*", help="chapter stems, ids or numbers (default: all)")
    ex.add_argument("--jobs", type=int, default=1, help="chapters executed at once (default 1)")
    ex.add_argument("--force", action="store_true", help="re-execute even when nothing changed")
    ex.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="override one profile field in every selected chapter (a JSON or Python "
        "literal: 5, 1e-5, true, [0, 8]; else a string); validated before any kernel starts",
    )
    ex.add_argument("--timeout", type=float, default=None, help="seconds allowed per chapter")

    rb = sub.add_parser(
        "robustness",
        help="re-execute the chapters with held-out seeds and on Fashion-MNIST "
        "(results/robust-seeds/, results/robust-fashion/)",
    )
    rb.add_argument("--profile", default="default", choices=profiles.PROFILE_NAMES)
    rb.add_argument("--chapters", nargs="*", help="chapter stems, ids or numbers (default: all)")
    rb.add_argument("--jobs", type=int, default=1, help="chapter runs at once (default 1)")
    rb.add_argument("--force", action="store_true", help="re-execute even when nothing changed")
    rb.add_argument(
        "--runs",
        nargs="*",
        choices=list(pipeline.ROBUSTNESS_RUNS),
        default=list(pipeline.ROBUSTNESS_RUNS),
        help="which robustness runs (default: both)",
    )
    rb.add_argument("--timeout", type=float, default=None, help="seconds allowed per chapter")

    pr = sub.add_parser(
        "prepare",
        help="write parameterised, unexecuted notebooks to _build/prepared/<profile>/ "
        "(for nbmake; never the book's results)",
    )
    pr.add_argument("--profile", default="smoke", choices=profiles.PROFILE_NAMES)
    pr.add_argument("--chapters", nargs="*")
    pr.add_argument("--param", action="append", metavar="NAME=VALUE")

    bd = sub.add_parser(
        "build", help="render the book from the executed notebooks and regenerate the scorecard"
    )
    bd.add_argument("--profile", default="default", choices=profiles.PROFILE_NAMES)
    bd.add_argument("--strict", action="store_true", help="treat Sphinx warnings as errors")
    bd.add_argument(
        "--chapters",
        nargs="*",
        help="render only these chapters (a partial book; default: all)",
    )

    sub.add_parser("list", help="chapters, their profiles and their last runs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "execute":
            failed = pipeline.execute(
                args.profile,
                args.chapters,
                args.jobs,
                args.force,
                pipeline.parse_overrides(args.param),
                args.timeout,
            )
            return 1 if failed else 0
        if args.command == "robustness":
            failed = pipeline.robustness(
                args.profile, args.chapters, args.jobs, args.force, args.timeout, args.runs
            )
            return 1 if failed else 0
        if args.command == "prepare":
            overrides = pipeline.parse_overrides(args.param)
            for path in pipeline.prepare(args.profile, args.chapters, overrides):
                print(path)
            return 0
        if args.command == "build":
            index = pipeline.build(args.profile, strict=args.strict, chapters=args.chapters)
            print(f"book built: {index}")
            return 0
        if args.command == "list":
            print(pipeline.list_chapters())
            return 0
    except (pipeline.Interrupted, KeyboardInterrupt) as e:
        print(f"plasticity-book {args.command}: {e or 'interrupted (Ctrl-C)'}", file=sys.stderr)
        return 130
    except (profiles.ParameterError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"plasticity-book {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
