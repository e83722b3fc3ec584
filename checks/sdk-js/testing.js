// Testing a check natively (`node --test`), without the agent: a fake host that answers HTTP
// from a map and records what the check submits, and `run` to call the check as the agent does.
//
//   import * as check from './check.js';
//   const host = new FakeHost({ http: { 'http://nginx/status': [200, 'Active connections: 1 ...'] } });
//   await host.run(check, { url: 'http://nginx/status' });
//   assert.equal(host.metric('my.metric').value, 1);
//
// Metrics of kind `rate` and `monotonic-count` are recorded as submitted (the raw counter): the
// agent turns them into rates and deltas between runs.

import { installHost, HostHttpError } from './host.js';
import { CheckFailed, CheckRunner } from './runner.js';

export { CheckFailed, HostHttpError };

export class FakeHost {
  /**
   * `http` maps a URL to `[status, body]` or `[status, body, headers]` (body a string or a
   * Uint8Array, headers an object), or to a HostHttpError to throw (`new HostHttpError('timeout',
   * ...)`); an unknown URL is a connection error, as a peer that is not there. `state` is the
   * instance's persistent cache.
   */
  constructor({ http = {}, state = {}, hostname = 'test-host' } = {}) {
    this.responses = new Map(Object.entries(http));
    this.state = new Map(Object.entries(state));
    this.hostName = hostname;
    this.clear();
  }

  /** Forgets what was submitted, logged and requested (the state stays). */
  clear() {
    this.metrics = [];
    this.serviceChecks = [];
    this.events = [];
    this.logs = [];
    this.requests = [];
  }

  /**
   * Runs `module`'s check once on `instance`. Rejects with a CheckFailed (`.kind` `config` or
   * `run`, `.message`) when the run fails, as the agent would report it.
   */
  async run(module, instance, { initConfig = {}, name = 'check', instanceId = 'test:0' } = {}) {
    const runner = new CheckRunner(module, name);
    const previous = installHost(this);
    try {
      runner.init(JSON.stringify(initConfig));
      await runner.run(instanceId, JSON.stringify(instance));
    } finally {
      installHost(previous);
    }
  }

  /** The one metric submitted as `name` (with exactly `tags`, in any order, when given). */
  metric(name, tags) {
    const sorted = (list) => JSON.stringify([...list].sort());
    const found = this.metrics.filter((m) => m.name === name && (tags === undefined || sorted(m.tags) === sorted(tags)));
    if (found.length !== 1) {
      const tagged = tags === undefined ? '' : ` tagged ${JSON.stringify(tags)}`;
      throw new Error(`expected one metric ${name}${tagged}, found ${found.length} in ${JSON.stringify(this.metrics.map((m) => m.name))}`);
    }
    return found[0];
  }

  /** The one service check submitted as `name`. */
  serviceCheck(name) {
    const found = this.serviceChecks.filter((c) => c.name === name);
    if (found.length !== 1) throw new Error(`expected one service check ${name}, found ${found.length}`);
    return found[0];
  }

  emitMetric(metric) {
    this.metrics.push({ ...metric, tags: [...metric.tags] });
  }

  emitServiceCheck(check) {
    this.serviceChecks.push({ ...check, tags: [...check.tags] });
  }

  emitEvent(event) {
    this.events.push({ ...event, tags: [...event.tags] });
  }

  log(level, message) {
    this.logs.push({ level, message });
    console.error(`[${level}] ${message}`);
  }

  httpSend(request) {
    this.requests.push(request);
    const answer = this.responses.get(request.url);
    if (answer === undefined) {
      throw new HostHttpError('connect', `${request.url}: connection refused (no answer given to FakeHost)`);
    }
    if (answer instanceof Error) throw answer;
    const [status, body, headers = {}] = answer;
    return {
      status,
      headers: Object.entries(headers),
      body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
    };
  }

  stateGet(key) {
    return this.state.get(key);
  }

  stateSet(key, value) {
    if (value === undefined) this.state.delete(key);
    else this.state.set(key, value);
  }

  hostname() {
    return this.hostName;
  }
}
