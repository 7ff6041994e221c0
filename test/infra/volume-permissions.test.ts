import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VOLUME_PERMISSIONS } from '../../components/mongodb';

/**
 * The static volume's init container, run for real: its exact command, as root limited to exactly the
 * capabilities the container declares (setpriv drops the rest), on a data directory shaped the way mongod
 * leaves it after a first start (journal/ and diagnostic.data/ 0700, owned by 999) plus a file a root
 * process left behind. The second start of a pod is the case that crash-looped with CHOWN alone.
 */
describe('static volume: the permission step on a second start', function () {
  let dir: string;
  const asRoot = process.getuid?.() === 0;

  before(function () {
    // Dropping to a chosen capability set needs root; CI runs as root, so there this test always runs.
    if (!asRoot) this.skip();
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mongo-data-'));
    chmodSync(dir, 0o755);
    for (const sub of ['journal', 'diagnostic.data']) {
      mkdirSync(path.join(dir, sub), { mode: 0o700 });
      writeFileSync(path.join(dir, sub, 'file'), 'x', { mode: 0o600 });
      chownSync(path.join(dir, sub, 'file'), 999, 999);
      chownSync(path.join(dir, sub), 999, 999);
    }
    writeFileSync(path.join(dir, 'WiredTiger.lock'), '', { mode: 0o600 }); // left by a root process
    chownSync(dir, 999, 999);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const runWith = (caps: string[]) => {
    const command = VOLUME_PERMISSIONS.command.map((arg) => (arg === '/data/db' ? dir : arg));
    const set = ['-all', ...caps.map((cap) => `+${cap.toLowerCase()}`)].join(',');
    return spawnSync('setpriv', ['--inh-caps', set, '--bounding-set', set, '--', ...command], { encoding: 'utf8' });
  };

  it('hands every file to 999 with the declared capabilities alone', () => {
    const result = runWith(VOLUME_PERMISSIONS.capabilities.add);
    assert.equal(result.status, 0, result.stderr);
    for (const file of ['WiredTiger.lock', 'journal/file', 'diagnostic.data/file']) {
      assert.equal(statSync(path.join(dir, file)).uid, 999, file);
    }
  });

  it('CHOWN alone cannot enter mongod\'s 0700 directories (the crash loop this fixes)', () => {
    const result = runWith(['CHOWN']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /Permission denied/);
  });
});
