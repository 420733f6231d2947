// tlog_peer: Go's golang.org/x/mod/sumdb/tlog as an independent peer for Lifeboat's log
// (test/log-interop-tlog.test.ts). It reads a log directory written in the C2SP tlog-tiles layout,
// trusts its tiles only through tlog.TileHashReader (which checks them against the given root), and
// answers one JSON line per JSON command line on stdin:
//
//	{"op":"tree_hash","tree":S,"size":n}                                -> {"hash":b64}
//	{"op":"check_record","tree":S,"index":i,"size":n,"root":b64,"proof":[b64]} -> {"ok":bool,"error":...}
//	{"op":"check_tree","tree":S,"old_size":m,"old_root":b64,"size":n,"root":b64,"proof":[b64]} -> {"ok":...}
//	{"op":"prove_record","tree":S,"index":i,"size":n}                   -> {"proof":[b64],"leaf_hash":b64,"root":b64}
//	{"op":"prove_tree","tree":S,"old_size":m,"size":n}                  -> {"proof":[b64],"old_root":b64,"root":b64}
//	{"op":"stored_hash_index","level":l,"size":n,"index":i}             -> StoredHashIndex(l, n), StoredHashCount(n), SplitStoredHashIndex(i)
//
// The first line is {"dir":path,"trees":[{"size":S,"root":b64},...]}: the checkpoints the tiles may be
// read under (a command's "tree" names one by size). "check_record" hashes the entry itself, read from
// the entry bundle with its own parser, so leaf hashing and the bundle format are checked too.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

type treeJSON struct {
	Size int64  `json:"size"`
	Root []byte `json:"root"`
}

type command struct {
	Op      string   `json:"op"`
	Tree    int64    `json:"tree"`
	Index   int64    `json:"index"`
	Size    int64    `json:"size"`
	OldSize int64    `json:"old_size"`
	Level   int64    `json:"level"`
	Root    []byte   `json:"root"`
	OldRoot []byte   `json:"old_root"`
	Proof   [][]byte `json:"proof"`
}

// c2spPath is the tlog-tiles path of a tile (Go's own Path() in x/mod 0.7 puts the height in the path).
func c2spPath(level string, n int64, w int) string {
	s := strconv.FormatInt(n, 10)
	for len(s)%3 != 0 {
		s = "0" + s
	}
	var parts []string
	for i := 0; i < len(s); i += 3 {
		p := s[i : i+3]
		if i+3 < len(s) {
			p = "x" + p
		}
		parts = append(parts, p)
	}
	p := "tile/" + level + "/" + strings.Join(parts, "/")
	if w < 256 {
		p += ".p/" + strconv.Itoa(w)
	}
	return p
}

type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return 8 }

func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != 8 {
			return nil, fmt.Errorf("tile height %d", t.H)
		}
		data, err := os.ReadFile(filepath.Join(d.dir, c2spPath(strconv.Itoa(t.L), t.N, t.W)))
		if err != nil && t.W < 256 {
			// tlog-tiles: a partial tile may be replaced by the full one
			full, ferr := os.ReadFile(filepath.Join(d.dir, c2spPath(strconv.Itoa(t.L), t.N, 256)))
			if ferr == nil && len(full) >= t.W*tlog.HashSize {
				data, err = full[:t.W*tlog.HashSize], nil
			}
		}
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (d dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// entry reads entry i from its bundle: the full bundle, or else the widest partial one.
func (d dirTiles) entry(i int64) ([]byte, error) {
	n := i / 256
	data, err := os.ReadFile(filepath.Join(d.dir, c2spPath("entries", n, 256)))
	if err != nil {
		best := 0
		for w := 1; w < 256; w++ {
			if _, serr := os.Stat(filepath.Join(d.dir, c2spPath("entries", n, w))); serr == nil {
				best = w
			}
		}
		if best == 0 {
			return nil, err
		}
		if data, err = os.ReadFile(filepath.Join(d.dir, c2spPath("entries", n, best))); err != nil {
			return nil, err
		}
	}
	for k := int64(0); len(data) >= 2; k++ {
		l := int(data[0])<<8 | int(data[1])
		if len(data) < 2+l {
			return nil, fmt.Errorf("bundle %d truncated", n)
		}
		if k == i%256 {
			return data[2 : 2+l], nil
		}
		data = data[2+l:]
	}
	return nil, fmt.Errorf("entry %d not in its bundle", i)
}

func toHash(b []byte) (tlog.Hash, error) {
	var h tlog.Hash
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash of %d bytes", len(b))
	}
	copy(h[:], b)
	return h, nil
}

func toHashes(bs [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(bs))
	for i, b := range bs {
		h, err := toHash(b)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func fromHashes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = append([]byte(nil), h[:]...)
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := json.NewEncoder(os.Stdout)
	if !in.Scan() {
		fmt.Fprintln(os.Stderr, "no setup line")
		os.Exit(2)
	}
	var setup struct {
		Dir   string     `json:"dir"`
		Trees []treeJSON `json:"trees"`
	}
	if err := json.Unmarshal(in.Bytes(), &setup); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(2)
	}
	tiles := dirTiles{setup.Dir}
	readers := map[int64]tlog.HashReader{}
	for _, t := range setup.Trees {
		root, err := toHash(t.Root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "setup:", err)
			os.Exit(2)
		}
		readers[t.Size] = tlog.TileHashReader(tlog.Tree{N: t.Size, Hash: root}, tiles)
	}
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		out.Encode(run(c, readers, tiles))
	}
}

func run(c command, readers map[int64]tlog.HashReader, tiles dirTiles) interface{} {
	fail := func(err error) interface{} { return map[string]interface{}{"ok": false, "error": err.Error()} }
	switch c.Op {
	case "stored_hash_index":
		level, n := tlog.SplitStoredHashIndex(c.Index)
		return map[string]interface{}{"index": tlog.StoredHashIndex(int(c.Level), c.Size), "count": tlog.StoredHashCount(c.Size), "split_level": level, "split_n": n}
	}
	r, found := readers[c.Tree]
	if !found {
		return fail(fmt.Errorf("no tree of size %d", c.Tree))
	}
	switch c.Op {
	case "tree_hash":
		h, err := tlog.TreeHash(c.Size, r)
		if err != nil {
			return fail(err)
		}
		return map[string]interface{}{"hash": h[:]}
	case "check_record":
		entry, err := tiles.entry(c.Index)
		if err != nil {
			return fail(err)
		}
		root, err := toHash(c.Root)
		if err != nil {
			return fail(err)
		}
		proof, err := toHashes(c.Proof)
		if err != nil {
			return fail(err)
		}
		if err := tlog.CheckRecord(tlog.RecordProof(proof), c.Size, root, c.Index, tlog.RecordHash(entry)); err != nil {
			return fail(err)
		}
		return map[string]interface{}{"ok": true}
	case "check_tree":
		root, err := toHash(c.Root)
		if err != nil {
			return fail(err)
		}
		oldRoot, err := toHash(c.OldRoot)
		if err != nil {
			return fail(err)
		}
		proof, err := toHashes(c.Proof)
		if err != nil {
			return fail(err)
		}
		if err := tlog.CheckTree(tlog.TreeProof(proof), c.Size, root, c.OldSize, oldRoot); err != nil {
			return fail(err)
		}
		return map[string]interface{}{"ok": true}
	case "prove_record":
		proof, err := tlog.ProveRecord(c.Size, c.Index, r)
		if err != nil {
			return fail(err)
		}
		entry, err := tiles.entry(c.Index)
		if err != nil {
			return fail(err)
		}
		root, err := tlog.TreeHash(c.Size, r)
		if err != nil {
			return fail(err)
		}
		leaf := tlog.RecordHash(entry)
		return map[string]interface{}{"proof": fromHashes(proof), "leaf_hash": leaf[:], "root": root[:]}
	case "prove_tree":
		proof, err := tlog.ProveTree(c.Size, c.OldSize, r)
		if err != nil {
			return fail(err)
		}
		oldRoot, err := tlog.TreeHash(c.OldSize, r)
		if err != nil {
			return fail(err)
		}
		root, err := tlog.TreeHash(c.Size, r)
		if err != nil {
			return fail(err)
		}
		return map[string]interface{}{"proof": fromHashes(proof), "old_root": oldRoot[:], "root": root[:]}
	}
	return fail(fmt.Errorf("unknown op %q", c.Op))
}
