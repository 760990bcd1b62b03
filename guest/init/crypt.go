package main

import (
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"math/big"
)

// cryptAlphabet is crypt(3)'s base-64 alphabet.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// hashPassword hashes an initialPassword for /etc/shadow with SHA-512 crypt
// ("$6$", what NixOS's mkpasswd gives by default among those busybox's
// login, su and passwd check) and a random salt.
func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	for i := range salt {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(cryptAlphabet))))
		if err != nil {
			return "", err
		}
		salt[i] = cryptAlphabet[n.Int64()]
	}
	return sha512Crypt(password, string(salt)), nil
}

// sha512Crypt is glibc's crypt(password, "$6$"+salt) with the default 5000
// rounds, after Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512".
// The salt is cut to 16 characters.
func sha512Crypt(password, salt string) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(password), []byte(salt)
	sumA := cryptDigestA(p, s)

	dp := sha512.New()
	for range len(p) {
		dp.Write(p)
	}
	pSeq := repeatTo(dp.Sum(nil), len(p))
	ds := sha512.New()
	for range 16 + int(sumA[0]) {
		ds.Write(s)
	}
	sSeq := repeatTo(ds.Sum(nil), len(s))
	return cryptEncode(salt, cryptRounds(sumA, pSeq, sSeq))
}

// cryptDigestA is the spec's digest A (steps 1 to 12).
func cryptDigestA(p, s []byte) []byte {
	b := sha512.New()
	b.Write(p)
	b.Write(s)
	b.Write(p)
	sumB := b.Sum(nil)

	a := sha512.New()
	a.Write(p)
	a.Write(s)
	for n := len(p); n > 0; n -= 64 {
		a.Write(sumB[:min(n, 64)])
	}
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(p)
		}
	}
	return a.Sum(nil)
}

// cryptRounds is the spec's 5000 rounds (step 21) from digest A.
func cryptRounds(c, pSeq, sSeq []byte) []byte {
	const rounds = 5000
	for r := range rounds {
		h := sha512.New()
		if r&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if r%3 != 0 {
			h.Write(sSeq)
		}
		if r%7 != 0 {
			h.Write(pSeq)
		}
		if r&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(nil)
	}
	return c
}

// cryptEncode is the spec's output: "$6$SALT$" and the digest in crypt's base 64.
func cryptEncode(salt string, c []byte) string {
	out := []byte(fmt.Sprintf("$6$%s$", salt))
	encode := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out = append(out, cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	for i := range 21 {
		// The spec's byte order: (0,21,42), (22,43,1), (44,2,23), (3,24,45)...
		x, y, z := i, i+21, i+42
		switch i % 3 {
		case 1:
			x, y, z = i+21, i+42, i
		case 2:
			x, y, z = i+42, i, i+21
		}
		encode(c[x], c[y], c[z], 4)
	}
	encode(0, 0, c[63], 2)
	return string(out)
}

// repeatTo repeats digest to n bytes.
func repeatTo(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, digest[:min(n-len(out), len(digest))]...)
	}
	return out
}
