// Runs a check module's AgentCheck subclass as the agent's exports do: `info`, `init`, `run`,
// `validate`. The component glue (component.js) and the test helper (testing.js) both go
// through it, so a check's tests run it as the agent does.

import { currentHost } from './host.js';
import { AgentCheck, ConfigurationError, errorWithStack } from './check.js';

/** How a call failed: `kind` is `config` or `run`, as the WIT `check-error`. */
export class CheckFailed extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'CheckFailed';
    this.kind = kind;
  }
}

/** The module's check: its default export, else the one AgentCheck subclass it exports. */
export function findCheckClass(module) {
  const isCheck = (value) => typeof value === 'function' && value.prototype instanceof AgentCheck;
  if (isCheck(module.default)) return module.default;
  const found = [...new Set(Object.values(module).filter(isCheck))];
  // A subclass of another exported class is the check; its bases are helpers.
  const leaves = found.filter((c) => !found.some((other) => other !== c && other.prototype instanceof c));
  if (leaves.length !== 1) {
    const names = leaves.map((c) => c.name).sort().join(', ') || 'none';
    throw new TypeError(`expected the module to export one subclass of AgentCheck (as its default export), found ${names}`);
  }
  return leaves[0];
}

function parse(what, text) {
  let value;
  try {
    value = text ? JSON.parse(text) : {};
  } catch (error) {
    throw new CheckFailed('config', `${what} is not JSON: ${error.message}`);
  }
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new CheckFailed('config', `${what} must be a mapping, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value;
}

function message(error) {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** One check module, called as the agent calls a component. */
export class CheckRunner {
  constructor(module, name) {
    this.checkClass = findCheckClass(module);
    this.name = name;
    this.version = String(module.version ?? '0.0.0');
    this.initConfig = {};
  }

  info() {
    return { name: this.name, version: this.version };
  }

  init(initConfigJson) {
    this.initConfig = parse('init_config', initConfigJson);
  }

  /** One run; throws CheckFailed. An unexpected error's stack goes to the log. */
  async run(instanceId, instanceJson) {
    const instance = parse('instance', instanceJson);
    try {
      const check = new this.checkClass(this.name, this.initConfig, [instance]);
      check.checkId = instanceId;
      // The check gets its own copy: what it changes is not `this.instance`.
      await check.check(parse('instance', instanceJson));
    } catch (error) {
      if (error instanceof ConfigurationError) throw new CheckFailed('config', message(error));
      if (error instanceof CheckFailed) throw error;
      currentHost().log('error', error instanceof Error ? errorWithStack(error) : `uncaught ${String(error)}`);
      throw new CheckFailed('run', message(error));
    }
  }

  /**
   * Builds the check as a run would, without running it: a constructor that checks its config
   * (throwing ConfigurationError) refuses it here. Returns the warnings (none).
   */
  validate(initConfigJson, instanceJson) {
    const initConfig = parse('init_config', initConfigJson);
    const instance = parse('instance', instanceJson);
    try {
      new this.checkClass(this.name, initConfig, [instance]);
    } catch (error) {
      throw new CheckFailed(error instanceof ConfigurationError ? 'config' : 'run', message(error));
    }
    return [];
  }
}
