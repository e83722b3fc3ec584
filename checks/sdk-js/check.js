// `AgentCheck`: the base class of a JavaScript check, Datadog's custom-check API in JS spelling.

import { currentHost } from './host.js';
import { HttpClient } from './http.js';

/** The check's init_config or instance is invalid: the run fails as a configuration error. */
export class ConfigurationError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** A run that failed (as `datadog_checks.base.errors.CheckException`). */
export class CheckException extends Error {
  constructor(message) {
    super(message);
    this.name = 'CheckException';
  }
}

const STATUSES = ['ok', 'warning', 'critical', 'unknown'];
const ALERT_TYPES = ['info', 'success', 'warning', 'error'];

/**
 * Extend it and implement `async check(instance)`.
 *
 * The agent builds one object per run with the check's name, its init_config and a one-element
 * list holding the instance (`this.instance`), then awaits `check`. Nothing kept on `this`
 * survives to the next run: keep what must in `writePersistentCache`.
 */
export class AgentCheck {
  static OK = 0;
  static WARNING = 1;
  static CRITICAL = 2;
  static UNKNOWN = 3;

  constructor(name = '', initConfig = {}, instances = []) {
    this.name = name;
    this.initConfig = initConfig ?? {};
    this.instances = [...(instances ?? [])];
    this.instance = this.instances[0];
    this.checkId = '';
    this.warnings = [];
    this.log = checkLogger();
    this.http = new HttpClient(this.instance ?? {}, this.initConfig);
  }

  /** The name series are reported under. */
  get hostname() {
    return currentHost().hostname();
  }

  async check(instance) {
    throw new Error('a check implements async check(instance)');
  }

  gauge(name, value, options) {
    this.#submit('gauge', name, value, options);
  }

  count(name, value, options) {
    this.#submit('count', name, value, options);
  }

  /** A raw, ever-growing counter: the agent sends the delta since the previous run. */
  monotonicCount(name, value, options) {
    this.#submit('monotonic-count', name, value, options);
  }

  /** A raw, ever-growing counter: the agent sends the per-second change since the previous run. */
  rate(name, value, options) {
    this.#submit('rate', name, value, options);
  }

  histogram(name, value, options) {
    this.#submit('histogram', name, value, options);
  }

  serviceCheck(name, status, { tags, hostname, message } = {}) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`service check name must be a non-empty string, got ${describe(name)}`);
    }
    if (!Number.isInteger(status) || STATUSES[status] === undefined) {
      throw new TypeError(
        `service check ${describe(name)}: status ${describe(status)} is not one of AgentCheck.OK/WARNING/CRITICAL/UNKNOWN`,
      );
    }
    currentHost().emitServiceCheck({
      name,
      status: STATUSES[status],
      tags: tagList(tags),
      hostname: hostname || undefined,
      message: message === undefined || message === null || message === '' ? undefined : String(message),
    });
  }

  /**
   * An event: `{title, text, alertType, tags, aggregationKey, sourceTypeName, timestamp}`; Datadog's
   * `msg_title`, `msg_text`, `alert_type`, `aggregation_key` and `source_type_name` are read too.
   */
  event(event) {
    const alertType = event.alertType ?? event.alert_type ?? 'info';
    if (!ALERT_TYPES.includes(alertType)) {
      throw new TypeError(`event alertType ${describe(alertType)} is not one of ${ALERT_TYPES.join(', ')}`);
    }
    const timestamp = event.timestamp;
    currentHost().emitEvent({
      title: String(event.title ?? event.msg_title ?? ''),
      text: String(event.text ?? event.msg_text ?? ''),
      alertType,
      tags: tagList(event.tags),
      aggregationKey: event.aggregationKey ?? event.aggregation_key ?? undefined,
      sourceTypeName: event.sourceTypeName ?? event.source_type_name ?? undefined,
      timestamp: timestamp ? Math.trunc(Number(timestamp)) : undefined,
    });
  }

  /** Logs a warning (Datadog's `self.warning`). */
  warning(message) {
    this.warnings.push(String(message));
    currentHost().log('warn', String(message));
  }

  /** What `writePersistentCache` stored for this instance under `key`, or `''`. */
  readPersistentCache(key) {
    return currentHost().stateGet(String(key)) ?? '';
  }

  /** Keeps `value` (a string; `null` deletes it) for the next runs of this instance. */
  writePersistentCache(key, value) {
    currentHost().stateSet(String(key), value === null || value === undefined ? undefined : String(value));
  }

  #submit(kind, name, value, { tags, hostname, device } = {}) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`metric name must be a non-empty string, got ${describe(name)}`);
    }
    const number = typeof value === 'bigint' ? Number(value) : value;
    if (typeof number !== 'number' || Number.isNaN(number)) {
      throw new TypeError(`metric ${describe(name)}: value ${describe(value)} is not a number`);
    }
    currentHost().emitMetric({
      kind,
      name,
      value: number,
      tags: tagList(tags),
      hostname: hostname || undefined,
      device: device || undefined,
    });
  }
}

function tagList(tags) {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw new TypeError(`tags must be an array of strings, got ${describe(tags)}`);
  return tags.filter((tag) => tag !== undefined && tag !== null).map(String);
}

function describe(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A console-like message: strings as they are, errors with their stack, the rest as JSON. */
export function formatLogArgs(args) {
  return args
    .map((arg) => {
      if (typeof arg === 'string') return arg;
      if (arg instanceof Error) return errorWithStack(arg);
      return describe(arg);
    })
    .join(' ');
}

/** `Name: message` and the stack (V8's stack starts with that line; SpiderMonkey's does not). */
export function errorWithStack(error) {
  const head = String(error);
  const stack = typeof error.stack === 'string' ? error.stack.trimEnd() : '';
  if (stack === '') return head;
  return stack.startsWith(head) ? stack : `${head}\n${stack}`;
}

function checkLogger() {
  const at = (level) => (...args) => currentHost().log(level, formatLogArgs(args));
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    warning: at('warn'),
    error: at('error'),
  };
}
