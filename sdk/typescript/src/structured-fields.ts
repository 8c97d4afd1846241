/**
 * The RFC 8941 serializations the signature fields need, and nothing more: Strings, Integers, Byte Sequences,
 * Inner Lists of Strings with Parameters, and Dictionaries of those (RFC 8941 §4.1). Values that RFC 8941 cannot
 * express throw, so a signature is never made over a field the gateway would read differently.
 */

export type BareItem = string | number | Uint8Array;
export type Parameters = ReadonlyArray<readonly [string, BareItem]>;

const KEY = /^[a-z*][a-z0-9_\-.*]*$/;
const MAX_INTEGER = 999_999_999_999_999;

export function serializeKey(key: string): string {
  if (!KEY.test(key)) throw new TypeError(`${JSON.stringify(key)} is not a structured-field key`);
  return key;
}

export function serializeBareItem(value: BareItem): string {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || Math.abs(value) > MAX_INTEGER) {
      throw new TypeError(`${value} is not a structured-field integer`);
    }
    return String(value);
  }
  if (typeof value === "string") {
    for (const c of value) {
      const code = c.charCodeAt(0);
      if (c.length !== 1 || code < 0x20 || code > 0x7e) {
        throw new TypeError("a structured-field string holds printable ASCII only");
      }
    }
    return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  }
  return `:${base64(value)}:`;
}

export function serializeParameters(params: Parameters): string {
  return params.map(([key, value]) => `;${serializeKey(key)}=${serializeBareItem(value)}`).join("");
}

export function serializeInnerList(items: readonly string[], params: Parameters): string {
  return `(${items.map((item) => serializeBareItem(item)).join(" ")})${serializeParameters(params)}`;
}

export function serializeDictionary(members: ReadonlyArray<readonly [string, string]>): string {
  return members.map(([key, serializedValue]) => `${serializeKey(key)}=${serializedValue}`).join(", ");
}

export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
