package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// HashParams are the argon2id parameters of new password hashes. Existing hashes keep the
// parameters recorded in their PHC string, so raising them later needs no migration.
type HashParams struct {
	Time      uint32 // iterations
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // parallelism
	SaltLen   uint32 // bytes
	KeyLen    uint32 // bytes
}

// DefaultHashParams are OWASP's minimum for argon2id (Password Storage Cheat Sheet: m=19 MiB,
// t=2, p=1), with a 16-byte salt and a 32-byte key: about as costly to attack per guess as
// the heavier options, at a third of the memory per hash, so a burst of logins or sign-ups
// holds little memory (see Limits). Hashes made with other parameters (the earlier default
// was m=64 MiB, t=1, p=2) still verify: each PHC string records its own. Tests use far less
// memory through configuration.
var DefaultHashParams = HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

// Hasher hashes and verifies passwords with argon2id, in the PHC string format
// "$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>" (unpadded standard base64).
// It is safe for concurrent use.
type Hasher struct {
	p     HashParams
	dummy string // a hash of a random password, verified when an email is unknown
}

// NewHasher returns a Hasher for p (zero fields take DefaultHashParams' values).
func NewHasher(p HashParams) (*Hasher, error) {
	d := DefaultHashParams
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if p.MemoryKiB < 8*uint32(p.Threads) {
		return nil, fmt.Errorf("argon2id memory %d KiB is below 8 KiB per thread", p.MemoryKiB)
	}
	h := &Hasher{p: p}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	dummy, err := h.Hash(base64.RawURLEncoding.EncodeToString(secret))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() HashParams { return h.p }

// Hash returns the PHC string of password with a fresh random salt.
func (h *Hasher) Hash(password string) (string, error) {
	salt := make([]byte, h.p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, h.p.Time, h.p.MemoryKiB, h.p.Threads, h.p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.p.MemoryKiB, h.p.Time, h.p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("malformed argon2id hash")

// Verify reports whether password matches the PHC string encoded, comparing in constant
// time. A malformed hash is an error, never a match.
func (h *Hasher) Verify(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || p == 0 || t == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Outdated reports whether encoded was made with other parameters than the hasher's (or
// is not a hash it can read), so it should be made anew when the password is at hand.
func (h *Hasher) Outdated(encoded string) bool {
	var m, t uint32
	var p uint8
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return true
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return true
	}
	return m != h.p.MemoryKiB || t != h.p.Time || p != h.p.Threads
}

// VerifyDummy spends the same work as Verify against a hash of a random password and
// always reports no match. It is called when the email is unknown, so the response time
// does not tell whether an account exists.
func (h *Hasher) VerifyDummy(password string) {
	_, _ = h.Verify(password, h.dummy)
}

// Password policy limits.
const (
	MinPasswordLen = 12
	// MaxPasswordLen bounds the input to the hash; argon2 accepts any length, but a
	// megabyte "password" is a request to waste memory, not a secret.
	MaxPasswordLen = 256
)

// CheckPassword applies the password policy: at least MinPasswordLen characters, at most
// MaxPasswordLen, and at least two character classes (lowercase, uppercase, digits,
// other), so "aaaaaaaaaaaa" and "123456789012" are refused while a long passphrase with a
// space or a digit is fine. The error says which rule failed.
func CheckPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case password == "":
		return &ValidationError{"password", "is required"}
	case !utf8.ValidString(password):
		return &ValidationError{"password", "must be valid UTF-8"}
	case n < MinPasswordLen:
		return &ValidationError{"password", fmt.Sprintf("must be at least %d characters", MinPasswordLen)}
	case n > MaxPasswordLen:
		return &ValidationError{"password", fmt.Sprintf("must be at most %d characters", MaxPasswordLen)}
	}
	var lower, upper, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	if classes < 2 {
		return &ValidationError{"password", "must mix at least two kinds of characters (lowercase, uppercase, digits, symbols or spaces)"}
	}
	if email != "" && strings.EqualFold(password, email) {
		return &ValidationError{"password", "must not be the email address"}
	}
	return nil
}
