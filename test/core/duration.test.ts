import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTributaryError, parseDuration, parseSize } from '../../src/core/index.ts';

test('parseDuration reads units, compound forms and ISO-8601', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration('PT5M'), 300_000);
  assert.equal(parseDuration('P1DT1H'), 90_000_000);
  assert.equal(parseDuration(1234), 1234);
});

test('parseDuration names the field on bad input', () => {
  assert.throws(
    () => parseDuration('5 parsecs', 'retention.ms'),
    (err: unknown) => isTributaryError(err, 'INVALID_ARGUMENT') && /retention\.ms/.test(err.message),
  );
  assert.throws(() => parseDuration('P'), /expected a duration/);
});

test('parseSize reads binary suffixes', () => {
  assert.equal(parseSize('64KiB'), 65536);
  assert.equal(parseSize('1g'), 1024 ** 3);
  assert.equal(parseSize(10), 10);
  assert.throws(() => parseSize('lots', 'segment.bytes'), /segment\.bytes/);
});
