// Validate Kubernetes resources (JSON: [{"file": ..., "doc": {...}}, ...] on argv[2]) against
// Istio's CRD schemas: the validators of @kubernetes-models/istio (ajv, compiled from Istio
// 1.29.2's CRDs) for every kind it carries, traffic-extension.schema.json (ajv) for
// TrafficExtension, and a ConfigMap schema for the stats bootstrap override.
// Prints one line per resource; exits 1 if any is invalid or of a kind it cannot check.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const here = dirname(fileURLToPath(import.meta.url));
const ajv = new Ajv({ allErrors: true, strict: false });
const local = {
  "extensions.istio.io/v1alpha1/TrafficExtension": ajv.compile(
    JSON.parse(readFileSync(join(here, "traffic-extension.schema.json"), "utf8"))),
  "v1/ConfigMap": ajv.compile({
    type: "object",
    required: ["apiVersion", "kind", "metadata", "data"],
    properties: {
      metadata: { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1 } } },
      data: { type: "object", additionalProperties: { type: "string" } },
    },
  }),
};

// An ajv error with the offending property named (ajv's own text leaves it out).
function describe(e) {
  const extra = e.params?.additionalProperty ? `: \`${e.params.additionalProperty}\`` : "";
  return `${e.instancePath || "/"} ${e.message}${extra}`;
}

async function check(doc) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  if (local[key]) {
    const ok = local[key](doc);
    if (!ok) throw new Error(local[key].errors.map(describe).join("; "));
    return "local schema";
  }
  let mod;
  try {
    mod = await import(`@kubernetes-models/istio/${doc.apiVersion}/${doc.kind}`);
  } catch (e) {
    throw new Error(`no schema for ${key}`);
  }
  try {
    new mod[doc.kind](doc).validate();
  } catch (e) {
    throw new Error(e.errors ? e.errors.map(describe).join("; ") : e.message);
  }
  return "@kubernetes-models/istio";
}

const items = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const { file, doc } of items) {
  const what = `${file}: ${doc.kind}/${doc.metadata?.name}`;
  try {
    console.log(`ok   ${what} (${await check(doc)})`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${what}: ${e.message}`);
  }
}
console.log(`${items.length - failed} valid, ${failed} invalid`);
process.exit(failed ? 1 : 0);
