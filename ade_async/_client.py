"""``ade_async.Client``: the public face over one engine (``ade_async._engine``) and one provider
(``ade_async.providers``); ``async with`` runs the engine (``run_engine``) and closes it."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, Self, TypeVar, overload

import anyio

from ._config import Timeouts, resolve_api_key, resolve_base_url
from ._engine.batch import stream
from ._engine.budgets import CREATE, limits_for
from ._engine.clock import Clock, LoopClock
from ._engine.engine import Engine, EngineConfig, run_engine
from ._engine.events import EventBus, Listener, ProgressHook
from ._engine.http import Transport
from ._engine.ratelimit import RateLimit
from ._engine.reconcile import ReconcilePolicy
from ._engine.retry import RetryPolicy
from ._engine.schedule import PollPolicy
from ._engine.stage import stage
from ._engine.stats import ClientStats, Counters
from ._engine.submit import PriorCreate, submit
from ._engine.transport import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_RESPONSE_BYTES, AiohttpTransport
from ._errors import ClientClosedError
from ._inputs import DocumentInput
from ._lowlevel import LowLevelCalls
from ._options import DEFAULT, Default, check_count, check_timeout
from ._results import ExtractResult, JobHandle, Outcome
from ._schema import SchemaInput, schema_to_dict
from .providers import Provider, get_provider

__all__ = ["DEFAULT", "Client"]

T = TypeVar("T")
_DictResult = ExtractResult[dict[str, Any]]
_Inputs = Iterable[DocumentInput] | AsyncIterable[DocumentInput]
#: ``extract_many``'s window when the rate limit sets no in-flight cap.
_DEFAULT_WINDOW: Final = 1000


class Client(anyio.AsyncContextManagerMixin, LowLevelCalls):
    """An asynchronous client for document extract jobs (LandingAI ADE unless told otherwise).

    Example::

        async with ade_async.Client() as client:   # LandingAI ADE, key from its variable
            result = await client.extract(Path("invoice.md"), schema=Invoice)
            invoice: Invoice = result.value
            async for outcome in client.extract_many(Path("docs").glob("*.md"), schema=Invoice):
                report(outcome.input, outcome.ok)

    Args:
        provider: the vendor: a name (``"landingai"``, the default) or a configured
            :class:`~ade_async.providers.Provider`.
        api_key: the key; by default from the provider's variables (``ade-async providers``).
        base_url: the API root (a proxy, the simulator); by default from the provider's variable,
            else the host of ``environment``. Plain ``http://`` only to a loopback host.
        environment: a region the provider names (ADE: ``"production"``, ``"eu"``).
        timeouts: connect, read and total timeouts.
        max_connections: the size of the HTTP connection pool.
        rate_limit: how fast jobs may be created (:class:`RateLimit`); by default the provider's,
            else adaptive.
        budget_limits: the provider's other budgets (``{"upload": RateLimit(...)}``); by default
            the provider's documented ones, else adaptive.
        retry: how failed calls are retried (:class:`RetryPolicy`).
        poll: how the shared poller watches jobs (:class:`PollPolicy`).
        reconcile: how the job of a create whose answer was lost is looked for.
        clock: the time source (tests pass ``ade_async.testing.FakeClock``).
        seed: seeds the jitter of backoffs and polls.
        max_response_bytes: the largest API answer read (32 MiB); :class:`ResponseTooLargeError`.
        max_download_bytes: the largest result downloaded from a result URL (512 MiB).
        transport: what sends requests (``ade_async.testing.MockTransport`` in tests); by
            default an aiohttp session made from the options above.

    Raises:
        ConfigurationError: no API key, an unknown environment, both ``base_url`` and
            ``environment``, or plain ``http://`` to a host that is not loopback.
        ValueError, TypeError: an option out of range, or an unknown provider.
    """

    def __init__(
        self,
        *,
        provider: str | Provider | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        environment: str | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        rate_limit: RateLimit | None = None,
        budget_limits: Mapping[str, RateLimit] | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        reconcile: ReconcilePolicy | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        transport: Transport | None = None,
    ) -> None:
        self._provider = get_provider(provider)
        key = resolve_api_key(api_key, self._provider.info)
        # From here on the key lives only in ``key`` (masked): this frame is on the traceback of
        # every error raised below, and error trackers record frame locals.
        del api_key
        check_count("max_connections", max_connections)
        check_count("max_response_bytes", max_response_bytes)
        check_count("max_download_bytes", max_download_bytes)
        self._transport: Transport = transport or AiohttpTransport(
            base_url=resolve_base_url(base_url, environment, self._provider.info),
            api_key=key,
            timeouts=timeouts or Timeouts(),
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
            max_download_bytes=max_download_bytes,
        )
        self._config = EngineConfig(
            provider=self._provider,
            rate_limit=rate_limit or self._provider.info.default_limits.get(CREATE, RateLimit()),
            budget_limits=limits_for(self._provider.info, budget_limits or {}),
            retry=retry if retry is not None else RetryPolicy(),
            poll=poll if poll is not None else PollPolicy(),
            reconcile=reconcile if reconcile is not None else ReconcilePolicy(),
            clock=clock if clock is not None else LoopClock(),
            rng=random.Random(seed),
            key_fingerprint=key.fingerprint(),  # names a shared quota; the key stays below
            counters=Counters(),
            events=EventBus(),
        )
        self._engine: Engine | None = None
        self._entered = False

    @property
    def provider(self) -> Provider:
        """The vendor's provider (``client.provider.info`` says what it can do)."""
        return self._provider

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return self._transport.base_url

    def stats(self) -> ClientStats:
        """A frozen snapshot of what this client has done, its poller and its admission gate."""
        return self._running().stats()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every :class:`JobEvent`; returns a function that
        unsubscribes. Listeners must be quick and not block."""
        return self._config.events.subscribe(listener)

    def __repr__(self) -> str:
        state = "closed" if self._engine is None else f"open {self._engine.describe()}"
        return f"<ade_async.Client {self._provider.info.name} base_url={self.base_url!r} {state}>"

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        if self._entered:
            raise RuntimeError("a Client can be entered only once; create a new one")
        self._entered = True
        async with run_engine(self._config, self._transport) as engine:
            self._engine = engine
            try:
                yield self
            finally:
                self._engine = None

    # --- the everyday calls -------------------------------------------------------------------------

    @overload
    async def extract(
        self, document: DocumentInput | None = ..., *, schema: type[T], **options: Any
    ) -> ExtractResult[T]: ...
    @overload
    async def extract(
        self, document: DocumentInput | None = ..., *, schema: Mapping[str, Any] | str, **options: Any
    ) -> _DictResult: ...
    async def extract(self, document: DocumentInput | None = None, *, schema: Any, **options: Any) -> Any:
        """Extract one document: :meth:`submit` it (same arguments) and await its result, typed
        by the schema (``result.value`` is an ``Invoice`` for ``schema=Invoice``)."""
        return await (await self.submit(document, schema=schema, **options))

    async def submit(
        self,
        document: DocumentInput | None = None,
        *,
        schema: SchemaInput,
        options: Any = None,
        filename: str | None = None,
        timeout: float | Default | None = DEFAULT,
        resubmit_unknown: bool | None = None,
        admission_timeout: float | None = None,
        on_progress: ProgressHook | None = None,
        prior: PriorCreate | None = None,
    ) -> JobHandle[Any]:
        """Create a job and return a handle the shared poller resolves (``await handle``).

        The schema and the document are checked first, as the vendor would (:class:`SchemaError`,
        :class:`InputError`; nothing sent); the job passes admission, is created, and watched.
        A create whose answer is lost is looked for by its match key and adopted
        (``handle.reconciled``), or sent again only if ``resubmit_unknown`` allows it
        (``handle.possible_duplicate``); otherwise :class:`CreateOutcomeUnknownError`.

        Args:
            document: a path, or the content as ``str`` or ``bytes`` (a ``str`` is content).
            schema: a JSON Schema (mapping or JSON string), or a msgspec Struct, dataclass,
                TypedDict or pydantic model type (then the result is typed by it).
            options: the provider's options (``LandingAIOptions(model=..., strict=...)``).
            filename: the upload's name; by default the file's, or the provider's default.
            timeout: this handle's timeout in seconds (``None``: none); by default
                ``PollPolicy.job_timeout``. Past it, awaiting raises :class:`JobTimeoutError`.
            resubmit_unknown: see above; ``None``: the client's ``ReconcilePolicy`` decides.
            admission_timeout: wait at most this long for create quota, then raise
                :class:`AdmissionTimeoutError` (no job created); a create once sent is never cut.
            on_progress: awaited at each step of the create (:class:`CreateProgress`, ``staged``
                ids included): a journal
                records "sending" (with its match key) before the create goes out.
            prior: creates an earlier process sent for this document and never saw answered
                (:class:`PriorCreate`): their job is looked for before anything is sent.
        """
        engine = self._running()
        timeout_s = check_timeout(timeout, self._config.poll.job_timeout)  # before anything is sent
        staged, schema_type = await stage(
            self._provider, engine.api, document, schema, options, filename, check=True
        )
        allow = self._config.reconcile.resubmit_unknown if resubmit_unknown is None else resubmit_unknown
        return await submit(
            engine,
            staged,
            timeout=timeout_s,
            on_progress=on_progress,
            resubmit_unknown=allow,
            prior=prior,
            admission_timeout=admission_timeout,
            schema_type=schema_type,
        )

    def watch(self, job_id: str, *, timeout: float | Default | None = DEFAULT) -> JobHandle[Any]:
        """Start watching any existing job and return a handle on it (one submitted elsewhere, or
        one whose handle timed out); ``timeout`` is this handle's own."""
        engine = self._running()
        timeout_s = check_timeout(timeout, self._config.poll.job_timeout)
        watch = engine.watch(job_id, timeout=timeout_s, first_delay=0.0)
        return JobHandle(watch, clock=self._config.clock, cancel=engine.cancel, timeout=timeout_s)

    def note_known_jobs(self, job_ids: Iterable[str]) -> None:
        """Jobs accounted for elsewhere (a journal's): never taken for the job of a lost create."""
        self._running().reconciler.note_known(job_ids)

    @overload
    def extract_many(self, inputs: _Inputs, *, schema: type[T], **kw: Any) -> AsyncGenerator[Outcome[T]]: ...
    @overload
    def extract_many(
        self, inputs: _Inputs, *, schema: Mapping[str, Any] | str, **kw: Any
    ) -> AsyncGenerator[Outcome[dict[str, Any]]]: ...
    def extract_many(  # type: ignore[misc]  # the overloads name schema; the rest is below
        self,
        inputs: _Inputs,
        *,
        schema: Any,
        options: Any = None,
        timeout: float | Default | None = DEFAULT,
        window: int | None = None,
        resubmit_unknown: bool | None = None,
    ) -> AsyncGenerator[Outcome[Any]]:
        """Extract many documents: one :class:`Succeeded` or :class:`Failed` per input, as jobs
        end (``outcome.index`` gives the input order), at most ``window`` in progress (default:
        ``max_in_flight``, else 1000); inputs are read lazily. Leave early with ``aclosing``:
        creates already on the wire still land (``stats().abandoned_job_ids``).

        Raises:
            ValueError, TypeError: a bad argument, before anything is read or sent.
            SchemaError: the vendor would refuse the schema.
            ClientClosedError: the client closed before every input had its outcome.
        """
        check_timeout(timeout, self._config.poll.job_timeout)
        engine = self._running()
        checked = self._provider.check_options(options)
        self._provider.prepare_schema(schema_to_dict(schema), checked)  # SchemaError now, not per input

        async def one(document: DocumentInput) -> JobHandle[Any]:
            return await self.submit(
                document, schema=schema, options=checked, timeout=timeout, resubmit_unknown=resubmit_unknown
            )

        default = self._config.rate_limit.max_in_flight or _DEFAULT_WINDOW
        return stream(inputs, submit=one, window=window, default_window=default, task_group=engine.task_group)

    # --- internals ------------------------------------------------------------------------------------

    def _running(self) -> Engine:
        if self._engine is None or not self._transport.is_open:
            raise ClientClosedError("The client is not open; use it inside `async with Client(...)`.")
        return self._engine
