// DPG proof of reserves: the browser's verifier of a proof file (docs/proof-of-reserves.md,
// specification v2; v1 proofs of older epochs still verify). An ES module without a build step; keccak-256 from @noble/hashes (pinned in
// src/dpg/web/package.json, mapped by the page's import map). The same code runs under Node in
// the tests, against the shared vectors (tests/por/vectors.json) and the attacks.

import { keccak_256 } from "@noble/hashes/sha3.js";

const enc = new TextEncoder();
export const VERSION = 2;
export const MAX_VALUE = 1n << 128n;
export const MAX_COUNTER = 1n << 128n;
export const ZERO_ADDRESS = "0x" + "00".repeat(20);

export function keccak256(bytes) {
  return keccak_256(bytes);
}

export function toHex(bytes) {
  let s = "0x";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(hex, length, what = "value") {
  if (typeof hex !== "string" || !/^0x[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
    throw new ProofError(`${what} is not 0x-prefixed hex`);
  }
  const out = new Uint8Array((hex.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 + 2 * i, 4 + 2 * i), 16);
  if (length !== undefined && out.length !== length) throw new ProofError(`${what} must be ${length} bytes`);
  return out;
}

export class ProofError extends Error {}

/** A decimal string (or a safe integer) as a BigInt >= 0. */
export function decimal(x, what) {
  if (typeof x === "number" && Number.isSafeInteger(x) && x >= 0) return BigInt(x);
  if (typeof x !== "string" || !/^[0-9]+$/.test(x)) throw new ProofError(`${what} must be a non-negative decimal integer`);
  return BigInt(x);
}

/** abi.encode of a uint256: 32 bytes, big-endian. */
export function word(v) {
  if (v < 0n || v >= 1n << 256n) throw new ProofError(`${v} does not fit a uint256`);
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function addressWord(address, what = "registry") {
  const out = new Uint8Array(32);
  out.set(fromHex(address, 20, what), 12);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export const LEAF_TAG = keccak256(enc.encode("DPG-POR-LEAF-v1")); // version 1's leaves (superseded)
export const LEAF_TAG_V2 = keccak256(enc.encode("DPG-POR-LEAF-v2"));
export const NODE_TAG = keccak256(enc.encode("DPG-POR-NODE-v1"));
export const PAD_TAG = keccak256(enc.encode("DPG-POR-PAD-v1"));

export function assetId(symbol) {
  return keccak256(enc.encode(symbol));
}

export function accountKey(accountId) {
  return keccak256(enc.encode("DPG-POR-ACCOUNT-v1:" + accountId));
}

/** keccak256(keccak256(abi.encode(LEAF_TAG, chainId, registry, epoch, assetId, accountKey, balance, salt))) */
export function leafHash(chainId, registry, epoch, asset, key, balance, salt) {
  if (balance < 0n || balance >= MAX_VALUE) throw new ProofError(`balance ${balance} is outside [0, 2^128)`);
  if (epoch >= 1n << 64n) throw new ProofError("epoch must fit a uint64");
  const inner = concat(LEAF_TAG, word(chainId), addressWord(registry), word(epoch), asset, key, word(balance), salt);
  return keccak256(keccak256(inner));
}

/**
 * keccak256(keccak256(abi.encode(LEAF_TAG_V2, chainId, registry, epoch, assetId, accountKey, balance, salt,
 * exitAddress, deposited, withdrawn)))
 */
export function leafHashV2(chainId, registry, epoch, asset, key, balance, salt, exitAddress, deposited, withdrawn) {
  if (balance < 0n || balance >= MAX_VALUE) throw new ProofError(`balance ${balance} is outside [0, 2^128)`);
  if (epoch >= 1n << 64n) throw new ProofError("epoch must fit a uint64");
  if (deposited >= MAX_COUNTER || withdrawn >= MAX_COUNTER) throw new ProofError("deposited and withdrawn must be below 2^128");
  const inner = concat(LEAF_TAG_V2, word(chainId), addressWord(registry), word(epoch), asset, key, word(balance), salt,
    addressWord(exitAddress, "exitAddress"), word(deposited), word(withdrawn));
  return keccak256(keccak256(inner));
}

/** The leaf hash of a proof file, version 1 or 2 (ProofError when a field is malformed). */
export function proofLeaf(p) {
  const chainId = decimal(p.chainId, "chainId");
  const epoch = decimal(p.epoch, "epoch");
  const balance = decimal(p.balance, "balance");
  if (typeof p.asset !== "string" || typeof p.accountId !== "string" || typeof p.registry !== "string") {
    throw new ProofError("registry, asset and accountId must be strings");
  }
  const aid = assetId(p.asset);
  if (!equal(fromHex(p.assetId, 32, "assetId"), aid)) throw new ProofError("assetId is not keccak256(asset)");
  const key = accountKey(p.accountId);
  if (!equal(fromHex(p.accountKey, 32, "accountKey"), key)) {
    throw new ProofError("accountKey does not belong to accountId");
  }
  const salt = fromHex(p.salt, 32, "salt");
  if (p.version === 1) return leafHash(chainId, p.registry, epoch, aid, key, balance, salt);
  if (p.account !== null && p.account !== undefined && String(p.account) !== p.accountId) {
    throw new ProofError("account must be the accountId as a number (or null)");
  }
  return leafHashV2(chainId, p.registry, epoch, aid, key, balance, salt, p.exitAddress,
    decimal(p.deposited, "deposited"), decimal(p.withdrawn, "withdrawn"));
}

/** keccak256(abi.encode(NODE_TAG, leftHash, leftValue, rightHash, rightValue)) */
export function nodeHash(leftHash, leftValue, rightHash, rightValue) {
  return keccak256(concat(NODE_TAG, leftHash, word(leftValue), rightHash, word(rightValue)));
}

/**
 * Check a proof file (the parsed JSON). `published` ({root: "0x…", total: "…"}), when given, is what
 * the registry holds for (epoch, asset); the proof must lead to it. Returns {valid, reason?, root,
 * total, balance}; never throws for a bad proof.
 */
export function verifyProof(p, published) {
  try {
    const { root, total } = foldProof(p);
    const claimedRoot = fromHex(p.root, 32, "root");
    const claimedTotal = decimal(p.total, "total");
    if (!equal(root, claimedRoot) || total !== claimedTotal) {
      throw new ProofError("the path does not lead to the stated root and total");
    }
    if (published) {
      if (!equal(root, fromHex(published.root, 32, "published root"))) {
        throw new ProofError(`the root ${toHex(root)} is not the published root ${published.root}`);
      }
      if (total !== decimal(String(published.total), "published total")) {
        throw new ProofError(`the total ${total} is not the published total ${published.total}`);
      }
    }
    return { valid: true, root: toHex(root), total: total.toString(), balance: String(p.balance) };
  } catch (e) {
    if (e instanceof ProofError) return { valid: false, reason: e.message };
    throw e;
  }
}

/** The root and total a proof's leaf and siblings lead to (ProofError when malformed). */
export function foldProof(p) {
  if (p === null || typeof p !== "object") throw new ProofError("a proof is a JSON object");
  if (p.version !== VERSION && p.version !== 1) throw new ProofError(`unknown proof version ${JSON.stringify(p.version)}`);
  const balance = decimal(p.balance, "balance");
  const depth = p.depth;
  if (!Number.isInteger(depth) || depth < 1 || depth > 64) throw new ProofError("depth must be an integer in [1, 64]");
  if (!Number.isInteger(p.index) || p.index < 0 || BigInt(p.index) >= 1n << BigInt(depth)) {
    throw new ProofError("index is outside the tree");
  }
  if (!Array.isArray(p.siblings) || p.siblings.length !== depth) {
    throw new ProofError(`a proof of depth ${depth} needs exactly ${depth} siblings`);
  }
  let h = proofLeaf(p);
  let v = balance;
  const index = BigInt(p.index);
  p.siblings.forEach((s, level) => {
    if (s === null || typeof s !== "object") throw new ProofError("each sibling is {hash, value}");
    const sh = fromHex(s.hash, 32, `sibling ${level} hash`);
    const sv = decimal(s.value, `sibling ${level} value`);
    if (sv >= MAX_VALUE << BigInt(level)) {
      throw new ProofError(`sibling ${level} value is larger than a subtree of that height can hold`);
    }
    if ((index >> BigInt(level)) & 1n) h = nodeHash(sh, sv, h, v);
    else h = nodeHash(h, v, sh, sv);
    v += sv;
  });
  return { root: h, total: v };
}

/** rootOf(uint64,bytes32) of the registry, by eth_call over JSON-RPC: {root, total, depth}. */
export async function readPublished(rpcUrl, registry, epoch, asset) {
  const selector = toHex(keccak256(enc.encode("rootOf(uint64,bytes32)")).slice(0, 4));
  const data = selector + toHex(word(BigInt(epoch))).slice(2) + toHex(assetId(asset)).slice(2);
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_call", params: [{ to: registry, data }, "latest"] }),
  });
  const reply = await res.json();
  if (reply.error) throw new Error(`eth_call: ${reply.error.message}`);
  const out = fromHex(reply.result, 96, "rootOf answer");
  const total = BigInt(toHex(out.slice(32, 64)));
  return { root: toHex(out.slice(0, 32)), total: total.toString(), depth: Number(BigInt(toHex(out.slice(64, 96)))) };
}
