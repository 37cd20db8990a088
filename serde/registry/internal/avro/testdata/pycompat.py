# Reads [[reader, writer], ...] (schema JSON texts) on stdin and prints, for
# each pair, "compatible", "incompatible" or "error: ..." as a JSON array,
# using Debian's python3-avro reference checker (avro.compatibility).
import json
import sys

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

out = []
for reader, writer in json.load(sys.stdin):
    try:
        r = avro.schema.parse(reader)
        w = avro.schema.parse(writer)
        res = ReaderWriterCompatibilityChecker().get_compatibility(r, w)
        out.append("compatible" if res.compatibility is SchemaCompatibilityType.compatible else "incompatible")
    except Exception as e:  # a schema python-avro cannot parse
        out.append("error: %s" % e)
json.dump(out, sys.stdout)
