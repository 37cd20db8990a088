// Package registry is a Schema Registry compatible with Confluent's REST API,
// plus the client-side pieces that use it: registry-aware serdes speaking
// Confluent's wire format.
//
// # Server
//
// NewServer builds a server from a Config (brokers as franz-go options, the
// topic, the listen address, the election group); Run serves until its
// context ends. Every endpoint of Confluent's API that clients use is
// served, with Confluent's status codes, error codes (body
// {"error_code":40401,"message":"..."}) and content type
// (application/vnd.schemaregistry.v1+json):
//
//	GET    /  /schemas/types  /schemas/ids/{id}[/schema|/subjects|/versions]
//	GET    /subjects          POST /subjects/{s}        DELETE /subjects/{s}[?permanent=true]
//	GET    /subjects/{s}/versions                       POST /subjects/{s}/versions
//	GET    /subjects/{s}/versions/{v}[/schema|/referencedby]
//	DELETE /subjects/{s}/versions/{v}[?permanent=true]
//	POST   /compatibility/subjects/{s}/versions[/{v}][?verbose=true]
//	GET|PUT|DELETE /config[/{s}]  (GET ?defaultToGlobal=true)
//	GET|PUT /mode   GET|PUT|DELETE /mode/{s}
//
// {v} is 1..2^31-1, "latest" or -1. Registering a schema already live in the
// subject returns its id without a compatibility check; the same schema in
// another subject reuses its global id; a new version is the highest
// existing one (soft-deleted included) plus one. A schema's identity is the
// schema parsed and re-serialised the way Avro's Java Schema.toString
// writes it (attribute order, name/namespace split, {"type":"int"} as
// "int"): defaults, docs, aliases, orders and custom properties all count,
// so schemas differing only in a default are different schemas (Avro's
// Parsing Canonical Form would merge them). The stored and served text is
// that normal form.
//
// Compatibility levels: BACKWARD (default), BACKWARD_TRANSITIVE, FORWARD,
// FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE, NONE, global or per subject;
// soft-deleted versions are ignored. Avro is checked by this package's own
// implementation of Avro's schema resolution rules (promotions, aliases,
// enum defaults, unions, nested and recursive types), with messages in
// Confluent's style. Modes: READWRITE, READONLY, IMPORT (explicit ids and
// versions, no compatibility checks; entering IMPORT needs an empty registry
// or ?force=true).
//
// Limits: JSON Schema and PROTOBUF schemas are accepted, validated only
// superficially (JSON Schema must be a JSON object or boolean; Protobuf must
// be non-empty), stored and served, but their compatibility is not checked:
// a second version of such a subject registers only under level NONE
// (otherwise 409 with a message saying so). Not implemented: schema
// contexts, the normalize parameter, metadata and rule sets, /exporters and
// other Confluent Platform extensions.
//
// One deviation on purpose: GET /config answers
// {"compatibilityLevel":"X","compatibility":"X"}; Confluent sends only the
// first field, but hamba's registry client reads the second.
//
// CheckAvro exposes the compatibility checker as a function. Package
// registrytest starts a ready registry for tests of other packages.
//
// # Storage
//
// Everything is kept in the single-partition compacted topic _schemas
// (created with cleanup.policy=compact if missing), in Confluent's format,
// and replayed on start:
//
//	key                                                        value
//	{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}   {"subject":"s","version":1,"id":1,
//	                                                            "schemaType":"JSON","references":[...],
//	                                                            "schema":"...","deleted":false}
//	{"keytype":"CONFIG","subject":null,"magic":0}              {"compatibilityLevel":"FULL"}
//	{"keytype":"MODE","subject":"s","magic":0}                 {"mode":"READONLY"}
//	{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}       {"subject":"s","version":3}
//
// A permanent delete is a tombstone for the SCHEMA key; deleting a config or
// mode is a tombstone for its key. schemaType is omitted for AVRO.
//
// Several instances may share one topic. They join the consumer group
// Config.GroupID with a balancer that carries each instance's URL in its
// member metadata; the group leader elects the member with the smallest
// member id and tells every member the elected URL in its assignment. Only
// the elected instance writes; the others forward write requests to it over
// HTTP (or answer 50003 if it is unreachable). Every instance reads the topic
// continuously; a write is answered only once the answering instance has
// read it back (read-your-writes), on the writer and on the forwarding
// instance alike. Writes are serialised on the writer, which allocates ids
// as the highest id seen plus one.
//
// # Client side
//
// Avro[T] (NewAvro) encodes values in Confluent's wire format:
//
//	+------+-------------------+----------------------+
//	| 0x00 | schema id (int32, | Avro binary body     |
//	|      | big endian)       |                      |
//	+------+-------------------+----------------------+
//
// It registers its schema (or uses the subject's latest) on first use,
// derives subjects with TopicName, RecordName or TopicRecordName, caches ids
// and schemas, and decodes data written with older schemas into the reader
// schema (Avro schema resolution, through hamba/avro). It implements
// serde.TopicAware: runtimes bind it per topic with ForTopic, which derives
// the subject. AppendHeader and ParseHeader handle the header alone.
//
// Locks and their order: LOCKING.md.
package registry
