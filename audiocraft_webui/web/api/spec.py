"""The REST API's routes as data: each route is declared once with its models, which register it on the
blueprint and generate its part of the OpenAPI 3.1 document (schemas by pydantic, never written by hand)."""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..security import API_PREFIX
from .schemas import ErrorBody

BodyType = Literal["application/json", "multipart/form-data"]
#: What each error status means on this API (every error body is an ``ErrorBody``).
ERRORS = {
    400: "A field, parameter or Host is wrong (`invalid_request`, `bad_host`).",
    401: "The API token is missing or wrong (`login_required`).",
    403: "Another site sent it (`cross_site`), or it is not yours to cancel (`forbidden`).",
    404: "No such job, track or upload (`not_found`).",
    409: "The state forbids it (`locked`, `already_split`, `busy`).",
    413: "The body is too large (`too_large`).",
    415: "The body is not of the documented type (`unsupported_media_type`).",
    422: "The request is well formed but cannot be served (`model_unavailable`, `invalid_audio`, `empty_file`).",
    429: "Too many failed logins, a full queue or too many event streams "
         "(`too_many_logins`, `queue_full`, `too_many_streams`).",
}
#: Errors any call may get from the access checks.
ACCESS_ERRORS = (400, 401, 429)
#: A path parameter in Flask's form, ``<name>``.
PATH_PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
EVENT_STREAM = "text/event-stream"


def _present(schema: dict) -> dict:
    """A query parameter's schema without pydantic's ``null`` choice (an absent parameter is the null)."""
    choices = [option for option in schema.get("anyOf", ()) if option.get("type") != "null"]
    if len(choices) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    return {**rest, **choices[0]}


@dataclass(frozen=True)
class Operation:
    """One route of the API and the models that describe it."""

    method: str
    path: str
    view: Callable
    responses: dict[int, type[BaseModel] | str]
    body: type[BaseModel] | None = None
    body_type: BodyType = "application/json"
    query: type[BaseModel] | None = None
    body_required: bool = True

    @property
    def openapi_path(self) -> str:
        """The path in the document's form (``/api/v1/jobs/{job_id}``)."""
        return API_PREFIX.rstrip("/") + PATH_PARAMETER.sub(r"{\1}", self.path)

    def models(self) -> list[type[BaseModel]]:
        """Every model the operation names."""
        named = [self.body, self.query, *self.responses.values()]
        return [model for model in named if isinstance(model, type)]


@dataclass
class ApiSpec:
    """The API's blueprint and the operations declared on it."""

    blueprint: Blueprint
    title: str
    version: str
    operations: list[Operation] = field(default_factory=list)

    def route(self, method: str, path: str, *, responses: dict[int, type[BaseModel] | str],
              errors: tuple[int, ...] = (), body: type[BaseModel] | None = None,
              body_type: BodyType = "application/json",
              query: type[BaseModel] | None = None, body_required: bool = True) -> Callable[[Callable], Callable]:
        """Register a view on the blueprint and describe it: ``responses`` by status, plus the ``errors`` it answers.

        A state-changing method also lists 403 (another site) and, with a body, 413 and 415.
        """
        changes = method != "GET"
        statuses = {*ACCESS_ERRORS, *errors, *((403,) if changes else ()), *((413, 415) if body else ())}
        described: dict[int, type[BaseModel] | str] = {**responses, **dict.fromkeys(sorted(statuses), ErrorBody)}

        def register(view: Callable) -> Callable:
            self.blueprint.add_url_rule(path, view.__name__, view, methods=[method])
            self.operations.append(Operation(method, path, view, described, body, body_type, query,
                                             body_required))
            return view

        return register

    def document(self) -> dict:
        """The OpenAPI 3.1 document of every declared operation."""
        models = sorted({model for op in self.operations for model in op.models()}, key=lambda m: m.__name__)
        refs, definitions = models_json_schema([(model, "serialization") for model in models],
                                               ref_template="#/components/schemas/{model}")
        schema_of = {model: refs[(model, "serialization")] for model in models}
        paths: dict[str, dict] = {}
        for op in self.operations:
            paths.setdefault(op.openapi_path, {})[op.method.lower()] = self._operation(op, schema_of)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version,
                     "description": "Everything the page does, over HTTP (README, \"REST API\")."},
            "servers": [{"url": "/"}],
            "paths": paths,
            "components": {"schemas": definitions.get("$defs", {}),
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                          "description": "Needed when the server requires a "
                                                                         "login or was given --api-token."}}},
            "security": [{}, {"bearer": []}],
        }

    @staticmethod
    def _operation(op: Operation, schema_of: dict[type[BaseModel], dict]) -> dict:
        """One operation object: summary and description from the view's docstring, parameters, body, responses."""
        doc = inspect.getdoc(op.view) or ""
        summary, _, description = doc.partition("\n")
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in PATH_PARAMETER.findall(op.path)]
        if op.query is not None:
            properties = op.query.model_json_schema()["properties"]
            parameters += [{"name": name, "in": "query", "required": False, "schema": _present(properties[name])}
                           for name in op.query.model_fields]
        group = op.view.__module__.rsplit(".", 1)[-1].capitalize()  # the module declaring it: Jobs, Library
        operation: dict[str, Any] = {"operationId": op.view.__name__, "summary": summary.strip(), "tags": [group],
                                     "parameters": parameters, "responses": {}}
        if description.strip():
            operation["description"] = description.strip()
        if op.body is not None:
            operation["requestBody"] = {"required": op.body_required,
                                        "content": {op.body_type: {"schema": schema_of[op.body]}}}
        for status, answer in sorted(op.responses.items()):
            if isinstance(answer, str):  # a stream: the text is its media type
                operation["responses"][str(status)] = {"description": "An event stream.",
                                                       "content": {answer: {"schema": {"type": "string"}}}}
            else:
                text = ERRORS.get(status) or inspect.getdoc(answer) or answer.__name__
                operation["responses"][str(status)] = {"description": text,
                                                       "content": {"application/json": {"schema": schema_of[answer]}}}
        return operation
