/**
 * `npm run dev`'s timing of a `pulumi up` (scripts/dev/pulumi.ts StepClock): the build and the
 * rollout read from the CLI's own progress lines, as the real CLI (3.248, non-interactive display)
 * prints them for this stack: the image is a dynamic resource, the rollout the Deployment's update.
 */
import assert from 'node:assert/strict';
import { StepClock } from '../../scripts/dev/pulumi';

describe('npm run dev: build and rollout times from pulumi up', () => {
  it('times the image step (replacement included) and the Deployment update', () => {
    let now = 0;
    const clock = new StepClock(() => now);
    const at = (t: number, line: string) => {
      now = t;
      clock.line(line);
    };
    at(0, 'Updating (dev):');
    at(2500, '    pulumi:pulumi:Stack koa-mongodb-dev running ');
    at(3000, ' ++ pulumi-nodejs:dynamic:Resource data-service creating replacement (0s) [diff: ~imageName]');
    at(4000, '@ updating....');
    at(9000, ' ++ pulumi-nodejs:dynamic:Resource data-service created replacement (6s) [diff: ~imageName]');
    at(9100, ' +- pulumi-nodejs:dynamic:Resource data-service replacing (0s) [diff: ~imageName]');
    at(9100, ' +- pulumi-nodejs:dynamic:Resource data-service replaced (0.00s) [diff: ~imageName]');
    at(9200, ' ~  kubernetes:apps/v1:Deployment data-service updating (0s) [diff: ~spec]');
    at(12000, ' ~  kubernetes:apps/v1:Deployment data-service updating (3s) [diff: ~spec]; Waiting for app ReplicaSet to be available (1/2 Pods available)');
    at(19200, '\x1b[33m ~ \x1b[0m kubernetes:apps/v1:Deployment data-service \x1b[33mupdated\x1b[0m (10s) [diff: ~spec]');
    at(19300, '    -- pulumi-nodejs:dynamic:Resource data-service deleting original (0s)');
    assert.deepEqual(clock.times, { buildMs: 6000, rolloutMs: 10_000 });
  });

  it('nothing to time when neither ran', () => {
    const clock = new StepClock(() => 0);
    clock.line('    pulumi:pulumi:Stack koa-mongodb-dev  ');
    clock.line('Resources:');
    clock.line('    12 unchanged');
    assert.deepEqual(clock.times, {});
  });
});
