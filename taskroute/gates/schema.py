"""`schema`: when the request asked for a JSON Schema (`response_format.json_schema`), the
answer must be JSON valid against it. Requests without a schema pass untouched.

`jsonschema` is imported on first use, and each schema is compiled once (bounded cache).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from taskroute.gates.base import GateEnv, no_settings, verdict
from taskroute.gates.json_valid import parse_json
from taskroute.records import GateVerdict
from taskroute.request import ChatRequest
from taskroute.response import ChatResponse

_CACHE_SIZE = 256


class SchemaGate:
    name = "schema"

    def __init__(self) -> None:
        self._validators: OrderedDict[str, Any] = OrderedDict()

    def check(self, answer: ChatResponse, request: ChatRequest) -> GateVerdict:
        schema = request.json_schema
        if schema is None:
            return verdict(self.name, True, "no JSON Schema was asked for")
        value, problem = parse_json(answer.text)
        if problem:
            return verdict(self.name, False, f"the answer is {problem}")
        validator = self._validator(schema)
        if validator is None:
            return verdict(self.name, True, "the requested schema is not valid; not checked")
        error = next(iter(validator.iter_errors(value)), None)
        if error is None:
            return verdict(self.name, True)
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return verdict(self.name, False, f"schema violated at {where}: {error.message}")

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key in self._validators:
            self._validators.move_to_end(key)
            return self._validators[key]
        import jsonschema  # lazily: only requests that ask for a schema pay for the import

        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
            validator: Any = cls(schema)
        except jsonschema.SchemaError:
            validator = None
        self._validators[key] = validator
        if len(self._validators) > _CACHE_SIZE:
            self._validators.popitem(last=False)
        return validator


def build(params: Mapping[str, Any], env: GateEnv) -> SchemaGate:
    no_settings("schema", params)
    return SchemaGate()
