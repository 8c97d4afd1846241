// The receipt check, in the browser, with no help from the server: WebCrypto SHA-256 and Ed25519 against the log
// key the reader pinned (a C2SP signed-note verifier key, name+keyid+base64(0x01 || Ed25519 public key)).
//
//   leaf_data = SHA-256(CBOR(tag 18 [protected, {}, payload, signature]))   (docs/architecture.md §2)
//   root      = the RFC 9162 §2.1.3.2 inclusion proof of SHA-256(0x00 || leaf_data) in the receipt (vdp 396, -1)
//   receipt   = COSE_Sign1 (alg EdDSA, vds 1, kid = RFC 9679 thumbprint of the log key) over the detached root:
//               Ed25519 over CBOR ["Signature1", protected, h'', root]
import { b64Decode, b64urlDecode, concat, equal, hex, sha256 } from "./bytes.js";
import { bstr, decode, tstr } from "./cbor.js";

const PIN = "tabellion.pinned-log-key";
const ALG_EDDSA = -8, KID = 4, ALG = 1, VDS = 395, VDP = 396, VDS_RFC9162 = 1, INCLUSION = -1;

class Refused extends Error {}

function must(condition, why) { if (!condition) throw new Refused(why); }

async function parseVkey(text) {
  const text_ = text.trim(), first = text_.indexOf("+"), second = text_.indexOf("+", first + 1);
  must(first > 0 && second > first, "the pinned key is not name+keyid+key");
  const parts = [text_.slice(0, first), text_.slice(first + 1, second), text_.slice(second + 1)];  // base64 may hold "+"
  must(/^[0-9a-f]{8}$/.test(parts[1]), "the pinned key's key id is not 8 hex digits");
  let key;
  try { key = b64Decode(parts[2]); } catch { throw new Refused("the pinned key's key is not base64"); }
  must(key.length === 33 && key[0] === 0x01, "the pinned key is not an Ed25519 signed-note key (type 0x01)");
  const id = (await sha256(concat(new TextEncoder().encode(parts[0] + "\n"), key))).subarray(0, 4);
  must(hex(id) === parts[1], "the pinned key's key id does not match its name and key");
  return { name: parts[0], publicKey: key.subarray(1) };
}

function sign1(item, what) {
  const array = item && item.tag === 18 ? item.value : item;
  must(Array.isArray(array) && array.length === 4, `the ${what} is not a COSE_Sign1`);
  const [protectedBytes, unprotected, payload, signature] = array;
  must(protectedBytes instanceof Uint8Array && unprotected instanceof Map && signature instanceof Uint8Array,
    `the ${what} is not a COSE_Sign1`);
  must(payload === null || payload instanceof Uint8Array, `the ${what}'s payload is neither bytes nor nil`);
  return { protectedBytes, unprotected, payload, signature };
}

async function leafHash(statementBytes) {
  const s = sign1(decode(statementBytes), "statement");
  must(s.payload !== null, "the statement's payload is detached");
  // the logged form: tag 18, the unprotected header emptied (0xa0)
  const logged = concat(Uint8Array.of(0xd2, 0x84), bstr(s.protectedBytes), Uint8Array.of(0xa0), bstr(s.payload),
    bstr(s.signature));
  const leafData = await sha256(logged);
  return { leafData, leafHash: await sha256(concat(Uint8Array.of(0), leafData)) };
}

async function inclusionRoot(leafHash, index, size, path) {
  must(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size,
    `leaf index ${index} is not inside a tree of size ${size}`);
  let fn = index, sn = size - 1, r = leafHash;
  for (const p of path) {
    must(p instanceof Uint8Array && p.length === 32, "a proof hash is not 32 bytes");
    must(sn !== 0, "the inclusion proof is longer than the tree allows");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  must(sn === 0, "the inclusion proof is shorter than the tree needs");
  return r;
}

export async function checkReceipt(vkeyText, statementBytes, receiptBytes) {
  const key = await parseVkey(vkeyText);
  const receipt = sign1(decode(receiptBytes), "receipt");
  must(receipt.payload === null, "the receipt's payload is not detached");
  const header = decode(receipt.protectedBytes);
  must(header instanceof Map, "the receipt's protected header is not a map");
  must(header.get(ALG) === ALG_EDDSA, "the receipt is not signed with EdDSA");
  must(header.get(VDS) === VDS_RFC9162, "the receipt's verifiable data structure is not RFC 9162 SHA-256");
  const thumbprint = await sha256(concat(Uint8Array.of(0xa3, 0x01, 0x01, 0x20, 0x06, 0x21, 0x58, 0x20),
    key.publicKey));
  const kid = header.get(KID);
  must(kid instanceof Uint8Array && equal(kid, thumbprint),
    "the receipt names another key (kid) than the pinned log key");
  const proofs = receipt.unprotected.get(VDP);
  must(proofs instanceof Map && Array.isArray(proofs.get(INCLUSION)) && proofs.get(INCLUSION).length > 0,
    "the receipt carries no inclusion proof");
  const encoded = proofs.get(INCLUSION)[0];
  must(encoded instanceof Uint8Array, "the inclusion proof is not a byte string");
  const proof = decode(encoded);
  must(Array.isArray(proof) && proof.length === 3 && Array.isArray(proof[2]), "the inclusion proof is malformed");
  const [size, index, path] = proof;
  const leaf = await leafHash(statementBytes);
  const root = await inclusionRoot(leaf.leafHash, index, size, path);
  const toBeSigned = concat(Uint8Array.of(0x84), tstr("Signature1"), bstr(receipt.protectedBytes),
    Uint8Array.of(0x40), bstr(root));
  const publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
  const valid = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, receipt.signature, toBeSigned);
  must(valid, "the receipt's signature does not verify under the pinned log key");
  return { size, index, root: hex(root), entry: hex(leaf.leafData), origin: key.name };
}

function bytesOf(field, what) {
  const text = field.value.replace(/\s+/g, "");
  try { return b64urlDecode(text); } catch { throw new Refused(`the ${what} is not base64url`); }
}

function show(result, outcome, lines) {
  result.className = `result ${outcome === "verified" ? "ok" : "refused"}`;
  result.dataset.outcome = outcome;
  result.replaceChildren(...lines.map((line) => { const p = document.createElement("p"); p.textContent = line; return p; }));
}

function setUp() {
  const form = document.getElementById("receipt-check");
  if (!form) return;
  const vkey = form.elements["log-key"], result = document.getElementById("receipt-result");
  const pinned = localStorage.getItem(PIN);
  if (pinned) { vkey.value = pinned; document.getElementById("pin-status").textContent = "Using the key you pinned."; }
  document.getElementById("pin-key").addEventListener("click", () => {
    localStorage.setItem(PIN, vkey.value.trim());
    document.getElementById("pin-status").textContent = "Pinned in this browser.";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show(result, "checking", ["Checking…"]);
    result.className = "result pending";
    try {
      const done = await checkReceipt(vkey.value, bytesOf(form.elements.statement, "statement"),
        bytesOf(form.elements.receipt, "receipt"));
      show(result, "verified", [
        `Verified in this browser: entry ${done.entry} is leaf ${done.index} of the log ${done.origin} at tree size ${done.size}.`,
        `Root ${done.root}, signed by the pinned log key.`,
      ]);
    } catch (error) {
      show(result, "refused", [`Refused: ${error instanceof Refused ? error.message : `${error.name}: ${error.message}`}`]);
    }
  });
}

setUp();
