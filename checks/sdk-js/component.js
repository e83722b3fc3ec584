// The component's side of the SDK: the host over the adrt:check@0.1.1 imports, and the world's
// exports (`info`, `init`, `run`, `validate`) over a check module. `adrt build` generates the
// component's entry module, which calls `componentExports` with the check's module and name.
//
// The exports are synchronous functions of the WIT world, while `check()` is async: the bindings
// componentize-js generates await what an export returns, and the engine runs its job queue
// until that settles before the call returns to the agent. The host's imports are synchronous,
// so every `await` in a check settles within the same call.

import { emitMetric, emitServiceCheck, emitEvent } from 'adrt:check/submit@0.1.1';
import { write } from 'adrt:check/log@0.1.1';
import { send } from 'adrt:check/http@0.1.1';
import { context } from 'adrt:check/agent@0.1.1';
import { get, set } from 'adrt:check/state@0.1.1';
import { installHost, HostHttpError } from './host.js';
import { CheckFailed, CheckRunner } from './runner.js';

const componentHost = {
  emitMetric(metric) {
    emitMetric(metric);
  },
  emitServiceCheck(check) {
    emitServiceCheck(check);
  },
  emitEvent(event) {
    emitEvent({ ...event, timestamp: event.timestamp === undefined ? undefined : BigInt(event.timestamp) });
  },
  log(level, message) {
    write(level, message);
  },
  httpSend(request) {
    try {
      return send(request);
    } catch (error) {
      const payload = error?.payload;
      if (payload && typeof payload.tag === 'string') throw new HostHttpError(payload.tag, String(payload.val));
      throw error;
    }
  },
  stateGet(key) {
    return get(key);
  },
  stateSet(key, value) {
    set(key, value);
  },
  hostname() {
    return context().hostname;
  },
};

/** WIT's `result<_, check-error>` for a call that threw. */
function failed(error) {
  if (error instanceof CheckFailed) return { tag: 'err', val: { tag: error.kind, val: error.message } };
  return { tag: 'err', val: { tag: 'run', val: error instanceof Error ? error.message : String(error) } };
}

// The engine is built without wasi:http, so its own `fetch` would trap the instance: say instead
// what to use.
globalThis.fetch = async function fetch() {
  throw new TypeError('fetch is not available in an adrt check: use this.http (the agent makes the request under its policy)');
};

/** The world's exports for the check exported by `module`, named `name`. */
export function componentExports(module, name) {
  installHost(componentHost);
  const runner = new CheckRunner(module, name);
  return {
    info() {
      return runner.info();
    },
    init(initConfig) {
      try {
        runner.init(initConfig);
        return { tag: 'ok', val: undefined };
      } catch (error) {
        return failed(error);
      }
    },
    async run(instanceId, instance) {
      try {
        await runner.run(instanceId, instance);
        return { tag: 'ok', val: undefined };
      } catch (error) {
        return failed(error);
      }
    },
    validate(initConfig, instance) {
      try {
        return { tag: 'ok', val: runner.validate(initConfig, instance) };
      } catch (error) {
        return failed(error);
      }
    },
  };
}
