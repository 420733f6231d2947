// note_peer: Go's golang.org/x/mod/sumdb/note as a peer for Lifeboat's signed notes
// (test/log-interop-note.test.ts). Built in GOPATH mode against Debian's golang-golang-x-mod-dev.
//
//	note_peer genkey <name>                  prints the signer key and the verifier key (note.GenerateKey)
//	note_peer sign <skey>                    signs the text on stdin (note.NewSigner, note.Sign)
//	note_peer open <key>...                  opens the note on stdin (note.Open); prints JSON
//	note_peer open-each <key>...             opens each note of a JSON array of strings on stdin; prints a JSON array
//	note_peer cosign <name> <seed hex> <t>   signs the checkpoint text on stdin with a cosignature/v1 key
//
// An open key is "log:<vkey>" (note.NewVerifier) or "cosig:<vkey>" (a type 0x04 witness key). This
// Debian version of x/mod predates cosignatures, so the cosignature/v1 Verifier and Signer below are
// written here from c2sp.org/tlog-cosignature@v1.0.1 and plugged into note.Open and note.Sign.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const algCosignatureV1 = 4

func keyHash(name string, key []byte) uint32 {
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	return binary.BigEndian.Uint32(h[:4])
}

func cosignedMessage(text []byte, t uint64) []byte {
	return append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), text...)
}

type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 72 {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	return ed25519.Verify(v.key, cosignedMessage(msg, t), sig[8:])
}

func newCosigVerifier(vkey string) (note.Verifier, error) {
	name, rest, _ := strings.Cut(vkey, "+")
	hash16, key64, _ := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(key64)
	if err1 != nil || err2 != nil || len(key) != 33 || key[0] != algCosignatureV1 || keyHash(name, key) != uint32(hash) {
		return nil, fmt.Errorf("malformed cosignature verifier key")
	}
	return &cosigVerifier{name: name, hash: uint32(hash), key: ed25519.PublicKey(key[1:])}, nil
}

type cosigSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	t    uint64
}

func (s *cosigSigner) Name() string    { return s.name }
func (s *cosigSigner) KeyHash() uint32 { return s.hash }
func (s *cosigSigner) Sign(msg []byte) ([]byte, error) {
	out := make([]byte, 8, 72)
	binary.BigEndian.PutUint64(out, s.t)
	return append(out, ed25519.Sign(s.priv, cosignedMessage(msg, s.t))...), nil
}

type sig struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

func sigs(list []note.Signature) []sig {
	out := []sig{}
	for _, s := range list {
		out = append(out, sig{s.Name, fmt.Sprintf("%08x", s.Hash)})
	}
	return out
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: note_peer genkey|sign|open|cosign ...")
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil && os.Args[1] != "genkey" {
		fail("stdin: %v", err)
	}
	switch os.Args[1] {
	case "genkey":
		skey, vkey, err := note.GenerateKey(rand.Reader, os.Args[2])
		if err != nil {
			fail("genkey: %v", err)
		}
		fmt.Printf("%s\n%s\n", skey, vkey)
	case "sign":
		s, err := note.NewSigner(os.Args[2])
		if err != nil {
			fail("signer: %v", err)
		}
		msg, err := note.Sign(&note.Note{Text: string(in)}, s)
		if err != nil {
			fail("sign: %v", err)
		}
		os.Stdout.Write(msg)
	case "open", "open-each":
		var vs []note.Verifier
		for _, k := range os.Args[2:] {
			var v note.Verifier
			var err error
			if strings.HasPrefix(k, "log:") {
				v, err = note.NewVerifier(strings.TrimPrefix(k, "log:"))
			} else if strings.HasPrefix(k, "cosig:") {
				v, err = newCosigVerifier(strings.TrimPrefix(k, "cosig:"))
			} else {
				err = fmt.Errorf("key must start with log: or cosig:")
			}
			if err != nil {
				fail("verifier %q: %v", k, err)
			}
			vs = append(vs, v)
		}
		if os.Args[1] == "open-each" {
			var notes []string
			if err := json.Unmarshal(in, &notes); err != nil {
				fail("open-each: stdin is not a JSON array of strings")
			}
			results := []map[string]interface{}{}
			for _, msg := range notes {
				n, err := note.Open([]byte(msg), note.VerifierList(vs...))
				if err != nil {
					results = append(results, map[string]interface{}{"ok": false, "error": err.Error()})
				} else {
					results = append(results, map[string]interface{}{"ok": true, "text": n.Text, "sigs": sigs(n.Sigs)})
				}
			}
			out, _ := json.Marshal(results)
			os.Stdout.Write(append(out, '\n'))
			return
		}
		n, err := note.Open(in, note.VerifierList(vs...))
		if err != nil {
			fail("open: %v", err)
		}
		out, _ := json.Marshal(map[string]interface{}{"text": n.Text, "sigs": sigs(n.Sigs), "unverified": sigs(n.UnverifiedSigs)})
		os.Stdout.Write(append(out, '\n'))
	case "cosign":
		seed, err := hex.DecodeString(os.Args[3])
		t, err2 := strconv.ParseUint(os.Args[4], 10, 63)
		if err != nil || err2 != nil || len(seed) != 32 {
			fail("cosign: bad seed or time")
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := append([]byte{algCosignatureV1}, priv.Public().(ed25519.PublicKey)...)
		s := &cosigSigner{name: os.Args[2], hash: keyHash(os.Args[2], pub), priv: priv, t: t}
		msg, err := note.Sign(&note.Note{Text: string(in)}, s)
		if err != nil {
			fail("sign: %v", err)
		}
		// only the signature line: what a witness answers (c2sp.org/tlog-witness)
		i := bytes.LastIndex(msg, []byte("\n\n"))
		os.Stdout.Write(msg[i+2:])
	default:
		fail("unknown command %q", os.Args[1])
	}
}
