// Exercises @kafkajs/confluent-schema-registry against the registry at
// process.argv[2]: register, encode, decode, evolution, errors. Prints the
// encoded bytes (hex) of a v1 record on success so the Go test can decode
// them; exits 1 on failure. Run by TestKafkaJSRegistry.
const assert = require('assert')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

async function main() {
  const registry = new SchemaRegistry({ host: process.argv[2] })
  const v1 = {
    type: 'record', name: 'Js', namespace: 'ex',
    fields: [{ name: 'id', type: 'int' }, { name: 'name', type: 'string' }],
  }
  const v2 = {
    type: 'record', name: 'Js', namespace: 'ex',
    fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'tag', type: 'string', default: 'x' }],
  }
  const { id: id1 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject: 'js-value' })
  const again = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject: 'js-value' })
  assert.strictEqual(again.id, id1)
  const buf = await registry.encode(id1, { id: 42, name: 'ada' })
  assert.strictEqual(buf[0], 0)
  assert.strictEqual(buf.readInt32BE(1), id1)
  assert.deepStrictEqual({ ...(await registry.decode(buf)) }, { id: 42, name: 'ada' })
  const { id: id2 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject: 'js-value' })
  assert.notStrictEqual(id2, id1)
  assert.strictEqual(await registry.getLatestSchemaId('js-value'), id2)
  assert.strictEqual(await registry.getRegistryId('js-value', 1), id1)
  // Decode v1 data with the v2 reader schema.
  const withReader = await registry.decode(buf, { [SchemaType.AVRO]: { readerSchema: v2 } })
  assert.strictEqual(withReader.tag, 'x')
  const bad = { type: 'record', name: 'Js', namespace: 'ex', fields: [{ name: 'id', type: 'string' }] }
  await assert.rejects(registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(bad) }, { subject: 'js-value' }), /incompatible|409/i)
  const schema = await registry.getSchema(id1)
  assert.ok(schema)
  process.stdout.write(buf.toString('hex') + '\n')
}

main().catch((e) => { console.error(e); process.exit(1) })
