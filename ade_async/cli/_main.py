"""The ``ade-async`` command line: parse arguments, dispatch, return the exit code.

Subcommands::

    ade-async extract INPUT... --schema FILE --out DIR [options]   bulk extraction, resumable
    ade-async report OUT [--json]                                  the run report of an output folder
    ade-async jobs list [--status S] [--limit N]                  the API key's jobs
    ade-async jobs get JOB_ID                                      one job, as JSON
    ade-async jobs wait JOB_ID... --out DIR                        wait for jobs, write their results
    ade-async jobs cancel JOB_ID                                   cancel a job (where the vendor can)
    ade-async providers                                            the installed providers
    ade-async simulator [--port N] [...]                           the standalone API simulator

Every subcommand that talks to an API takes ``--provider NAME`` (default ``landingai``) and the key
from ``--api-key-file PATH``, ``--api-key KEY`` (visible to other users in ``ps``) or the
provider's environment variable; the file is read here, once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import anyio
import msgspec

from .._parsing import argument_type, parse_rate
from ..providers import DEFAULT_PROVIDER, available
from ._extract import ExitCode, ExtractOptions, run_extract
from ._jobs import Connection, cancel_job, get_job, list_jobs, print_providers, wait_jobs
from ._journal import JournalVersionError

__all__ = ["main"]


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


#: Longer than any API key by far; a file this long was named by mistake (or is /dev/zero).
_MAX_KEY_FILE_BYTES = 64 * 1024


def _key_variables() -> str:
    """Each provider's key variable, for help texts (``landingai: VISION_AGENT_...``)."""
    return "; ".join(f"{info.name}: {' or '.join(info.api_key_env)}" for info in available())


def _add_connection(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(info.name for info in available())
    group = parser.add_argument_group(
        "connection",
        "The API key comes from --api-key-file or --api-key, else from the provider's environment "
        f"variable ({_key_variables()}).",
    )
    group.add_argument(
        "--provider",
        default=DEFAULT_PROVIDER,
        metavar="NAME",
        help=f"the vendor's API: {names} (default: {DEFAULT_PROVIDER}); see `ade-async providers`",
    )
    key = group.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=(
            "the API key; other users of this machine can read it in `ps` (and it lands in your shell "
            "history): prefer --api-key-file or the provider's environment variable"
        ),
    )
    key.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="read the API key from this file: the key alone, a trailing newline allowed (never printed)",
    )
    group.add_argument(
        "--base-url",
        default=None,
        help=(
            "the API root (default: the provider's base-URL variable, else its default host); "
            "http:// only to a loopback host"
        ),
    )
    group.add_argument(
        "--environment", default=None, metavar="NAME", help="a region the provider names (e.g. eu)"
    )
    group.add_argument("--eu", action="store_true", help="the EU host: the same as --environment eu")


class _KeyFileError(Exception):
    """The file named by --api-key-file cannot give a key (the message never shows its content)."""


def read_api_key_file(path: Path) -> str:
    """The API key held in ``path``: its one line, without the line end and surrounding blanks.

    Raises:
        _KeyFileError: the file cannot be read, is not UTF-8, is empty, or holds more than one
            line; the message names the file and the reason, never what it holds.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise _KeyFileError(
            f"cannot read the API key file {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    if len(raw) > _MAX_KEY_FILE_BYTES:
        raise _KeyFileError(
            f"the API key file {path} is too large to hold a key ({_MAX_KEY_FILE_BYTES} bytes or more)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _KeyFileError(f"the API key file {path} is not UTF-8 text") from None
    key = text.strip()
    if not key:
        raise _KeyFileError(f"the API key file {path} is empty")
    if "\n" in key or "\r" in key:
        raise _KeyFileError(f"the API key file {path} holds more than one line; it must hold the key alone")
    return key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ade-async",
        description="Bulk, resumable document extraction through vendors' extract-job APIs.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    extract = commands.add_parser(
        "extract",
        help="extract every document of folders and files into one JSON result each",
        description=(
            "Extract INPUT files and folders (searched recursively) with one schema. Results go to "
            "OUT/<path>.json, failures to OUT/<path>.error.json. Re-running the same command resumes: "
            "finished inputs are skipped, running jobs collected, failed ones retried with --retry-failed. "
            "Exit codes: 0 all succeeded, 1 some failed, 2 usage error, 3 interrupted or jobs still "
            "pending, 4 the API refused the key or credits (401/402)."
        ),
    )
    extract.add_argument("inputs", nargs="+", metavar="INPUT", help="documents and folders")
    extract.add_argument("--schema", required=True, type=Path, help="a JSON Schema file (root type object)")
    extract.add_argument("--out", required=True, type=Path, help="the output folder (holds the journal too)")
    extract.add_argument(
        "--glob", default=None, help="file name pattern in folders (default: the provider's, e.g. *.md)"
    )
    extract.add_argument("--model", default=None, help="the extract model, e.g. extract-latest")
    extract.add_argument(
        "--strict", action="store_true", help="refuse schemas with unsupported keywords (landingai)"
    )
    _add_connection(extract)
    limits = extract.add_argument_group("pace")
    limits.add_argument(
        "--rate",
        action="append",
        default=[],
        type=argument_type(parse_rate, "rate"),
        metavar="COUNT/PERIOD",
        help="a quota window, e.g. 50/1s, 100/1m, 2000/1h; repeatable; none: learn the quota from 429s",
    )
    limits.add_argument(
        "--max-in-flight", type=argument_type(_positive_int, "count"), default=None, metavar="N"
    )
    limits.add_argument(
        "--safety-margin",
        type=argument_type(_non_negative_float, "margin"),
        default=None,
        metavar="SECONDS",
        help="added to every --rate window, for jitter between send and arrival (default: 0.05)",
    )
    limits.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help=(
            "share the quota with every process using the same Redis and quota name "
            "(e.g. redis://host:6379/0); use it when several processes or hosts share one API key"
        ),
    )
    limits.add_argument(
        "--quota-name",
        default=None,
        metavar="NAME",
        help="the shared quota's name with --redis (default: derived from a hash of the API key)",
    )
    limits.add_argument(
        "--job-timeout",
        type=argument_type(_positive_float, "timeout"),
        default=None,
        metavar="SECONDS",
        help="stop waiting for a job after this long (it goes on server-side; a re-run collects it)",
    )
    extract.add_argument(
        "--retry-failed", action="store_true", help="submit inputs that failed in earlier runs again"
    )
    extract.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="when the job of a create whose answer was lost cannot be found, submit it again "
        "(reported as a possible duplicate) instead of failing it",
    )
    extract.add_argument(
        "--search-time",
        type=argument_type(_positive_float, "search time"),
        default=30.0,
        metavar="SECONDS",
        help="how long to look for the job of a create whose answer was lost (default: 30)",
    )
    extract.add_argument(
        "--simulate", action="store_true", help="run against the built-in simulator (no key)"
    )
    extract.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    extract.add_argument("--quiet", action="store_true", help="no progress display")
    extract.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="do not write the run report OUT/.ade-async/report.html at the end (see `ade-async report`)",
    )
    extract.add_argument(
        "--max-size", type=argument_type(_positive_int, "size"), default=50 * 1024 * 1024, metavar="BYTES"
    )
    extract.add_argument(
        "--progress-interval",
        type=argument_type(_positive_float, "interval"),
        default=10.0,
        help=argparse.SUPPRESS,
    )

    report = commands.add_parser(
        "report",
        help="write the run report of an output folder (OUT/.ade-async/report.html)",
        description=(
            "Write OUT/.ade-async/report.html from the journal of `ade-async extract ... --out OUT`: one "
            "self-contained HTML file (it opens offline) with charts of the latest run's pace against "
            "the quota, jobs in flight, job times and requests, and tables of outcomes, failures, "
            "pending inputs, runs and settings. The charts need the report extra: "
            "pip install 'ade-async[report]'. Exit codes: 0 written, 2 no journal, or the extra missing."
        ),
    )
    report.add_argument("out", type=Path, metavar="OUT", help="an output folder of ade-async extract")
    report.add_argument(
        "--json",
        action="store_true",
        help="print the report's figures as JSON on stdout instead (needs no extra)",
    )

    jobs = commands.add_parser("jobs", help="list, show or wait for jobs of this API key")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = job_commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument(
        "--status", default=None, help="only jobs with this status, in the vendor's spelling"
    )
    listing.add_argument("--limit", type=argument_type(_positive_int, "limit"), default=100)
    _add_connection(listing)
    getting = job_commands.add_parser("get", help="show one job as JSON")
    getting.add_argument("job_id")
    _add_connection(getting)
    waiting = job_commands.add_parser("wait", help="wait for jobs and write each result to OUT/<job_id>.json")
    waiting.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    waiting.add_argument("--out", required=True, type=Path)
    waiting.add_argument(
        "--timeout", type=argument_type(_positive_float, "timeout"), default=None, metavar="SECONDS"
    )
    _add_connection(waiting)
    cancelling = job_commands.add_parser("cancel", help="cancel a job (where the provider's vendor can)")
    cancelling.add_argument("job_id")
    _add_connection(cancelling)

    commands.add_parser("providers", help="list the installed providers, their variables and hosts")
    commands.add_parser(
        "simulator", help="serve the API simulator (see: ade-async simulator --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["simulator"]:
        from ..testing.__main__ import main as simulator_main

        return simulator_main(arguments[1:])
    parser = _parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "providers":
        return print_providers(sys.stdout)
    if args.command == "report":
        return run_report(args.out, json=args.json, stdout=sys.stdout, stderr=sys.stderr)
    key_file: Path | None = getattr(args, "api_key_file", None)
    if key_file is not None:
        try:
            args.api_key = read_api_key_file(key_file)
        except _KeyFileError as exc:
            print(f"ade-async: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    if args.eu and args.environment not in (None, "eu"):
        print("ade-async: --eu and --environment cannot be used together", file=sys.stderr)
        return ExitCode.USAGE
    environment = "eu" if args.eu else args.environment
    if environment and args.base_url:
        print("ade-async: --eu/--environment and --base-url cannot be used together", file=sys.stderr)
        return ExitCode.USAGE
    if args.provider not in {info.name for info in available()}:
        names = ", ".join(info.name for info in available())
        print(f"ade-async: unknown provider {args.provider!r}; available: {names}", file=sys.stderr)
        return ExitCode.USAGE
    if args.command == "extract":
        if args.quota_name is not None and args.redis is None:
            print("ade-async: --quota-name needs --redis", file=sys.stderr)
            return ExitCode.USAGE
        options = ExtractOptions(
            inputs=args.inputs,
            provider=args.provider,
            schema=args.schema,
            out=args.out,
            pattern=args.glob,
            model=args.model,
            strict=args.strict,
            api_key=args.api_key,
            base_url=args.base_url,
            environment=environment,
            rates=tuple(args.rate),
            max_in_flight=args.max_in_flight,
            safety_margin=args.safety_margin,
            redis_url=args.redis,
            quota_name=args.quota_name,
            job_timeout=args.job_timeout,
            retry_failed=args.retry_failed,
            resubmit_unknown=args.resubmit_unknown,
            search_time=args.search_time,
            simulate=args.simulate,
            json=args.json,
            quiet=args.quiet,
            max_size=args.max_size,
            progress_interval=args.progress_interval,
            report=args.report,
        )
        return anyio.run(run_extract, options)
    connection = Connection(
        provider=args.provider, api_key=args.api_key, base_url=args.base_url, environment=environment
    )
    if args.jobs_command == "list":
        return anyio.run(lambda: list_jobs(connection, status=args.status, limit=args.limit))
    if args.jobs_command == "get":
        return anyio.run(lambda: get_job(connection, args.job_id))
    if args.jobs_command == "cancel":
        return anyio.run(lambda: cancel_job(connection, args.job_id))
    return anyio.run(lambda: wait_jobs(connection, args.job_ids, out=args.out, timeout=args.timeout))


def run_report(out: Path, *, json: bool, stdout: IO[str], stderr: IO[str]) -> int:
    """``ade-async report OUT``: write the HTML report (or print its figures with ``json``)."""
    from ._report import NoJournalError, ReportUnavailable, read_figures, write_report

    try:
        if json:
            figures = read_figures(out)
            print(msgspec.json.encode(figures).decode(), file=stdout, flush=True)
            return ExitCode.OK
        path = write_report(out)
    except (NoJournalError, ReportUnavailable, JournalVersionError) as exc:
        print(f"ade-async: {exc}", file=stderr)
        return ExitCode.USAGE
    print(f"ade-async: report {path}", file=stderr)
    return ExitCode.OK


def entry_point() -> None:
    """The console script: ``ade-async``."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
