// Reads a JSON array of Prometheus Operator objects on stdin and validates each against
// its CRD's schema (types, patterns, required fields). Prints one line per object; exits 1
// if any is invalid.
import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = { PodMonitor, PrometheusRule, ServiceMonitor };
let text = "";
for await (const chunk of process.stdin) text += chunk;
let failed = 0;
for (const object of JSON.parse(text)) {
  const name = `${object.kind}/${object.metadata?.name}`;
  const Kind = kinds[object.kind];
  if (!Kind) {
    failed++;
    console.log(`FAIL ${name}: no schema for this kind`);
    continue;
  }
  try {
    new Kind(object).validate();
    console.log(`ok ${name}`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${name}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
