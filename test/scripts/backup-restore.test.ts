/**
 * `npm run backup` and `npm run restore` against a real MongoDB-wire server (FerretDB v1.24.2, or the
 * server at MONGODB_URI), run as the user runs them, with MONGODB_URI and MONGODB_DB.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { MongoClient, type Db } from 'mongodb';
import type { TestDatabase } from '../../devkit/database';
import { frames, LineTally } from '../../admin/src/backup/archive';
import { restoreArchive, RestoreFailed } from '../../admin/src/backup/load';
import { acquireDatabase, editArchive, everyTypeDocuments, isOneLineError, makeArchive, releaseDatabase, runTool, snapshot } from './backup-helpers';

describe('npm run backup / npm run restore (MONGODB_URI)', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  let client: MongoClient;
  let dir: string;
  let dbCount = 0;
  /** A fresh database name per test: tests never see each other's data. */
  let name: string;
  let db: Db;
  const env = () => ({ MONGODB_URI: database.uri, MONGODB_DB: name });
  const file = (base: string) => path.join(dir, base);

  before(async () => {
    database = await acquireDatabase();
    client = new MongoClient(database.uri);
    await client.connect();
    dir = mkdtempSync(path.join(os.tmpdir(), 'backup-test-'));
  });
  after(async () => {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
    await releaseDatabase();
  });
  beforeEach(() => {
    dbCount += 1;
    name = `backup_test_${process.pid}_${dbCount}`;
    db = client.db(name);
  });
  afterEach(async () => {
    await db.dropDatabase().catch(() => undefined);
  });

  async function seed(): Promise<void> {
    await db.collection('data').insertMany(everyTypeDocuments() as never[]);
    await db.collection('data').createIndex({ unicode: 1 }, { name: 'unicode_1' });
    await db.collection('data').createIndex({ int32: -1, date: 1 }, { name: 'compound', unique: true, sparse: true });
    await db.collection<{ _id: number }>('people').insertMany(Array.from({ length: 250 }, (_, i) => ({ _id: i, name: `person ${i}`, tags: ['a', 'b'].slice(0, i % 3) })));
    await db.createCollection('empty');
  }

  it('backs up every type exactly and restores a dropped collection byte for byte, with its indexes', async () => {
    await seed();
    const before = await snapshot(db);
    const backup = await runTool('backup', ['--out', file('every.jsonl.gz')], env(), true);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /done: 3 collections, 253 documents, \d+ bytes \([\d.]+ kB\) of Extended JSON, \d+ bytes written to .*, in [\d.]+ s \(\d+ documents\/s, [\d.]+ MB\/s\)/);
    assert.match(backup.stdout, /data: 3 documents, \d+ bytes, 3 indexes/);

    await db.collection('data').drop();
    const refused = await runTool('restore', ['--in', file('every.jsonl.gz')], env(), true);
    assert.equal(refused.code, 4, 'people still holds documents: --drop is needed');
    assert.ok(isOneLineError(refused.stderr), refused.stderr);
    assert.match(refused.stderr, /already holds documents \(people: 250; 250 in all\); add --drop .*nothing was written/);

    const restore = await runTool('restore', ['--in', file('every.jsonl.gz'), '--drop'], env(), true);
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /data: 3 documents, .*3 indexes; count 3 = backup, checksum [0-9a-f]{16}… = backup\n/);
    assert.match(restore.stdout, /people: 250 documents, .*; count 250 = backup, checksum [0-9a-f]{16}… = backup; replaced the earlier collection/);
    assert.match(restore.stdout, /done: 3 collections, 253 documents, \d+ bytes .* into database backup_test_\d+_\d+, in [\d.]+ s/);
    assert.deepEqual(await snapshot(db), before);
  });

  it('restores into an empty database without --drop, and into another database name', async () => {
    await seed();
    const before = await snapshot(db);
    assert.equal((await runTool('backup', ['--out', file('copy.gz')], env())).code, 0);
    const other = `${name}_copy`;
    try {
      const restore = await runTool('restore', ['--in', file('copy.gz')], { ...env(), MONGODB_DB: other });
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stdout, new RegExp(`the backup is of database ${name}; restoring it into ${other}`));
      assert.deepEqual(await snapshot(client.db(other)), before);
    } finally {
      await client.db(other).dropDatabase();
    }
  });

  it('writes what mongoimport reads: canonical Extended JSON lines, one file per collection after the documented split', async () => {
    await seed();
    assert.equal((await runTool('backup', ['--out', file('split.gz')], env())).code, 0);
    const { execFileSync } = await import('node:child_process');
    const split = path.join(dir, 'split');
    execFileSync('mkdir', ['-p', split]);
    // The command docs/backup.md gives, verbatim.
    execFileSync('sh', ['-c', `gunzip -c ${file('split.gz')} | awk -F'"' '$2=="#file"{f=$4;next} /^\\{"#/{next} {print > f}'`], { cwd: split });
    const { readdirSync, readFileSync } = await import('node:fs');
    assert.deepEqual(readdirSync(split).sort(), ['data.json', 'people.json']);
    const lines = readFileSync(path.join(split, 'data.json'), 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.ok(lines.some((line) => /^\{"_id":\{"\$numberInt":"42"\},"long":\{"\$numberLong":"9007199254740992"\}/.test(line)));
    const every = lines.find((line) => line.includes('"int64"'))!;
    assert.match(every, /^\{"_id":\{"\$oid":"65a1b2c3d4e5f60718293a4b"\},"int32":\{"\$numberInt":"-2147483648"\},"int64":\{"\$numberLong":"9007199254740993"\}/);
    assert.match(every, /"date":\{"\$date":\{"\$numberLong":"1709251199999"\}\}/);
    assert.match(every, /"":"the empty key","10":"numeric key ten","2":"numeric key two"/);
    assert.equal(readFileSync(path.join(split, 'people.json'), 'utf8').trimEnd().split('\n').length, 250);
  });

  it('refuses a truncated file with exit code 3 and writes nothing', async () => {
    await seed();
    assert.equal((await runTool('backup', ['--out', file('whole.gz')], env())).code, 0);
    const { readFileSync } = await import('node:fs');
    const whole = readFileSync(file('whole.gz'));
    writeFileSync(file('cut.gz'), whole.subarray(0, Math.floor(whole.length * 0.6)));
    // Truncated at a line boundary and gzip'd again: gzip itself is whole, the backup is not.
    editArchive(file('whole.gz'), (lines) => [...lines.slice(0, 4), ''], file('short.gz'));
    await db.collection('data').drop();
    const before = await snapshot(db);
    for (const [broken, why] of [
      ['cut.gz', /is truncated \(the compressed data ends early\)/],
      ['short.gz', /is truncated \(no end line; it stops inside collection data\)/],
    ] as const) {
      for (const args of [[], ['--drop']]) {
        const restore = await runTool('restore', ['--in', file(broken), ...args], env());
        assert.equal(restore.code, 3, restore.stderr);
        assert.ok(isOneLineError(restore.stderr), restore.stderr);
        assert.match(restore.stderr, why);
        assert.match(restore.stderr, /nothing was written$/m);
        assert.deepEqual(await snapshot(db), before);
      }
    }
  });

  it('refuses an altered file (a changed value, a removed or added document) with exit code 3', async () => {
    await seed();
    assert.equal((await runTool('backup', ['--out', file('orig.gz')], env())).code, 0);
    editArchive(file('orig.gz'), (lines) => lines.map((line) => line.replace('"person 7"', '"person 8"')), file('value.gz'));
    editArchive(file('orig.gz'), (lines) => lines.filter((line) => !line.includes('"person 7"')), file('removed.gz'));
    editArchive(file('orig.gz'), (lines) => lines.flatMap((line) => (line.includes('"person 7"') ? [line, line.replace('"7"', '"7000"')] : [line])), file('added.gz'));
    // The collection's end line fixed up to match: the end line's checksum over everything still differs.
    editArchive(
      file('orig.gz'),
      (lines) => {
        const changed = lines.map((line) => line.replace('"person 7"', '"person 8"'));
        const tally = new LineTally();
        for (const line of changed.slice(changed.findIndex((l) => l.includes('"collection":"people"')) + 1)) {
          if (line.startsWith('{"#')) break;
          tally.add(line);
        }
        return changed.map((line) => (line.startsWith('{"#done":"people"') ? frames.done('people', tally.totals()) : line));
      },
      file('fixed.gz'),
    );
    const before = await snapshot(db);
    for (const broken of ['value.gz', 'removed.gz', 'added.gz']) {
      const restore = await runTool('restore', ['--in', file(broken), '--drop'], env());
      assert.equal(restore.code, 3, `${broken}: ${restore.stderr}`);
      assert.ok(isOneLineError(restore.stderr), restore.stderr);
      assert.match(restore.stderr, /was altered or damaged: collection people: its (checksum|documents|bytes)/);
      assert.deepEqual(await snapshot(db), before);
    }
    const fixed = await runTool('restore', ['--in', file('fixed.gz'), '--drop'], env());
    assert.equal(fixed.code, 3, fixed.stderr);
    assert.match(fixed.stderr, /was altered or damaged: the end line's sha256 \([0-9a-f]{64}\) differs from the content/);
    assert.deepEqual(await snapshot(db), before);
    const check = await runTool('restore', ['--in', file('value.gz'), '--check'], env());
    assert.equal(check.code, 3);
    const good = await runTool('restore', ['--in', file('orig.gz'), '--check'], {});
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /is whole: backup of database backup_test_/);
  });

  it('bad input is a one-line error with its own exit code, never a stack trace', async () => {
    await seed();
    assert.equal((await runTool('backup', ['--out', file('ok.gz')], env())).code, 0);
    writeFileSync(file('text.txt'), 'hello\n');
    writeFileSync(file('notbackup.gz'), gzipSync('{"a":1}\n'));
    const cases: Array<[string, 'backup' | 'restore', string[], Record<string, string>, number, RegExp]> = [
      ['missing file', 'restore', ['--in', file('nope.gz')], env(), 3, /no such file: .*nope\.gz/],
      ['not gzip', 'restore', ['--in', file('text.txt')], env(), 3, /is not a backup file \(not gzip data\)/],
      ['not a backup', 'restore', ['--in', file('notbackup.gz')], env(), 3, /is not a backup made by npm run backup/],
      ['a directory', 'restore', ['--in', dir], env(), 3, /is a directory/],
      ['no --in', 'restore', [], env(), 2, /--in FILE or --from NAME is required/],
      ['--in and --from', 'restore', ['--in', file('ok.gz'), '--from', 'backup-20261206T011700Z.jsonl.gz'], env(), 2, /--in and --from do not go together/],
      ['--list with MONGODB_URI', 'backup', ['--list'], env(), 2, /--list and --from read the stack's backups volume through the cluster; unset MONGODB_URI/],
      ['--from with MONGODB_URI', 'restore', ['--from', 'backup-20261206T011700Z.jsonl.gz'], env(), 2, /--list and --from read the stack's backups volume through the cluster; unset MONGODB_URI/],
      ['--list and --out', 'backup', ['--list', '--out', file('x.gz')], env(), 2, /--list and --out do not go together/],
      ['no --out', 'backup', [], env(), 2, /--out FILE is required/],
      ['unknown flag', 'backup', ['--out', file('x.gz'), '--bogus'], env(), 2, /Unknown option '--bogus'/],
      ['no such database', 'backup', ['--out', file('x.gz')], { ...env(), MONGODB_DB: `${name}_typo` }, 2, /there is no database backup_test_\d+_\d+_typo on this server \(there are: .*\); check MONGODB_DB/],
      ['bad database name', 'backup', ['--out', file('x.gz')], { ...env(), MONGODB_DB: 'bad/name' }, 2, /database name "bad\/name" has a character/],
      ['no such directory', 'backup', ['--out', path.join(dir, 'no', 'x.gz')], env(), 2, /no such directory/],
      ['refusing server', 'backup', ['--out', file('x.gz')], { MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1500' }, 1, /cannot reach the database server/],
      ['refusing server (restore)', 'restore', ['--in', file('ok.gz')], { MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1500' }, 1, /cannot reach the database server/],
      ['bad URI', 'backup', ['--out', file('x.gz')], { MONGODB_URI: 'http://example' }, 2, /MONGODB_URI must start with mongodb:\/\//],
    ];
    for (const [what, tool, args, environment, code, message] of cases) {
      const run = await runTool(tool, args, environment);
      assert.equal(run.code, code, `${what}: ${run.stderr}`);
      assert.ok(isOneLineError(run.stderr.split('\nusage:')[0]), `${what}: ${run.stderr}`);
      assert.match(run.stderr, message, what);
    }
    assert.ok(!existsSync(file('x.gz')) && !existsSync(file('x.gz.partial')), 'a failed backup leaves no file');
  });

  it('is all or nothing: a document the server refuses part-way leaves the database as it was', async () => {
    await seed();
    const before = await snapshot(db);
    const good = Array.from({ length: 3000 }, (_, i) => `{"_id":{"$numberInt":"${i}"},"v":"new ${i}"}`);
    // The second collection holds a duplicate _id far into it: loading fails after 2 collections' worth of writes.
    makeArchive(file('dup.gz'), name, [
      { name: 'people', lines: good },
      { name: 'data', lines: [...good, '{"_id":{"$numberInt":"5"},"v":"again"}'] },
    ]);
    const restore = await runTool('restore', ['--in', file('dup.gz'), '--drop'], env());
    assert.equal(restore.code, 1, restore.stderr);
    assert.ok(isOneLineError(restore.stderr), restore.stderr);
    assert.match(restore.stderr, /restore: failed: .*duplicate key.*\(while loading collection data\); the database is as it was before/i);
    assert.deepEqual(await snapshot(db), before, 'the same collections (no temporary ones left), documents and indexes');
  });

  it('undoes a swap that fails part-way', async () => {
    await seed();
    const before = await snapshot(db);
    makeArchive(file('swap.gz'), name, [
      { name: 'data', lines: ['{"_id":{"$numberInt":"1"}}'] },
      { name: 'new', lines: ['{"_id":{"$numberInt":"2"}}'] },
      { name: 'people', lines: ['{"_id":{"$numberInt":"3"}}'] },
    ]);
    await assert.rejects(
      restoreArchive(db, file('swap.gz'), {
        drop: true,
        beforeSwap: async (index) => {
          if (index === 2) throw new Error('injected failure before the third swap');
        },
      }),
      (error: Error) => error instanceof RestoreFailed && /injected failure .*undone, nothing changed/.test(error.message),
    );
    assert.deepEqual(await snapshot(db), before);
  });

  it('an interrupted restore (Ctrl-C) undoes its load', async () => {
    await seed();
    const before = await snapshot(db);
    makeArchive(file('many.gz'), name, [{ name: 'people', lines: Array.from({ length: 5000 }, (_, i) => `{"_id":{"$numberInt":"${i}"}}`) }]);
    let asked = 0;
    await assert.rejects(restoreArchive(db, file('many.gz'), { drop: true, interrupted: () => ++asked > 2 }), /interrupted/);
    assert.deepEqual(await snapshot(db), before);
  });

  it('is honest about what the server cannot keep: -0.0 and Decimal128', async function () {
    const line = '{"_id":{"$numberInt":"1"},"negativeZero":{"$numberDouble":"-0.0"},"n":{"$numberDouble":"1.5"}}';
    makeArchive(file('negzero.gz'), name, [{ name: 'data', lines: [line] }]);
    const restore = await runTool('restore', ['--in', file('negzero.gz')], env());
    assert.equal(restore.code, 0, restore.stderr);
    if (database.kind === 'ferretdb') {
      // FerretDB v1 stores -0.0 as 0.0: restore says so rather than claiming an exact copy.
      assert.match(restore.stdout, /checksum = backup except -0\.0, which this server stores as 0\.0 \(1 document\)/);
    } else {
      assert.match(restore.stdout, /count 1 = backup, checksum [0-9a-f]{16}… = backup/);
    }

    await db.dropDatabase();
    makeArchive(file('decimal.gz'), name, [
      { name: 'data', lines: ['{"_id":{"$numberInt":"1"},"price":{"$numberDecimal":"1234567890.123456789012345678901234"}}'] },
    ]);
    const decimal = await runTool('restore', ['--in', file('decimal.gz')], env());
    if (database.kind === 'ferretdb') {
      // FerretDB v1 has no Decimal128: the server refuses, nothing is left behind.
      assert.equal(decimal.code, 1, decimal.stderr);
      assert.ok(isOneLineError(decimal.stderr), decimal.stderr);
      assert.deepEqual(await snapshot(db), {});
    } else {
      assert.equal(decimal.code, 0, decimal.stderr);
      assert.match(decimal.stdout, /checksum [0-9a-f]{16}… = backup/);
      const back = await runTool('backup', ['--out', file('decimal-again.gz')], env());
      assert.equal(back.code, 0);
    }
  });
});
