// The demo page's calls to the gateway, from another origin: a JSON GET, a preflighted JSON POST
// (with an Authorization header when the page has a token), an error whose google.rpc.Status
// body the page reads, and gRPC-Web calls (unary and server streaming) made with Connect's
// gRPC-Web transport. Messages come from the gateway's descriptor set at run time, so no code is
// generated. Each result is shown on the page and kept in `window.meshgateResults` (the browser
// test reads it); `document.body.dataset.done` is set when every call has finished.
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createFileRegistry, fromBinary, toJson } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const params = new URLSearchParams(location.search);
const gateway = params.get("gateway") || "http://127.0.0.1:8080";
const token = params.get("token");
const results = {};
window.meshgateResults = results;

function show(id, result) {
  results[id] = result;
  const el = document.getElementById(id);
  if (el) {
    el.textContent = JSON.stringify(result, null, 2);
    el.className = result.ok ? "ok" : "failed";
  }
}

function failure(e) {
  return { ok: false, error: String(e && e.message ? e.message : e), code: e && e.code };
}

async function jsonCall(id, path, init) {
  try {
    const r = await fetch(gateway + path, init);
    const body = await r.json();
    show(id, {
      ok: true,
      status: r.status,
      requestId: r.headers.get("x-request-id"),
      wwwAuthenticate: r.headers.get("www-authenticate"),
      body,
    });
  } catch (e) {
    show(id, failure(e));
  }
}

async function grpcCalls() {
  let payments;
  try {
    const bytes = new Uint8Array(await (await fetch("payments.pb")).arrayBuffer());
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
    const service = registry.getService("meshgate.demo.v1.Payments");
    const transport = createGrpcWebTransport({ baseUrl: gateway, useBinaryFormat: true });
    payments = { client: createClient(service, transport), service };
  } catch (e) {
    show("grpc-unary", failure(e));
    show("grpc-stream", failure(e));
    return;
  }
  const headers = token ? { authorization: "Bearer " + token } : {};
  try {
    const reply = await payments.client.getPayment({ id: "pay_001" }, { headers });
    const out = payments.service.method.getPayment.output;
    show("grpc-unary", { ok: true, message: toJson(out, reply) });
  } catch (e) {
    show("grpc-unary", failure(e));
  }
  try {
    const events = [];
    const out = payments.service.method.watchPayments.output;
    for await (const ev of payments.client.watchPayments(
      { parent: "merchants/acme", maxEvents: 3 },
      { headers },
    )) {
      events.push(toJson(out, ev));
    }
    show("grpc-stream", { ok: true, events });
  } catch (e) {
    show("grpc-stream", failure(e));
  }
}

async function main() {
  document.getElementById("gateway").textContent = gateway;
  const auth = token ? { authorization: "Bearer " + token } : {};
  await jsonCall("json-get", "/v1/payments/pay_001", { headers: auth });
  await jsonCall("json-post", "/v1/payments", {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify({
      merchant: "merchants/acme",
      amount: { currencyCode: "EUR", amountMinor: "4200" },
    }),
  });
  await jsonCall("json-error", "/v1/payments/nope", { headers: auth });
  await grpcCalls();
  document.body.dataset.done = "true";
}

main();
