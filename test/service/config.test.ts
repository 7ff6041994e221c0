import assert from 'node:assert/strict';
import { ConfigError, parseConfig, redactUri } from '../../service/src/config';
import { clientOptions } from '../../service/src/db';
import { spawnService, SERVICE_MAIN } from './helpers';
import { spawnSync } from 'node:child_process';

describe('configuration (env parsed once, at start)', () => {
  it('has the guide\'s defaults', () => {
    const config = parseConfig({});
    assert.equal(config.port, 5000);
    assert.equal(config.mongo.uri, 'mongodb://localhost:27017/');
    assert.equal(config.mongo.database, 'flask_db');
    assert.equal(config.mongo.collection, 'data');
    assert.equal(config.bodyLimitBytes, 1024 * 1024);
    assert.deepEqual(config.corsOrigins, ['*']);
    assert.equal(config.mongo.user, undefined);
  });

  it('has the documented limits and timeouts by default, and reports bad ones', () => {
    const config = parseConfig({});
    assert.deepEqual(config.limits, {
      maxOpenCursors: 16,
      maxReadsInFlight: 10,
      cursorWaitMs: 5000,
      streamStallTimeoutMs: 30_000,
      streamMaxMs: 900_000,
      maxBulkDocuments: 1000,
      maxValuesPerDocument: 10_000,
      pageMaxBytes: 4 * 1024 * 1024,
      idempotencyTtlSeconds: 86_400,
      insertBatchesInFlight: 4,
    });
    assert.deepEqual(config.http, { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 65_000, maxConnections: 1024, maxConnectionsPerPeer: 512, drainIdleMs: 1000 });
    assert.deepEqual(config.metrics, { port: undefined, path: '/metrics' });
    assert.equal(parseConfig({ METRICS_PATH: 'off' }).metrics.path, '');
    // The readers' share: half the pool. The body budget: a sixteenth of the memory limit when it is known.
    assert.equal(parseConfig({ MONGODB_MAX_POOL_SIZE: '7' }).limits.maxReadsInFlight, 3);
    assert.equal(config.bodyBudgetBytes, 32 * 1024 * 1024);
    assert.equal(parseConfig({ MEMORY_LIMIT_BYTES: String(500 * 1024 * 1024) }).bodyBudgetBytes, 31.25 * 1024 * 1024);
    // Streams' cursors: a quarter of the memory limit in batches of up to 16 MiB (MongoDB's cap), at least one.
    assert.equal(parseConfig({ MEMORY_LIMIT_BYTES: String(500 * 1024 * 1024) }).limits.maxOpenCursors, 7);
    assert.equal(parseConfig({ MEMORY_LIMIT_BYTES: String(32 * 1024 * 1024) }).limits.maxOpenCursors, 1);
    assert.equal(parseConfig({ MEMORY_LIMIT_BYTES: String(8 * 1024 * 1024), BODY_LIMIT_BYTES: String(1024 * 1024) }).bodyBudgetBytes, 1024 * 1024, 'one body always fits');
    assert.equal(parseConfig({ MEMORY_LIMIT_BYTES: String(500 * 1024 * 1024), BODY_BUDGET_BYTES: '9999999' }).bodyBudgetBytes, 9_999_999);
    assert.throws(() => parseConfig({ BODY_BUDGET_BYTES: '1000' }), /BODY_BUDGET_BYTES must be a whole number from 1048576/);
    assert.throws(
      () => parseConfig({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '5000', METRICS_PATH: 'metrics', MAX_OPEN_CURSORS: '0', PORT: '8080', METRICS_PORT: '8080' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          'METRICS_PATH must be a path like /metrics, or "off", got "metrics"',
          'MAX_OPEN_CURSORS must be a whole number from 1 to 10000, got "0"',
          'HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS',
          'METRICS_PORT must differ from PORT (leave it unset to serve /metrics on PORT)',
        ]);
        return true;
      },
    );
  });

  it('accepts the guide\'s MONGODB_PASS as well as MONGODB_PASSWORD', () => {
    assert.equal(parseConfig({ MONGODB_USER: 'u', MONGODB_PASS: 'p1' }).mongo.password, 'p1');
    assert.equal(parseConfig({ MONGODB_USER: 'u', MONGODB_PASSWORD: 'p2', MONGODB_PASS: 'p1' }).mongo.password, 'p2');
  });

  it('reports every bad value at once, clearly', () => {
    assert.throws(
      () => parseConfig({ PORT: 'eighty', MONGODB_URI: 'http://db', LOG_LEVEL: 'loud', MONGODB_USER: 'only-user', MONGODB_DB: 'a.b', BODY_LIMIT_BYTES: '0' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 6, error.message);
        assert.match(error.message, /PORT must be a whole number from 0 to 65535, got "eighty"/);
        assert.match(error.message, /MONGODB_URI must start with mongodb:\/\//);
        assert.match(error.message, /LOG_LEVEL must be one of/);
        assert.match(error.message, /MONGODB_USER and MONGODB_PASSWORD must be set together/);
        assert.match(error.message, /MONGODB_DB "a\.b" is not a valid MongoDB name/);
        assert.match(error.message, /BODY_LIMIT_BYTES/);
        return true;
      },
    );
  });

  it('passes credentials as driver options with the app database as authSource (least privilege)', () => {
    const config = parseConfig({ MONGODB_USER: 'app', MONGODB_PASSWORD: 'pw', MONGODB_DB: 'flask_db' });
    const options = clientOptions(config.mongo);
    assert.deepEqual(options.auth, { username: 'app', password: 'pw' });
    assert.equal(options.authSource, 'flask_db');
    assert.equal(options.maxPoolSize, 20);
    assert.equal(options.serverSelectionTimeoutMS, 2000);
  });

  it('redacts credentials from URIs', () => {
    assert.equal(redactUri('mongodb://root:s3cret@mongo:27017/?authSource=admin'), 'mongodb://***@mongo:27017/?authSource=admin');
    assert.equal(redactUri('mongodb+srv://u:p@cluster.example/db'), 'mongodb+srv://***@cluster.example/db');
    assert.equal(redactUri('mongodb://mongo:27017/'), 'mongodb://mongo:27017/');
  });

  it('the process exits 78 with one clear JSON line on bad env, before listening', () => {
    const result = spawnSync(process.execPath, [SERVICE_MAIN], { env: { PATH: process.env.PATH, PORT: '-1', MONGODB_URI: 'mongodb://u:hunter2@x/' }, encoding: 'utf8' });
    assert.equal(result.status, 78);
    const line = JSON.parse(result.stderr.trim()) as { level: string; problems: string[] };
    assert.equal(line.level, 'fatal');
    assert.deepEqual(line.problems, ['PORT must be a whole number from 0 to 65535, got "-1"']);
    assert.doesNotMatch(result.stderr + result.stdout, /hunter2/);
  });

  it('a valid env starts the process (sanity check for the helper)', async () => {
    const svc = await spawnService({ MONGODB_URI: 'mongodb://127.0.0.1:1/' });
    svc.kill();
    assert.equal(await svc.exited, 0);
  });
});
