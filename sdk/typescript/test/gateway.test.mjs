// The TypeScript SDK against a real Tabellion gateway: an allowed call, a replay refused, an out-of-scope call
// refused. tests/e2e/test_typescript_sdk.py starts the log, the gateway and an upstream, registers the agent,
// writes the fixture and runs `node --test` with TABELLION_SDK_FIXTURE naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { createSignedFetch, importAgentKey, signRequest } from "../dist/index.js";

const fixturePath = process.env.TABELLION_SDK_FIXTURE;
const fixture = fixturePath ? JSON.parse(readFileSync(fixturePath, "utf8")) : null;
const skip = fixture ? false : "no gateway: run through tests/e2e/test_typescript_sdk.py";

async function agent() {
  const key = await importAgentKey(Buffer.from(fixture.pkcs8, "base64"), fixture.keyid);
  const identity = { namespace: fixture.namespace, subject: fixture.subject, passport: fixture.passport };
  return { key, identity };
}

async function problem(answer, status, code) {
  assert.equal(answer.status, status);
  assert.match(answer.headers.get("content-type"), /^application\/problem\+json/);
  const body = await answer.json();
  assert.equal(body.type, `urn:tabellion:error:${code}`);
  return body;
}

test("an allowed call, with and without a body", { skip }, async () => {
  const { key, identity } = await agent();
  const signedFetch = createSignedFetch(key, identity);
  const got = await signedFetch(`${fixture.gateway}/proxy/mail-api/inbox/1?x=1`);
  assert.equal(got.status, 200, await got.clone().text());
  assert.deepEqual(await got.json(), { upstream: true, path: "/api/inbox/1?x=1" });
  const posted = await signedFetch(`${fixture.gateway}/proxy/mail-api/inbox/drafts`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ to: "b@example" }),
  });
  assert.equal(posted.status, 200, await posted.clone().text());
});

test("a replay is refused", { skip }, async () => {
  const { key, identity } = await agent();
  const url = `${fixture.gateway}/proxy/mail-api/inbox/2`;
  const headers = await signRequest(key, identity, "GET", url, undefined, undefined);
  const first = await fetch(url, { headers });
  assert.equal(first.status, 200, await first.clone().text());
  await problem(await fetch(url, { headers }), 401, "replay-detected");
});

test("an out-of-scope call is refused", { skip }, async () => {
  const { key, identity } = await agent();
  const signedFetch = createSignedFetch(key, identity);
  const body = await problem(await signedFetch(`${fixture.gateway}/proxy/mail-api/outbox/1`), 403, "scope-refused");
  assert.equal(body.reason_code, "resource_out_of_scope");
  const deleted = await problem(await signedFetch(`${fixture.gateway}/proxy/mail-api/inbox/1`, { method: "DELETE" }),
                                403, "scope-refused");
  assert.equal(deleted.reason_code, "action_out_of_scope");
});

test("a request signed by another key is refused", { skip }, async () => {
  const { identity } = await agent();
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const stranger = await importAgentKey(pair.privateKey, fixture.keyid);
  const answer = await createSignedFetch(stranger, identity)(`${fixture.gateway}/proxy/mail-api/inbox/3`);
  await problem(answer, 401, "request-signature-invalid");
});
