import assert from 'node:assert/strict';
import { JsonBytes } from '../../service/src/bsonJson';
import { serviceDriver } from './helpers';

/** JsonBytes writes what JSON.stringify of the driver's decoded document writes, for every BSON type. */
describe('raw BSON to JSON (JsonBytes)', () => {
  const { BSON, ObjectId, Binary, Decimal128, Long, Timestamp, MinKey, MaxKey, BSONRegExp, DBRef, Int32, Double, Code } = serviceDriver();
  const viaDecoder = (bytes: Uint8Array): string => {
    const doc = BSON.deserialize(bytes);
    doc._id = undefined;
    return JSON.stringify(doc);
  };
  const written = (bytes: Uint8Array): { json: string; id: unknown } => {
    const out = new JsonBytes();
    const id = out.document(bytes);
    return { json: out.take().toString('utf8'), id };
  };

  const cases: Array<[string, Record<string, unknown>]> = [
    ['the bench shape', { _id: new ObjectId(), key: 'value1', n: 1, tags: ['a', 'b'], nested: { ok: true } }],
    ['numbers', { i: 7, neg: -2147483648, big: 2 ** 40, d: 1.5, tiny: 5e-324, huge: 1e300, negZero: -0, nan: NaN, inf: Infinity, ninf: -Infinity, int32: new Int32(5), double: new Double(2) }],
    ['64-bit integers', { small: Long.fromNumber(42), edge: Long.fromString('9007199254740992'), past: Long.fromString('9007199254740993'), min: Long.MIN_VALUE }],
    ['strings that need escapes', { q: 'say "hi"', back: 'a\\b', ctl: '\u0000\u0001\b\f\n\r\t\u001f', del: '\u007f', long: 'x'.repeat(1000), empty: '' }],
    ['non-ASCII text', { accents: 'ünïcødé', emoji: '😀', sep: '\u2028\u2029', key: 1, 'ключ': 'значение' }],
    ['keys that need escapes', { 'a"b': 1, 'c\\d': 2, 'e\nf': 3, __proto__x: 4 }],
    ['nesting', { a: [[], {}, [1, [2, [3]]], { b: { c: { d: null } } }], empty: {}, none: [] }],
    ['booleans and null', { t: true, f: false, n: null }],
    ['ObjectId and Date values', { ref: new ObjectId(), at: new Date('2020-02-29T12:34:56.789Z'), epoch: new Date(0), before: new Date(-1e12), invalid: new Date(8.64e15 + 1) }],
    ['types written behind the service\'s back', { bin: new Binary(Buffer.from('hi')), dec: Decimal128.fromString('1.10'), ts: new Timestamp({ t: 1, i: 2 }), min: new MinKey(), max: new MaxKey(), re: new BSONRegExp('a+', 'i'), code: new Code('x=1') }],
    ['a DBRef', { ref: new DBRef('other', new ObjectId()) }],
    ['an _id that is not an ObjectId', { _id: 'string-id', a: 1 }],
    ['no _id at all', { a: 1 }],
    ['_id nested (kept)', { _id: new ObjectId(), inner: { _id: 5 } }],
  ];
  for (const [label, doc] of cases) {
    it(label, () => {
      const bytes = BSON.serialize(doc);
      const { json, id } = written(bytes);
      assert.equal(json, viaDecoder(bytes));
      const decodedId = BSON.deserialize(bytes)._id as unknown;
      assert.equal(String(id), decodedId instanceof ObjectId ? String(decodedId) : 'undefined');
    });
  }

  it('an own __proto__ field (as JSON.parse makes it) comes out as stored', () => {
    const doc = JSON.parse('{"__proto__": {"x": 1}, "a": [{"__proto__": 2}]}') as Record<string, unknown>;
    const bytes = BSON.serialize(doc);
    assert.equal(written(bytes).json, '{"__proto__":{"x":1},"a":[{"__proto__":2}]}');
    assert.equal(written(bytes).json, viaDecoder(bytes));
  });

  it('several documents into one writer, and a truncation', () => {
    const out = new JsonBytes();
    out.push(0x5b);
    out.document(BSON.serialize({ a: 1 }));
    const mark = out.length;
    out.push(0x2c);
    out.document(BSON.serialize({ b: 'x'.repeat(200_000) }));
    out.truncate(mark);
    out.push(0x5d);
    assert.equal(out.take().toString(), '[{"a":1}]');
  });
});
