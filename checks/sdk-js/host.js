// The host a check talks to: the agent's imports inside a component (component.js installs
// them), or a FakeHost in a native test (testing.js). The SDK reaches the host only through
// `currentHost()`, so a check's code is the same in both.

let installed = null;

/** Makes `host` the one the SDK calls; returns the previous one. */
export function installHost(host) {
  const previous = installed;
  installed = host;
  return previous;
}

export function currentHost() {
  if (installed === null) {
    throw new Error('no adrt host: run the check through adrt, or in a test through FakeHost.run()');
  }
  return installed;
}

/**
 * An error of the host's `http` import: `kind` is the WIT variant's case
 * (`invalid-request`, `denied`, `timeout`, `connect`, `tls`, `other`) and `message` starts with
 * the request's URL.
 */
export class HostHttpError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'HostHttpError';
    this.kind = kind;
  }
}
