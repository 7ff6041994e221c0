import assert from 'node:assert/strict';
import http from 'node:http';
import { MongoClient } from 'mongodb';
import { dbUri, spawnService, uniqueDbName, waitFor, type SpawnedService } from './helpers';

/**
 * SIGTERM during work: readiness fails at once, new connections stop after the
 * configured delay, every request already accepted completes, exit code 0.
 */
describe('graceful shutdown on SIGTERM', function () {
  this.timeout(90_000);
  const DOCS = 20_000;
  let svc: SpawnedService;
  let client: MongoClient;
  let dbName: string;

  before(async () => {
    dbName = uniqueDbName('shutdown');
    client = new MongoClient(dbUri());
    const batch = Array.from({ length: DOCS }, (_, i) => ({ i, pad: 'x'.repeat(100) }));
    await client.db(dbName).collection('data').insertMany(batch);
    svc = await spawnService({ MONGODB_URI: dbUri(), MONGODB_DB: dbName, SHUTDOWN_DELAY_MS: '1500', SHUTDOWN_TIMEOUT_MS: '20000' });
  });
  after(async () => {
    svc.kill('SIGKILL');
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('finishes in-flight work, refuses new work, closes the client and exits 0', async () => {
    // 1. A big streamed GET, paused by its reader after the first bytes.
    const stream = new Promise<{ status: number; read: () => Promise<string> }>((resolve, reject) => {
      http
        .get(`${svc.url}/data`, { agent: false }, (res) => {
          res.pause();
          resolve({
            status: res.statusCode ?? 0,
            read: () =>
              new Promise((done, fail) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => (body += chunk));
                res.on('end', () => done(body));
                res.on('error', fail);
                res.on('aborted', () => fail(new Error('response aborted')));
                res.resume();
              }),
          });
        })
        .on('error', reject);
    });
    const streaming = await stream;
    assert.equal(streaming.status, 200);

    // 2. Ten POSTs whose bodies are still uploading when SIGTERM arrives.
    const uploads = Array.from({ length: 10 }, (_, n) => {
      const body = JSON.stringify({ late: n });
      let finish!: () => void;
      const response = new Promise<number>((resolve, reject) => {
        const req = http.request(`${svc.url}/data`, {
          method: 'POST',
          agent: false,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.write(body.slice(0, 5));
        finish = () => req.end(body.slice(5));
      });
      return { response, finish: () => finish() };
    });
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the server accept them

    // 3. SIGTERM: readiness must fail at once.
    const signalled = Date.now();
    svc.kill('SIGTERM');
    await waitFor('readyz 503 after SIGTERM', async () => (await fetch(`${svc.url}/readyz`)).status === 503, 1000, 20);
    console.log(`      (readyz 503 ${Date.now() - signalled} ms after SIGTERM)`);
    const health = await fetch(`${svc.url}/data?limit=1`);
    assert.equal(health.status, 200, 'during the delay requests are still served (endpoints are being removed)');
    assert.equal(health.headers.get('connection'), 'close', 'keep-alive clients are told to go elsewhere');

    // 4. After the delay the listener is closed: new connections are refused.
    await waitFor(
      'new connections refused',
      () => fetch(`${svc.url}/healthz`).then(() => false, (error: Error & { cause?: { code?: string } }) => error.cause?.code === 'ECONNREFUSED'),
      5000,
      50,
    );

    // 5. In-flight work still completes.
    for (const upload of uploads) upload.finish();
    assert.deepEqual(await Promise.all(uploads.map((u) => u.response)), Array(10).fill(201));
    const body = await streaming.read();
    const docs = JSON.parse(body) as Array<{ i: number }>;
    assert.equal(docs.length, DOCS, 'the whole stream arrived');
    assert.equal(docs[DOCS - 1].i, DOCS - 1);

    assert.equal(await svc.exited, 0);
    assert.equal(await client.db(dbName).collection('data').countDocuments({ late: { $exists: true } }), 10);
    assert.ok(svc.logs.some((line) => line.includes('"msg":"stopped"')), 'logged a clean stop');
  });
});

/**
 * The race between draining and keep-alive: clients posting back to back over
 * kept-alive connections when SIGTERM comes must each get an answer (the last
 * ones with `Connection: close`) or a refused new connection, never a reset of
 * a request they already sent. Repeated, since a race shows only sometimes.
 */
describe('shutdown while keep-alive clients are posting', function () {
  this.timeout(120_000);
  const RUNS = 5;
  const CLIENTS = 24;
  let client: MongoClient;
  let dbName: string;
  before(() => {
    dbName = uniqueDbName('drainrace');
    client = new MongoClient(dbUri());
  });
  after(async () => {
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  interface ClientTally {
    answered: number;
    closeAnswers: number;
    refused: number;
    resets: string[];
  }

  /** Posts back to back on one kept-alive connection until the server stops taking new ones. */
  async function postLoop(url: string, stop: { now: boolean }, progress: ClientTally[]): Promise<ClientTally> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const tally: ClientTally = { answered: 0, closeAnswers: 0, refused: 0, resets: [] };
    progress.push(tally);
    try {
      while (!stop.now) {
        const outcome = await new Promise<'ok' | 'refused' | 'reset'>((resolve) => {
          const body = JSON.stringify({ n: tally.answered });
          const req = http.request(`${url}/data`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
            res.resume();
            res.on('end', () => {
              tally.answered++;
              if (res.headers.connection === 'close') tally.closeAnswers++;
              resolve('ok');
            });
          });
          req.on('error', (error: NodeJS.ErrnoException) => {
            if (error.code === 'ECONNREFUSED') {
              tally.refused++;
              resolve('refused');
            } else {
              tally.resets.push(`${error.code ?? ''} ${error.message}`);
              resolve('reset');
            }
          });
          req.end(body);
        });
        if (outcome !== 'ok') break;
      }
    } finally {
      agent.destroy();
    }
    return tally;
  }

  for (let run = 1; run <= RUNS; run++) {
    it(`run ${run}/${RUNS}: ${CLIENTS} clients, every request answered or refused at connect, none reset`, async () => {
      const svc = await spawnService({ MONGODB_URI: dbUri(), MONGODB_DB: dbName, SHUTDOWN_DELAY_MS: '0', LOG_LEVEL: 'warn' });
      const stop = { now: false };
      try {
        const progress: ClientTally[] = [];
        const answeredSoFar = () => progress.filter((t) => t.answered > 0).length;
        const loops = Array.from({ length: CLIENTS }, () => postLoop(svc.url, stop, progress));
        await waitFor('every client answered at least once', async () => answeredSoFar() === CLIENTS, 20_000, 20);
        svc.kill('SIGTERM');
        const code = await svc.exited;
        stop.now = true;
        const tallies = await Promise.all(loops);
        const resets = tallies.flatMap((t) => t.resets);
        assert.deepEqual(resets, [], `requests reset during draining: ${resets.length}: ${resets.slice(0, 3).join('; ')}`);
        assert.equal(code, 0, 'exit code');
        assert.ok(tallies.every((t) => t.answered > 0), 'every client got answers before the drain');
        assert.ok(tallies.some((t) => t.closeAnswers > 0), 'draining answers carry Connection: close');
      } finally {
        stop.now = true;
        svc.kill('SIGKILL'); // whatever the outcome, this run's process does not outlive it
      }
    });
  }
});
