// stub_status: nginx's stub_status page as metrics, written as a Datadog-style custom check.

import { AgentCheck, ConfigurationError } from 'adrt-check';

export const version = '1.0.0';

const PAGE = new RegExp(
  String.raw`Active connections:\s*(?<active>\d+)\s+` +
    String.raw`server accepts handled requests\s+(?<accepted>\d+)\s+(?<handled>\d+)\s+(?<requests>\d+)\s+` +
    String.raw`Reading:\s*(?<reading>\d+)\s+Writing:\s*(?<writing>\d+)\s+Waiting:\s*(?<waiting>\d+)`,
);

export default class StubStatusCheck extends AgentCheck {
  async check(instance) {
    const url = instance.url;
    if (!url) throw new ConfigurationError('instance key `url` is required');
    const tags = [`url:${url}`];
    let response;
    try {
      response = await this.http.get(url);
      response.raiseForStatus();
    } catch (error) {
      this.serviceCheck('stub_status.can_connect', AgentCheck.CRITICAL, { tags, message: error.message });
      throw error;
    }
    const page = PAGE.exec(await response.text());
    if (page === null) throw new Error(`${url}: not a stub_status page`);
    this.serviceCheck('stub_status.can_connect', AgentCheck.OK, { tags });
    for (const name of ['active', 'reading', 'writing', 'waiting']) {
      this.gauge(`stub_status.connections.${name}`, Number(page.groups[name]), { tags });
    }
    this.monotonicCount('stub_status.connections.accepted', Number(page.groups.accepted), { tags });
    this.monotonicCount('stub_status.connections.handled', Number(page.groups.handled), { tags });
    this.monotonicCount('stub_status.requests', Number(page.groups.requests), { tags });
  }
}
