import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeHost, HostHttpError } from 'adrt-check/testing';
import * as check from './check.js';

const URL = 'http://nginx.test/stub_status';
const PAGE = 'Active connections: 7 \nserver accepts handled requests\n 120 118 451 \nReading: 1 Writing: 2 Waiting: 4 \n';
const TAGS = [`url:${URL}`];

test('a stub_status page gives its numbers, tagged with the url', async () => {
  const host = new FakeHost({ http: { [URL]: [200, PAGE] } });
  await host.run(check, { url: URL });
  for (const [name, value] of [['active', 7], ['reading', 1], ['writing', 2], ['waiting', 4]]) {
    assert.deepEqual(host.metric(`stub_status.connections.${name}`, TAGS), {
      kind: 'gauge', name: `stub_status.connections.${name}`, value, tags: TAGS, hostname: undefined, device: undefined,
    });
  }
  assert.equal(host.metric('stub_status.connections.accepted', TAGS).value, 120);
  assert.equal(host.metric('stub_status.connections.handled', TAGS).kind, 'monotonic-count');
  assert.equal(host.metric('stub_status.requests', TAGS).value, 451);
  assert.equal(host.metrics.length, 7);
  assert.deepEqual(host.serviceCheck('stub_status.can_connect'), {
    name: 'stub_status.can_connect', status: 'ok', tags: TAGS, hostname: undefined, message: undefined,
  });
});

test('a refused connection is CRITICAL with the error, and fails the run', async () => {
  const refused = `${URL}: connection refused`;
  const host = new FakeHost({ http: { [URL]: new HostHttpError('connect', refused) } });
  await assert.rejects(host.run(check, { url: URL }), { kind: 'run', message: refused });
  assert.equal(host.serviceCheck('stub_status.can_connect').status, 'critical');
  assert.equal(host.serviceCheck('stub_status.can_connect').message, refused);
  assert.equal(host.metrics.length, 0);
});

test('a 404 is CRITICAL, naming the status', async () => {
  const host = new FakeHost({ http: { [URL]: [404, 'no such page'] } });
  await assert.rejects(host.run(check, { url: URL }), { kind: 'run', message: `404 Client Error: Not Found for url: ${URL}` });
  assert.equal(host.serviceCheck('stub_status.can_connect').status, 'critical');
});

test('a page that is not stub_status fails the run, naming the url', async () => {
  const host = new FakeHost({ http: { [URL]: [200, '<html>hello</html>'] } });
  await assert.rejects(host.run(check, { url: URL }), { kind: 'run', message: `${URL}: not a stub_status page` });
  assert.equal(host.metrics.length, 0);
});

test('an instance without url is a configuration error naming it', async () => {
  await assert.rejects(new FakeHost().run(check, {}), { kind: 'config', message: 'instance key `url` is required' });
});
