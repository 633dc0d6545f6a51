"""A FastAPI service that extracts fields from uploaded Markdown, on one shared ade_async client.

Every request shares one client: one admission gate keeps the whole service inside the create
quota, and one poller watches every job. Endpoints:

``POST /extract/{schema_name}``  (multipart, field ``file``)
    submit the document and wait for the job: 200 with the extraction.
``POST /jobs/{schema_name}``  (multipart, field ``file``)
    submit and answer at once: 202 with the ``job_id``; collect it with ``GET /jobs/{job_id}``.
``GET /jobs/{job_id}``
    the job's status, and its extraction once completed.
``GET /healthz``
    liveness, and what the shared client is doing.

Schemas are chosen by name from a small registry (``invoice``, ``document``). When the create
quota is busy for more than ``MAX_ADMISSION_WAIT`` seconds, a request gets 503 with
``Retry-After`` instead of queueing; errors are JSON (see ``ade_async.fastapi.error_response``).

Run it against the built-in simulator (no key, no network)::

    pip install "ade_async[fastapi]" uvicorn
    python examples/fastapi_app.py --port 8000
    curl -F file=@examples/documents/invoice-0001.md http://127.0.0.1:8000/extract/invoice

``--self-test`` starts it on a free port, uploads a document or two, prints what came back and
stops. Against the real API, serve the module's ``app`` with your key in the environment::

    VISION_AGENT_API_KEY=... uvicorn fastapi_app:app --app-dir examples
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, UploadFile
from fastapi.responses import JSONResponse

import ade_async
from ade_async.fastapi import (
    ade_lifespan,
    error_response,
    get_client,
    install_exception_handlers,
    submit_or_503,
)
from ade_async.providers import landingai
from ade_async.testing import Simulator, SimulatorConfig

HERE = Path(__file__).parent

#: The schemas a caller may ask for, by name.
SCHEMAS: dict[str, dict[str, Any]] = {
    "invoice": json.loads((HERE / "invoice_schema.json").read_text(encoding="utf-8")),
    "document": json.loads((HERE / "document_schema.json").read_text(encoding="utf-8")),
}

#: How long a request may wait for create quota before it is answered 503 with Retry-After.
MAX_ADMISSION_WAIT = 5.0

#: The shared client, handed to each handler by the lifespan.
ClientDep = Annotated[ade_async.Client, Depends(get_client)]


def create_app(**lifespan_kwargs: Any) -> FastAPI:
    """The service; ``lifespan_kwargs`` go to ``ade_lifespan`` (client arguments included)."""
    app = FastAPI(title="ade_async extraction service", lifespan=ade_lifespan(**lifespan_kwargs))
    install_exception_handlers(app)

    async def submit(
        client: ade_async.Client, schema_name: str, file: UploadFile
    ) -> ade_async.JobHandle[Any]:
        schema = SCHEMAS.get(schema_name)
        if schema is None:
            raise HTTPException(404, f"unknown schema {schema_name!r}; known: {', '.join(sorted(SCHEMAS))}")
        content = await file.read()
        if not content:
            raise HTTPException(422, "the uploaded file is empty")
        name = file.filename if file.filename and file.filename.endswith(".md") else "document.md"
        return await submit_or_503(client, content, schema=schema, filename=name, max_wait=MAX_ADMISSION_WAIT)

    @app.post("/extract/{schema_name}")
    async def extract(schema_name: str, file: UploadFile, client: ClientDep) -> Any:
        """Submit the document and wait for its extraction."""
        handle = await submit(client, schema_name, file)
        try:
            result = await handle
        except ade_async.ClientClosedError as exc:
            # Shutting down: the job carries on server-side, so say where to collect it.
            response = error_response(exc, job_id=handle.job_id)
            response.headers["Location"] = f"/jobs/{handle.job_id}"
            return response
        return {
            "job_id": result.job_id,
            "conforms": result.conforms,
            "extraction": result.extraction,
            "schema_violation_error": result.schema_violation_error,
        }

    @app.post("/jobs/{schema_name}", status_code=202)
    async def submit_job(schema_name: str, file: UploadFile, client: ClientDep) -> JSONResponse:
        """Submit the document; answer at once with the job id."""
        handle = await submit(client, schema_name, file)
        location = f"/jobs/{handle.job_id}"
        return JSONResponse(
            {"job_id": handle.job_id, "status_url": location}, status_code=202, headers={"Location": location}
        )

    @app.get("/jobs/{job_id}")
    async def job_status(job_id: str, client: ClientDep) -> Any:
        """The job's status; with the extraction once it completed (404 for an unknown id)."""
        job = await client.get_job(job_id)
        answer: dict[str, Any] = {"job_id": job.job_id, "status": job.status, "progress": job.progress}
        if job.status == landingai.JobStatus.COMPLETED:
            response = await client.fetch_result(job)
            answer["conforms"] = response.conforms
            answer["extraction"] = response.extraction
        elif job.status == landingai.JobStatus.FAILED:
            answer["failure_reason"] = job.failure_reason
        return answer

    @app.get("/healthz")
    async def health(client: ClientDep) -> dict[str, Any]:
        """Alive, and what the shared client is doing."""
        stats = client.stats()
        return {
            "status": "ok",
            "jobs_watched": stats.jobs_watched,
            "jobs_submitted": stats.jobs_submitted,
            "waiting_for_quota": stats.admission.waiting,
        }

    return app


#: For ``uvicorn fastapi_app:app``: the client is made at startup, from the environment.
app = create_app()


async def self_test(base_url: str) -> None:
    """Upload a document and wait for it; submit another and poll for it. Prints both."""
    documents = HERE / "documents"
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("file", (documents / "invoice-0001.md").read_bytes(), filename="invoice-0001.md")
        async with http.post(f"{base_url}/extract/invoice", data=form) as answer:
            answer.raise_for_status()
            body = await answer.json()
        print(f"POST /extract/invoice -> job {body['job_id']}")
        print(json.dumps(body["extraction"], indent=2, ensure_ascii=False))

        form = aiohttp.FormData()
        form.add_field("file", (documents / "contract-0002.md").read_bytes(), filename="contract-0002.md")
        async with http.post(f"{base_url}/jobs/document", data=form) as answer:
            assert answer.status == 202, await answer.text()
            job_id = (await answer.json())["job_id"]
        while True:
            async with http.get(f"{base_url}/jobs/{job_id}") as answer:
                answer.raise_for_status()
                job = await answer.json()
            if job["status"] not in ("pending", "processing"):
                break
            await asyncio.sleep(0.2)
        print(f"GET /jobs/{job_id} -> {job['status']}: document_type {job['extraction']['document_type']}")


async def main(port: int, *, run_self_test: bool, shutdown_grace: float) -> None:
    async with Simulator(SimulatorConfig(latency=(0.3, 1.0))) as sim:
        service = create_app(api_key=sim.api_key, base_url=sim.base_url, shutdown_grace=shutdown_grace)
        config = uvicorn.Config(service, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
        sock = config.bind_socket()  # bound here, so that port 0 picks a free port we can show
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if serving.done():  # it failed to start: show why
                await serving
                return
            await asyncio.sleep(0.05)
        print(f"serving on {base_url} (simulator at {sim.base_url})", file=sys.stderr, flush=True)
        if not run_self_test:
            await serving  # until Ctrl-C or SIGTERM
            return
        try:
            await self_test(base_url)
        finally:
            server.should_exit = True
            await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--self-test", action="store_true", help="serve on a free port, try it, stop")
    parser.add_argument(
        "--shutdown-grace", type=float, default=10.0, help="seconds jobs in progress get at shutdown"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how this server is meant to stop
        asyncio.run(
            main(
                0 if args.self_test else args.port,
                run_self_test=args.self_test,
                shutdown_grace=args.shutdown_grace,
            )
        )
