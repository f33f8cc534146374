// A local order book kept from `depthUpdates`: a snapshot, then deltas chained by
// prevSeq → seq, each proven by the CRC32 of the top 10 levels a side (Kraken's
// scheme, as docs/frontend.md spells it). Prices and quantities stay the strings
// the API sent: the checksum is over them, and no float ever touches the book.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32 (IEEE) of an ASCII string. */
export function crc32(s) {
  let c = 0xffffffff;
  for (let i = 0; i < s.length; i++) c = TABLE[(c ^ s.charCodeAt(i)) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Compares two non-negative decimal strings exactly. */
export function cmpDec(a, b) {
  const [ai, af = ""] = a.split(".");
  const [bi, bf = ""] = b.split(".");
  const x = ai.replace(/^0+/, "");
  const y = bi.replace(/^0+/, "");
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  if (x !== y) return x < y ? -1 : 1;
  const n = Math.max(af.length, bf.length);
  const p = af.padEnd(n, "0");
  const q = bf.padEnd(n, "0");
  return p === q ? 0 : p < q ? -1 : 1;
}

const isZero = (q) => !/[1-9]/.test(q);

export class Book {
  constructor() {
    this.clear();
  }

  clear() {
    this.bids = new Map();
    this.asks = new Map();
    this.seq = null;
  }

  /** Applies an update; false when it does not follow (a gap) or the checksum disagrees. */
  apply(u) {
    if (u.kind === "SNAPSHOT") {
      this.clear();
    } else if (this.seq == null || u.prevSeq !== this.seq) {
      return false;
    }
    for (const [side, levels] of [[this.bids, u.bids], [this.asks, u.asks]]) {
      for (const { price, quantity } of levels) {
        if (isZero(quantity)) side.delete(price);
        else side.set(price, quantity);
      }
    }
    this.seq = u.seq;
    return this.checksum() === Number(u.checksum) >>> 0;
  }

  /** [price, quantity] pairs, best first. */
  side(name) {
    const levels = [...(name === "bids" ? this.bids : this.asks).entries()];
    levels.sort(([a], [b]) => (name === "bids" ? cmpDec(b, a) : cmpDec(a, b)));
    return levels;
  }

  checksum() {
    const digits = (s) => s.replace(".", "").replace(/^0+/, "");
    let text = "";
    for (const [p, q] of [...this.side("asks").slice(0, 10), ...this.side("bids").slice(0, 10)]) text += digits(p) + digits(q);
    return crc32(text);
  }
}
