// Checks an event's RFC 9162 inclusion proof against the signed checkpoint, in the
// browser: WebCrypto SHA-256, no library. Steps:
//  1. canonical bytes of the envelope (RFC 8785 JCS: sorted keys by UTF-16 code units,
//     ECMAScript number and string forms; envelopes hold no floats);
//  2. leaf hash = SHA-256(0x00 || bytes), compared with the ledger's leaf_hash;
//  3. root from the audit path (RFC 9162 §2.1.3.2), compared with the checkpoint's root
//     (its third line), tree size and origin compared with the checkpoint's first lines;
//  4. the checkpoint's Ed25519 signature (C2SP signed note) under the published log key,
//     where WebCrypto has Ed25519; otherwise the page says it was not checked.
"use strict";
(function () {
  var enc = new TextEncoder();

  function jcs(v) {
    if (v === null || typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new Error("not a JSON number");
      return JSON.stringify(v);
    }
    if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
    var keys = Object.keys(v).sort(); // default sort: UTF-16 code units, as RFC 8785 asks
    return "{" + keys.map(function (k) { return JSON.stringify(k) + ":" + jcs(v[k]); }).join(",") + "}";
  }

  function b64(bytes) {
    var s = "";
    bytes.forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s);
  }
  function unb64(text) {
    var s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function concat() {
    var n = 0, i, parts = Array.prototype.slice.call(arguments);
    parts.forEach(function (p) { n += p.length; });
    var out = new Uint8Array(n);
    for (i = 0, n = 0; i < parts.length; n += parts[i].length, i++) out.set(parts[i], n);
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // RFC 9162 §2.1.3.2: the root a proof implies for leaf `index` of a tree of `size`.
  async function rootFromProof(index, size, leaf, path) {
    if (index >= size) throw new Error("leaf index " + index + " is not below the tree size " + size);
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < path.length; i++) {
      var p = path[i];
      if (sn === 0) throw new Error("the proof is longer than the tree is deep");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(Uint8Array.of(1), p, r));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await sha256(concat(Uint8Array.of(1), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the proof is shorter than the tree is deep");
    return r;
  }

  // C2SP signed note: the text up to the blank line, then "— name base64(keyhash4 || sig)".
  async function checkSignature(note, logKey) {
    // name+hash+key: the name and the hex hash hold no "+", the base64 key may.
    var i1 = logKey.indexOf("+"), i2 = logKey.indexOf("+", i1 + 1);
    if (i1 < 1 || i2 < 0) return { ok: false, text: "the log key is not a verifier key" };
    var name = logKey.slice(0, i1), keyBytes = unb64(logKey.slice(i2 + 1));
    if (keyBytes[0] !== 1 || keyBytes.length !== 33) return { ok: false, text: "the log key is not an Ed25519 verifier key" };
    var hash = (await sha256(concat(enc.encode(name + "\n"), keyBytes))).slice(0, 4);
    var cut = note.indexOf("\n\n");
    var text = note.slice(0, cut + 1);
    var sigLine = note.slice(cut + 2).split("\n").filter(function (l) {
      return l.indexOf("\u2014 " + name + " ") === 0;
    }).map(function (l) { return unb64(l.split(" ")[2]); }).filter(function (s) {
      return equal(s.slice(0, 4), hash);
    })[0];
    if (!sigLine) return { ok: false, text: "no signature by the log key " + name + " on the checkpoint" };
    var key;
    try {
      key = await crypto.subtle.importKey("raw", keyBytes.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return { ok: null, text: "not checked: this browser's WebCrypto has no Ed25519 (auditledger verify checks it)" };
    }
    var ok = await crypto.subtle.verify({ name: "Ed25519" }, key, sigLine.slice(4), enc.encode(text));
    return { ok: ok, text: ok ? "the checkpoint's Ed25519 signature verifies under " + logKey
                              : "the checkpoint's signature does NOT verify under the log key" };
  }

  async function verify(envelope, proof) {
    var steps = [];
    var bytes = enc.encode(jcs(envelope));
    var leaf = await sha256(concat(Uint8Array.of(0), bytes));
    var leafOk = equal(leaf, unb64(proof.leaf_hash));
    steps.push({ ok: leafOk, text: "leaf hash of the canonical envelope (" + bytes.length + " bytes): " + b64(leaf) +
      (leafOk ? " — equals the ledger's" : " — differs from the ledger's " + proof.leaf_hash) });
    var lines = proof.checkpoint.split("\n");
    var cpRoot = unb64(lines[2] || ""), cpSize = Number(lines[1]);
    var headOk = lines[0] === proof.origin && cpSize === proof.tree_size;
    steps.push({ ok: headOk, text: "checkpoint names " + lines[0] + ", " + lines[1] + " events" +
      (headOk ? "" : " — expected " + proof.origin + ", " + proof.tree_size) });
    var root, rootOk = false;
    try {
      root = await rootFromProof(proof.index, proof.tree_size, leaf, proof.proof.map(unb64));
      rootOk = equal(root, cpRoot);
      steps.push({ ok: rootOk, text: "root from the proof: " + b64(root) +
        (rootOk ? " — equals the checkpoint's root" : " — differs from the checkpoint's root " + lines[2]) });
    } catch (e) {
      steps.push({ ok: false, text: "the proof cannot be applied: " + e.message });
    }
    var sig = await checkSignature(proof.checkpoint, proof.log_key);
    steps.push(sig);
    return { ok: leafOk && headOk && rootOk && sig.ok !== false, signature: sig.ok, steps: steps };
  }

  window.auditledgerProof = { verify: verify, jcs: jcs, rootFromProof: rootFromProof };

  var button = document.getElementById("verify");
  if (!button) return;
  var envelope = JSON.parse(document.getElementById("envelope-data").textContent);
  var proof = JSON.parse(document.getElementById("proof-data").textContent);
  var out = document.getElementById("verify-result"), list = document.getElementById("verify-steps");
  button.addEventListener("click", async function () {
    out.textContent = "Checking…";
    list.textContent = "";
    var res;
    try { res = await verify(envelope, proof); } catch (e) { res = { ok: false, steps: [{ ok: false, text: e.message }] }; }
    res.steps.forEach(function (s) {
      var li = document.createElement("li");
      li.className = s.ok === true ? "pass" : s.ok === false ? "fail" : "skip";
      li.textContent = (s.ok === true ? "✔ " : s.ok === false ? "✘ " : "– ") + s.text;
      list.appendChild(li);
    });
    out.dataset.ok = String(res.ok);
    out.className = res.ok ? "pass" : "fail";
    out.textContent = res.ok
      ? "Verified: this event is in the log the checkpoint of " + proof.tree_size + " events commits to" +
        (res.signature === true ? ", and the checkpoint's signature is the log's." : " (signature not checked here).")
      : "NOT verified: see the failing step below.";
  });
})();
