package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// inclusionDoc is the API's GET /v1/controllers/{c}/proofs/inclusion/{event_id} answer.
type inclusionDoc struct {
	EventID    string   `json:"event_id"`
	Index      *uint64  `json:"index"`
	TreeSize   *uint64  `json:"tree_size"`
	LeafHash   string   `json:"leaf_hash"`
	Proof      []string `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

// consistencyDoc is the API's GET /v1/controllers/{c}/proofs/consistency answer.
type consistencyDoc struct {
	From  *uint64  `json:"from"`
	To    *uint64  `json:"to"`
	Proof []string `json:"proof"`
}

func decodeHashes(in []string) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, s := range in {
		h, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("proof hash %d is not base64 of 32 bytes", i)
		}
		out[i] = h
	}
	return out, nil
}

// checkInclusion is the check shared by the API's proofs and a bundle's: the proof is for
// the checkpoint's tree size and, with the RFC 9162 hasher, takes the leaf to its root.
func checkInclusion(cp *Checkpoint, leaf []byte, index, treeSize uint64, hashes []string) error {
	if treeSize != cp.Size {
		return fmt.Errorf("proof is for tree size %d, the checkpoint's is %d", treeSize, cp.Size)
	}
	p, err := decodeHashes(hashes)
	if err != nil {
		return err
	}
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, treeSize, leaf, p, cp.Root)
}

func cmdInclusion(r *Report, keys note.Verifiers, controller, path string) {
	var doc inclusionDoc
	if err := json.Unmarshal(readFile(path), &doc); err != nil {
		fatal("%s: %v", path, err)
	}
	if doc.Index == nil || doc.TreeSize == nil {
		r.add(controller, "inclusion_failed", "proof has no index or tree_size")
		return
	}
	at := int64(*doc.Index)
	cp, err := openCheckpoint([]byte(doc.Checkpoint), keys, origin(controller))
	if err != nil {
		r.addAt(controller, "bad_checkpoint", doc.EventID, at, fmt.Sprintf("checkpoint of the proof: %v", err))
		return
	}
	leaf, err := base64.StdEncoding.Strict().DecodeString(doc.LeafHash)
	if err != nil || len(leaf) != 32 {
		r.addAt(controller, "inclusion_failed", doc.EventID, at, "leaf_hash is not base64 of 32 bytes")
		return
	}
	if err := checkInclusion(cp, leaf, *doc.Index, *doc.TreeSize, doc.Proof); err != nil {
		r.addAt(controller, "inclusion_failed", doc.EventID, at, err.Error())
		return
	}
	r.Controllers[controller] = map[string]any{
		"size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Root), "included": doc.EventID,
	}
}

// checkConsistency: the newer checkpoint's tree extends the older one's.
func checkConsistency(old, new *Checkpoint, from, to uint64, hashes []string) error {
	if from != old.Size || to != new.Size {
		return fmt.Errorf("proof is for sizes %d -> %d, the checkpoints' are %d -> %d", from, to, old.Size, new.Size)
	}
	p, err := decodeHashes(hashes)
	if err != nil {
		return err
	}
	return proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, p, old.Root, new.Root)
}

func cmdConsistency(r *Report, keys note.Verifiers, controller, oldPath, newPath, path string) {
	var cps [2]*Checkpoint
	for i, p := range []string{oldPath, newPath} {
		cp, err := openCheckpoint(readFile(p), keys, origin(controller))
		if err != nil {
			r.add(controller, "bad_checkpoint", fmt.Sprintf("%s: %v", p, err))
			return
		}
		cps[i] = cp
	}
	var doc consistencyDoc
	if err := json.Unmarshal(readFile(path), &doc); err != nil {
		fatal("%s: %v", path, err)
	}
	if doc.From == nil || doc.To == nil {
		r.add(controller, "checkpoint_fork", "proof has no from or to")
		return
	}
	if err := checkConsistency(cps[0], cps[1], *doc.From, *doc.To, doc.Proof); err != nil {
		r.add(controller, "checkpoint_fork", fmt.Sprintf(
			"signed checkpoints at sizes %d and %d not shown consistent: %v", cps[0].Size, cps[1].Size, err))
		return
	}
	r.Controllers[controller] = map[string]any{
		"size": cps[1].Size, "root": base64.StdEncoding.EncodeToString(cps[1].Root), "consistent_from": cps[0].Size,
	}
}
