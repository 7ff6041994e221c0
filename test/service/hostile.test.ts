import assert from 'node:assert/strict';
import net from 'node:net';
import { postJson, rawRequest, startInProcess, uniqueDbName, type InProcessService } from './helpers';

/** What one hostile client sends may change nothing of another's request, and nothing it sends is lost unsaid. */
describe('hostile clients (issue 17)', function () {
  this.timeout(60_000);
  let svc: InProcessService;
  let dbName: string;
  const data = () => svc.raw.db(dbName).collection('data');

  before(async () => {
    dbName = uniqueDbName('hostile');
    svc = await startInProcess({ MONGODB_DB: dbName });
  });
  after(async () => {
    await svc.raw.db(dbName).dropDatabase();
    await svc.close();
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    rawRequest(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers }, body });
  const errorOf = (res: { body: string }) => (JSON.parse(res.body) as { error: string }).error;

  describe('a key the BSON serialiser refuses (_bsontype) is a 400 naming its path', () => {
    for (const [label, body, where] of [
      ['top level', '{"_bsontype": "ObjectId", "a": 1}', /body\b/],
      ['nested', '{"a": {"b": {"_bsontype": "x"}}}', /body\.a\.b/],
      ['in an array', '{"list": [1, {"_bsontype": 7}]}', /body\.list\[1\]/],
      ['in a bulk', '[{"ok": 1}, {"x": {"_bsontype": "Long"}}]', /body\[1\]\.x/],
    ] as const) {
      it(label, async () => {
        const before = await data().countDocuments();
        const res = await post(body);
        assert.equal(res.status, 400, res.body);
        assert.match(errorOf(res), /_bsontype/);
        assert.match(errorOf(res), where);
        assert.doesNotMatch(errorOf(res), /bson \d|BSON version/i, 'no library version blamed');
        assert.equal(await data().countDocuments(), before, 'nothing stored');
      });
    }
  });

  it('an attacker looping bad documents while innocent clients post: zero innocent failures', async () => {
    let stop = false;
    const attacker = (async () => {
      let sent = 0;
      while (!stop) {
        await postJson(`${svc.url}/data`, { nested: { _bsontype: 'ObjectId', id: 'x' } }).catch(() => undefined);
        sent++;
      }
      return sent;
    })();
    const attackers = [attacker, attacker];
    const innocent = await Promise.all(Array.from({ length: 200 }, (_, n) => postJson(`${svc.url}/data`, { innocent: n })));
    stop = true;
    const sent = await Promise.all(attackers);
    assert.ok(sent[0] > 0, 'the attacker ran');
    assert.deepEqual(
      innocent.filter((res) => res.status !== 201).map((res) => `${res.status} ${JSON.stringify(res.json)}`),
      [],
      'every innocent write stored',
    );
    assert.equal(await data().countDocuments({ innocent: { $exists: true } }), 200);
  });

  describe('__proto__ fields are stored as sent, never dropped', () => {
    it('single: top level and nested', async () => {
      const body = '{"__proto__": {"polluted": true}, "name": "p", "inner": {"__proto__": [1, 2]}}';
      const res = await post(body);
      assert.equal(res.status, 201, res.body);
      const id = (JSON.parse(res.body) as { id: string }).id;
      const stored = await data().findOne({ name: 'p' }, { projection: { _id: 0 } });
      assert.ok(stored, 'stored');
      assert.ok(Object.prototype.hasOwnProperty.call(stored, '__proto__'), `top-level __proto__ kept: ${JSON.stringify(stored)}`);
      assert.deepEqual(JSON.parse(JSON.stringify(stored)), JSON.parse(body));
      // And read back through the service as sent.
      const page = (await (await fetch(`${svc.url}/data?limit=1000`)).text()).trim();
      assert.ok(page.includes('"__proto__":{"polluted":true}'), page.slice(0, 300));
      assert.ok(page.includes('"inner":{"__proto__":[1,2]}'));
      assert.equal(({} as { polluted?: boolean }).polluted, undefined, 'no prototype polluted');
      assert.ok(id);
    });

    it('bulk', async () => {
      const res = await post('[{"__proto__": {"b": 1}, "bulk": 1}, {"__proto__": "text", "bulk": 2}]');
      assert.equal(res.status, 201, res.body);
      const stored = await data().find({ bulk: { $exists: true } }, { projection: { _id: 0 } }).sort({ bulk: 1 }).toArray();
      assert.deepEqual(JSON.parse(JSON.stringify(stored)), JSON.parse('[{"__proto__": {"b": 1}, "bulk": 1}, {"__proto__": "text", "bulk": 2}]'));
    });
  });

  describe('smaller', () => {
    it('a whitespace-only or empty Idempotency-Key is a 400, not a write without a key', async () => {
      const before = await data().countDocuments();
      for (const key of ['   ', '\t', '']) {
        const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const { port } = new URL(svc.url);
          const socket = net.connect(Number(port), '127.0.0.1');
          let text = '';
          socket.on('connect', () => socket.write(`POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nIdempotency-Key: ${key}\r\nConnection: close\r\n\r\n{"a":1}`));
          socket.on('data', (chunk) => (text += chunk.toString()));
          socket.on('error', reject);
          socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), body: text.split('\r\n\r\n').slice(1).join('') }));
        });
        assert.equal(res.status, 400, `key ${JSON.stringify(key)}: ${res.body}`);
        assert.match(res.body, /Idempotency-Key/);
      }
      assert.equal(await data().countDocuments(), before, 'nothing stored');
    });

    it('CONNECT gets a JSON answer, not a bare close', async () => {
      const { port } = new URL(svc.url);
      const text = await new Promise<string>((resolve) => {
        const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
        let answer = '';
        socket.on('data', (chunk) => (answer += chunk.toString()));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(answer));
        setTimeout(() => socket.destroy(), 5000);
      });
      assert.match(text, /^HTTP\/1\.1 4\d\d /, JSON.stringify(text));
      assert.match(text, /content-type: application\/json/i);
      assert.match(text.split('\r\n\r\n')[1] ?? '', /"error":".*CONNECT/);
    });

    it('/data/ and /DATA are not the resource (strict routing: 404 JSON)', async () => {
      for (const path of ['/data/', '/DATA', '/Data?limit=1', '/data/?limit=1']) {
        const res = await fetch(`${svc.url}${path}`);
        assert.equal(res.status, 404, path);
        assert.match(((await res.json()) as { error: string }).error, /no route/);
        assert.equal(res.headers.get('link'), null);
      }
      const posted = await fetch(`${svc.url}/DATA`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"upper":1}' });
      assert.equal(posted.status, 404);
      assert.equal(await data().countDocuments({ upper: 1 }), 0);
      const page = await fetch(`${svc.url}/data?limit=1`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('link') ?? '', /^<\/data\?limit=1&after=[0-9a-f]{24}>; rel="next"$/);
    });
  });
});
