"""The OpenAPI 3.1 document served at /openapi.json.

The request schema is generated from `PredictRequest`, so documented fields and bounds are the validated ones.
"""

from __future__ import annotations

from functools import cache

from service.model_info import ModelInfo
from service.predict import PredictRequest

ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _retry_later(description: str) -> dict:
    retry_after = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}
    return {**_error(description), "headers": {"Retry-After": retry_after}}


def _status(description: str, example: str) -> dict:
    schema = {
        "type": "object",
        "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["status"],
    }
    content = {"application/json": {"schema": schema, "example": {"status": example}}}
    return {"description": description, "content": content}


def _form_schema() -> dict:
    """Form posts: every field holds one JSON-encoded value (perf is a JSON string)."""
    properties = {
        name: {"type": "string", "description": f"JSON encoding of '{name}'. {field.description}"}
        for name, field in PredictRequest.model_fields.items()
    }
    return {"type": "object", "properties": properties, "required": ["perf"], "additionalProperties": False}


@cache
def document() -> dict:
    request_schema = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RoboJam",
            "version": "1.0.0",
            "description": "Continues a MicroJam touchscreen performance with a mixture-density RNN.",
        },
        "paths": {
            "/api/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Generate a new layer that answers a performance.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                            "application/x-www-form-urlencoded": {"schema": _form_schema()},
                            "multipart/form-data": {"schema": _form_schema()},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The generated performance as CSV (time,x,y,z,moving; LF).",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
                            },
                        },
                        "400": _error("Malformed body, invalid field, or a CSV that cannot be used."),
                        "405": _error("Any method other than POST (and CORS preflight OPTIONS)."),
                        "408": _error("The body did not arrive within the read timeout."),
                        "413": _error(
                            "Body larger than the byte limit, more rows than the row limit, or rows x seconds "
                            "over its cap."
                        ),  # fmt: skip
                        "415": _error("Content-Type other than JSON or a form post."),
                        "429": _retry_later("This client is over its rate limit (when one is set)."),
                        "503": _retry_later("The worker's queue is full: retry after Retry-After seconds."),
                    },
                }
            },
            "/api/model": {
                "get": {
                    "operationId": "model",
                    "summary": "What is served: model sizes, parameter count, validation NLL, artifact checksum.",
                    "responses": {
                        "200": {
                            "description": "The served model.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelInfo"}}},
                        }
                    },
                }
            },
            "/": {
                "get": {
                    "operationId": "page",
                    "summary": "The browser client: play, jam with RoboJam, hear and download both layers.",
                    "responses": {"200": {"description": "The page.", "content": {"text/html": {}}}},
                }
            },
            "/static/{filename}": {
                "get": {
                    "operationId": "static",
                    "summary": "The page's scripts, styles and icon.",
                    "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The file."}, "404": _error("No such file.")},
                }
            },
            "/healthz": {"get": {"operationId": "healthz", "responses": {"200": _status("Process alive.", "ok")}}},
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "responses": {
                        "200": _status("Weights loaded and warm-up inference done.", "ready"),
                        "503": _status("Still warming up, or the warm-up failed (see reason).", "not ready"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "This document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "PredictRequest": request_schema,
                "ModelInfo": ModelInfo.model_json_schema(ref_template="#/components/schemas/{model}"),
                "PredictResponse": {
                    "type": "object",
                    "properties": {"response": {"type": "string", "description": "CSV: time,x,y,z,moving"}},
                    "required": ["response"],
                },
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string", "description": "One sentence saying what is wrong."}},
                    "required": ["error"],
                },
            }
        },
    }
