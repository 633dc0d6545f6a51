"""What a vendor's extract-job API must tell the engine: the :class:`Provider` interface.

A provider is a translator plus a few small async steps. Pure translation where possible: build
each request (:class:`~ade_async._engine.http.HttpRequest`), parse each answer into the engine's
normalised types (:class:`~ade_async._engine.types.JobSnapshot`, ``JobPage``), classify each
create error. Async steps where a vendor needs them: stage a document before its create (upload
it, register the schema), fetch a finished job's result, cancel a job (a capability; never
faked). The engine does everything else (admission, retries, the shared poller, the search for
the job of a lost create, batches, events, stats) and never sees a vendor's field names.

The flow, one way: document -> :meth:`Provider.check_document` -> :meth:`Provider.stage` ->
admission -> :meth:`Provider.create_request` -> POST -> :meth:`Provider.parse_created` -> the
poller's :meth:`Provider.get_request` / :meth:`Provider.parse_job` (and sweeps through
:meth:`Provider.active_request`) -> :meth:`Provider.fetch_result` -> the caller's future.

A provider is stateless between calls but for caches it owns (a registered schema's id, say);
one instance serves one client.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .._engine.ratelimit import RateLimit
from .._engine.retry import CreateVerdict, create_verdict
from .._errors import ADEError, UnsupportedOperationError

if TYPE_CHECKING:
    from .._engine.http import Api, HttpRequest, Response
    from .._engine.types import JobPage, JobSnapshot, Staged
    from .._results import ExtractResult

__all__ = ["Provider", "ProviderInfo"]


@dataclass(frozen=True, kw_only=True)
class ProviderInfo:
    """What a provider declares about its vendor.

    Attributes:
        name: the short name (``landingai``): ``Client(provider=...)``, ``--provider``.
        title: the API's name, for messages and ``ade-async providers``.
        hosts: environment name -> base URL (``{"production": ..., "eu": ...}``).
        default_environment: the environment used when none is given.
        api_key_env: environment variables read for the API key, in order.
        base_url_env: the environment variable that overrides the base URL, if any.
        environment_env: the environment variable that names the environment, if any.
        key_help: where to get a key (ends the "no API key" message).
        input_kinds: the file suffixes the vendor accepts (``(".md",)``, ``(".pdf",)``).
        input_name: what those files are called, for messages (``Markdown``, ``PDF``).
        default_glob: which files of a folder the command takes by default.
        budgets: admission budgets -> what draws on them (``{"create": "job creates"}``). Every
            provider has ``create``; a vendor with uploads adds ``upload``.
        default_limits: a budget's :class:`RateLimit` when the caller gives none (a documented
            window, a cap on active jobs); a budget missing here is adaptive.
        can_cancel: whether the vendor can cancel a job (:meth:`Provider.cancel`).
        schema_rules: one line on which JSON Schemas the vendor takes, for help texts.
        created_status: the status a job has when its create was just accepted (shown until
            the first poll), in the vendor's spelling.
    """

    name: str
    title: str
    hosts: Mapping[str, str]
    default_environment: str
    api_key_env: tuple[str, ...]
    base_url_env: str | None = None
    environment_env: str | None = None
    key_help: str = ""
    input_kinds: tuple[str, ...] = ()
    input_name: str = "document"
    default_glob: str = "*"
    budgets: Mapping[str, str] = field(default_factory=lambda: {"create": "job creates"})
    default_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    can_cancel: bool = False
    schema_rules: str = ""
    created_status: str = "queued"


class Provider(abc.ABC):
    """One vendor's extract-job API, translated for the engine (see the module docstring).

    Subclasses set :attr:`info` and :attr:`options_type` and implement the abstract methods.
    """

    #: What the provider declares about its vendor.
    info: ClassVar[ProviderInfo]
    #: The type of the vendor's per-job options (a frozen dataclass with defaults).
    options_type: ClassVar[type[Any]]

    def default_options(self) -> Any:
        """The options used when a caller gives none."""
        return self.options_type()

    def check_options(self, options: Any) -> Any:
        """``options``, checked to be this provider's (``None``: the defaults)."""
        if options is None:
            return self.default_options()
        if not isinstance(options, self.options_type):
            raise TypeError(
                f"options for {self.info.title} must be {self.options_type.__name__}, "
                f"not {type(options).__name__}"
            )
        return options

    # --- local checks: nothing is sent ----------------------------------------------------------

    @abc.abstractmethod
    def prepare_schema(self, schema: dict[str, Any] | str, options: Any, *, check: bool = True) -> Any:
        """The schema as the create will send it, checked against the vendor's rules
        (``check=False``: unchecked, for ``client.create_job``, which lets the vendor judge; a
        JSON string then goes as given).

        Raises:
            SchemaError: the vendor would refuse it.
        """

    @abc.abstractmethod
    def check_document(self, content: bytes, filename: str) -> str | None:
        """Why the vendor would refuse this document (``None``: it would take it)."""

    def needs_document(self, options: Any) -> bool:
        """Whether a create needs a document (a vendor may take a URL in its options instead)."""
        return True

    @property
    def default_filename(self) -> str:
        """The file name of content given as ``str`` or ``bytes``."""
        suffix = self.info.input_kinds[0] if self.info.input_kinds else ""
        return f"document{suffix}"

    # --- before the create --------------------------------------------------------------------------

    async def stage(
        self, api: Api, *, content: bytes | None, filename: str, schema: Any, options: Any
    ) -> Staged:
        """Prepare a create: upload the document, register the schema, as the vendor needs.

        Calls that draw on a budget of their own go through ``api.send_within("upload", request)``
        (admitted on that budget's gate, a 429 waited out). The default keeps the bytes for the
        create itself (a vendor whose create carries them).
        """
        from .._engine.types import Staged

        digest = None if content is None else hashlib.sha256(content).hexdigest()
        return Staged(
            filename=filename, content=content, schema=schema, options=options, content_sha256=digest
        )

    # --- the create ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_request(self, staged: Staged) -> tuple[HttpRequest, str | None]:
        """One create of ``staged``, and the key its job will be recognised by (``match_key``)
        should its answer be lost; ``None`` when nothing could recognise it. Called again for
        each attempt: a provider may give each attempt a key of its own."""

    @abc.abstractmethod
    def parse_created(self, request: HttpRequest, response: Response) -> str:
        """The new job's id, from a create's 2xx answer.

        Raises:
            MalformedResponseError: the answer does not say.
        """

    def create_verdict(self, error: ADEError) -> CreateVerdict:
        """Whether a failed create can have made a job, and what to do (see ``_engine.retry``)."""
        return create_verdict(error)

    # --- watching -------------------------------------------------------------------------------------

    @abc.abstractmethod
    def get_request(self, job_id: str) -> HttpRequest:
        """Get one job."""

    @abc.abstractmethod
    def parse_job(self, request: HttpRequest, response: Response) -> JobSnapshot:
        """One job, from a get's answer."""

    @abc.abstractmethod
    def active_request(self, cursor: str | None) -> HttpRequest:
        """One page of the jobs still queued or running (``cursor``: ``None`` for the first); the
        shared poller sweeps these lists instead of polling every job."""

    @abc.abstractmethod
    def parse_active(self, request: HttpRequest, response: Response, cursor: str | None) -> JobPage:
        """One page of active jobs, and the cursor of the next (``None`` after the last)."""

    @abc.abstractmethod
    def recent_request(self, cursor: str | None) -> HttpRequest:
        """One page of all jobs, newest first: where the job of a lost create is looked for."""

    @abc.abstractmethod
    def parse_recent(self, request: HttpRequest, response: Response, cursor: str | None) -> JobPage:
        """One page of recent jobs, and the cursor of the next."""

    @abc.abstractmethod
    def list_request(self, *, status: str | None, page_size: int, cursor: str | None) -> HttpRequest:
        """One page of ``client.list_jobs`` (``status``: the vendor's own spelling)."""

    @abc.abstractmethod
    def parse_list(self, request: HttpRequest, response: Response, cursor: str | None) -> JobPage:
        """One page of jobs for ``client.list_jobs``."""

    # --- results and cancel -------------------------------------------------------------------------

    @abc.abstractmethod
    async def fetch_result(self, api: Api, job: JobSnapshot) -> ExtractResult[Any]:
        """A finished job's result, from wherever the vendor keeps it (a read of the provider's
        own goes through ``api.read``, retried under the client's policy).

        Raises:
            JobFailedError, JobCancelledError, JobNotFinishedError: the job has no result.
            ResultDownloadError: it could not be fetched.
        """

    async def cancel(self, api: Api, job_id: str) -> JobSnapshot:
        """Cancel a job. Only where the vendor can (:attr:`ProviderInfo.can_cancel`).

        Raises:
            UnsupportedOperationError: the vendor has no way to cancel a job.
        """
        raise UnsupportedOperationError(
            f"{self.info.title} cannot cancel a job (it has no endpoint for it): the job "
            f"{job_id} runs to its end server-side",
            operation="cancel",
            provider=self.info.name,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.name}>"
