"""A real OFREP client for examples/tests/ofrep.rs: the OpenFeature Python SDK (`openfeature-sdk`) with its
OFREP provider (`openfeature-provider-ofrep`), evaluating Brownout's degrade flags through the admin API.

Usage: python ofrep_client.py BASE_URL < evaluations.json, with the admin token in BROWNOUT_OFREP_TOKEN.
Each input line is {"key", "type": "boolean|string|integer|float", "default"}; each output line is the
evaluation's details as JSON: key, value, reason, variant, error_code, error_message, metadata.
"""

import json
import os
import sys

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.contrib.provider.ofrep import OFREPProvider


def main() -> None:
    base_url = sys.argv[1]
    token = os.environ["BROWNOUT_OFREP_TOKEN"]
    api.set_provider(OFREPProvider(base_url, headers_factory=lambda: {"Authorization": f"Bearer {token}"}))
    client = api.get_client()
    context = EvaluationContext(targeting_key="user-1", attributes={"tenant": "canary"})
    evaluate = {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "integer": client.get_integer_details,
        "float": client.get_float_details,
    }
    for line in sys.stdin:
        if not line.strip():
            continue
        ask = json.loads(line)
        details = evaluate[ask["type"]](ask["key"], ask["default"], context)
        print(json.dumps({
            "key": details.flag_key,
            "value": details.value,
            "reason": str(details.reason.value if hasattr(details.reason, "value") else details.reason),
            "variant": details.variant,
            "error_code": details.error_code.value if details.error_code else None,
            "error_message": details.error_message,
            "metadata": dict(details.flag_metadata or {}),
        }), flush=True)


if __name__ == "__main__":
    main()
