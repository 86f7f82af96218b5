// Checks schemas/testvectors with Node's own crypto, sharing no code with the ledger:
// Ed25519 signatures over the signing input, the signing input's prefix and canonical
// part, leaf hashes, pseudonyms (HMAC of the normalised identifier), sealed fields
// (AES-256-GCM). Prints one JSON line {"ok", "checked", "problems"}; exit 1 on a problem.
// Usage: node check.mjs DIR
import { createHash, createHmac, createPublicKey, createDecipheriv, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
const load = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));
const b64url = (s) => Buffer.from(s, "base64url");
const problems = [];
let checked = 0;
const expect = (cond, what) => { checked++; if (!cond) problems.push(what); };

const signing = load("signing.json");
const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: signing.public_key },
                              format: "jwk" });
const domain = Buffer.from(signing.domain_hex, "hex");
expect(domain.toString() === "auditledger/1\n", "domain");
for (const c of signing.cases) {
  const msg = Buffer.from(c.signing_input_hex, "hex");
  expect(msg.equals(Buffer.concat([domain, Buffer.from(c.canonical, "utf8")])),
         `signing input of ${c.envelope.event_id}`);
  expect(verify(null, msg, pub, b64url(c.sig)), `signature of ${c.envelope.event_id}`);
  const flipped = Buffer.from(msg); flipped[flipped.length - 2] ^= 1;
  expect(!verify(null, flipped, pub, b64url(c.sig)), `altered input must fail ${c.envelope.event_id}`);
}

const leaves = load("leaves.json");
for (const c of leaves.cases) {
  const h = createHash("sha256").update(Buffer.from([0])).update(Buffer.from(c.entry, "utf8")).digest();
  expect(h.toString("base64") === c.leaf_hash && h.toString("hex") === c.leaf_hash_hex,
         `leaf hash ${c.index}`);
  const env = JSON.parse(c.entry);
  const sig = signing.cases.find((s) => s.envelope.event_id === env.event_id);
  expect(sig && sig.sig === env.sig, `entry ${c.index} carries the signature of signing.json`);
}

const psn = load("pseudonyms.json");
const skey = Buffer.from(psn.subject_key_hex, "hex");
for (const c of psn.cases) {
  const mac = createHmac("sha256", skey).update(Buffer.from(c.normalised, "utf8")).digest();
  expect("psn:" + mac.toString("base64url") === c.pseudonym, `pseudonym of ${c.identifier}`);
}

const sealed = load("sealed.json");
for (const c of sealed.cases) {
  const ct = b64url(c.sealed.ct);
  const d = createDecipheriv("aes-256-gcm", b64url(c.key), b64url(c.sealed.nonce));
  d.setAAD(Buffer.from(c.aad_hex, "hex"));
  d.setAuthTag(ct.subarray(ct.length - 16));
  let plain;
  try {
    plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString("utf8");
  } catch (e) { plain = null; }
  expect(plain === c.plaintext, `sealed ${c.event_id} decrypts to the plaintext`);
  expect(Buffer.from(c.aad_hex, "hex").toString() ===
         `auditledger/sealed/1\n${c.controller}\n${c.event_id}`, "aad");
}

console.log(JSON.stringify({ ok: problems.length === 0, checked, problems }));
process.exit(problems.length ? 1 : 0);
