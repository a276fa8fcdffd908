// Prometheus metrics of one server (prom-client, own registry so several servers in one process,
// as in the tests, do not share counters). Gauges of the scheduler are read at scrape time.
import client from 'prom-client';
import type { Scheduler } from '../engine/scheduler.js';

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'status'>;
  readonly promptTokens: client.Counter;
  readonly completionTokens: client.Counter;
  readonly ttft: client.Histogram;
  readonly perToken: client.Histogram;
  readonly duration: client.Histogram;
  readonly batch: client.Histogram;

  constructor(sched: Scheduler) {
    const r = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'lightvlm_' });
    this.requests = new client.Counter({ name: 'lightvlm_requests_total', help: 'Chat completion requests by HTTP status', labelNames: ['status'], registers: r });
    this.promptTokens = new client.Counter({ name: 'lightvlm_prompt_tokens_total', help: 'Prompt tokens (image tokens included) of completed requests', registers: r });
    this.completionTokens = new client.Counter({ name: 'lightvlm_completion_tokens_total', help: 'Generated tokens', registers: r });
    const secs = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];
    this.ttft = new client.Histogram({ name: 'lightvlm_time_to_first_token_seconds', help: 'Request arrival to first generated token', buckets: secs, registers: r });
    this.perToken = new client.Histogram({ name: 'lightvlm_time_per_output_token_seconds', help: 'Time between consecutive generated tokens of a request', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r });
    this.duration = new client.Histogram({ name: 'lightvlm_request_duration_seconds', help: 'Request arrival to its last byte', buckets: secs, registers: r });
    this.batch = new client.Histogram({ name: 'lightvlm_decode_batch_size', help: 'Sequences in each decode step', buckets: [1, 2, 4, 8, 16, 32, 64], registers: r });
    const gauge = (name: string, help: string, read: () => number) =>
      new client.Gauge({ name, help, registers: r, collect() { this.set(read()); } });
    gauge('lightvlm_queue_depth', 'Requests waiting for a running slot or KV memory', () => sched.stats().queued);
    gauge('lightvlm_running_sequences', 'Sequences admitted (prefilling or decoding)', () => sched.stats().running);
    gauge('lightvlm_kv_cache_bytes', 'Bytes of KV cache held by running sequences', () => sched.stats().kvBytes);
    gauge('lightvlm_kv_reserved_bytes', 'Bytes of KV cache reserved for running sequences', () => sched.stats().kvReserved);
    gauge('lightvlm_kv_memory_limit_bytes', 'The --kv-memory bound (0 = unbounded)', () => (Number.isFinite(sched.kvMemory) ? sched.kvMemory : 0));
    sched.onStep = (b) => this.batch.observe(b);
  }
}
