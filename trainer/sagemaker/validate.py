"""Check a request against botocore's own SageMaker service model, offline.

botocore's ParamValidator checks members, types, required keys, lengths and ranges, but not
the string patterns and enums that the service enforces on arrival; `pattern_errors` adds
those, so a name that SageMaker would reject fails here first.
"""

from __future__ import annotations

import functools
import re
from typing import Any


class RequestInvalid(ValueError):
    """The request does not match the SageMaker API; the message lists every problem."""


def _service_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """The service's pattern as a Python regex; None for Java-only syntax (\\p{...}) we skip."""
    if not pattern:
        return None
    try:
        return re.compile(pattern, flags=re.DOTALL)
    except re.error:
        return None


def pattern_errors(shape: Any, value: Any, path: str = "") -> list[str]:
    """Pattern and enum violations in `value` against a botocore `shape`, recursively."""
    errors: list[str] = []
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                errors += pattern_errors(shape.members[key], item, f"{path}.{key}" if path else key)
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            errors += pattern_errors(shape.member, item, f"{path}[{index}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            errors += pattern_errors(shape.key, key, f"{path} key {key!r}")
            errors += pattern_errors(shape.value, item, f"{path}[{key!r}]")
    elif kind == "string" and isinstance(value, str):
        pattern = _compiled(shape.metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            errors.append(f"{path}: {value!r} does not match the pattern {pattern.pattern}")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            errors.append(f"{path}: {value!r} is not one of {', '.join(enum)}")
    return errors


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise RequestInvalid unless `params` is a valid input for SageMaker `operation`."""
    from botocore.validate import ParamValidator

    input_shape = _service_model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, input_shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += pattern_errors(input_shape, params)
    if problems:
        raise RequestInvalid(f"{operation} request is invalid:\n" + "\n".join(problems))
