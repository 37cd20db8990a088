# Exercises Debian's confluent-kafka-python schema registry clients against
# the registry at sys.argv[1]; exits non-zero with a message on the first
# failure. Run by TestConfluentKafkaPython.
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

url = sys.argv[1]
sr = SchemaRegistryClient({"url": url})

v1 = json.dumps({"type": "record", "name": "Py", "namespace": "ex",
                 "fields": [{"name": "id", "type": "int"}]})
v2 = json.dumps({"type": "record", "name": "Py", "namespace": "ex",
                 "fields": [{"name": "id", "type": "long"},
                            {"name": "tag", "type": "string", "default": "t"}]})
bad = json.dumps({"type": "record", "name": "Py", "namespace": "ex",
                  "fields": [{"name": "id", "type": "string"}]})

id1 = sr.register_schema("py-value", Schema(v1, "AVRO"))
assert sr.register_schema("py-value", Schema(v1, "AVRO")) == id1, "re-registration changed the id"
assert json.loads(sr.get_schema(id1).schema_str) == json.loads(v1)
assert sr.test_compatibility("py-value", Schema(v2, "AVRO")) is True, "v2 should be compatible"
assert sr.test_compatibility("py-value", Schema(bad, "AVRO")) is False, "bad should be incompatible"
id2 = sr.register_schema("py-value", Schema(v2, "AVRO"))
latest = sr.get_latest_version("py-value")
assert latest.schema_id == id2 and latest.version == 2, (latest.schema_id, latest.version)
found = sr.lookup_schema("py-value", Schema(v1, "AVRO"))
assert found.schema_id == id1 and found.version == 1, (found.schema_id, found.version)
assert sr.get_subjects() == ["py-value"], sr.get_subjects()
assert sr.get_versions("py-value") == [1, 2]
try:
    sr.register_schema("py-value", Schema(bad, "AVRO"))
    raise AssertionError("incompatible schema registered")
except SchemaRegistryError as e:
    assert e.http_status_code == 409 and e.error_code == 409, (e.http_status_code, e.error_code)
try:
    sr.get_version("nope", 1)
    raise AssertionError("missing subject found")
except SchemaRegistryError as e:
    assert e.http_status_code == 404 and e.error_code == 40401, (e.http_status_code, e.error_code)
sr.set_compatibility("py-value", "FULL")
assert sr.get_compatibility("py-value") == "FULL"
assert sr.set_compatibility(level="NONE") == {"compatibility": "NONE"}
assert sr.get_compatibility() == "NONE"
assert sr.delete_version("py-value", 1) == 1
assert sr.get_versions("py-value") == [2]
# This client version soft-deletes, then deletes permanently, returning the
# soft delete's answer.
assert sr.delete_subject("py-value", permanent=True) == [2]
assert sr.get_subjects() == []

# The legacy Avro serializer (python3-avro based) through the registry.
from confluent_kafka.avro import CachedSchemaRegistryClient, loads
from confluent_kafka.avro.serializer.message_serializer import MessageSerializer

legacy = CachedSchemaRegistryClient({"url": url})
ser = MessageSerializer(legacy)
data = ser.encode_record_with_schema("legacy", loads(v1), {"id": 5})
assert data[0] == 0 and len(data) == 6, data
assert ser.decode_message(data) == {"id": 5}
print("ok")
