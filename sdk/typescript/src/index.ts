/**
 * Tabellion agent SDK for `fetch`: sign requests for a Tabellion gateway with RFC 9421 HTTP Message Signatures
 * (Ed25519), as the gateway's documentation (docs/gateway.md) describes. WebCrypto does the cryptography; there is
 * no runtime dependency.
 *
 *   const key = await importAgentKey(pkcs8Bytes, "did:key:z6Mk…#z6Mk…");
 *   const signedFetch = createSignedFetch(key, { namespace: "acme", subject: "did:key:z6Mk…", passport: "<entry id>" });
 *   const answer = await signedFetch("https://gw.example/proxy/mail/inbox/1");
 *
 * Each request carries the four `Tabellion-*` identity headers, a `Content-Digest` (RFC 9530, SHA-256) when it has a
 * body, and one signature `sig1` over `@method`, `@target-uri`, the identity headers and `content-digest`, with
 * `created`, `expires`, `keyid`, `alg="ed25519"` and a fresh random `nonce` (the gateway accepts each nonce once:
 * a retry must be signed again, which `signedFetch` does on every call).
 */

import { base64, serializeBareItem, serializeDictionary, serializeInnerList, type Parameters } from "./structured-fields.js";

export const IDENTITY_HEADERS = [
  "tabellion-namespace",
  "tabellion-subject",
  "tabellion-agent-key",
  "tabellion-agent-passport",
] as const;

/** What signs: `keyid` as the gateway resolves it on the log, and an Ed25519 signature of the bytes given. A key
 * that lives in hardware implements the same interface. */
export interface AgentKey {
  readonly keyid: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export interface AgentIdentity {
  namespace: string;
  subject: string;
  passport: string;
  /** defaults to the signing key's `keyid` */
  agentKey?: string;
}

export interface SignOptions {
  /** seconds the signature may be used for (`expires = created + ttl`); default 60 */
  ttl?: number;
  /** Unix seconds; default now */
  created?: number;
  /** default: 18 random bytes, base64url */
  nonce?: string;
  /** more header names the signature must cover (lower case) */
  extra?: readonly string[];
}

/** An Ed25519 key from its PKCS #8 DER bytes (or a WebCrypto `CryptoKey`), used through WebCrypto. */
export async function importAgentKey(pkcs8OrKey: Uint8Array | CryptoKey, keyid: string): Promise<AgentKey> {
  const key = pkcs8OrKey instanceof Uint8Array
    ? await crypto.subtle.importKey("pkcs8", pkcs8OrKey, { name: "Ed25519" }, false, ["sign"])
    : pkcs8OrKey;
  return {
    keyid,
    async sign(data: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, data));
    },
  };
}

/** RFC 9530 `Content-Digest` of `body` with SHA-256. */
export async function contentDigest(body: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return serializeDictionary([["sha-256", serializeBareItem(digest)]]);
}

function randomNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fieldValue(headers: Headers, name: string): string {
  const value = headers.get(name);
  if (value === null) throw new TypeError(`the signature covers ${name}, which the request does not have`);
  return value.trim();
}

/** The RFC 9421 §2.5 signature base. */
export function signatureBase(method: string, targetUri: string, headers: Headers, components: readonly string[],
                              params: Parameters): string {
  const lines = components.map((name) => {
    let value: string;
    if (name === "@method") value = method.toUpperCase();
    else if (name === "@target-uri") value = targetUri;
    else if (name.startsWith("@")) throw new TypeError(`derived component ${name} is not supported here`);
    else value = fieldValue(headers, name);
    return `${serializeBareItem(name)}: ${value}`;
  });
  lines.push(`"@signature-params": ${serializeInnerList(components, params)}`);
  return lines.join("\n");
}

/**
 * Sign a request: returns the headers to send (the given ones, plus the identity headers, `Content-Digest` with a
 * body, `Signature-Input` and `Signature`).
 */
export async function signRequest(key: AgentKey, identity: AgentIdentity, method: string, url: string,
                                  headers: HeadersInit | undefined, body: Uint8Array | undefined,
                                  options: SignOptions = {}): Promise<Headers> {
  const out = new Headers(headers);
  for (const name of ["signature", "signature-input", "content-digest"]) out.delete(name);
  out.set("Tabellion-Namespace", identity.namespace);
  out.set("Tabellion-Subject", identity.subject);
  out.set("Tabellion-Agent-Key", identity.agentKey ?? key.keyid);
  out.set("Tabellion-Agent-Passport", identity.passport);
  const components = ["@method", "@target-uri", ...IDENTITY_HEADERS, ...(options.extra ?? [])];
  if (body !== undefined && body.length > 0) {
    out.set("Content-Digest", await contentDigest(body));
    components.push("content-digest");
  }
  const created = options.created ?? Math.floor(Date.now() / 1000);
  const params: Parameters = [
    ["created", created],
    ["expires", created + (options.ttl ?? 60)],
    ["keyid", key.keyid],
    ["alg", "ed25519"],
    ["nonce", options.nonce ?? randomNonce()],
  ];
  const base = signatureBase(method, new URL(url).href, out, components, params);
  const signature = await key.sign(new TextEncoder().encode(base));
  out.set("Signature-Input", serializeDictionary([["sig1", serializeInnerList(components, params)]]));
  out.set("Signature", serializeDictionary([["sig1", serializeBareItem(signature)]]));
  return out;
}

async function bodyBytes(body: BodyInit | null | undefined): Promise<Uint8Array | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return new TextEncoder().encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return new Uint8Array(await new Response(body).arrayBuffer());
}

export type SignedFetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * A `fetch` that signs every request it sends (the body is read whole: its digest is signed). A redirect is returned
 * to the caller, not followed (`redirect: "manual"` unless the caller asks otherwise): the signature is for one
 * target URI, and following would send the signed request — identity headers, signature, body — to whatever origin
 * an upstream names, outside the gateway.
 */
export function createSignedFetch(key: AgentKey, identity: AgentIdentity, options: Omit<SignOptions, "created" | "nonce"> = {},
                                  baseFetch: typeof fetch = fetch): SignedFetch {
  return async (input, init = {}) => {
    const url = input instanceof URL ? input.href : input;
    const method = (init.method ?? "GET").toUpperCase();
    const body = await bodyBytes(init.body);
    const headers = await signRequest(key, identity, method, url, init.headers, body, options);
    return baseFetch(url, { ...init, method, headers, body, redirect: init.redirect ?? "manual" });
  };
}
