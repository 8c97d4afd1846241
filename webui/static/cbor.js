// A small CBOR reader (RFC 8949) for the in-browser checks: definite lengths only, as Tabellion writes them.
// Byte strings come back as Uint8Array views, maps as Map (keys: numbers or strings), tags as {tag, value}.
// It refuses what it does not expect rather than guess.

export class CborError extends Error {}

export function decode(bytes) {
  const reader = new Reader(bytes);
  const value = reader.item(0);
  if (reader.at !== bytes.length) throw new CborError(`${bytes.length - reader.at} bytes after the CBOR item`);
  return value;
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.at = 0; }

  byte() {
    if (this.at >= this.bytes.length) throw new CborError("the CBOR ends early");
    return this.bytes[this.at++];
  }

  take(n) {
    if (n > this.bytes.length - this.at) throw new CborError("the CBOR ends early");
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  argument(info) {
    if (info < 24) return info;
    if (info > 27) throw new CborError("indefinite lengths and reserved values are not read here");
    const bytes = this.take(1 << (info - 24));
    let n = 0;
    for (const b of bytes) n = n * 256 + b;
    if (n > Number.MAX_SAFE_INTEGER) throw new CborError("an integer beyond 2^53");
    return n;
  }

  item(depth) {
    if (depth > 32) throw new CborError("CBOR nested too deeply");
    const first = this.byte();
    const major = first >> 5, info = first & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      throw new CborError(`simple value or float ${info} is not expected here`);
    }
    const n = this.argument(info);
    switch (major) {
      case 0: return n;
      case 1: return -1 - n;
      case 2: return this.take(n);
      case 3: return new TextDecoder("utf-8", { fatal: true }).decode(this.take(n));
      case 4: { const out = []; for (let i = 0; i < n; i++) out.push(this.item(depth + 1)); return out; }
      case 5: {
        const out = new Map();
        for (let i = 0; i < n; i++) {
          const key = this.item(depth + 1);
          if (out.has(key)) throw new CborError("a map repeats a key");
          out.set(key, this.item(depth + 1));
        }
        return out;
      }
      default: return { tag: n, value: this.item(depth + 1) };
    }
  }
}

// Writing: only the heads Tabellion's checks re-encode (byte and text strings, arrays, maps, tags, null).
export function head(major, n) {
  if (n < 24) return Uint8Array.of((major << 5) | n);
  if (n < 0x100) return Uint8Array.of((major << 5) | 24, n);
  if (n < 0x10000) return Uint8Array.of((major << 5) | 25, n >> 8, n & 255);
  if (n < 0x100000000) return Uint8Array.of((major << 5) | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
  throw new CborError("lengths of 4 GiB and more are not written here");
}

export function bstr(bytes) {
  const h = head(2, bytes.length);
  const out = new Uint8Array(h.length + bytes.length);
  out.set(h); out.set(bytes, h.length);
  return out;
}

export function tstr(text) {
  const bytes = new TextEncoder().encode(text);
  const h = head(3, bytes.length);
  const out = new Uint8Array(h.length + bytes.length);
  out.set(h); out.set(bytes, h.length);
  return out;
}
