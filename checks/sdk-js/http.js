// `this.http`: a fetch-like client over the host's `http` import.
//
// `get`/`post`/`put`/`patch`/`delete`/`head`/`request` return a Promise of a `Response` shaped as
// fetch's (`status`, `ok`, `statusText`, `headers.get()`, `text()`, `json()`, `arrayBuffer()`),
// plus `raiseForStatus()` as in `requests`. It reads the instance options Datadog's
// RequestsWrapper reads (`timeout`, `headers`, `extra_headers`, `username`/`password`,
// `tls_verify`, `tls_ca_cert`), and per-call options (`headers`, `body`, `json`, `params`,
// `timeout` in seconds, `tlsVerify`, `caFile`, `auth`). Requests go out through the agent under
// the check's egress policy: redirects are followed by the host and there is no proxy setting.

import { currentHost, HostHttpError } from './host.js';

export const DEFAULT_TIMEOUT_SECONDS = 10;

/** Every error of `this.http` (a failed request, or `raiseForStatus()` on a 4xx/5xx). */
export class HttpError extends Error {
  constructor(message, { kind = 'other', response = undefined } = {}) {
    super(message);
    this.name = 'HttpError';
    /** `status` for raiseForStatus(), else the host's: `connect`, `timeout`, `denied`, `tls`, ... */
    this.kind = kind;
    this.response = response;
  }
}

/** Response headers: looked up whatever the case; repeated headers joined by `, ` as fetch does. */
export class ResponseHeaders {
  #values = new Map();

  constructor(pairs = []) {
    for (const [name, value] of pairs) {
      const key = name.toLowerCase();
      const before = this.#values.get(key);
      this.#values.set(key, before === undefined ? value : `${before}, ${value}`);
    }
  }

  get(name) {
    return this.#values.get(String(name).toLowerCase()) ?? null;
  }

  has(name) {
    return this.#values.has(String(name).toLowerCase());
  }

  forEach(callback) {
    for (const [name, value] of this.#values) callback(value, name, this);
  }

  entries() {
    return this.#values.entries();
  }

  keys() {
    return this.#values.keys();
  }

  [Symbol.iterator]() {
    return this.#values.entries();
  }
}

const REASONS = {
  100: 'Continue', 101: 'Switching Protocols', 200: 'OK', 201: 'Created', 202: 'Accepted',
  203: 'Non-Authoritative Information', 204: 'No Content', 205: 'Reset Content', 206: 'Partial Content',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized',
  402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout', 409: 'Conflict',
  410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Request Entity Too Large',
  414: 'Request-URI Too Long', 415: 'Unsupported Media Type', 416: 'Requested Range Not Satisfiable',
  417: 'Expectation Failed', 418: "I'm a Teapot", 421: 'Misdirected Request', 422: 'Unprocessable Entity',
  423: 'Locked', 424: 'Failed Dependency', 425: 'Too Early', 426: 'Upgrade Required',
  428: 'Precondition Required', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported', 506: 'Variant Also Negotiates', 507: 'Insufficient Storage',
  508: 'Loop Detected', 510: 'Not Extended', 511: 'Network Authentication Required',
};

/** What `this.http.get(...)` resolves to, shaped as fetch's Response. */
export class Response {
  #body;

  constructor(url, status, headers, body) {
    this.url = url;
    this.status = status;
    this.statusText = REASONS[status] ?? '';
    this.ok = status >= 200 && status < 300;
    this.headers = new ResponseHeaders(headers);
    this.#body = body;
  }

  async arrayBuffer() {
    return this.#body.buffer.slice(this.#body.byteOffset, this.#body.byteOffset + this.#body.byteLength);
  }

  async bytes() {
    return new Uint8Array(this.#body);
  }

  async text() {
    return new TextDecoder().decode(this.#body);
  }

  async json() {
    return JSON.parse(await this.text());
  }

  /** Throws an HttpError for a 4xx or 5xx status, with `requests`' message. */
  raiseForStatus() {
    if (this.status >= 400 && this.status < 600) {
      const side = this.status < 500 ? 'Client' : 'Server';
      throw new HttpError(`${this.status} ${side} Error: ${this.statusText} for url: ${this.url}`, {
        kind: 'status',
        response: this,
      });
    }
  }
}

/** `this.http` of a check: its instance's HTTP options, and the methods over the host. */
export class HttpClient {
  constructor(instance = {}, initConfig = {}) {
    const option = (key, fallback) => instance[key] ?? initConfig[key] ?? fallback;
    this.timeout = Number(option('timeout', DEFAULT_TIMEOUT_SECONDS));
    this.headers = { ...(option('headers') ?? {}), ...(option('extra_headers') ?? {}) };
    this.tlsVerify = Boolean(option('tls_verify', true));
    this.caFile = option('tls_ca_cert');
    const username = option('username');
    const password = option('password');
    this.basicAuth = username != null && password != null ? [String(username), String(password)] : undefined;
  }

  get(url, options) {
    return this.request('GET', url, options);
  }

  post(url, options) {
    return this.request('POST', url, options);
  }

  put(url, options) {
    return this.request('PUT', url, options);
  }

  patch(url, options) {
    return this.request('PATCH', url, options);
  }

  delete(url, options) {
    return this.request('DELETE', url, options);
  }

  head(url, options) {
    return this.request('HEAD', url, options);
  }

  /**
   * Sends one request. Resolves to a Response whatever its status; rejects with an HttpError
   * when no response came (its `kind` says why: `connect`, `timeout`, `denied`, `tls`, ...).
   */
  async request(method, url, options = {}) {
    const target = withParams(String(url), options.params);
    const headers = { ...this.headers, ...(options.headers ?? {}) };
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
        headers['Content-Type'] = 'application/json';
      }
    }
    let auth;
    const basic = options.auth?.basic ?? this.basicAuth;
    if (options.auth?.bearer !== undefined) {
      auth = { tag: 'bearer', val: String(options.auth.bearer) };
    } else if (options.auth?.bearerFile !== undefined) {
      auth = { tag: 'bearer-file', val: String(options.auth.bearerFile) };
    } else if (basic !== undefined) {
      headers.Authorization = `Basic ${base64(`${basic[0]}:${basic[1]}`)}`;
    }
    const timeoutSeconds = Number(options.timeout ?? this.timeout);
    const request = {
      method: method.toUpperCase(),
      url: target,
      headers: Object.entries(headers).map(([name, value]) => [name, String(value)]),
      body: body === undefined || body === null ? undefined : bodyBytes(body),
      timeoutMs: Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? Math.ceil(timeoutSeconds * 1000) : undefined,
      tlsVerify: Boolean(options.tlsVerify ?? this.tlsVerify),
      caFile: options.caFile ?? this.caFile ?? undefined,
      auth,
    };
    let answer;
    try {
      answer = currentHost().httpSend(request);
    } catch (error) {
      if (error instanceof HostHttpError) throw new HttpError(error.message, { kind: error.kind });
      throw error;
    }
    return new Response(target, answer.status, answer.headers, answer.body);
  }
}

function withParams(url, params) {
  if (params === undefined || params === null) return url;
  const query = Object.entries(params)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join('&');
  if (query === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

function bodyBytes(body) {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return new TextEncoder().encode(String(body));
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

// btoa takes Latin-1 only; credentials are UTF-8.
function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b = 0, c = 0] = [bytes[i], bytes[i + 1], bytes[i + 2]];
    const n = (a << 16) | (b << 8) | c;
    out += BASE64[(n >> 18) & 63] + BASE64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? BASE64[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? BASE64[n & 63] : '=';
  }
  return out;
}
