"""The vendor-neutral simulator engine: what every simulated extract-jobs API shares.

Vendors differ in every detail (what is uploaded first, JSON or multipart creates, status
spellings, where results live, paging, cancel, what a 429 means) and agree on the shape: stage an
input, create a job under a budget, watch it until it ends, fetch its result. This package is that
shape, with no vendor's paths, field names or status strings in its code; a vendor's folder
(``testing/<vendor>/``) is a translator over it.

How a vendor module uses it
===========================

1. **State**: subclass :class:`Engine` (generic in the vendor's :class:`JobRecord` subclass),
   passing its endpoint names, single-endpoint faults, :class:`StatusNames`, :class:`Timing` and
   :class:`BudgetLimits` per budget. The engine brings the seeded RNG, keys, jobs
   (:class:`JobStore`), uploads (:class:`Catalog` of :class:`StoredFile`), presigned links
   (:class:`ExpiringLinks`), budgets (:class:`Budgets`), faults (:class:`FaultPlan`), counters
   and recorded exchanges.
2. **Routes**: subclass :class:`Routes` over that state: list its :class:`Route` entries, say what
   its error body looks like (:meth:`Routes.error`) and what its stats show; write handlers
   ``async (Call) -> Answer``. Authentication, faults, counting and recording are done around
   them by :func:`build_application`, which also serves ``/_simulator/stats`` and
   ``/_simulator/jobs``.
3. **A create**, in a handler, with nothing awaited between the check and the draw::

       refusal = state.budgets.check("create", now)        # windows, active-job cap
       if refusal is not None:
           return self.too_many("create", refusal.wait)    # or a body of the vendor's choosing
       lifecycle = state.plan(text, now)                   # latency, outcome, markers
       job = MyJob(job_id=state.new_uuid(), owner=call.key, lifecycle=lifecycle, ...)
       state.jobs.add(job)
       state.budgets.take("create", now, job=lifecycle)    # holds an active slot until it ends

4. **Reads**: :meth:`Engine.status_of` spells the status at ``now``; :meth:`Engine.extraction_of`
   extracts once (:func:`extract`, the deterministic rule); :meth:`Engine.result_when_ready`
   serves a results step that may be asked early; :meth:`Engine.cancel` ends a job where the
   vendor has a cancel; :meth:`JobStore.page_by_offset` and :meth:`JobStore.page_by_cursor` page.
5. **Schemas**: :func:`resolve_refs`, :func:`scan_schema`, :func:`build_fields` (or
   :func:`compile_schema` in one call) make a :class:`PreparedSchema`; the vendor maps a
   :class:`SchemaProblem` to its documented answer.

Everything but ``_serving`` is sans-I/O: methods take ``now`` and never await, so the engine's
decisions are tested with plain numbers (or a :class:`FakeClock`), without a server.
"""

from ._clock import FakeClock
from ._core import Engine
from ._extraction import REFERENCE_NAMESPACE, Extracted, extract, index_document, reference_id
from ._faults import FAULT_KINDS, SERVER_ERRORS, FaultKind, FaultPlan
from ._files import Catalog, ExpiringLinks, StoredFile
from ._forms import FormError, FormPart, parse_form, parse_header_params
from ._jobs import JobRecord, JobStore, decode_cursor, encode_cursor, page_by_cursor, page_by_offset
from ._lifecycle import PHASES, ActiveJobs, Lifecycle, Outcome, Phase, StatusNames, Timing
from ._markers import Markers, parse_markers
from ._quotas import RETRY_AFTER_FORMS, BudgetLimits, Budgets, Refusal, RetryAfterForm, retry_after_headers
from ._records import Exchange, FormField, form_record
from ._schema import (
    MAX_EXPANDED_NODES,
    FieldSpec,
    Kind,
    PreparedSchema,
    SchemaProblem,
    SchemaScan,
    build_fields,
    compile_schema,
    count_leaves,
    expanded_nodes,
    normalize_label,
    resolve_refs,
    scan_schema,
    shown_path,
)
from ._serving import JOBS_TIMELINE_PATH, JSON, STATS_PATH, Answer, Call, Route, Routes, build_application

__all__ = [
    "FAULT_KINDS",
    "JOBS_TIMELINE_PATH",
    "JSON",
    "MAX_EXPANDED_NODES",
    "PHASES",
    "REFERENCE_NAMESPACE",
    "RETRY_AFTER_FORMS",
    "SERVER_ERRORS",
    "STATS_PATH",
    "ActiveJobs",
    "Answer",
    "BudgetLimits",
    "Budgets",
    "Call",
    "Catalog",
    "Engine",
    "Exchange",
    "ExpiringLinks",
    "Extracted",
    "FakeClock",
    "FaultKind",
    "FaultPlan",
    "FieldSpec",
    "FormError",
    "FormField",
    "FormPart",
    "JobRecord",
    "JobStore",
    "Kind",
    "Lifecycle",
    "Markers",
    "Outcome",
    "Phase",
    "PreparedSchema",
    "Refusal",
    "RetryAfterForm",
    "Route",
    "Routes",
    "SchemaProblem",
    "SchemaScan",
    "StatusNames",
    "StoredFile",
    "Timing",
    "build_application",
    "build_fields",
    "compile_schema",
    "count_leaves",
    "decode_cursor",
    "encode_cursor",
    "expanded_nodes",
    "extract",
    "form_record",
    "index_document",
    "normalize_label",
    "page_by_cursor",
    "page_by_offset",
    "parse_form",
    "parse_header_params",
    "parse_markers",
    "reference_id",
    "resolve_refs",
    "retry_after_headers",
    "scan_schema",
    "shown_path",
]
