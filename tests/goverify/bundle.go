package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Bundle members, as ledger/bundle.py (format auditledger-bundle/1) names them.
const (
	bundleFormat1 = "auditledger-bundle/1"
	manifestNote  = "manifest.note"
	eventsMember  = "events.jsonl"
	cpsMember     = "checkpoints.jsonl"
	inclMember    = "proofs/inclusion.jsonl"
	consMember    = "proofs/consistency.jsonl"
)

type bundle struct {
	r          *Report
	members    map[string][]byte
	duplicates []string
	controller string
}

func (b *bundle) add(problem, detail string) { b.r.add(b.controller, problem, detail) }

// readZip returns the members (directory entries are not members) and the names that
// appear more than once (readers disagree on which one is meant).
func readZip(path string) (map[string][]byte, []string) {
	data := readFile(path)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		fatal("%s: not an evidence bundle: %v", path, err)
	}
	out := map[string][]byte{}
	var dups []string
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		if _, seen := out[f.Name]; seen {
			dups = append(dups, f.Name)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			fatal("%s: %s: %v", path, f.Name, err)
		}
		body, err := io.ReadAll(io.LimitReader(rc, 1<<30))
		rc.Close()
		if err != nil {
			fatal("%s: %s: %v", path, f.Name, err)
		}
		out[f.Name] = body
	}
	return out, dups
}

func jsonLines(data []byte) [][]byte {
	var out [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// cmdBundle checks an evidence bundle with the pinned log key only: the signed manifest
// and every member's digest, every checkpoint, consistency between consecutive ones,
// and each event's leaf hash and inclusion proof against the last checkpoint.
func cmdBundle(r *Report, keys note.Verifiers, path string) {
	b := &bundle{r: r, controller: "?"}
	b.members, b.duplicates = readZip(path)
	lines := b.checkManifest(keys)
	if lines == nil {
		return
	}
	if lines[0] == bundleFormat2 {
		b.checkV2(keys, lines)
		return
	}
	final, count := b.checkCheckpoints(keys)
	if final == nil {
		return
	}
	if lines[2] != strconv.FormatUint(final.Size, 10) {
		b.add("bundle_manifest", fmt.Sprintf("%s: tree size %s is not the last checkpoint's (%d)",
			manifestNote, lines[2], final.Size))
	}
	events := b.checkEvents(final)
	r.Controllers[b.controller] = map[string]any{
		"format": lines[0], "size": final.Size, "root": base64.StdEncoding.EncodeToString(final.Root),
		"checkpoints": count, "events": events,
	}
}

// checkManifest opens manifest.note (format, controller, tree size, then one
// "<sha256 hex> <member>" line per member) and checks every member against it.
func (b *bundle) checkManifest(keys note.Verifiers) []string {
	raw, ok := b.members[manifestNote]
	if !ok {
		b.add("bundle_manifest", manifestNote+" is missing")
		return nil
	}
	n, err := note.Open(raw, keys)
	if err != nil {
		b.add("bundle_manifest", fmt.Sprintf("%s: not signed by the log key: %v", manifestNote, err))
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	first := 3 // the header lines before the member digests
	if len(lines) > 0 && lines[0] == bundleFormat2 {
		first = 6
	}
	if len(lines) < first || (lines[0] != bundleFormat1 && lines[0] != bundleFormat2) {
		b.add("bundle_manifest", fmt.Sprintf("%s: not a %s or %s manifest", manifestNote,
			bundleFormat1, bundleFormat2))
		return nil
	}
	b.controller = lines[1]
	for _, name := range b.duplicates {
		b.add("duplicate_member", name+": more than one zip entry of this name")
	}
	listed := map[string]bool{}
	for _, line := range lines[first:] {
		digest, name, _ := strings.Cut(line, " ")
		listed[name] = true
		data, ok := b.members[name]
		sum := sha256.Sum256(data)
		switch {
		case !ok:
			b.add("member_missing", name+": listed in the manifest but absent")
		case hex.EncodeToString(sum[:]) != digest:
			b.add("member_altered", name+": contents differ from the signed manifest")
		}
	}
	var unlisted []string
	for name := range b.members {
		if !listed[name] && name != manifestNote {
			unlisted = append(unlisted, name)
		}
	}
	sort.Strings(unlisted)
	for _, name := range unlisted {
		b.add("member_unlisted", name+": not listed in the signed manifest")
	}
	return lines
}

// checkCheckpoints opens every checkpoint and checks each consecutive pair's consistency
// proof; it returns the last (largest) checkpoint and how many verified.
func (b *bundle) checkCheckpoints(keys note.Verifiers) (*Checkpoint, int) {
	var cps []*Checkpoint
	for i, line := range jsonLines(b.members[cpsMember]) {
		var doc struct {
			Size *uint64 `json:"size"`
			Note string  `json:"note"`
		}
		if err := json.Unmarshal(line, &doc); err != nil {
			b.add("bad_checkpoint", fmt.Sprintf("%s line %d: not a checkpoint record", cpsMember, i+1))
			continue
		}
		cp, err := openCheckpoint([]byte(doc.Note), keys, origin(b.controller))
		if err != nil {
			b.add("bad_checkpoint", fmt.Sprintf("%s line %d: %v", cpsMember, i+1, err))
			continue
		}
		if doc.Size == nil || *doc.Size != cp.Size {
			b.add("bad_checkpoint", fmt.Sprintf("%s line %d: size field differs from the signed note", cpsMember, i+1))
		}
		cps = append(cps, cp)
	}
	if len(cps) == 0 {
		b.add("bad_checkpoint", cpsMember+": no valid signed checkpoint")
		return nil, 0
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	proofs := map[[2]uint64][]string{}
	for _, line := range jsonLines(b.members[consMember]) {
		var doc consistencyDoc
		if json.Unmarshal(line, &doc) == nil && doc.From != nil && doc.To != nil {
			proofs[[2]uint64{*doc.From, *doc.To}] = doc.Proof
		}
	}
	for i := 1; i < len(cps); i++ {
		old, new := cps[i-1], cps[i]
		p, ok := proofs[[2]uint64{old.Size, new.Size}]
		err := fmt.Errorf("no proof in the bundle")
		if ok {
			err = checkConsistency(old, new, old.Size, new.Size, p)
		}
		if err != nil {
			b.add("checkpoint_fork", fmt.Sprintf("%s %d -> %d: checkpoints not shown consistent: %v",
				consMember, old.Size, new.Size, err))
		}
	}
	return cps[len(cps)-1], len(cps)
}

// checkEvents: each event's leaf hash is SHA-256(0x00 || the stored envelope bytes) and
// its inclusion proof takes it to the final checkpoint's root.
func (b *bundle) checkEvents(final *Checkpoint) int {
	proofs := map[string]inclusionDoc{}
	for i, line := range jsonLines(b.members[inclMember]) {
		var doc inclusionDoc
		if err := json.Unmarshal(line, &doc); err != nil || doc.EventID == "" {
			b.add("bad_inclusion_proof", fmt.Sprintf("%s line %d: not a proof record", inclMember, i+1))
			continue
		}
		proofs[doc.EventID] = doc
	}
	seen := map[string]bool{}
	count := 0
	for i, line := range jsonLines(b.members[eventsMember]) {
		var rec struct {
			Index    *uint64         `json:"index"`
			EventID  string          `json:"event_id"`
			LeafHash string          `json:"leaf_hash"`
			Event    json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(line, &rec); err != nil || rec.Index == nil || len(rec.Event) == 0 {
			b.add("malformed_event", fmt.Sprintf("%s line %d: not an event record", eventsMember, i+1))
			continue
		}
		count++
		at := int64(*rec.Index)
		where := fmt.Sprintf("%s line %d: ", eventsMember, i+1)
		if seen[rec.EventID] {
			b.r.addAt(b.controller, "duplicate_event_id", rec.EventID, at, where+"event_id appears twice")
		}
		seen[rec.EventID] = true
		var env struct {
			EventID    string `json:"event_id"`
			Controller string `json:"controller"`
		}
		if json.Unmarshal(rec.Event, &env) != nil || env.EventID != rec.EventID {
			b.r.addAt(b.controller, "event_id_mismatch", rec.EventID, at, where+"the envelope's event_id differs from the record's")
		}
		if env.Controller != b.controller {
			b.r.addAt(b.controller, "invalid_event", rec.EventID, at, where+"event of another controller")
		}
		leaf := sha256.Sum256(append([]byte{0}, rec.Event...))
		if rec.LeafHash != "" && rec.LeafHash != base64.StdEncoding.EncodeToString(leaf[:]) {
			b.r.addAt(b.controller, "leaf_hash_mismatch", rec.EventID, at, where+"recorded leaf hash is not the event's hash")
		}
		doc, ok := proofs[rec.EventID]
		delete(proofs, rec.EventID)
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("no inclusion proof in the bundle")
		case doc.Index == nil || *doc.Index != *rec.Index || doc.TreeSize == nil:
			err = fmt.Errorf("proof is for another index")
		default:
			err = checkInclusion(final, leaf[:], *doc.Index, *doc.TreeSize, doc.Proof)
		}
		if err != nil {
			b.r.addAt(b.controller, "inclusion_failed", rec.EventID, at, fmt.Sprintf(
				"%s for event at index %d: %v", inclMember, at, err))
		}
	}
	var orphans []string
	for id := range proofs {
		orphans = append(orphans, id)
	}
	sort.Strings(orphans)
	for _, id := range orphans {
		idx := int64(-1)
		if proofs[id].Index != nil {
			idx = int64(*proofs[id].Index)
		}
		b.r.addAt(b.controller, "missing_event", id, idx, fmt.Sprintf("%s: proof for an event not in %s", inclMember, eventsMember))
	}
	return count
}
