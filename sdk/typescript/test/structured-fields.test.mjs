// The serializations the signature fields need (RFC 8941 §4.1), and the signature base (RFC 9421 §2.5).
import { test } from "node:test";
import assert from "node:assert/strict";

import { contentDigest, signatureBase } from "../dist/index.js";
import { serializeBareItem, serializeDictionary, serializeInnerList } from "../dist/structured-fields.js";

test("bare items, inner lists and dictionaries", () => {
  assert.equal(serializeBareItem('a "quoted" \\ string'), '"a \\"quoted\\" \\\\ string"');
  assert.equal(serializeBareItem(1750000000), "1750000000");
  assert.equal(serializeBareItem(new Uint8Array([0xde, 0xad, 0xbe, 0xef])), ":3q2+7w==:");
  assert.throws(() => serializeBareItem("é"));
  assert.throws(() => serializeBareItem(1.5));
  assert.equal(serializeInnerList(["@method", "@target-uri"], [["created", 1], ["keyid", "k"]]),
    '("@method" "@target-uri");created=1;keyid="k"');
  assert.equal(serializeDictionary([["sig1", "(\"@method\")"]]), 'sig1=("@method")');
  assert.throws(() => serializeDictionary([["Sig", "1"]]));
});

test("content digest of RFC 9530 Appendix B", async () => {
  // RFC 9530 B.1: {"hello": "world"} with a trailing LF
  const body = new TextEncoder().encode('{"hello": "world"}\n');
  assert.equal(await contentDigest(body), "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:");
});

test("the signature base", () => {
  const headers = new Headers({ "Tabellion-Namespace": " acme " });
  const base = signatureBase("get", "https://gw.example/proxy/m/x?y=1", headers,
    ["@method", "@target-uri", "tabellion-namespace"], [["created", 1], ["nonce", "n"]]);
  assert.equal(base, '"@method": GET\n"@target-uri": https://gw.example/proxy/m/x?y=1\n"tabellion-namespace": acme\n' +
    '"@signature-params": ("@method" "@target-uri" "tabellion-namespace");created=1;nonce="n"');
});
