// notecheck: an independent check of Tabellion's signed notes with golang.org/x/mod/sumdb/note.
//
//	notecheck open VKEY... < note         note.Open with these verifiers; prints the text's first line, then
//	                                      "verified <name> <key hash>" per verified signature and
//	                                      "unverified <name> <key hash>" per signature by an unknown key
//	notecheck cosign NAME SEED TIME < text  prints the tlog-cosignature/v1 line of an Ed25519 cosigner whose
//	                                      private key is the 32-byte hex SEED, at the POSIX time TIME
//
// A VKEY of type 0x01 is read by note.NewVerifier; a VKEY of type 0x04 is a C2SP tlog-cosignature/v1 key,
// verified here with crypto/ed25519 over "cosignature/v1\ntime <t>\n" || text (the x/mod/sumdb/note of
// Debian's golang-golang-x-mod-dev knows only type 0x01). Exit status 1 and the error on stderr when
// note.Open fails. Built offline by tests/e2e/test_note_interop_go.py (GOPATH mode, no module download).
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t >= 1<<63 {
		return false
	}
	m := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), msg...)
	return ed25519.Verify(v.key, m, sig[8:])
}

type cosigSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	time uint64
}

func (s *cosigSigner) Name() string    { return s.name }
func (s *cosigSigner) KeyHash() uint32 { return s.hash }
func (s *cosigSigner) Sign(msg []byte) ([]byte, error) {
	m := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", s.time)), msg...)
	sig := make([]byte, 8, 8+ed25519.SignatureSize)
	binary.BigEndian.PutUint64(sig, s.time)
	return append(sig, ed25519.Sign(s.key, m)...), nil
}

func keyHash(name string, typ byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', typ})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func verifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("malformed vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < 1 {
		return nil, errors.New("malformed vkey key")
	}
	switch raw[0] {
	case 0x01:
		return note.NewVerifier(vkey)
	case 0x04:
		if len(raw) != 1+ed25519.PublicKeySize {
			return nil, errors.New("cosignature key is not 32 bytes")
		}
		h := keyHash(parts[0], 0x04, raw[1:])
		if fmt.Sprintf("%08x", h) != parts[1] {
			return nil, errors.New("cosignature vkey hash mismatch")
		}
		return &cosigVerifier{parts[0], h, ed25519.PublicKey(raw[1:])}, nil
	}
	return nil, fmt.Errorf("unknown key type %d", raw[0])
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "notecheck:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if len(args) >= 1 && args[0] == "open" {
		var vs []note.Verifier
		for _, k := range args[1:] {
			v, err := verifier(k)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		n, err := note.Open(input, note.VerifierList(vs...))
		if err != nil {
			return err
		}
		fmt.Println(strings.SplitN(n.Text, "\n", 2)[0])
		for _, s := range n.Sigs {
			fmt.Printf("verified %s %08x\n", s.Name, s.Hash)
		}
		for _, s := range n.UnverifiedSigs {
			fmt.Printf("unverified %s %08x\n", s.Name, s.Hash)
		}
		return nil
	}
	if len(args) == 4 && args[0] == "cosign" {
		seed, err := hex.DecodeString(args[2])
		if err != nil || len(seed) != ed25519.SeedSize {
			return errors.New("the seed is 32 bytes of hex")
		}
		t, err := strconv.ParseUint(args[3], 10, 63)
		if err != nil {
			return err
		}
		key := ed25519.NewKeyFromSeed(seed)
		pub := key.Public().(ed25519.PublicKey)
		s := &cosigSigner{args[1], keyHash(args[1], 0x04, pub), key, t}
		signed, err := note.Sign(&note.Note{Text: string(input)}, s)
		if err != nil {
			return err
		}
		fmt.Print(string(signed[bytes.Index(signed, []byte("\n\n"))+2:]))
		return nil
	}
	return errors.New("usage: notecheck open VKEY... | notecheck cosign NAME SEED TIME")
}
