// A signed request is for one target URI: createSignedFetch does not follow a redirect (as the Python SDK's httpx
// does not), so an upstream behind the gateway cannot send the agent's signed request, and its body, to another
// origin outside the gateway. Two real servers on 127.0.0.1: one answers 307 to the other, which must see nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { webcrypto } from "node:crypto";

import { createSignedFetch, importAgentKey } from "../dist/index.js";

function listen(handler) {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

test("a redirect is returned to the caller, not followed", async () => {
  const seen = [];
  const elsewhere = await listen((req, res) => { seen.push(req.headers); res.end("got it"); });
  const target = `http://127.0.0.1:${elsewhere.address().port}/collect`;
  const redirector = await listen((req, res) => {
    req.resume();
    res.writeHead(307, { Location: target });
    res.end();
  });
  try {
    const pair = await webcrypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
    const key = await importAgentKey(pair.privateKey, "did:key:z6Mktest#z6Mktest");
    const identity = { namespace: "acme", subject: "did:key:z6Mktest", passport: "ab".repeat(32) };
    const signedFetch = createSignedFetch(key, identity);
    const got = await signedFetch(`http://127.0.0.1:${redirector.address().port}/proxy/mail-api/inbox`);
    assert.equal(got.status, 307);
    assert.equal(got.headers.get("location"), target);
    const posted = await signedFetch(`http://127.0.0.1:${redirector.address().port}/proxy/mail-api/send`, {
      method: "POST", body: JSON.stringify({ secret: "for the upstream only" }),
    });
    assert.equal(posted.status, 307);
    assert.equal(seen.length, 0, "the signed request was re-sent to another origin");
  } finally {
    redirector.close();
    elsewhere.close();
  }
});
