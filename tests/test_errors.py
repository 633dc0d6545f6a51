"""The error tree: one root, status errors by code, defensive reading of error bodies."""

from __future__ import annotations

import email.utils
import inspect
import pickle
from typing import Any

import pytest

import ade_async
from ade_async._config import ApiKey
from ade_async._engine.reconcile import SearchReport
from ade_async._engine.retry_after import parse_retry_after
from ade_async._errors import describe_error_body, error_for_status
from ade_async.providers import landingai
from ade_async.providers.landingai.wire import ValidationErrorItem


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ade_async.BadRequestError),
        (401, ade_async.AuthenticationError),
        (402, ade_async.PaymentRequiredError),
        (403, ade_async.PermissionDeniedError),
        (404, ade_async.NotFoundError),
        (422, ade_async.UnprocessableEntityError),
        (429, ade_async.RateLimitError),
        (500, ade_async.ServerError),
        (503, ade_async.ServerError),
        (418, ade_async.APIStatusError),
    ],
)
def test_status_classes(status: int, cls: type[ade_async.APIStatusError]) -> None:
    err = error_for_status(status, body=None, method="GET", path="/p")
    assert type(err) is cls
    assert isinstance(err, ade_async.ADEError)
    assert err.status_code == status
    assert str(err) == f"GET /p answered {status}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"error": "Invalid JSON schema"}, "Invalid JSON schema"),  # create puts errors in `error`
        ({"message": "Job not found"}, "Job not found"),  # get and list use `message`
        ({"error": {"message": "nested"}}, "nested"),
        ({"detail": "plain detail"}, "plain detail"),
        (
            {"detail": [{"loc": ["body", "schema"], "msg": "Field required", "type": "missing"}]},
            "body.schema: Field required",
        ),
        ({"code": "rate_limit_exceeded"}, "rate_limit_exceeded"),
        ("<html>Bad gateway</html>", "<html>Bad gateway</html>"),
        (None, ""),
    ],
)
def test_error_body_is_read_defensively(body: object, reason: str) -> None:
    assert describe_error_body(body) == reason


def test_long_bodies_are_clipped() -> None:
    assert len(describe_error_body("x" * 10_000)) <= 500


def test_422_detail_is_parsed() -> None:
    body = {"detail": [{"loc": ["body", "markdown"], "msg": "Invalid file provided", "type": "value_error"}]}
    err = error_for_status(422, body=body, method="POST", path="/v1/ade/extract/jobs")
    assert isinstance(err, ade_async.UnprocessableEntityError)
    assert err.detail == (
        landingai.ValidationErrorItem(
            loc=("body", "markdown"), msg="Invalid file provided", type="value_error"
        ),
    )
    assert "Invalid file provided" in str(err)


def test_422_with_another_shape_keeps_the_body() -> None:
    err = error_for_status(422, body={"error": "Unsupported format"}, method="POST", path="/x")
    assert isinstance(err, ade_async.UnprocessableEntityError)
    assert err.detail == ()
    assert err.body == {"error": "Unsupported format"}
    assert "Unsupported format" in str(err)


def test_429_carries_retry_after() -> None:
    err = error_for_status(429, body=None, method="POST", path="/x", retry_after=2.5)
    assert isinstance(err, ade_async.RateLimitError)
    assert err.retry_after == 2.5


def test_transport_errors_say_whether_the_request_was_sent() -> None:
    assert not ade_async.ConnectError("m", method="POST", path="/x").request_sent
    assert not ade_async.ConnectTimeoutError("m", method="POST", path="/x").request_sent
    assert ade_async.ReadTimeoutError("m", method="POST", path="/x").request_sent
    assert ade_async.ConnectionLostError("m", method="POST", path="/x").request_sent


def test_job_errors_carry_the_job_id() -> None:
    err = ade_async.JobFailedError("failed", job_id="j1", failure_reason="boom")
    assert isinstance(err, ade_async.JobError)
    assert (err.job_id, err.failure_reason) == ("j1", "boom")
    assert repr(err) == "JobFailedError('failed')"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the precise one wins, as in the SDK
        ({"retry-after-ms": "junk", "Retry-After": "9"}, 9.0),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=1_000_000.0) == expected


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


# --- pickling ------------------------------------------------------------------------------------
# Batches run under multiprocessing, Celery or Ray carry errors between processes by pickle.


def _every_error_class() -> list[type[ade_async.ADEError]]:
    """ADEError and every subclass, walked from the root: a new class cannot be forgotten."""
    import ade_async.fastapi  # its QuotaExhaustedError is an ADEError too

    found: list[type[ade_async.ADEError]] = []
    pending: list[type[ade_async.ADEError]] = [ade_async.ADEError]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


#: A value for every constructor argument an error class takes; a class with an argument missing
#: here fails its test, which names the argument.
_SAMPLES: dict[str, Any] = {
    "message": "something went wrong",
    "method": "POST",
    "path": "/v1/ade/extract/jobs",
    "status_code": 422,
    "body": {"detail": [{"loc": ["body", "schema"], "msg": "bad", "type": "value_error"}]},
    "detail": (ValidationErrorItem(loc=("body", "schema"), msg="bad", type="value_error"),),
    "retry_after": 1.5,
    "job_id": "job-1",
    "failure_reason": "the document could not be read",
    "status": "processing",
    "timeout": 30.0,
    "filename": "invoice.ade-abc123.md",
    "content_sha256": "ab" * 32,
    "sent_at": 1_700_000_000.5,
    "cause": ade_async.ReadTimeoutError("POST /v1/ade/extract/jobs: timed out", method="POST", path="/x"),
    "search": SearchReport(seconds=30.0, candidates_checked=2, still_running=("j1",), unidentified=()),
    "resubmissions": 1,
    "problems": ("unsupported keyword 'maxLength' at properties.name",),
    "max_wait": 2.0,
    "limit": 32 * 1024 * 1024,
    "match_key": "abc123",
    "paused_for": 12.5,
    "operation": "cancel",
    "provider": "landingai",
}


def _example(cls: type[ade_async.ADEError]) -> ade_async.ADEError:
    arguments: dict[str, Any] = {}
    positional: list[Any] = []
    for name, parameter in inspect.signature(cls).parameters.items():
        if name not in _SAMPLES:
            raise AssertionError(f"{cls.__name__}({name}=...): add a sample value for {name!r} to _SAMPLES")
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            positional.append(_SAMPLES[name])
        else:
            arguments[name] = _SAMPLES[name]
    error = cls(*positional, **arguments)
    error.add_note("a note added on the way")
    return error


def _same(left: object, right: object) -> bool:
    """Equal type, text and attributes, recursively for errors (they have no ``__eq__``)."""
    if isinstance(left, BaseException):
        return (
            type(left) is type(right)
            and str(left) == str(right)
            and left.args == right.args
            and vars(left).keys() == vars(right).keys()
            and all(_same(value, vars(right)[name]) for name, value in vars(left).items())
        )
    return type(left) is type(right) and left == right


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda cls: cls.__name__)
def test_every_error_survives_a_pickle_round_trip(cls: type[ade_async.ADEError]) -> None:
    error = _example(cls)
    restored = pickle.loads(pickle.dumps(error))
    assert _same(error, restored)
    assert repr(restored) == repr(error)
    # Every attribute is there (the samples are non-empty, so nothing was left at a default).
    assert len(vars(restored)) >= 2  # message and the note, at least


def test_the_pickle_test_sees_every_class_and_can_fail() -> None:
    names = {cls.__name__ for cls in _every_error_class()}
    assert {"CreateOutcomeUnknownError", "UnprocessableEntityError", "QuotaExhaustedError"} <= names
    error = _example(ade_async.JobFailedError)
    restored = pickle.loads(pickle.dumps(error))
    restored.failure_reason = "another reason"
    assert not _same(error, restored)


def test_a_pickled_error_never_carries_the_key() -> None:
    """The key object refuses to be pickled: an error that held it could not travel at all."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ApiKey("sk-secret"))
    error = ade_async.TransportError("x", method="GET", path="/p")
    error.key = ApiKey("sk-secret")  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(error)
