import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeHost } from 'adrt-check/testing';
import * as check from './check.js';

const URL = 'http://service.test/';

test('a page gives its size and an OK service check', async () => {
  const host = new FakeHost({ http: { [URL]: [200, 'hello'] } });
  await host.run(check, { url: URL });
  assert.equal(host.metric('{{name}}.response_bytes', [`url:${URL}`]).value, 5);
  assert.equal(host.serviceCheck('{{name}}.can_connect').status, 'ok');
});

test('an unreachable url is CRITICAL and fails the run', async () => {
  const host = new FakeHost();
  await assert.rejects(host.run(check, { url: URL }), { kind: 'run' });
  assert.equal(host.serviceCheck('{{name}}.can_connect').status, 'critical');
});

test('an instance without url is a configuration error', async () => {
  await assert.rejects(new FakeHost().run(check, {}), { kind: 'config', message: 'instance key `url` is required' });
});
