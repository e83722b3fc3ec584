// adrt-check: write an adrt check in JavaScript with Datadog's custom-check API.
//
//   import { AgentCheck, ConfigurationError } from 'adrt-check';
//   export default class MyCheck extends AgentCheck {
//     async check(instance) { this.gauge('my.metric', 1, { tags: ['a:b'] }); }
//   }

export { AgentCheck, CheckException, ConfigurationError } from './check.js';
export { HttpError, Response } from './http.js';
