"""``shadow-report SOURCE``: compare a shadow test's production and shadow answers from captured data.

SOURCE is a local folder or an ``s3://bucket/prefix`` URI in SageMaker's capture layout. Writes report.md,
report.json and PNG plots into ``--out``. Bad input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from .sources import ReportError

PROGRESS_BYTES = 32 * 1024 * 1024


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise ReportError(message)


def _time(option: str):
    def parse(text: str) -> datetime:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be an ISO 8601 time like 2026-11-25T14:00:00Z, got {text!r}") from None
    return parse


def _number(option: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a number, got {text!r}") from None
        if value != value or value < 0:
            raise argparse.ArgumentTypeError(f"{option} must be a number >= 0, got {text!r}")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    cli = _Parser(prog="shadow-report", description="Compare a shadow test's production and shadow answers from captured "
                  "data: pairs records by inferenceId, writes report.md, report.json and PNG plots.")
    cli.add_argument("source", help="local folder or s3://bucket/prefix holding <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl")
    cli.add_argument("--endpoint", help="endpoint to report on (default: the only one found)")
    cli.add_argument("--production-variant", help="production's variant name (default: inferred)")
    cli.add_argument("--shadow-variant", help="the shadow's variant name (default: inferred, e.g. the name containing 'shadow')")
    cli.add_argument("--tolerance", type=_number("--tolerance"), default=0.01,
                     help="absolute difference still counted as the same answer (default: 0.01)")
    cli.add_argument("--threshold", type=_number("--threshold"), default=0.5,
                     help="probability at or above which a numeric prediction is label 1 (default: 0.5)")
    cli.add_argument("--start", type=_time("--start"), help="first inference time included, ISO 8601 (default: all)")
    cli.add_argument("--end", type=_time("--end"), help="first inference time excluded, ISO 8601 (default: all)")
    cli.add_argument("--out", default="shadow-report", help="output folder (default: ./shadow-report)")
    cli.add_argument("--memory-limit", default="256MB", help="DuckDB memory limit; it spills to disk beyond (default: 256MB)")
    progress = cli.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show the progress bar (default: on inputs of 32 MB or more)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    return cli


class ProgressBar:
    """A one-line progress bar on stderr (carriage returns, no dependency)."""

    def __init__(self, label: str, stream=None) -> None:
        self.label, self.stream, self.started, self.shown = label, stream or sys.stderr, time.monotonic(), False

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(share * 30)
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {100 * share:5.1f}% "
                          f"{done / 1e6:,.1f}/{total / 1e6:,.1f} MB {elapsed:5.1f} s")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def run(argv: list[str] | None = None) -> dict[str, str]:
    """Parse ``argv``, compare, write the outputs; returns {kind: path}. Raises ReportError on bad input."""
    try:
        import PIL  # noqa: F401  (Pillow draws the plots)

        from .engine import ReportSettings, analyse, duckdb_module
        from .render import PLOTS, draw_charts, write_all
        from .sources import discover, download_s3, temporary_folder
    except ImportError as missing:
        raise ReportError(f"shadow-report needs {missing.name}: pip install 'shadow-constructs[report]'") from None
    duckdb_module()  # imported now: a missing DuckDB is said before anything else
    args = parser().parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ReportError(f"--out {args.out!r} exists and is not a folder")
    settings = ReportSettings(endpoint=args.endpoint, production_variant=args.production_variant,
                              shadow_variant=args.shadow_variant, tolerance=args.tolerance, threshold=args.threshold,
                              start=args.start, end=args.end, memory_limit=args.memory_limit)
    settings.check()
    with temporary_folder() as scratch:
        folder = args.source
        if args.source.startswith("s3://"):
            counter = _DownloadCounter() if args.progress is not False else None
            try:
                folder = download_s3(args.source, os.path.join(scratch, "download"), progress=counter)
            finally:
                if counter:
                    counter.close()
        files, _ = discover(folder)
        if not files:
            raise ReportError(f"no capture files under {args.source!r} (expected <endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)")
        total = sum(f.size for f in files)
        # Pillow and the chart module are imported while DuckDB reads (it releases the GIL), not after it.
        threading.Thread(target=_import_plots, daemon=True).start()
        show = args.progress if args.progress is not None else total >= PROGRESS_BYTES
        bar = ProgressBar("reading capture files") if show else None
        # The charts are drawn (in memory) while DuckDB computes the other measures.
        with ThreadPoolExecutor(max_workers=len(PLOTS)) as pool:
            drawn: dict[str, Future[bytes]] = {}

            def draw_early(endpoint: str, production: str, shadow: str, histogram: list, scatter: list,
                           agreement: list) -> None:
                drawn.update(draw_charts(pool, endpoint, production, shadow, histogram=histogram, scatter=scatter,
                                         agreement=agreement))

            try:
                analysis = analyse(files, settings, scratch, progress=bar, charts=draw_early)
            finally:
                if bar:
                    bar.close()
            return write_all(analysis, args.out, args.source, drawn=drawn)


def _import_plots() -> None:
    with contextlib.suppress(ImportError):  # a missing module is reported where the charts are drawn
        from PIL import Image, ImageDraw, ImageFont, PngImagePlugin  # noqa: F401

        from . import plots  # noqa: F401


class _DownloadCounter:
    """Counts downloaded files on stderr, every 100 files (small downloads stay silent)."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, count: int, key: str) -> None:
        if count % 100 == 0:
            sys.stderr.write(f"\rdownloaded {count:,} capture files")
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def main(argv: list[str] | None = None) -> int:
    try:
        written = run(argv)
    except ReportError as error:
        print(f"shadow-report: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a command line answers in one line; SHADOW_REPORT_DEBUG=1 shows the trace
        if os.environ.get("SHADOW_REPORT_DEBUG"):
            raise
        print(f"shadow-report: error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", file=sys.stderr)
        return 1
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
