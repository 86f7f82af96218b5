package main

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8 // C2SP tlog-tiles: 256-wide tiles

// fetcher GETs resources under one log's C2SP prefix with the caller's API key.
type fetcher struct {
	prefix string // .../v1/controllers/<c>/tlog
	apiKey string
	client *http.Client
	gets   int
}

func (f *fetcher) get(path string) ([]byte, int, error) {
	req, err := http.NewRequest(http.MethodGet, f.prefix+"/"+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if f.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+f.apiKey)
	}
	// Accept-Encoding is left to net/http, which asks for gzip and decompresses.
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	f.gets++
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: HTTP %d: %.200s", path, resp.StatusCode, body)
	}
	return body, resp.StatusCode, nil
}

// c2spPath turns x/mod's tile path (which names the tile height, "tile/8/...", and calls
// entry bundles "data") into the C2SP tlog-tiles path, which does neither.
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/"+strconv.Itoa(tileHeight)+"/")
	return "tile/" + strings.Replace(p, "data/", "entries/", 1)
}

// tileReader is a tlog.TileReader over HTTP; tlog.TileHashReader authenticates every
// tile it returns against the checkpoint's root before using a hash from it.
type tileReader struct{ f *fetcher }

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, _, err := r.f.get(c2spPath(t))
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, want %d", c2spPath(t), len(data), t.W*tlog.HashSize)
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// splitBundle parses an entry bundle: big-endian uint16 length-prefixed entries.
func splitBundle(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fmt.Errorf("truncated length prefix")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("entry %d truncated", len(out))
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out, nil
}

// cmdTlog reads a whole log as a standard tlog-tiles client does: the signed checkpoint,
// the tiles that recompute its root (x/mod's TileHashReader refuses any tile that does
// not), every entry bundle (each entry must hash to its leaf), inclusion proofs built from
// tiles for the chosen leaves, and, with --old, a consistency proof from tiles.
func cmdTlog(r *Report, keys note.Verifiers, controller, url, apiKey, oldPath string, indexes []string) {
	f := &fetcher{prefix: strings.TrimSuffix(url, "/") + "/v1/controllers/" + controller + "/tlog",
		apiKey: apiKey, client: &http.Client{Timeout: 60 * time.Second}}
	msg, _, err := f.get("checkpoint")
	if err != nil {
		fatal("%v", err)
	}
	cp, err := openCheckpoint(msg, keys, origin(controller))
	if err != nil {
		r.add(controller, "bad_checkpoint", fmt.Sprintf("tlog/checkpoint: %v", err))
		return
	}
	var root tlog.Hash
	copy(root[:], cp.Root)
	size := int64(cp.Size)
	tree := tlog.Tree{N: size, Hash: root}
	hr := tlog.TileHashReader(tree, tileReader{f})

	th, err := tlog.TreeHash(size, hr)
	if err != nil || th != root {
		r.add(controller, "root_mismatch", fmt.Sprintf(
			"tiles do not recompute the signed root at size %d: %v", size, err))
		return
	}

	// Every entry, bundle by bundle, against the authenticated level-0 hashes.
	entries := int64(0)
	for start := int64(0); start < size; start += 1 << tileHeight {
		w := size - start
		if w > 1<<tileHeight {
			w = 1 << tileHeight
		}
		t := tlog.Tile{H: tileHeight, L: -1, N: start >> tileHeight, W: int(w)}
		data, _, err := f.get(c2spPath(t))
		if err != nil {
			r.addAt(controller, "missing_event", "", start, fmt.Sprintf("entry bundle: %v", err))
			continue
		}
		got, err := splitBundle(data)
		if err != nil || int64(len(got)) != w {
			r.addAt(controller, "missing_event", "", start, fmt.Sprintf(
				"%s: %d entries, want %d (%v)", c2spPath(t), len(got), w, err))
			continue
		}
		idx := make([]int64, w)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, start+int64(i))
		}
		leaves, err := hr.ReadHashes(idx)
		if err != nil {
			r.add(controller, "root_mismatch", fmt.Sprintf("level-0 tile for %d: %v", start, err))
			continue
		}
		for i, e := range got {
			if tlog.RecordHash(e) != leaves[i] {
				r.addAt(controller, "leaf_hash_mismatch", "", start+int64(i),
					"entry does not hash to its leaf in the signed tree")
			}
			entries++
		}
	}

	// Inclusion proofs from tiles, checked by x/mod and by transparency-dev alike.
	for _, s := range indexes {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || i < 0 || i >= size {
			fatal("--index %q: not a leaf of the tree of size %d", s, size)
		}
		p, err := tlog.ProveRecord(size, i, hr)
		if err == nil {
			var leaf []tlog.Hash
			leaf, err = hr.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
			if err == nil {
				err = tlog.CheckRecord(p, size, root, i, leaf[0])
			}
			if err == nil {
				hashes := make([][]byte, len(p))
				for k := range p {
					hashes[k] = p[k][:]
				}
				err = proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(size), leaf[0][:], hashes, cp.Root)
			}
		}
		if err != nil {
			r.addAt(controller, "inclusion_failed", "", i, fmt.Sprintf("proof from tiles: %v", err))
		}
	}

	consistentFrom := any(nil)
	if oldPath != "" {
		old, err := openCheckpoint(readFile(oldPath), keys, origin(controller))
		if err != nil {
			r.add(controller, "bad_checkpoint", fmt.Sprintf("%s: %v", oldPath, err))
		} else if int64(old.Size) > size {
			r.add(controller, "checkpoint_fork", fmt.Sprintf(
				"older checkpoint has size %d, the served one %d", old.Size, size))
		} else {
			var oldRoot tlog.Hash
			copy(oldRoot[:], old.Root)
			p, err := tlog.ProveTree(size, int64(old.Size), hr)
			if err == nil {
				err = tlog.CheckTree(p, size, root, int64(old.Size), oldRoot)
			}
			if err != nil {
				r.add(controller, "checkpoint_fork", fmt.Sprintf(
					"signed checkpoints at sizes %d and %d not shown consistent from tiles: %v", old.Size, size, err))
			} else {
				consistentFrom = old.Size
			}
		}
	}
	r.Controllers[controller] = map[string]any{
		"size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Root),
		"entries": entries, "requests": f.gets, "consistent_from": consistentFrom,
	}
}
