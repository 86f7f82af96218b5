package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a C2SP tlog-checkpoint body: origin, tree size, root hash.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       []byte
	Extensions []string // body lines after the root, e.g. "time 2026-…Z"
}

// Time is the value of the signed "time " extension line, "" when the note has none.
func (c *Checkpoint) Time() string {
	for _, e := range c.Extensions {
		if v, ok := strings.CutPrefix(e, "time "); ok {
			return v
		}
	}
	return ""
}

func newKeys(vkey string) (note.Verifiers, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return note.VerifierList(v), nil
}

func origin(controller string) string { return "auditledger/" + controller }

// openCheckpoint verifies a signed checkpoint note with the pinned key and parses it.
// Like the ledger's verifier it refuses a note without a signature by the key, one whose
// signature by the key does not verify, a body that is not origin/size/root, and a
// checkpoint of another log (one log key signs every controller's checkpoints).
func openCheckpoint(msg []byte, keys note.Verifiers, wantOrigin string) (*Checkpoint, error) {
	n, err := note.Open(msg, keys)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("not signed by the log key")
		}
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("checkpoint needs origin, size and root lines")
	}
	if lines[0] != wantOrigin {
		return nil, fmt.Errorf("checkpoint is for %q, expected %q", lines[0], wantOrigin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return nil, fmt.Errorf("checkpoint size %q is not a decimal without leading zeros", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("checkpoint root is not base64 of 32 bytes")
	}
	for _, e := range lines[3:] {
		if e == "" {
			return nil, fmt.Errorf("checkpoint has an empty extension line")
		}
	}
	return &Checkpoint{Origin: lines[0], Size: size, Root: root, Extensions: lines[3:]}, nil
}

func cmdCheckpoint(r *Report, keys note.Verifiers, controller, path string) {
	cp, err := openCheckpoint(readFile(path), keys, origin(controller))
	if err != nil {
		r.add(controller, "bad_checkpoint", fmt.Sprintf("%s: %v", path, err))
		return
	}
	r.Controllers[controller] = map[string]any{
		"size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Root),
	}
}
