package main

// Format auditledger-bundle/2 (docs/verification.md): a complete period. The bundle holds
// every leaf of a range [begin, end) of the log, a compact range for the leaves before it,
// and the signed checkpoints at its edges, so recomputing the end root from the compact
// range and the leaves shows nothing in the range was dropped, inserted or reordered.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const (
	bundleFormat2 = "auditledger-bundle/2"
	contextMember = "context.jsonl"
	rangeMember   = "proofs/range.json"
	latestMember  = "consistency.json"
	timeLayout    = "2006-01-02T15:04:05.000Z"
)

// header2 is what manifest.note's fixed lines say.
type header2 struct {
	from, to                 string
	begin, end               uint64
	startSize, endSize, last uint64
}

func (b *bundle) parseHeader2(lines []string) (*header2, bool) {
	h := &header2{}
	fields := func(line, key string, n int) []string {
		f := strings.Split(line, " ")
		if len(f) != n+1 || f[0] != key {
			return nil
		}
		return f[1:]
	}
	nums := func(in []string, out ...*uint64) bool {
		for i, s := range in {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil || strconv.FormatUint(v, 10) != s {
				return false
			}
			*out[i] = v
		}
		return true
	}
	p, r, e := fields(lines[2], "period", 2), fields(lines[3], "range", 2), fields(lines[4], "edges", 3)
	if p == nil || r == nil || e == nil || !nums(r, &h.begin, &h.end) ||
		!nums(e, &h.startSize, &h.endSize, &h.last) || !strings.HasPrefix(lines[5], "created ") {
		b.add("bundle_manifest", manifestNote+": unreadable period, range, edges or created line")
		return nil, false
	}
	h.from, h.to = p[0], p[1]
	return h, true
}

type record struct {
	line     int
	index    uint64
	eventID  string
	received string
	leaf     []byte
}

// readRecords parses events.jsonl / context.jsonl lines; the leaf is SHA-256(0x00 ||
// the "event" bytes as they stand in the line, which the format says are the JCS bytes).
func (b *bundle) readRecords(member string) []record {
	var out []record
	for i, line := range jsonLines(b.members[member]) {
		var rec struct {
			Index      *uint64         `json:"index"`
			EventID    string          `json:"event_id"`
			ReceivedAt string          `json:"received_at"`
			LeafHash   string          `json:"leaf_hash"`
			Event      json.RawMessage `json:"event"`
		}
		where := fmt.Sprintf("%s line %d: ", member, i+1)
		if err := json.Unmarshal(line, &rec); err != nil || rec.Index == nil || len(rec.Event) == 0 {
			b.add("malformed_event", where+"not an event record")
			continue
		}
		at := int64(*rec.Index)
		leaf := rfc6962.DefaultHasher.HashLeaf(rec.Event)
		if rec.LeafHash != base64.StdEncoding.EncodeToString(leaf) {
			b.r.addAt(b.controller, "leaf_hash_mismatch", rec.EventID, at, where+"recorded leaf hash is not the event's hash")
		}
		var env struct {
			EventID    string `json:"event_id"`
			Controller string `json:"controller"`
		}
		if json.Unmarshal(rec.Event, &env) != nil || env.EventID != rec.EventID {
			b.r.addAt(b.controller, "event_id_mismatch", rec.EventID, at, where+"the envelope's event_id differs from the record's")
		} else if env.Controller != b.controller {
			b.r.addAt(b.controller, "invalid_event", rec.EventID, at, where+"event of another controller")
		}
		out = append(out, record{i + 1, *rec.Index, rec.EventID, rec.ReceivedAt, leaf})
	}
	return out
}

type timedCheckpoint struct {
	*Checkpoint
	at time.Time
}

func (b *bundle) checkV2(keys note.Verifiers, lines []string) {
	h, ok := b.parseHeader2(lines)
	if !ok {
		return
	}

	// Checkpoints: signed, timed as their records say, times not going back, consecutive
	// ones consistent.
	var cps []timedCheckpoint
	bySize := map[uint64]timedCheckpoint{}
	for i, line := range jsonLines(b.members[cpsMember]) {
		var doc struct {
			Size *uint64 `json:"size"`
			Time *string `json:"time"`
			Note string  `json:"note"`
		}
		where := fmt.Sprintf("%s line %d: ", cpsMember, i+1)
		if err := json.Unmarshal(line, &doc); err != nil {
			b.add("bad_checkpoint", where+"not a checkpoint record")
			continue
		}
		cp, err := openCheckpoint([]byte(doc.Note), keys, origin(b.controller))
		if err != nil {
			b.add("bad_checkpoint", where+err.Error())
			continue
		}
		if doc.Size == nil || *doc.Size != cp.Size {
			b.add("bad_checkpoint", where+"size field differs from the signed note")
		}
		tc := timedCheckpoint{Checkpoint: cp}
		if signed := cp.Time(); signed != "" {
			t, err := time.Parse(timeLayout, signed)
			if err != nil {
				b.add("bad_checkpoint", where+"unreadable time extension "+strconv.Quote(signed))
			}
			tc.at = t
			if doc.Time == nil || *doc.Time != signed {
				b.add("checkpoint_time_mismatch", where+"time field differs from the signed time extension")
			}
		}
		cps = append(cps, tc)
		bySize[cp.Size] = tc
	}
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	proofs := map[[2]uint64][]string{}
	for _, line := range jsonLines(b.members[consMember]) {
		var doc consistencyDoc
		if json.Unmarshal(line, &doc) == nil && doc.From != nil && doc.To != nil {
			proofs[[2]uint64{*doc.From, *doc.To}] = doc.Proof
		}
	}
	for i := 1; i < len(cps); i++ {
		old, new := cps[i-1], cps[i]
		if !old.at.IsZero() && !new.at.IsZero() && new.at.Before(old.at) {
			b.add("checkpoint_time_order", fmt.Sprintf("checkpoint at size %d is timed before the one at size %d", new.Size, old.Size))
		}
		p, ok := proofs[[2]uint64{old.Size, new.Size}]
		err := fmt.Errorf("no proof in the bundle")
		if ok {
			err = checkConsistency(old.Checkpoint, new.Checkpoint, old.Size, new.Size, p)
		}
		if err != nil {
			b.add("checkpoint_fork", fmt.Sprintf("%s %d -> %d: checkpoints not shown consistent: %v", consMember, old.Size, new.Size, err))
		}
	}

	// Edges: present, timed, and the end edge consistent with the latest checkpoint.
	edge := func(size uint64, what string) *timedCheckpoint {
		tc, ok := bySize[size]
		if !ok {
			b.add("edge_missing", fmt.Sprintf("%s edge: no verified checkpoint of size %d", what, size))
			return nil
		}
		if tc.at.IsZero() && what != "latest" {
			b.add("checkpoint_untimed", fmt.Sprintf("%s edge at size %d has no signed time", what, size))
		}
		return &tc
	}
	var start *timedCheckpoint
	if h.startSize > 0 {
		start = edge(h.startSize, "start")
	}
	end, latest := edge(h.endSize, "end"), edge(h.last, "latest")
	if end != nil && latest != nil {
		var doc consistencyDoc
		err := json.Unmarshal(b.members[latestMember], &doc)
		if err == nil && (doc.From == nil || doc.To == nil) {
			err = fmt.Errorf("no from or to")
		}
		if err == nil {
			err = checkConsistency(end.Checkpoint, latest.Checkpoint, *doc.From, *doc.To, doc.Proof)
		}
		if err != nil {
			b.add("latest_inconsistent", fmt.Sprintf("%s: end checkpoint %d not shown consistent with latest %d: %v",
				latestMember, h.endSize, h.last, err))
		}
	}
	if h.begin != h.startSize || h.end != h.endSize {
		b.add("range_mismatch", fmt.Sprintf("%s: range %d..%d does not run from the start edge %d to the end edge %d",
			manifestNote, h.begin, h.end, h.startSize, h.endSize))
	}
	if h.from == "-" && h.to == "-" && (h.startSize != 0 || h.endSize != h.last) {
		b.add("not_whole_log", fmt.Sprintf("whole-log bundle covers %d..%d of %d leaves", h.startSize, h.endSize, h.last))
	}

	// The range: left + every leaf of [begin, end) recompute the end root.
	var rp struct {
		Begin *uint64  `json:"begin"`
		End   *uint64  `json:"end"`
		Left  []string `json:"left"`
	}
	if err := json.Unmarshal(b.members[rangeMember], &rp); err != nil || rp.Begin == nil || rp.End == nil {
		b.add("range_mismatch", rangeMember+": not a range proof")
		return
	}
	if *rp.Begin != h.begin || *rp.End != h.end {
		b.add("range_mismatch", fmt.Sprintf("%s: range %d..%d, the manifest says %d..%d", rangeMember, *rp.Begin, *rp.End, h.begin, h.end))
	}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	left, err := decodeHashes(rp.Left)
	var rng *compact.Range
	if err == nil {
		rng, err = rf.NewRange(0, h.begin, left)
	}
	if err != nil {
		b.add("range_left_mismatch", fmt.Sprintf("%s: left is not the compact range of [0, %d): %v", rangeMember, h.begin, err))
		return
	}
	if start != nil {
		if root, err := rng.GetRootHash(nil); err != nil || !bytes.Equal(root, start.Root) {
			b.add("range_left_mismatch", fmt.Sprintf("%s: left does not recompute the start root at size %d", rangeMember, h.begin))
		}
	}

	events := b.readRecords(eventsMember)
	leaves := map[uint64]record{}
	var maxSeen uint64
	for i, ev := range events {
		at := int64(ev.index)
		where := fmt.Sprintf("%s line %d: ", eventsMember, ev.line)
		switch _, dup := leaves[ev.index]; {
		case ev.index < h.begin || ev.index >= h.end:
			b.r.addAt(b.controller, "event_outside_range", ev.eventID, at, where+fmt.Sprintf("index outside %d..%d", h.begin, h.end))
			continue
		case dup:
			b.r.addAt(b.controller, "duplicate_index", ev.eventID, at, where+"index appears twice")
			continue
		case i > 0 && ev.index < maxSeen:
			b.r.addAt(b.controller, "event_out_of_order", ev.eventID, at, where+"index after a larger one")
		}
		if ev.index > maxSeen {
			maxSeen = ev.index
		}
		leaves[ev.index] = ev
	}
	complete := true
	for i := h.begin; i < h.end; i++ {
		ev, ok := leaves[i]
		if !ok {
			b.r.addAt(b.controller, "missing_event", "", int64(i), fmt.Sprintf("%s: no event at index %d of the range", eventsMember, i))
			complete = false
			continue
		}
		if complete {
			if err := rng.Append(ev.leaf, nil); err != nil {
				fatal("compact range: %v", err)
			}
		}
		// Receipt is bounded by the signed time of the first checkpoint that includes it.
		if c := firstCovering(cps, i); c != nil && !c.at.IsZero() {
			if got, err := time.Parse(timeLayout, ev.received); err == nil && got.After(c.at) {
				b.r.addAt(b.controller, "received_after_checkpoint", ev.eventID, int64(i), fmt.Sprintf(
					"received_at %s is after the time of checkpoint %d that includes it", ev.received, c.Size))
			}
		}
	}
	if complete && end != nil {
		if root, err := rng.GetRootHash(nil); err != nil || !bytes.Equal(root, end.Root) {
			b.add("range_root_mismatch", fmt.Sprintf("left and leaves %d..%d do not recompute the end root at size %d", h.begin, h.end, h.endSize))
		}
	}

	// Context: administration events before the range, each proved in the end checkpoint.
	ctxProofs := map[string]inclusionDoc{}
	for _, line := range jsonLines(b.members[inclMember]) {
		var doc inclusionDoc
		if json.Unmarshal(line, &doc) == nil && doc.EventID != "" {
			ctxProofs[doc.EventID] = doc
		}
	}
	ctx := b.readRecords(contextMember)
	for _, ev := range ctx {
		at := int64(ev.index)
		doc, ok := ctxProofs[ev.eventID]
		var err error
		switch {
		case end == nil:
			continue
		case ev.index >= h.begin:
			b.r.addAt(b.controller, "event_outside_range", ev.eventID, at, fmt.Sprintf("%s line %d: context event inside the range", contextMember, ev.line))
			continue
		case !ok:
			err = fmt.Errorf("no inclusion proof in the bundle")
		case doc.Index == nil || *doc.Index != ev.index || doc.TreeSize == nil:
			err = fmt.Errorf("proof is for another index")
		default:
			err = checkInclusion(end.Checkpoint, ev.leaf, *doc.Index, *doc.TreeSize, doc.Proof)
		}
		if err != nil {
			b.r.addAt(b.controller, "inclusion_failed", ev.eventID, at, fmt.Sprintf("%s for event at index %d: %v", inclMember, at, err))
		}
	}

	// Counts in manifest.json (digested by the signed manifest). period_events needs
	// occurred_at read as a time in the ledger's sense: not checked here.
	var listed map[string]any
	if json.Unmarshal(b.members["manifest.json"], &listed) == nil {
		for name, n := range map[string]int{"events": len(events) + len(ctx),
			"range_events": len(events), "context_events": len(ctx)} {
			if v, ok := listed[name].(float64); !ok || int(v) != n {
				b.add("count_mismatch", fmt.Sprintf("manifest.json: %s is %v, the bundle holds %d", name, listed[name], n))
			}
		}
	}

	summary := map[string]any{
		"format": bundleFormat2, "range": []uint64{h.begin, h.end}, "events": len(events) + len(ctx),
		"range_events": len(events), "context_events": len(ctx), "checkpoints": len(cps), "latest": h.last,
		"period": map[string]string{"from": h.from, "to": h.to},
	}
	if end != nil {
		summary["size"], summary["root"] = end.Size, base64.StdEncoding.EncodeToString(end.Root)
	}
	b.r.Controllers[b.controller] = summary
}

// firstCovering is the smallest checkpoint whose tree includes leaf i (cps sorted by size).
func firstCovering(cps []timedCheckpoint, i uint64) *timedCheckpoint {
	k := sort.Search(len(cps), func(k int) bool { return cps[k].Size > i })
	if k == len(cps) {
		return nil
	}
	return &cps[k]
}
