/**
 * The parts of backup/restore that need no database: the Extended JSON codec, the file names, where the
 * tools connect (MONGODB_URI or the stack's cluster), and the cluster path's kubectl calls (stub kubectl).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BSON, Binary, BSONRegExp, BSONSymbol, Code, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID } from 'mongodb';
import { collectionFile } from '../../admin/src/backup/archive';
import { bsonToCanonicalLine, canonicalLineToDocument } from '../../admin/src/backup/ejson';
import { redactUri, resolveTarget, UsageError, type StackValue } from '../../scripts/backup/target';
import { everyTypeDocuments, isOneLineError, ROOT, runTool } from './backup-helpers';

const roundTrip = (doc: Map<string, unknown>) => {
  const bytes = Buffer.from(BSON.serialize(doc as unknown as BSON.Document));
  const line = bsonToCanonicalLine(bytes);
  const again = Buffer.from(BSON.serialize(canonicalLineToDocument(line) as unknown as BSON.Document));
  return { bytes, line, again };
};

describe('backup: canonical Extended JSON, field order kept', () => {
  it('round-trips every BSON type byte for byte, including what FerretDB cannot store', () => {
    const all = new Map<string, unknown>([
      ['_id', new ObjectId()],
      ['negativeZero', new Double(-0)],
      ['nan', new Double(NaN)],
      ['infinity', new Double(Infinity)],
      ['minusInfinity', new Double(-Infinity)],
      ['decimal', Decimal128.fromString('-1234567890.123456789012345678901234')],
      ['decimalNegativeZero', Decimal128.fromString('-0.00')],
      ['timestamp', new Timestamp({ t: 4294967295, i: 7 })],
      ['regex', new BSONRegExp('^a.c$', 'imsx')],
      ['code', new Code('function () { return 1; }')],
      ['codeWithScope', new Code('x', { a: 1 })],
      ['symbol', new BSONSymbol('sym')],
      ['minKey', new MinKey()],
      ['maxKey', new MaxKey()],
      ['oldBinary', new Binary(Buffer.from('old'), 2)],
      ['nestedArrays', [[1, [2, []]], []]],
      ['dateFar', new Date(8_640_000_000_000_000)],
    ]);
    for (const doc of [...everyTypeDocuments(), all]) {
      const { bytes, line, again } = roundTrip(doc);
      assert.equal(again.toString('hex'), bytes.toString('hex'), line);
      assert.ok(!line.includes('\n'), 'one line');
    }
  });

  it('writes the canonical forms mongoexport writes', () => {
    const { line } = roundTrip(
      new Map<string, unknown>([
        ['_id', new ObjectId('65a1b2c3d4e5f60718293a4b')],
        ['i', new Int32(1)],
        ['l', Long.fromString('9007199254740993')],
        ['d', new Double(1)],
        ['z', new Double(-0)],
        ['t', new Date(1)],
        ['u', new UUID('9c0e4f7a-2b6d-4e1a-8c3f-5d7b9a1e2f30')],
        ['m', Decimal128.fromString('1.10')],
        ['2', new Map([['1', 1]])],
      ]),
    );
    assert.equal(
      line,
      '{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"i":{"$numberInt":"1"},"l":{"$numberLong":"9007199254740993"},"d":{"$numberDouble":"1.0"},' +
        '"z":{"$numberDouble":"-0.0"},"t":{"$date":{"$numberLong":"1"}},"u":{"$binary":{"base64":"nA5PeittThqMP117mh4vMA==","subType":"04"}},' +
        '"m":{"$numberDecimal":"1.10"},"2":{"1":{"$numberInt":"1"}}}',
    );
    // The driver's own parser reads it to the same values (it reorders "2" to the front: a JavaScript object).
    const parsed = BSON.EJSON.parse(line, { relaxed: false }) as Record<string, unknown>;
    assert.equal((parsed.l as Long).toString(), '9007199254740993');
    assert.ok(Object.is((parsed.z as Double).value, -0));
  });

  it('refuses what is not a JSON document', () => {
    for (const bad of ['', '[1]', '{"a":1', '{"a":1}x', '{"a":tru}', '{a:1}']) {
      assert.throws(() => canonicalLineToDocument(bad), /not canonical Extended JSON/, bad);
    }
  });
});

describe('backup: file names and where the tools connect', () => {
  it('names collection files safely for the split', () => {
    assert.equal(collectionFile('data'), 'data.json');
    assert.equal(collectionFile('a.b-c_1'), 'a.b-c_1.json');
    assert.equal(collectionFile('a b/"c"%'), 'a%20b%2F%22c%22%25.json');
    assert.equal(collectionFile('日'), '%E6%97%A5.json');
  });

  const stackValues = (values: Record<string, string>): StackValue => (_stack, key) => values[key] ?? '';
  const defaults = stackValues({ kubeContext: 'minikube', namespace: 'koa-mongodb', mongoDatabase: 'flask_db', kubeconfig: '' });

  it('uses MONGODB_URI and MONGODB_DB (default flask_db) when MONGODB_URI is set', () => {
    assert.deepEqual(resolveTarget({}, { MONGODB_URI: 'mongodb://h:1/' }, defaults), { kind: 'direct', uri: 'mongodb://h:1/', database: 'flask_db' });
    assert.deepEqual(resolveTarget({}, { MONGODB_URI: 'mongodb://h:1/', MONGODB_DB: 'other' }, defaults).database, 'other');
    assert.deepEqual(resolveTarget({ db: 'flag' }, { MONGODB_URI: 'mongodb://h:1/', MONGODB_DB: 'other' }, defaults).database, 'flag');
    assert.throws(() => resolveTarget({ context: 'x' }, { MONGODB_URI: 'mongodb://h:1/' }, defaults), UsageError);
    assert.throws(() => resolveTarget({}, { MONGODB_URI: 'mongodb://h:1/', MONGODB_DB: 'a.b' }, defaults), /database name "a.b"/);
  });

  it("otherwise uses the stack's kube context, namespace and database (flags win)", () => {
    const asked: string[] = [];
    const reader: StackValue = (stack, key) => {
      asked.push(`${stack}:${key}`);
      return { kubeContext: 'my-ctx', namespace: 'my-ns', mongoDatabase: 'my_db', kubeconfig: '/k/config' }[key] ?? '';
    };
    assert.deepEqual(resolveTarget({}, { PULUMI_STACK: 'prod' }, reader), {
      kind: 'cluster',
      stack: 'prod',
      context: 'my-ctx',
      namespace: 'my-ns',
      database: 'my_db',
      kubeconfig: '/k/config',
    });
    assert.ok(asked.every((entry) => entry.startsWith('prod:')));
    assert.deepEqual(resolveTarget({ stack: 'dev', context: 'c', namespace: 'n', db: 'd' }, {}, defaults), {
      kind: 'cluster',
      stack: 'dev',
      context: 'c',
      namespace: 'n',
      database: 'd',
      kubeconfig: undefined,
    });
    assert.equal(resolveTarget({}, {}, defaults).kind, 'cluster');
    assert.throws(
      () =>
        resolveTarget({}, {}, () => {
          throw new Error('boom');
        }),
      /cannot read the settings of stack dev \(boom\); set MONGODB_URI/,
    );
  });

  it('never prints credentials of a URI', () => {
    assert.equal(redactUri('mongodb://user:secret@host:27017/db?x=1'), 'mongodb://host:27017/db?x=1');
    assert.equal(redactUri('mongodb+srv://u:p@cluster.example/'), 'mongodb+srv://cluster.example/');
  });
});

describe('backup: the cluster path, with a stub kubectl', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'backup-kubectl-'));
    // Records its arguments; `get secret` answers the app user's credentials; `port-forward` says where it
    // listens (a closed port: the connection then fails, as it would with the cluster gone) and waits.
    writeFileSync(
      path.join(dir, 'kubectl'),
      `#!/usr/bin/env node
const fs = require('fs');
fs.appendFileSync(${JSON.stringify(path.join(dir, 'calls'))}, JSON.stringify(process.argv.slice(2)) + '\\n');
const args = process.argv.slice(2);
if (args.includes('secret')) {
  const b64 = (s) => Buffer.from(s).toString('base64');
  process.stdout.write(JSON.stringify({ data: { 'app-username': b64('app-0123456789'), 'app-password': b64('Sup3r-Secret-Pa55') } }));
} else if (args.includes('port-forward')) {
  fs.writeFileSync(${JSON.stringify(path.join(dir, 'forward.pid'))}, String(process.pid));
  process.stdout.write('Forwarding from 127.0.0.1:1 -> 27017\\n');
  setInterval(() => {}, 1000);
} else process.exit(1);
`,
    );
    chmodSync(path.join(dir, 'kubectl'), 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the stack's settings, the Secret and port-forwards svc/mongodb, printing no password", async () => {
    const run = await runTool('backup', ['--out', path.join(dir, 'b.gz'), '--namespace', 'other-ns'], { PATH: `${dir}:${process.env.PATH}`, PULUMI_STACK: 'dev' });
    assert.equal(run.code, 1, run.stderr);
    assert.ok(isOneLineError(run.stderr), run.stderr);
    assert.match(run.stderr, /cannot reach the database server/);
    assert.ok(!`${run.stdout}${run.stderr}`.includes('Sup3r-Secret-Pa55'));
    const calls = readFileSync(path.join(dir, 'calls'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as string[]);
    // Pulumi.dev.yaml sets nothing: Pulumi.yaml's defaults (kubeContext minikube), and the flag's namespace.
    assert.deepEqual(calls, [
      ['--context', 'minikube', '-n', 'other-ns', 'get', 'secret', 'mongodb-credentials', '-o', 'json'],
      ['--context', 'minikube', '-n', 'other-ns', 'port-forward', 'svc/mongodb', ':27017', '--address', '127.0.0.1'],
    ]);
    const pid = Number(readFileSync(path.join(dir, 'forward.pid'), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the port-forward is ended');
  });

  it('says what to do when kubectl is missing', async () => {
    const nodeOnly = path.join(dir, 'node-only');
    mkdirSync(nodeOnly);
    symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
    const run = await runTool('restore', ['--in', path.join(ROOT, 'package.json')], { PATH: nodeOnly });
    // The file is checked first: a non-backup is refused before any cluster is asked.
    assert.equal(run.code, 3, run.stderr);
    const backup = await runTool('backup', ['--out', path.join(dir, 'c.gz')], { PATH: nodeOnly });
    assert.equal(backup.code, 1, backup.stderr);
    assert.match(backup.stderr, /kubectl is not on PATH; install it, or set MONGODB_URI/);
  });
});
