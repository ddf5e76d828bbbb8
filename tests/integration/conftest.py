"""The model-based test's helper modules (test_protocol_model.py) get pytest's assertion
messages, both sides shown, as the test modules do."""

import pytest

pytest.register_assert_rewrite("model_redis", "protocol_model")
