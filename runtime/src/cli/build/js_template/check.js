// {{name}}: an adrt check in JavaScript. Build it with `adrt build .`, run it with
// `adrt check {{name}} --instance '{"url": "http://127.0.0.1:8080/"}'`, test it with `node --test`.

import { AgentCheck, ConfigurationError } from 'adrt-check';

export const version = '0.1.0';

export default class Check extends AgentCheck {
  async check(instance) {
    const url = instance.url;
    if (!url) throw new ConfigurationError('instance key `url` is required');
    const tags = [`url:${url}`, ...(instance.tags ?? [])];
    let response;
    try {
      response = await this.http.get(url);
      response.raiseForStatus();
    } catch (error) {
      this.serviceCheck('{{name}}.can_connect', AgentCheck.CRITICAL, { tags, message: error.message });
      throw error;
    }
    this.serviceCheck('{{name}}.can_connect', AgentCheck.OK, { tags });
    this.gauge('{{name}}.response_bytes', (await response.text()).length, { tags });
  }
}
